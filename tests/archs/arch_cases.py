"""One entry per registered arch, used by ``test_all_archs.py``.

Each case: ``kwargs`` to build a tiny instance, ``input`` shape (N, C, H, W)
or (N, T, C, H, W) and the expected ``output`` shape. What is known about the
arch itself (the paper's parameter count, frame windows, ONNX, bf16) is stated
on its class (:mod:`basicattn.archs.facts`). Add a case when you register an
arch; the test fails for an arch without one.
"""

ARCH_CASES = {
    'A2N': dict(
        kwargs=dict(num_feat=8, unf=8, num_block=2, upscale=2),
        input=(1, 3, 8, 8),
        output=(1, 3, 16, 16),
    ),
    'DAN': dict(
        kwargs=dict(num_feat=8, num_block=3, num_res=1, reduction=4, distance=2, upscale=2),
        input=(1, 3, 8, 8),
        output=(1, 3, 16, 16),
    ),
    'AttentionProbe': dict(
        kwargs=dict(num_feat=8, unf=4, num_block=3, upscale=2, attention_blocks=[1, 3]),
        input=(1, 3, 8, 8),
        output=(1, 3, 16, 16),
    ),
    'Bicubic': dict(
        kwargs=dict(upscale=2),
        input=(1, 3, 8, 8),
        output=(1, 3, 16, 16),
    ),
    'MANA': dict(
        kwargs=dict(
            num_feat=8,
            num_frames=3,
            num_encoder_blocks=1,
            num_decoder_blocks=1,
            embed_dim=4,
            num_groups=4,
            num_slots=8,
            hr_feat=8,
        ),
        input=(1, 3, 3, 8, 8),
        output=(1, 3, 32, 32),
    ),
    # 'Name': dict(kwargs=dict(...), input=(1, 3, 8, 8), output=(1, 3, 16, 16)),
    'EDSR': dict(
        kwargs=dict(num_feat=8, num_block=2, upscale=2),
        input=(1, 3, 8, 8),
        output=(1, 3, 16, 16),
    ),
    'DASAA': dict(
        kwargs=dict(
            num_feat=8, num_rdb=1, rdb_layers=2, growth=4, reduction=2, pab_hidden=4, attn_chunk=16
        ),
        input=(1, 5, 3, 8, 8),
        output=(1, 3, 32, 32),
    ),
    'EDVR': dict(
        kwargs=dict(
            num_feat=8,
            num_frame=3,
            deformable_groups=2,
            num_extract_block=1,
            num_reconstruct_block=1,
        ),
        input=(1, 3, 3, 8, 8),
        output=(1, 3, 32, 32),
    ),
    'DKSAN': dict(
        kwargs=dict(
            num_feat=8,
            num_frames=3,
            upscale=4,
            num_extract_blocks=1,
            num_rcab=[1, 1],
            reduction=4,
            align_dkc=1,
            deform_groups=2,
        ),
        input=(1, 3, 3, 8, 8),
        output=(1, 3, 32, 32),
    ),
}
