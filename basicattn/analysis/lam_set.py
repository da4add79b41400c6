"""LAM over a set of windows, for several models: the table of A2N's Table 7.

A2N (Chen et al., "Attention in Attention Network for Image
Super-Resolution", 2021, Table 7) compares SR networks by their mean
Diffusion Index over a set of LAM windows beside their PSNR on those
images. This module reads the set, names the models and writes the table;
``tools/analyze.py lam-set`` runs it.

The window list (:func:`read_window_list`), paths relative to the list's
folder:

* a text file, one window per line ``IMAGE ROW COL [GT]`` (``#`` starts a
  comment; blank lines are skipped);
* or a YAML file (``.yml`` / ``.yaml``): a list of mappings ``{image: ...,
  window: [ROW, COL], gt: ...}`` (``gt`` optional).

The model specs (:func:`parse_model_spec`): ``LABEL=WEIGHTS`` (any weights
file that ``tools/infer.py`` reads alone: a basicattn checkpoint, an
authors' file) or ``LABEL=arch:NAME[:JSON]`` for an arch built from its
name and keyword arguments (a parameter-free baseline such as
``Bicubic=arch:Bicubic:{"scale": 2}``).
"""

import json
import os.path as osp
from dataclasses import dataclass
from typing import List, Optional, Sequence

from basicattn.errors import DataError, UserError
from basicattn.utils.bounds import is_int

__all__ = [
    'ModelSpec',
    'SetWindow',
    'format_table',
    'parse_model_spec',
    'read_window_list',
]


@dataclass(frozen=True)
class SetWindow:
    """One window of the set: LR image, top-left corner in SR pixels, GT image (or None)."""

    image: str
    row: int
    col: int
    gt: Optional[str] = None


@dataclass(frozen=True)
class ModelSpec:
    """A model of the table: its label, and a weights file or an arch config."""

    label: str
    checkpoint: Optional[str] = None
    arch: Optional[str] = None
    arch_args: str = '{}'

    @property
    def source(self) -> str:
        """How the model was given, for the report."""
        return self.checkpoint if self.checkpoint else f'arch:{self.arch}:{self.arch_args}'


def parse_model_spec(text: str) -> ModelSpec:
    """``LABEL=WEIGHTS`` or ``LABEL=arch:NAME[:JSON]`` (see the module docstring).

    Raises:
        UserError: No label, no source, or arguments that are not a JSON object.
    """
    label, sep, source = text.partition('=')
    if not sep or not label.strip() or not source:
        raise UserError(
            f'--model {text!r}: expected LABEL=WEIGHTS or LABEL=arch:NAME[:JSON], '
            'e.g. A2N=aan_x2.pt or \'Bicubic=arch:Bicubic:{"scale": 2}\''
        )
    if not source.startswith('arch:'):
        return ModelSpec(label.strip(), checkpoint=source)
    name, _, arch_args = source[len('arch:') :].partition(':')
    arch_args = arch_args or '{}'
    try:
        valid = isinstance(json.loads(arch_args), dict)
    except json.JSONDecodeError:
        valid = False
    if not name or not valid:
        raise UserError(
            f'--model {text!r}: after arch: give NAME or NAME:JSON with a JSON object of '
            'keyword arguments, e.g. arch:Bicubic:{"scale": 2}'
        )
    return ModelSpec(label.strip(), arch=name, arch_args=arch_args)


def _entry(values: Sequence, where: str, folder: str) -> SetWindow:
    if len(values) not in (3, 4):
        raise DataError(f'{where}: expected IMAGE ROW COL [GT], got {list(values)!r}')
    image, row, col = values[:3]
    gt = values[3] if len(values) == 4 else None
    try:
        row, col = int(row), int(col)
    except (TypeError, ValueError):
        raise DataError(f'{where}: ROW and COL must be ints, got {row!r} {col!r}') from None
    if row < 0 or col < 0:
        raise DataError(f'{where}: ROW and COL must be >= 0, got {row} {col}')

    def resolve(path):
        return path if path is None or osp.isabs(path) else osp.join(folder, str(path))

    return SetWindow(resolve(str(image)), row, col, resolve(gt))


def read_window_list(path: str) -> List[SetWindow]:
    """The windows of a list file (text or YAML; see the module docstring).

    Raises:
        FileNotFoundError: No such file.
        DataError: A line or item that is not a window (names file and line),
            or an empty list.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'window list not found: {path}')
    folder = osp.dirname(osp.abspath(path))
    entries: List[SetWindow] = []
    if path.lower().endswith(('.yml', '.yaml')):
        import yaml

        with open(path, encoding='utf-8') as f:
            try:
                items = yaml.safe_load(f)
            except yaml.YAMLError as err:
                raise DataError(f'{path}: not valid YAML: {err}') from None
        if not isinstance(items, list):
            raise DataError(f'{path}: expected a list of {{image, window: [ROW, COL], gt}} items')
        for i, item in enumerate(items):
            where = f'{path}: item {i}'
            window = item.get('window') if isinstance(item, dict) else None
            if not isinstance(window, list) or len(window) != 2 or 'image' not in item:
                raise DataError(
                    f'{where}: expected {{image: ..., window: [ROW, COL]}}, got {item!r}'
                )
            if not all(is_int(v) for v in window):
                raise DataError(f'{where}: window must be two ints, got {window!r}')
            values = [item['image'], *window] + ([item['gt']] if item.get('gt') else [])
            entries.append(_entry(values, where, folder))
    else:
        with open(path, encoding='utf-8') as f:
            for number, line in enumerate(f, 1):
                fields = line.split('#', 1)[0].split()
                if fields:
                    entries.append(_entry(fields, f'{path}: line {number}', folder))
    if not entries:
        raise DataError(f'{path}: no window listed (lines IMAGE ROW COL [GT])')
    return entries


def _cell(value: Optional[float], decimals: int) -> str:
    return '-' if value is None else f'{value:.{decimals}f}'


def format_table(models: Sequence[dict], caption: str) -> str:
    """The Markdown table: one row per model, mean DI and mean PSNR.

    Args:
        models: Each with ``label``, ``mean_diffusion_index`` and
            ``mean_psnr`` (None when no GT was given).
        caption: The line above the table (what the numbers are).

    Returns:
        str: Markdown ending in a newline.
    """
    header = ['Model', 'DI', 'PSNR (dB)']
    rows = [
        [m['label'].replace('|', '\\|'), _cell(m['mean_diffusion_index'], 3),
         _cell(m['mean_psnr'], 2)]
        for m in models
    ]  # fmt: skip
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    widths = [max(w, 3) for w in widths]

    def line(cells):
        return '| ' + ' | '.join(c.ljust(w) for c, w in zip(cells, widths)) + ' |'

    rule = [':' + '-' * (widths[0] - 1)] + [':' + '-' * (w - 2) + ':' for w in widths[1:]]
    return '\n'.join([caption, '', line(header), line(rule), *map(line, rows)]) + '\n'
