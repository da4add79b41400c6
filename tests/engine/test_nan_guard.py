"""The non-finite training guard (``train.nan_policy``) on real tiny EDSR runs.

Runs diverge for real (``lr: 1e6``: the loss is inf at iteration 2) or at a
chosen iteration through :class:`InfAtIterations`, an L1 loss that returns
inf at given iterations (a set number of times each). After every run every
checkpoint file on disk is loaded and checked for NaN and inf.
"""

import glob
import os.path as osp

import pytest
import tiny_runs
import torch
from mmengine.logging import MessageHub
from mmengine.registry import OPTIMIZERS
from torch import nn

from basicattn.checkpoint.io import safe_load
from basicattn.engine.nan_guard import NonFiniteGuardHook
from basicattn.errors import NonFiniteError, UserError
from basicattn.losses.finite_check import NonFiniteTraining, check_losses
from basicattn.registry import ARCHS, LOSSES
from basicattn.utils.finite import first_non_finite


@LOSSES.register_module(force=True)
class InfAtIterations(nn.Module):
    """L1 loss that is inf at the given 1-based iterations, ``times`` times each.

    The counts live in the module, which a rollback does not rebuild, so an
    iteration that is run again after a rollback is finite once its count is used.
    """

    def __init__(self, iterations: list = (), times: int = 1):
        super().__init__()
        self.left = {int(i): int(times) for i in iterations}

    def forward(self, pred, gt):
        loss = (pred - gt).abs().mean()
        iteration = MessageHub.get_current_instance().get_info('iter') + 1
        if self.left.get(iteration, 0) > 0:
            self.left[iteration] -= 1
            return loss * float('inf')
        return loss


class _NaNGradient(torch.autograd.Function):
    """Zero forward, NaN backward."""

    @staticmethod
    def forward(ctx, x):
        ctx.shape = x.shape
        return x.sum() * 0

    @staticmethod
    def backward(ctx, grad):
        return torch.full(ctx.shape, float('nan'), dtype=grad.dtype)


@LOSSES.register_module(force=True)
class NaNGradientLoss(nn.Module):
    """A finite loss (0) whose gradient is NaN."""

    def forward(self, pred, gt):
        return _NaNGradient.apply(pred)


@OPTIMIZERS.register_module(force=True)
class AdamNaNAtStep(torch.optim.Adam):
    """Adam that writes NaN into its first parameter after its ``nan_at``-th step."""

    def __init__(self, params, lr: float = 1e-3, nan_at: int = 0):
        super().__init__(params, lr=lr)
        self.nan_at, self.steps = nan_at, 0

    @torch.no_grad()
    def step(self, closure=None):
        loss = super().step(closure)
        self.steps += 1
        if self.steps == self.nan_at:
            self.param_groups[0]['params'][0].fill_(float('nan'))
        return loss


class EDSRNaNInEval(nn.Module):
    """A tiny conv net that trains normally but outputs NaN in eval mode."""

    def __init__(self, upscale: int = 2):
        super().__init__()
        self.conv = nn.Conv2d(3, 3 * upscale**2, 3, padding=1)
        self.shuffle = nn.PixelShuffle(upscale)

    def forward(self, x):
        out = self.shuffle(self.conv(x))
        return out if self.training else out * float('nan')


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp('nan_guard'))
    tiny_runs.write_images(f'{folder}/images')
    return folder


def _options(root, name, total_iter=6, save_freq=1, **train):
    opt = tiny_runs.options(root, name, total_iter=total_iter, **train)
    opt['logger']['save_checkpoint_freq'] = save_freq
    return opt


def _checkpoints(work_dir):
    return sorted(osp.basename(p) for p in glob.glob(osp.join(work_dir, '*.pth')))


def _assert_all_checkpoints_finite(work_dir):
    for path in glob.glob(osp.join(work_dir, '*.pth')):
        checkpoint = safe_load(path)
        for key in ('state_dict', 'ema_state_dict'):
            if key in checkpoint:
                assert first_non_finite(checkpoint[key].items()) is None, (path, key)


def _pointer(work_dir):
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return osp.basename(f.read().strip())


def _lr(work_dir, iteration):
    return tiny_runs.checkpoint(work_dir, iteration)['optimizer']['param_groups'][0]['lr']


def test_stop_on_a_real_divergence_names_the_loss_and_iteration(root):
    opt = _options(root, 'stop_lr1e6', optim_g={'type': 'Adam', 'lr': 1e6})
    with pytest.raises(NonFiniteTraining) as info:
        tiny_runs.train(root, opt)
    message = str(info.value)
    assert isinstance(info.value, UserError) and '\n' not in message
    assert 'the loss train.losses.pixel (loss_pixel) is inf at iteration 2' in message
    assert 'train.nan_policy: stop' in message and 'train.optim_g.lr' in message
    assert 'the last good checkpoint iter_1.pth is kept' in message
    work_dir = opt['path']['experiments_root']
    assert _checkpoints(work_dir) == ['iter_1.pth', 'latest.pth']
    assert _pointer(work_dir) == 'iter_1.pth'
    _assert_all_checkpoints_finite(work_dir)


