"""One entry per registered arch, used by ``test_all_archs.py``.

Each case: ``kwargs`` to build a tiny instance, ``input`` shape (N, C, H, W)
or (N, T, C, H, W), expected ``output`` shape, and optionally ``paper`` =
(kwargs of the paper-sized model, exact parameter count) to assert.
Add a case when you register an arch; the test fails for an arch without one.
"""

ARCH_CASES = {
    # 'Name': dict(kwargs=dict(...), input=(1, 3, 8, 8), output=(1, 3, 16, 16),
    #              paper=(dict(...), 1_036_443)),
}
