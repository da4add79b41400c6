"""Per-clip values in a metric's result dict, and reading them back.

A video metric returns, next to its headline mean ``{name: mean}``, the
per-clip means under ``'<name>/per_clip'`` as a dict ``{clip: mean}`` (in order
of first appearance). mmengine prefixes every key with the set name
(``'Vid4/psnr_y_crop0/per_clip'``). Such a value is not a scalar, so the
evaluation loops (:mod:`basicattn.engine.loops`) give the hooks (log,
``scalars.json``, TensorBoard, best-checkpoint ranking, the message hub saved
in checkpoints) only the scalars, and return the whole dict; ``tools/test.py``
turns it into its tables with :func:`result_tables`.
"""

from typing import Any, Dict, Iterable, Mapping, Tuple

__all__ = ['PER_CLIP', 'per_clip_key', 'result_tables', 'scalar_results']

#: Last component of the key of a metric's per-clip values.
PER_CLIP = 'per_clip'

PerSet = Dict[str, Dict[str, float]]
PerSetClip = Dict[str, Dict[str, Dict[str, float]]]


def per_clip_key(name: str) -> str:
    """The result key of the per-clip values of the metric ``name``."""
    return f'{name}/{PER_CLIP}'


def _is_per_clip(key: str) -> bool:
    return key.rsplit('/', 1)[-1] == PER_CLIP


def scalar_results(metrics: Mapping[str, Any]) -> Dict[str, Any]:
    """``metrics`` without the per-clip entries (what the hooks are given)."""
    return {k: v for k, v in metrics.items() if not _is_per_clip(k)}


def result_tables(
    metrics: Mapping[str, Any], set_names: Iterable[str] = ()
) -> Tuple[PerSet, PerSetClip]:
    """Split an evaluation's ``{'<set>/<metric>': value}`` into its two tables.

    Args:
        metrics: What a multi-set loop returns: ``'<set>/<metric>'`` scalars and
            ``'<set>/<metric>/per_clip'`` dicts ``{clip: value}``.
        set_names: Sets that get a row even without any metric, first.

    Returns:
        ``({set: {metric: value}}, {set: {clip: {metric: value}}})``, in the
        order of ``set_names`` then ``metrics``; sets without clips are absent
        from the second.
    """
    per_set: PerSet = {name: {} for name in set_names}
    per_clip: PerSetClip = {}
    for key, value in metrics.items():
        set_name, name = key.split('/', 1) if '/' in key else ('', key)
        if _is_per_clip(name):
            metric = name[: -len(PER_CLIP) - 1]
            clips = per_clip.setdefault(set_name, {})
            for clip, clip_value in value.items():
                clips.setdefault(clip, {})[metric] = float(clip_value)
        else:
            per_set.setdefault(set_name, {})[name] = float(value)
    return per_set, per_clip