def test_rollback_reloads_the_last_checkpoint_and_halves_the_lr(root):
    reference = tiny_runs.train(root, _options(root, 'reference', ema_decay=0.5))
    opt = _options(
        root,
        'rollback_once',
        nan_policy='rollback',
        ema_decay=0.5,
        losses={'pixel': {'type': 'InfAtIterations', 'iterations': [4]}},
    )
    work_dir = tiny_runs.train(root, opt)
    final = tiny_runs.checkpoint(work_dir, 6)
    assert final['nan_guard'] == {'rollbacks': 1, 'lr_scale': 0.5}
    # before the rollback the runs are the same; after it, the lr is half the reference's
    assert _lr(work_dir, 3) == pytest.approx(_lr(reference, 3))
    for iteration in (4, 6):
        assert _lr(work_dir, iteration) == pytest.approx(0.5 * _lr(reference, iteration))
    schedulers = final['param_schedulers']
    assert schedulers[1]['base_values'] == pytest.approx([0.5e-3])  # the schedule continues scaled
    # the weights and EMA of iteration 3 (the reloaded checkpoint) are the reference run's
    for name in ('state_dict', 'ema_state_dict'):
        before = tiny_runs.checkpoint(work_dir, 3)[name]
        for key, value in tiny_runs.checkpoint(reference, 3)[name].items():
            assert torch.equal(before[key], value), key
    assert _pointer(work_dir) == 'iter_6.pth'
    _assert_all_checkpoints_finite(work_dir)


def test_rollback_before_the_first_checkpoint_goes_back_to_the_start(root):
    opt = _options(
        root,
        'rollback_to_start',
        total_iter=4,
        save_freq=4,
        nan_policy='rollback',
        losses={'pixel': {'type': 'InfAtIterations', 'iterations': [2]}},
    )
    work_dir = tiny_runs.train(root, opt)
    assert _checkpoints(work_dir) == ['iter_4.pth', 'latest.pth']
    assert tiny_runs.checkpoint(work_dir, 4)['nan_guard'] == {'rollbacks': 1, 'lr_scale': 0.5}
    reference = tiny_runs.train(root, _options(root, 'reference4', total_iter=4, save_freq=4))
    assert _lr(work_dir, 4) == pytest.approx(0.5 * _lr(reference, 4))


def test_max_times_ends_the_run(root):
    opt = _options(
        root,
        'rollback_exhausted',
        nan_policy='rollback',
        nan_rollback={'lr_factor': 0.5, 'max_times': 2},
        optim_g={'type': 'Adam', 'lr': 1e6},
    )
    with pytest.raises(NonFiniteTraining) as info:
        tiny_runs.train(root, opt)
    message = str(info.value)
    assert 'stopped after 2 rollback(s) (train.nan_rollback.max_times: 2)' in message
    assert 'at iteration 2' in message and 'iter_1.pth is kept' in message
    work_dir = opt['path']['experiments_root']
    assert _checkpoints(work_dir) == ['iter_1.pth', 'latest.pth']
    _assert_all_checkpoints_finite(work_dir)


def test_the_rollback_count_survives_a_resume(root):
    opt = _options(
        root,
        'rollback_resumed',
        nan_policy='rollback',
        nan_rollback={'lr_factor': 0.5, 'max_times': 1},
        losses={'pixel': {'type': 'InfAtIterations', 'iterations': [2, 5]}},
    )
    work_dir = tiny_runs.train(root, opt, stop_at=3)  # one rollback, at iteration 2
    assert tiny_runs.checkpoint(work_dir, 3)['nan_guard'] == {'rollbacks': 1, 'lr_scale': 0.5}
    with pytest.raises(NonFiniteTraining) as info:  # a new process would count from 1 too
        tiny_runs.train(root, opt, auto_resume=True)
    assert 'at iteration 5' in str(info.value)
    assert 'stopped after 1 rollback(s) (train.nan_rollback.max_times: 1)' in str(info.value)
    assert _pointer(work_dir) == 'iter_4.pth'
    _assert_all_checkpoints_finite(work_dir)


@pytest.mark.parametrize('policy', ['stop', 'rollback'])
def test_weights_made_nan_by_a_step_are_caught_before_the_checkpoint(root, policy):
    """The step poisons the weights, then the EMA; neither reaches a file (or survives)."""
    opt = _options(
        root,
        f'nan_step_{policy}',
        nan_policy=policy,
        ema_decay=0.5,
        optim_g={'type': 'AdamNaNAtStep', 'lr': 1e-3, 'nan_at': 4},
    )
    work_dir = opt['path']['experiments_root']
    if policy == 'stop':
        with pytest.raises(
            NonFiniteTraining,
            match=r'the weights are not finite \(generator\.'
            r'conv_first\.weight holds nan .*\) at iteration 4',
        ):
            tiny_runs.train(root, opt)
        assert _pointer(work_dir) == 'iter_3.pth'
    else:  # weights and EMA come back from iter_3.pth (a NaN EMA would fail the save check)
        tiny_runs.train(root, opt)
        assert tiny_runs.checkpoint(work_dir, 6)['nan_guard']['rollbacks'] == 1
    _assert_all_checkpoints_finite(work_dir)


