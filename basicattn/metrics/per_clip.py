"""Per-clip and per-image values in a metric's result dict, and reading them back.

A metric returns, next to its headline mean ``{name: mean}``, tables of the
values it averaged, each a dict keyed by item (in order of first appearance):

* ``'<name>/per_image'``: ``{image key: value}``, one entry per image (per
  frame for video, whose keys are ``clip/frame``);
* ``'<name>/per_clip'``: ``{clip: mean}`` of a video metric.

mmengine prefixes every key with the set name (``'Vid4/psnr_y_crop0/per_clip'``)
and computes them on rank 0 from the results gathered from every rank, then
broadcasts them, as it does the means. Such a value is not a scalar, so the
evaluation loops (:mod:`basicattn.engine.loops`) give the hooks (log,
``scalars.json``, TensorBoard, best-checkpoint ranking, the message hub saved
in checkpoints) only the scalars, and return the whole dict; ``tools/test.py``
turns it into its tables with :func:`result_tables`.
"""

from typing import Any, Dict, Iterable, Mapping, NamedTuple, Tuple

__all__ = [
    'PER_CLIP',
    'PER_IMAGE',
    'ResultTables',
    'per_clip_key',
    'per_image_key',
    'per_image_values',
    'result_tables',
    'scalar_results',
]

#: Last component of the key of a metric's per-clip values.
PER_CLIP = 'per_clip'
#: Last component of the key of a metric's per-image values.
PER_IMAGE = 'per_image'
_TABLES = (PER_CLIP, PER_IMAGE)

PerSet = Dict[str, Dict[str, float]]
PerSetItem = Dict[str, Dict[str, Dict[str, float]]]


class ResultTables(NamedTuple):
    """An evaluation's values as tables (see :func:`result_tables`)."""

    per_set: PerSet  #: ``{set: {metric: mean}}``
    per_clip: PerSetItem  #: ``{set: {clip: {metric: mean}}}``, video sets only
    per_image: PerSetItem  #: ``{set: {image key: {metric: value}}}``


def per_clip_key(name: str) -> str:
    """The result key of the per-clip values of the metric ``name``."""
    return f'{name}/{PER_CLIP}'


def per_image_key(name: str) -> str:
    """The result key of the per-image values of the metric ``name``."""
    return f'{name}/{PER_IMAGE}'


def per_image_values(pairs: Iterable[Tuple[str, float]]) -> Dict[str, float]:
    """``{key: value}`` of ``(key, value)`` pairs, in order, none lost.

    A key seen again (two images of a set with one name) gets ``#2``, ``#3``
    ..., so the table still holds every value its set's mean was taken over.
    """
    table: Dict[str, float] = {}
    for key, value in pairs:
        name, count = key, 1
        while name in table:
            count += 1
            name = f'{key}#{count}'
        table[name] = float(value)
    return table


def _table_kind(key: str) -> str:
    last = key.rsplit('/', 1)[-1]
    return last if last in _TABLES else ''


def scalar_results(metrics: Mapping[str, Any]) -> Dict[str, Any]:
    """``metrics`` without the per-clip and per-image tables (what the hooks are given)."""
    return {k: v for k, v in metrics.items() if not _table_kind(k)}


def result_tables(metrics: Mapping[str, Any], set_names: Iterable[str] = ()) -> ResultTables:
    """Split an evaluation's ``{'<set>/<metric>': value}`` into its tables.

    Args:
        metrics: What a multi-set loop returns: ``'<set>/<metric>'`` scalars,
            ``'<set>/<metric>/per_clip'`` dicts ``{clip: value}`` and
            ``'<set>/<metric>/per_image'`` dicts ``{image key: value}``.
        set_names: Sets that get a row even without any metric, first.

    Returns:
        :class:`ResultTables` ``(per_set, per_clip, per_image)``, in the order
        of ``set_names`` then ``metrics``; sets without clips (or without
        per-image values) are absent from the second (third).
    """
    per_set: PerSet = {name: {} for name in set_names}
    tables: Dict[str, PerSetItem] = {kind: {} for kind in _TABLES}
    for key, value in metrics.items():
        set_name, name = key.split('/', 1) if '/' in key else ('', key)
        kind = _table_kind(name)
        if kind:
            metric = name[: -len(kind) - 1]
            items = tables[kind].setdefault(set_name, {})
            for item, item_value in value.items():
                items.setdefault(item, {})[metric] = float(item_value)
        else:
            per_set.setdefault(set_name, {})[name] = float(value)
    return ResultTables(per_set, tables[PER_CLIP], tables[PER_IMAGE])
