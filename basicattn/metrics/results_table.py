"""A results table in the layout of SR papers, from ``metrics.json`` records.

``tools/test.py`` writes one record per run (``metrics.json``); this module
turns one or more of them into a Markdown table:

* one row per method: ``Scale`` (``×2``; the column is left out when no
  record knows its scale) and ``Method``, the run's label
  (:func:`default_label`, or ``--label``);
* one column per test set, in the order the sets first appear (the order of
  the option file, then the new sets of later records);
* each cell ``PSNR / SSIM`` (PSNR with ``digits`` decimals, 2 by default as
  in papers; SSIM and any other metric with 4); other metrics of
  a run (and PSNR/SSIM measured a second way, e.g. on RGB) follow in the same
  cell, in a fixed order that the caption line states; a metric a run did not
  measure is ``-``, and so is a set it did not test;
* a caption line above the table naming the metrics with their channel and
  crop (``crop = scale`` when every run cropped its own scale); a metric that
  is better when lower (LPIPS, :mod:`basicattn.metrics.metric_direction`)
  carries an arrow, ``LPIPS↓``, and LPIPS names its network;
* a last column ``ms/frame`` when any record timed its forwards (its
  ``runtime``, :mod:`basicattn.models.forward_timing`): the mean forward
  time per output frame of each set, in the order of the set columns
  (``12.3 / 85.1``; ``-`` for a set not timed). The caption names the device
  when every timed row ran on one; otherwise a ``Device`` column follows.
  Records without ``runtime`` (older ones) leave it out.

Rows are grouped by scale (smaller first, records without one last), and
keep the order of the records within a scale. Two records with the same
label and scale fill one row (one set from each run, say); the same set in
both, with other values, is an error asking for distinct labels.
"""

import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from basicattn.errors import UserError
from basicattn.utils.strict_json import number

from .metric_direction import arrow

__all__ = [
    'Record',
    'default_label',
    'device_text',
    'format_results_table',
    'inference_mode',
    'read_record',
    'record_from_dict',
]

#: Metric keys written by :func:`basicattn.metrics.psnr_ssim.metric_name`.
_KEY = re.compile(r'^(psnr|ssim)_(y|rgb)_crop(\d+)$')
#: Keys written by :class:`basicattn.metrics.lpips_metric.LPIPS` (RGB, a backbone).
_LPIPS_KEY = re.compile(r'^lpips_(alex|vgg)_crop(\d+)$')
_KIND_ORDER = ('psnr', 'ssim', 'lpips')
#: The header of the runtime column.
RUNTIME_COLUMN = 'ms/frame'
_SPACE = {'y': 'Y channel (BT.601)', 'rgb': 'RGB'}
_NET = {'alex': 'AlexNet', 'vgg': 'VGG16'}

PerSet = Dict[str, Dict[str, float]]


@dataclass
class Record:
    """One run of ``tools/test.py``, as far as the table needs it.

    Attributes:
        label: The row label (method and inference mode).
        scale: The upscaling factor, or None when the record does not say.
        metrics: ``{set: {metric key: mean}}``, sets in their order.
        source: Where the record came from (a file name), for messages.
        params: The generator's parameter count, None when not recorded.
        ms_per_frame: ``{set: mean ms per output frame}`` of the timed sets.
        device: The timed device in words (``device_text``), or None.
    """

    label: str
    scale: Optional[int]
    metrics: PerSet
    source: str = '<run>'
    params: Optional[int] = None
    ms_per_frame: Dict[str, float] = field(default_factory=dict)
    device: Optional[str] = None


@dataclass
class _Row:
    scale: Optional[int]
    label: str
    cells: PerSet = field(default_factory=dict)
    sources: Dict[str, str] = field(default_factory=dict)  # set -> record source
    ms_per_frame: Dict[str, float] = field(default_factory=dict)
    devices: List[str] = field(default_factory=list)


def inference_mode(test_cfg: Optional[Mapping[str, Any]]) -> str:
    """Words for a test-time setting that changes the numbers; ``''`` for whole-image.

    Args:
        test_cfg: The model's test-time settings (``TestConfig.to_dict()``),
            or None when unknown.

    Returns:
        str: e.g. ``'chop'``, ``'self-ensemble, tile 64'``, ``'bf16'``; empty
        for plain whole-image float32 inference.
    """
    cfg = test_cfg or {}
    words = []
    if cfg.get('self_ensemble'):
        words.append('self-ensemble')
    if cfg.get('chop'):
        words.append('chop')
    if cfg.get('tile'):
        words.append(f'tile {cfg["tile"]}')
    if cfg.get('sequence'):
        words.append('sequence')
    if cfg.get('amp'):
        words.append(str(cfg['amp']))
    return ', '.join(words)


