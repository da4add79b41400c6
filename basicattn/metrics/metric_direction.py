"""Which way a metric is better, from its result key.

PSNR and SSIM (and most metrics) are better when higher; LPIPS and the
temporal error ``tdiff`` are better when lower. Every place that ranks or
labels results reads it here, from the key a metric reports under
(``lpips_alex_crop4``, ``Vimeo90K-Motion/lpips_alex_crop0``,
``.../per_clip``): the best-checkpoint rule
(:func:`basicattn.engine.builder.runner_cfg`), the arrows of
``results.md`` (:mod:`basicattn.metrics.results_table`) and of the per-set
and per-clip tables of ``tools/test.py``.
"""

__all__ = ['LOWER_IS_BETTER', 'arrow', 'best_rule', 'lower_is_better']

#: First word (before ``_``) of the keys of the metrics that are better when lower.
LOWER_IS_BETTER = ('lpips', 'tdiff')
_TABLES = ('per_clip', 'per_image')


def _metric_name(key: str) -> str:
    parts = str(key).split('/')
    if len(parts) > 1 and parts[-1] in _TABLES:
        parts = parts[:-1]
    return parts[-1]


def lower_is_better(key: str) -> bool:
    """True for the key of a metric that is better when lower (``'Set5/lpips_alex_crop2'``)."""
    return _metric_name(key).split('_', 1)[0] in LOWER_IS_BETTER


def arrow(key: str) -> str:
    """``'↓'`` after the name of a lower-is-better metric, else ``''``."""
    return '↓' if lower_is_better(key) else ''


def best_rule(key: str) -> str:
    """mmengine's ``CheckpointHook`` rule for ranking checkpoints by ``key``."""
    return 'less' if lower_is_better(key) else 'greater'
