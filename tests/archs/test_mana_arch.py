"""MANA-specific checks (the generic build/forward/backward test is in
test_all_archs.py, driven by arch_cases.py)."""

import re

import pytest
import torch

from basicattn.archs.mana_arch import MANA
from basicattn.registry import ARCHS

TINY = dict(
    num_feat=8,
    num_groups=4,
    embed_dim=4,
    num_slots=8,
    num_encoder_blocks=1,
    num_decoder_blocks=1,
    hr_feat=8,
)


def tiny(seed=0, **kwargs):
    """A tiny MANA whose zero-initialised output convs are made non-zero, so
    that both attention branches reach the output."""
    torch.manual_seed(seed)
    model = MANA(**dict(TINY, **kwargs))
    for conv in (model.attention.conv_out, model.memory.conv_out):
        torch.nn.init.normal_(conv.weight, std=0.2)
        torch.nn.init.normal_(conv.bias, std=0.2)
    return model


def n_params(model, trainable=False):
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable)


def test_parameter_count_of_the_coded_model():
    model = ARCHS.build(dict(type='MANA'))
    assert n_params(model) == n_params(model, trainable=True) == 14_317_508
    # N = 512 (the paper's tables) adds 64 x 256 slots.
    assert n_params(MANA(num_slots=512)) == 14_317_508 + 64 * 256


def test_zero_initialised_output_convs_and_sigma():
    model = MANA(**TINY)
    for conv in (model.attention.conv_out, model.memory.conv_out):
        assert not conv.weight.any() and not conv.bias.any()
    assert model.attention.sigma.tolist() == [4.0]


def test_tiled_model_equals_dense_model_on_64x64():
    """Full forward on a 7-frame 64x64 clip, ours vs the dense attention."""
    model = tiny()
    dense = tiny(attention_mode='dense')
    dense.load_state_dict(model.state_dict())
    x = torch.rand(1, 7, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        out = model(x)
        ref = dense(x)
    assert out.shape == (1, 3, 256, 256)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)


def test_tiled_model_gradients_equal_dense_model():
    model = tiny(attention_tile=5)
    dense = tiny(attention_mode='dense')
    dense.load_state_dict(model.state_dict())
    x = torch.rand(2, 7, 3, 9, 14)
    for net in (model, dense):
        out, aux = net(x, return_aux=True)
        (out.square().mean() + aux['quant']).backward()
    for (name, p), q in zip(model.named_parameters(), dense.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_quant_loss_paths_agree_and_train_the_bank():
    model = tiny()
    x = torch.rand(2, 7, 3, 6, 5)
    out, aux = model(x, return_aux=True)
    assert out.shape == (2, 3, 24, 20) and list(aux) == ['quant']
    qloss = aux['quant']
    assert qloss.dim() == 0
    torch.testing.assert_close(model.quant_loss(x), qloss)
    torch.testing.assert_close(model(x), out)
    # Second stage as coded: only the bank trainable, loss = quant loss.
    for p in model.parameters():
        p.requires_grad_(False)
    model.memory.bank.requires_grad_(True)
    model.quant_loss(x).backward()
    assert model.memory.bank.grad.abs().sum() > 0


def test_any_frame_size_and_frame_count():
    model = tiny(num_frames=3).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 3, 5, 11)).shape == (1, 3, 20, 44)
        assert model(torch.rand(1, 3, 3, 1, 2)).shape == (1, 3, 4, 8)


def test_batch_independence():
    model = tiny().eval()
    x = torch.rand(3, 7, 3, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(model(x)[1:2], model(x[1:2]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('shape', [(1, 3, 8, 8), (1, 5, 3, 8, 8), (1, 7, 1, 8, 8)])
def test_bad_input_shape_is_named(shape):
    msg = f'MANA expects (N, T=7, C=3, H, W), got shape {shape}'
    with pytest.raises(ValueError, match=re.escape(msg)):
        MANA(**TINY)(torch.rand(*shape))


@pytest.mark.parametrize(
    'kwargs,match',
    [
        (dict(num_frames=6), 'num_frames must be odd'),
        (dict(num_in_ch=1), 'num_in_ch'),
        (dict(num_groups=3), 'divisible by num_groups'),
        (dict(num_slots=0), 'num_slots'),
        (dict(attention_mode='sparse'), 'attention mode must be one of'),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MANA(**dict(TINY, **kwargs))


def test_no_mem_is_the_full_model_with_a_silent_memory():
    """Table 2's No_Mem (``use_memory=False``): no memory weights, and the same
    output as the full model whose memory read-out conv is zero (its initial state)."""
    full = tiny(seed=3)
    torch.nn.init.zeros_(full.memory.conv_out.weight)
    torch.nn.init.zeros_(full.memory.conv_out.bias)
    no_mem = MANA(**dict(TINY, use_memory=False))
    state = {k: v for k, v in full.state_dict().items() if not k.startswith('memory.')}
    assert set(state) == set(no_mem.state_dict())
    no_mem.load_state_dict(state)
    x = torch.rand(1, 7, 3, 8, 8)
    out, aux = no_mem(x, return_aux=True)
    assert aux == {}
    # The full model adds an exact zero; same ops otherwise, but keep a float tolerance.
    torch.testing.assert_close(out, full(x), rtol=0, atol=1e-6)
    assert n_params(MANA(use_memory=False)) == 14_317_508 - 64 * 256 - (64 * 128 + 128)
    with pytest.raises(ValueError, match='No_Mem'):
        no_mem.quant_loss(x)