def default_label(
    network: Optional[str],
    name: Optional[str],
    checkpoint: Optional[str] = None,
    test_cfg: Optional[Mapping[str, Any]] = None,
) -> str:
    """The row label of a run without ``--label``.

    ``<network> (<options name>, <checkpoint file stem>, <inference mode>)``,
    each part only when known and not already said, e.g.
    ``'A2N (a2n_official_x2, chop)'`` or ``'EDSR (tiny, iter_6)'``.

    Args:
        network: ``network_g.type``.
        name: The option file's ``name``.
        checkpoint: The weights tested (their file stem is used).
        test_cfg: The test-time settings (see :func:`inference_mode`).
    """
    details = [name] if name else []
    if checkpoint:
        stem = os.path.splitext(os.path.basename(checkpoint))[0]
        if stem not in details:
            details.append(stem)
    mode = inference_mode(test_cfg)
    if mode:
        details.append(mode)
    head = network or (details.pop(0) if details else 'run')
    return f'{head} ({", ".join(details)})' if details else head


def _stem(path: Any) -> Optional[str]:
    if not isinstance(path, str) or not path:
        return None
    return os.path.splitext(os.path.basename(path))[0]


def record_from_dict(content: Any, source: str) -> Record:
    """A :class:`Record` from the content of a ``metrics.json``.

    Records written before ``label``/``scale``/``test_cfg`` were recorded
    are accepted: their label is made from the options file name (and the
    checkpoint's), their scale is unknown.

    Raises:
        UserError: ``content`` is not a record of ``tools/test.py``; the
            message names ``source``.
    """
    what = 'give a metrics.json written by tools/test.py'
    if not isinstance(content, dict) or not isinstance(content.get('metrics'), dict):
        raise UserError(f'{source}: no "metrics" table {{set: {{metric: mean}}}}; {what}')
    metrics: PerSet = {}
    for set_name, means in content['metrics'].items():
        values = {k: number(v) for k, v in means.items()} if isinstance(means, dict) else None
        if values is None or any(v is None for v in values.values()):
            raise UserError(
                f'{source}: metrics.{set_name} should map metric names to numbers, '
                f'got {means!r}; {what}'
            )
        metrics[str(set_name)] = {str(k): v for k, v in values.items()}
    label = content.get('label')
    if not isinstance(label, str) or not label.strip():
        label = default_label(
            content.get('network'),
            _stem(content.get('options')) or _stem(source),
            content.get('checkpoint') if isinstance(content.get('checkpoint'), str) else None,
            content.get('test_cfg') if isinstance(content.get('test_cfg'), dict) else None,
        )
    scale = content.get('scale')
    if isinstance(scale, bool) or not isinstance(scale, int):
        scale = None
    params = content.get('params')
    if isinstance(params, bool) or not isinstance(params, int) or params < 0:
        params = None
    ms_per_frame, device = _runtime(content.get('runtime'), source)
    return Record(
        label=label,
        scale=scale,
        metrics=metrics,
        source=source,
        params=params,
        ms_per_frame=ms_per_frame,
        device=device,
    )


def device_text(runtime: Dict[str, Any]) -> str:
    """The device of a ``runtime`` record in words, e.g. ``'NVIDIA H100 (cuda, torch 2.5.1)'``.

    A CPU names its thread count too (``'Intel Xeon (cpu, 2 threads, torch 2.5.1)'``).
    """
    details = [str(runtime.get('device_type') or '?')]
    if runtime.get('device_type') == 'cpu' and runtime.get('threads'):
        threads = runtime['threads']
        details.append(f'{threads} thread' + ('s' if threads != 1 else ''))
    if runtime.get('torch'):
        details.append(f'torch {runtime["torch"]}')
    if (runtime.get('processes') or 1) > 1:
        details.append(f'{runtime["processes"]} processes')
    return f'{runtime.get("device") or "unknown device"} ({", ".join(details)})'


def _runtime(runtime: Any, source: str) -> Tuple[Dict[str, float], Optional[str]]:
    """``({set: ms per frame}, device words)`` of a record's ``runtime`` (absent: empty)."""
    if runtime is None:
        return {}, None
    sets = runtime.get('sets') if isinstance(runtime, dict) else None
    if not isinstance(sets, dict):
        raise UserError(
            f'{source}: "runtime" should hold "sets" {{set: {{"ms_per_frame": ...}}}}, '
            f'got {runtime!r}; give a metrics.json written by tools/test.py'
        )
    times = {}
    for set_name, values in sets.items():
        ms = number(values.get('ms_per_frame')) if isinstance(values, dict) else None
        if ms is None or not ms > 0:
            raise UserError(
                f'{source}: runtime.sets.{set_name}.ms_per_frame should be a positive '
                f'number, got {values!r}; give a metrics.json written by tools/test.py'
            )
        times[str(set_name)] = ms
    return times, device_text(runtime)