def test_a_nan_gradient_of_a_finite_loss_is_named(root):
    opt = _options(root, 'nan_gradient', losses={'zero': {'type': 'NaNGradientLoss'}})
    with pytest.raises(NonFiniteTraining) as info:
        tiny_runs.train(root, opt)
    message = str(info.value)
    assert 'the gradients (the losses were finite) are not finite' in message
    assert 'generator.conv_first.weight holds nan' in message and 'at iteration 1' in message
    assert _checkpoints(opt['path']['experiments_root']) == []


@pytest.fixture
def nan_in_eval_arch():
    """EDSRNaNInEval registered for one test only: the registry is global, and every
    test that walks the registered archs (cases, taps, gpu_check) would meet it."""
    ARCHS.register_module(module=EDSRNaNInEval, force=True)
    yield 'EDSRNaNInEval'
    ARCHS.module_dict.pop('EDSRNaNInEval', None)


def test_non_finite_validation_output_scores_nan_and_ranks_nothing_best(
    root, caplog, nan_in_eval_arch
):
    opt = _options(root, 'nan_in_eval', total_iter=2, save_freq=1)
    opt['network_g'] = {'type': nan_in_eval_arch}
    opt['datasets']['val'] = {
        'name': 'tinyval',
        'type': 'PairedImageDataset',
        'dataroot_gt': osp.join(root, 'images'),
    }
    opt['val'] = {
        'val_freq': 1,
        'save_img': True,
        'metrics': {'psnr': {'type': 'PSNR', 'crop_border': 2}},
    }
    work_dir = tiny_runs.train(root, opt)  # validation problems do not stop training
    assert _checkpoints(work_dir) == ['iter_1.pth', 'iter_2.pth', 'latest.pth']  # no best_*
    scalars = tiny_runs.checkpoint(work_dir, 2)['message_hub']['log_scalars']
    psnr = scalars['val/tinyval/psnr_rgb_crop2']['log']
    assert torch.isnan(torch.as_tensor(psnr)).all()  # not the ~7 dB of a black image
    assert not glob.glob(osp.join(work_dir, 'visualization', '*', '*.png'))


def test_save_refuses_non_finite_weights_and_records_the_count():
    hook = NonFiniteGuardHook('rollback', 0.5, 3)
    hook.rollbacks, hook.lr_scale = 2, 0.25
    good = {'state_dict': {'w': torch.ones(2)}, 'ema_state_dict': {'w': torch.ones(2)}}
    hook.before_save_checkpoint(None, good)
    assert good['nan_guard'] == {'rollbacks': 2, 'lr_scale': 0.25}
    bad = {'state_dict': {'w': torch.ones(2)}, 'ema_state_dict': {'module.w': torch.ones(2)}}
    bad['ema_state_dict']['module.w'][1] = float('inf')
    with pytest.raises(NonFiniteTraining, match=r'ema_state_dict.*module\.w holds inf'):
        hook.before_save_checkpoint(None, bad)
    assert 'nan_guard' not in bad


def test_check_losses_names_the_first_non_finite_term():
    check_losses({'loss_a': torch.tensor(1.0), 'loss_b': torch.tensor([1.0, 2.0])})
    with pytest.raises(NonFiniteError, match=r'train\.losses\.b \(loss_b\) is nan'):
        check_losses({'loss_a': torch.tensor(1.0), 'loss_b': torch.tensor([float('nan'), 2.0])})


@pytest.mark.parametrize(
    'kwargs, key', [({'policy': 'retry'}, 'nan_policy'), ({'lr_factor': 1.0}, 'lr_factor')]
)
def test_bad_hook_arguments(kwargs, key):
    with pytest.raises(ValueError, match=key):
        NonFiniteGuardHook(**kwargs)


def test_fp16_overflow_that_the_loss_scaler_skips_is_not_a_failure(root, monkeypatch):
    from basicattn.engine import mixed_precision
    from basicattn.errors import OptionError
    from basicattn.models.autocast import check_amp

    try:
        check_amp('fp16', 'train.amp', 'cpu')
    except OptionError as err:
        pytest.skip(f'this PyTorch cannot train fp16 on the CPU: {err}')

    def huge_scale(device_type, enabled, key='train.amp'):
        return torch.amp.GradScaler(device_type, init_scale=2.0**100, enabled=enabled)

    monkeypatch.setattr(mixed_precision, '_grad_scaler', huge_scale)
    work_dir = tiny_runs.train(root, _options(root, 'fp16_overflow', total_iter=2, amp='fp16'))
    checkpoint = tiny_runs.checkpoint(work_dir, 2)
    # both steps overflowed in fp16 and were skipped by the scaler (scale halved twice)
    assert checkpoint['optimizer']['loss_scaler']['scale'] == 2.0**98
    assert 'nan_guard' in checkpoint and checkpoint['nan_guard']['rollbacks'] == 0
