"""One entry per registered arch, used by ``test_all_archs.py``.

Each case: ``kwargs`` to build a tiny instance, ``input`` shape (N, C, H, W)
or (N, T, C, H, W), expected ``output`` shape, and optionally ``paper`` =
(kwargs of the paper-sized model, exact parameter count) to assert.
Add a case when you register an arch; the test fails for an arch without one.
"""

ARCH_CASES = {
    'Bicubic': dict(kwargs=dict(scale=2), input=(1, 3, 8, 8),
                    output=(1, 3, 16, 16), paper=(dict(scale=4), 0)),
    # 'Name': dict(kwargs=dict(...), input=(1, 3, 8, 8), output=(1, 3, 16, 16),
    #              paper=(dict(...), 1_036_443)),
    # EDSR baseline (64 feats, 16 blocks): x4 1,517,571, x2 1,369,859.
    'EDSR': dict(kwargs=dict(num_feat=8, num_block=2, upscale=2),
                 input=(1, 3, 8, 8), output=(1, 3, 16, 16),
                 paper=(dict(upscale=4), 1_517_571)),
}