def read_record(path: str) -> Record:
    """Read a ``metrics.json`` written by ``tools/test.py``.

    Raises:
        UserError: The file is missing, unreadable, not JSON or not such a
            record; the message names the file.
    """
    try:
        with open(path, encoding='utf-8') as f:
            content = json.load(f)
    except FileNotFoundError:
        raise UserError(
            f'{path}: not found; give the metrics.json of a tools/test.py run'
        ) from None
    except IsADirectoryError:
        raise UserError(f'{path}: is a folder; give the metrics.json file inside it') from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(
            f'{path}: not a JSON file ({err}); give the metrics.json of a tools/test.py run'
        ) from err
    return record_from_dict(content, path)


@dataclass(frozen=True)
class _Metric:
    """A table metric: a key pattern that may say ``crop = scale``."""

    kind: str  # 'psnr', 'ssim', 'lpips' or the whole key of another metric
    space: Optional[str] = None  # 'y' / 'rgb' for PSNR and SSIM, 'rgb' for LPIPS
    crop: Optional[int] = None  # None: crop = the row's scale
    net: Optional[str] = None  # LPIPS's backbone

    def qualifier(self) -> str:
        if self.space is None:
            return ''
        crop = 'crop = scale' if self.crop is None else f'crop {self.crop}'
        return f'{_SPACE[self.space]}, {crop}'

    def title(self) -> str:
        name = self.kind.upper() if self.space is not None else self.kind
        return name + arrow(self.kind)

    def sort_key(self, first_seen: int) -> Tuple[int, int]:
        order = _KIND_ORDER.index(self.kind) if self.space is not None else len(_KIND_ORDER)
        return order, first_seen


def _metric_of(key: str, scale: Optional[int]) -> _Metric:
    match = _LPIPS_KEY.match(key)
    if match is not None:
        crop = int(match.group(2))
        return _Metric('lpips', 'rgb', None if crop == scale else crop, match.group(1))
    match = _KEY.match(key)
    if match is None:
        return _Metric(key)
    kind, space, crop = match.group(1), match.group(2), int(match.group(3))
    return _Metric(kind, space, None if crop == scale else crop)


def _merge_rows(records: Sequence[Record]) -> List[_Row]:
    rows: Dict[Tuple[Optional[int], str], _Row] = {}
    for record in records:
        row = rows.setdefault(
            (record.scale, record.label), _Row(scale=record.scale, label=record.label)
        )
        for set_name, means in record.metrics.items():
            before = row.cells.get(set_name)
            if before is not None and before != means:
                scale = f' ×{record.scale}' if record.scale is not None else ''
                raise UserError(
                    f'{record.source}: row {record.label!r}{scale} on {set_name} is also in '
                    f'{row.sources[set_name]} with other values; give the runs distinct '
                    'labels (tools/test.py --label NAME)'
                )
            row.cells[set_name] = means
            row.sources[set_name] = record.source
        row.ms_per_frame.update(record.ms_per_frame)
        if record.device is not None and record.device not in row.devices:
            row.devices.append(record.device)
    # grouped by scale as papers do; stable within a scale
    return sorted(rows.values(), key=lambda r: (r.scale is None, r.scale or 0))


def _columns(records: Sequence[Record]) -> Tuple[List[str], List[_Metric]]:
    """The sets in order of first appearance, and the metrics in cell order."""
    sets: List[str] = []
    seen: Dict[_Metric, int] = {}
    for record in records:
        for set_name, means in record.metrics.items():
            if set_name not in sets:
                sets.append(set_name)
            for key in means:
                seen.setdefault(_metric_of(key, record.scale), len(seen))
    metrics = sorted(seen, key=lambda m: m.sort_key(seen[m]))
    return sets, metrics


def _titles(metrics: Sequence[_Metric]) -> List[str]:
    """Short names; ``PSNR-Y``, ``PSNR-RGB-crop0`` ... where two metrics share a kind."""
    kinds = [m.kind for m in metrics]
    titles = []
    for m in metrics:
        title = m.title()
        if kinds.count(m.kind) > 1 and m.net is not None:
            same = [o for o in metrics if o.kind == m.kind]
            if len({o.net for o in same}) > 1:
                title += f'-{m.net}'
            if len({o.crop for o in same}) > 1:
                title += '' if m.crop is None else f'-crop{m.crop}'
        elif kinds.count(m.kind) > 1 and m.space is not None:
            title += f'-{m.space.upper()}' + ('' if m.crop is None else f'-crop{m.crop}')
        titles.append(title)
    return titles


def _caption(metrics: Sequence[_Metric], titles: Sequence[str]) -> str:
    units = [
        f'{t} (dB)' if m.kind == 'psnr' else f'{t} ({_NET[m.net]})' if m.net else t
        for m, t in zip(metrics, titles)
    ]
    groups: Dict[str, List[str]] = {}
    for metric, title in zip(metrics, titles):
        if metric.qualifier():
            groups.setdefault(metric.qualifier(), []).append(title)
    described = '; '.join(
        f'{" and ".join(names)} on the {qualifier}'
        if qualifier.startswith('Y')
        else f'{" and ".join(names)} on {qualifier}'
        for qualifier, names in groups.items()
    )
    text = f'Each cell: {" / ".join(units)}'
    if described:
        text += f'; {described}'
    if any(arrow(m.kind) for m in metrics):
        text += '; ↓: lower is better'
    return text + '; "-": not measured.'


def _number(value: float, decimals: int) -> str:
    return 'nan' if math.isnan(value) else f'{value:.{decimals}f}'


def _cell(means: Optional[Mapping[str, float]], row: _Row, metrics, digits: int) -> str:
    if not means:
        return '-'
    by_metric = {_metric_of(key, row.scale): value for key, value in means.items()}
    parts = [
        _number(by_metric[m], digits if m.kind == 'psnr' else 4) if m in by_metric else '-'
        for m in metrics
    ]
    return ' / '.join(parts)


def _escape(text: str) -> str:
    return text.replace('|', '\\|')


def _markdown(header: Sequence[str], body: Sequence[Sequence[str]], left: int) -> List[str]:
    """Rows of a Markdown table padded to equal widths; the first ``left`` columns left-aligned.

    A ``|`` in a set name or label is escaped so that it cannot split a cell.
    """
    header = [_escape(c) for c in header]
    body = [[_escape(c) for c in cells] for cells in body]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    widths = [max(w, 3) for w in widths]

    def line(cells):
        return '| ' + ' | '.join(c.ljust(w) for c, w in zip(cells, widths)) + ' |'

    rule = [
        ':' + '-' * (w - 1) if i < left else ':' + '-' * (w - 2) + ':' for i, w in enumerate(widths)
    ]
    return [line(header), line(rule)] + [line(cells) for cells in body]


def format_results_table(records: Sequence[Record], digits: int = 2) -> str:
    """The Markdown table of ``records`` (see the module docstring).

    Args:
        records: One or more runs.
        digits: Decimals of PSNR (2 in papers); SSIM and other metrics get 4.

    Returns:
        str: Markdown text ending in a newline.

    Raises:
        UserError: Two records fill the same cell with different values.
        ValueError: No records, or ``digits`` < 0.
    """
    if not records:
        raise ValueError('format_results_table: no records')
    if digits < 0:
        raise ValueError(f'format_results_table: digits must be >= 0, got {digits}')
    rows = _merge_rows(records)
    sets, metrics = _columns(records)
    titles = _titles(metrics)
    with_scale = any(row.scale is not None for row in rows)
    header = (['Scale'] if with_scale else []) + ['Method'] + sets
    timed = [s for s in sets if any(s in row.ms_per_frame for row in rows)]
    devices = []
    for row in rows:
        devices += [d for d in row.devices if d not in devices]
    if timed:
        header.append(RUNTIME_COLUMN)
        if len(devices) > 1:
            header.append('Device')
    body = []
    for row in rows:
        head = [f'×{row.scale}' if row.scale is not None else '-'] if with_scale else []
        cells = [_cell(row.cells.get(s), row, metrics, digits) for s in sets]
        if timed:
            cells.append(_runtime_cell(row, timed))
            if len(devices) > 1:
                cells.append(', '.join(row.devices) or '-')
        body.append(head + [row.label] + cells)
    caption = _caption(metrics, titles)
    if timed:
        caption += ' ' + _runtime_caption(timed, devices)
    lines = [caption, '']
    lines += _markdown(header, body, left=2 if with_scale else 1)
    return '\n'.join(lines) + '\n'


def _ms(value: float) -> str:
    return f'{value:.1f}' if value >= 1 else f'{value:.2f}'


def _runtime_cell(row: _Row, timed: Sequence[str]) -> str:
    """The row's ms per frame of each timed set, in column order (``-`` where not timed)."""
    if not row.ms_per_frame:
        return '-'
    return ' / '.join(_ms(row.ms_per_frame[s]) if s in row.ms_per_frame else '-' for s in timed)


def _runtime_caption(timed: Sequence[str], devices: Sequence[str]) -> str:
    where = f' on {devices[0]}' if len(devices) == 1 else ' on the device of its row'
    order = f', per set ({" / ".join(timed)})' if len(timed) > 1 else ''
    return (
        f'{RUNTIME_COLUMN}: mean test-time forward per output frame{where}{order} '
        '(warm; self-ensemble, tiles and chop included).'
    )
