"""A2N's attention-dropout study (paper Sec. 3.2, Table 2): train variants in turn.

One option file (e.g. ``options/train/attention_dropout/a2n_probe_x4_all.yml``)
and a list of variants, each a choice of the blocks that keep attention
(``network_g.attention_blocks``). Every variant is trained by the engine that
``tools/train.py`` uses (:func:`basicattn.engine.build_runner`, with
``--auto-resume``), in its own experiment folder ``<out>/<variant>/``, then
its last checkpoint is evaluated on the option file's validation sets by the
runner that ``tools/test.py`` uses (results in ``<out>/<variant>/test/``).

Resumable: a variant whose row is written (``<out>/<variant>/study_row.json``,
the last file a variant writes) is not trained again; an interrupted one
resumes from its newest checkpoint through the engine's exact resume. A row
made with other options (network, training, data, validation) is refused
rather than mixed into the table.

After each variant, ``<out>/results.md`` and ``<out>/results.json`` are
rewritten (atomically) in Table 2's shape: variant, blocks with attention,
PSNR, parameters; variants not trained yet show ``-``.

Variant specs (:func:`parse_variant`): ``all``, ``none``, ``even``, ``odd``,
or 1-based block numbers and ranges, ``1-5``, ``6-10``, ``2,4,6,8,10``.
"""

import hashlib
import json
import os
import os.path as osp
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from basicattn.config import read_options
from basicattn.config.yaml_io import dump_yaml
from basicattn.errors import UserError
from basicattn.metrics.per_clip import result_tables
from basicattn.utils.strict_json import dumps

__all__ = [
    'TABLE_2_VARIANTS',
    'Variant',
    'parse_variant',
    'parse_variants',
    'run_study',
    'format_study_table',
    'ROW_FILE',
]

#: The five rows of the paper's Table 2.
TABLE_2_VARIANTS = ('all', 'none', '1-5', '6-10', 'even')

#: The file that marks a variant as finished (written last, atomically).
ROW_FILE = 'study_row.json'

#: Option sections a finished row must agree with to be reused.
_FINGERPRINTED = ('scale', 'manual_seed', 'network_g', 'datasets', 'train', 'val')

_ITEM = re.compile(r'^(\d+)(?:-(\d+))?$')


@dataclass(frozen=True)
class Variant:
    """One row of the study.

    Attributes:
        key: Its folder name and row name (``all``, ``none``, ``1-5``,
            ``2_4_6_8_10``), the same for every spelling of one block set.
        blocks: 1-based numbers of the blocks with attention, sorted.
        num_block: Blocks of the network.
    """

    key: str
    blocks: Tuple[int, ...]
    num_block: int

    @property
    def option_value(self) -> Any:
        """``network_g.attention_blocks``: ``'all'``, ``'none'`` or the list."""
        if not self.blocks:
            return 'none'
        if len(self.blocks) == self.num_block:
            return 'all'
        return list(self.blocks)

    @property
    def label(self) -> str:
        """The paper's notation: ``All``, ``None``, ``{1,2,3,4,5}``."""
        value = self.option_value
        if isinstance(value, str):
            return value.capitalize()
        return '{' + ','.join(str(b) for b in self.blocks) + '}'


def _ranges(blocks: Sequence[int]) -> List[str]:
    """``[1, 2, 3, 5]`` -> ``['1-3', '5']``."""
    parts, start = [], None
    for i, b in enumerate(blocks):
        if start is None:
            start = b
        if i + 1 == len(blocks) or blocks[i + 1] != b + 1:
            parts.append(str(start) if start == b else f'{start}-{b}')
            start = None
    return parts


def parse_variant(spec: str, num_block: int) -> Variant:
    """A :class:`Variant` from its spec (see the module docstring).

    Args:
        spec: ``all``, ``none``, ``even``, ``odd``, or comma-separated block
            numbers and ``a-b`` ranges, 1-based.
        num_block: Blocks of the network.

    Raises:
        UserError: A spec that names no block set, or a block outside
            ``1..num_block``; the message names the spec.
    """
    text = str(spec).strip().lower()
    every = list(range(1, num_block + 1))
    named = {
        'all': every,
        'none': [],
        'even': every[1::2],
        'odd': every[0::2],
    }
    if text in named:
        blocks = named[text]
    else:
        blocks = []
        for item in text.split(','):
            match = _ITEM.match(item.strip())
            if match is None:
                raise UserError(
                    f'--variants: {spec!r} is not a variant; give all, none, even, odd or '
                    f'1-based block numbers and ranges such as 1-5 or 2,4,6,8,10'
                )
            first = int(match.group(1))
            last = int(match.group(2) or first)
            if not 1 <= first <= last <= num_block:
                raise UserError(
                    f'--variants: {spec!r} names blocks outside 1..{num_block} (the network '
                    f'has {num_block} blocks, numbered from 1 as in the paper)'
                )
            blocks += range(first, last + 1)
    blocks = tuple(sorted(set(blocks)))
    if not blocks:
        key = 'none'
    elif len(blocks) == num_block:
        key = 'all'
    else:
        key = '_'.join(_ranges(blocks))
    return Variant(key=key, blocks=blocks, num_block=num_block)


def parse_variants(specs: Sequence[str], num_block: int) -> List[Variant]:
    """:func:`parse_variant` of each spec; the same block set twice is an error."""
    variants, seen = [], {}
    for spec in specs:
        variant = parse_variant(spec, num_block)
        if variant.key in seen:
            raise UserError(
                f'--variants: {spec!r} and {seen[variant.key]!r} are the same variant '
                f'({variant.label}); list it once'
            )
        seen[variant.key] = spec
        variants.append(variant)
    return variants


def _num_block(network_g: Dict[str, Any], source: str) -> int:
    """``network_g``'s block count; refuse a network without ``attention_blocks``.

    The network is built (:func:`~basicattn.archs.build.build_network`): an
    arch for the study keeps its 1-based choice in ``attention_blocks`` and its
    block count in ``num_block`` (:class:`~basicattn.archs.attention_probe_arch.AttentionProbe`).
    """
    from basicattn.archs.build import build_network  # lazy: cheap

    net = build_network(network_g, f'{source}: network_g')
    if not hasattr(net, 'attention_blocks') or not isinstance(getattr(net, 'num_block', None), int):
        raise UserError(
            f'{source}: network_g.type {network_g["type"]!r} has no attention_blocks and '
            'num_block; the study needs an arch whose blocks can drop their attention '
            '(type: AttentionProbe)'
        )
    return net.num_block


def _yaml_value(value: Any) -> str:
    return json.dumps(value)  # JSON is a YAML literal: --set parses it back


def _variant_overrides(variant: Variant, out: str, name: str) -> List[str]:
    return [
        f'network_g.attention_blocks={_yaml_value(variant.option_value)}',
        f'name={_yaml_value(f"{name}_{variant.key}")}',
        f'path.experiments_root={_yaml_value(osp.join(out, variant.key))}',
    ]


def _fingerprint(opt: Dict[str, Any]) -> str:
    """A digest of the option sections that decide a row's numbers."""

    text = dump_yaml({k: opt.get(k) for k in _FINGERPRINTED})
    return hashlib.sha256(text.encode('utf-8')).hexdigest()


def _write_json(content: Any, path: str) -> None:
    from basicattn.utils.atomic_file import atomic_write_bytes  # lazy: cheap

    atomic_write_bytes(dumps(content).encode('utf-8'), path)


def _read_row(path: str) -> Optional[Dict[str, Any]]:
    if not osp.isfile(path):
        return None
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except (OSError, ValueError) as err:
        raise UserError(
            f'{path}: unreadable ({err}); delete it to train and test this variant again'
        ) from None


def _headline(per_set: Dict[str, Dict[str, float]]) -> Tuple[str, str, float]:
    """``(set, metric, value)``: the first set's first PSNR (Table 2's one number)."""
    for set_name, means in per_set.items():
        for metric, value in means.items():
            if metric.startswith('psnr'):
                return set_name, metric, value
    raise UserError(
        'the option file measures no PSNR on a validation set (val.metrics and datasets.val); '
        "the study reports the first set's PSNR"
    )


def _train(opt: Dict[str, Any], stop_at: Optional[int], verbose: bool) -> Tuple[int, int]:
    """Train (resuming when the folder has a checkpoint); ``(iteration, total)``."""
    from basicattn.engine import build_runner  # lazy: cheap

    runner = build_runner(opt, 'train', auto_resume=True, stop_at=stop_at, verbose=verbose)
    runner.train()
    return runner.iter, runner.max_iters


def _test(opt: Dict[str, Any], verbose: bool) -> Dict[str, Dict[str, float]]:
    """Evaluate ``path.pretrain_network_g`` on the validation sets; ``{set: {metric: mean}}``."""
    from basicattn.engine import build_runner  # lazy: cheap

    runner = build_runner(opt, 'test', verbose=verbose)
    metrics = runner.test()
    return result_tables(metrics, runner.test_loop.set_names).per_set


def format_study_table(rows: Sequence[Dict[str, Any]], digits: int = 2) -> str:
    """Table 2's shape in Markdown: Variant, Blocks with attention, PSNR, Parameters.

    Args:
        rows: One dict per variant: ``variant``, ``blocks_label``, ``parameters``,
            and, once trained, ``psnr``, ``set`` and ``metric``.
        digits: Decimals of PSNR.

    Returns:
        str: A caption line, a blank line and the table.
    """
    measured = [r for r in rows if r.get('psnr') is not None]
    if measured:
        what = {(r['set'], r['metric']) for r in measured}
        where = '; '.join(f'{s} ({m})' for s, m in sorted(what))
        caption = f'PSNR (dB) on {where}; parameters of the network; "-": not trained yet.'
    else:
        caption = 'PSNR (dB): no variant trained yet ("-"); parameters of the network.'
    header = ['Variant', 'Blocks with attention', 'PSNR', 'Parameters']
    body = []
    for r in rows:
        psnr = '-' if r.get('psnr') is None else f'{r["psnr"]:.{digits}f}'
        params = f'{r["parameters"] / 1e6:.1f} M ({r["parameters"]:,})'
        body.append([r['variant'], r['blocks_label'], psnr, params])
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def line(cells):
        return '| ' + ' | '.join(c.ljust(w) for c, w in zip(cells, widths)) + ' |'

    rule = ['-' * w for w in widths[:2]] + ['-' * (w - 1) + ':' for w in widths[2:]]
    return '\n'.join([caption, '', line(header), line(rule), *map(line, body)]) + '\n'


def _write_results(out: str, rows: List[Dict[str, Any]], digits: int) -> str:
    from basicattn.utils.atomic_file import atomic_write_bytes  # lazy: cheap

    _write_json({'rows': rows}, osp.join(out, 'results.json'))
    path = osp.join(out, 'results.md')
    atomic_write_bytes(format_study_table(rows, digits).encode('utf-8'), path)
    return path


def _say(text: str) -> None:
    print(f'dropout-study: {text}', flush=True)


def run_study(
    option_file: str,
    specs: Sequence[str],
    out: str,
    overrides: Sequence[str] = (),
    stop_at: Optional[int] = None,
    digits: int = 2,
    verbose: bool = False,
) -> int:
    """Train and test each variant in turn; write ``<out>/results.md`` and ``.json``.

    Args:
        option_file: A training option file of an arch with ``attention_blocks``.
        specs: Variant specs (:func:`parse_variant`), rows in this order.
        out: The study folder; each variant gets ``<out>/<variant key>/``.
        overrides: ``--set KEY=VALUE`` strings, applied to every variant.
        stop_at: Save a resume checkpoint after this iteration of the first
            unfinished variant and stop the study (a time-limited job); the
            next run resumes it.
        digits: Decimals of PSNR in results.md.
        verbose: mmengine's dumps on the console too.

    Returns:
        int: 0 (also when stopped by ``stop_at``).

    Raises:
        UserError: Bad specs, an arch without ``attention_blocks``, a variant
            whose network cannot be built, a finished row made with other
            options; each as one line naming the culprit.
    """
    from basicattn.archs.build import build_network  # lazy: cheap
    from basicattn.checkpoint.work_dir import read_pointer  # lazy: cheap

    out = osp.abspath(out)
    base = read_options(option_file, list(overrides), purpose='train')
    variants = parse_variants(specs, _num_block(base['network_g'], option_file))
    name = base['name']

    # Everything is checked before anything trains: options and network of each variant.
    plans = []
    for variant in variants:
        extra = list(overrides) + _variant_overrides(variant, out, name)
        opt = read_options(option_file, extra, purpose='train')
        net = build_network(opt['network_g'], f'{option_file}: network_g ({variant.key})')
        params = sum(p.numel() for p in net.parameters())
        del net
        row_path = osp.join(out, variant.key, ROW_FILE)
        row = _read_row(row_path)
        digest = _fingerprint(opt)
        if row is not None and row.get('fingerprint') != digest:
            raise UserError(
                f'{row_path}: this variant was trained and tested with other options; give '
                f'the study another --out, or delete {osp.join(out, variant.key)} to redo it'
            )
        plans.append((variant, extra, params, row, digest))

    os.makedirs(out, exist_ok=True)
    rows = [
        row
        or dict(
            variant=variant.key,
            blocks_label=variant.label,
            attention_blocks=list(variant.blocks),
            parameters=params,
            psnr=None,
        )
        for variant, _, params, row, _ in plans
    ]
    _write_results(out, rows, digits)
    for index, (variant, extra, params, row, digest) in enumerate(plans):
        if row is not None:
            _say(f'{variant.key}: finished earlier (PSNR {row["psnr"]:.{digits}f} dB), skipped')
            continue
        folder = osp.join(out, variant.key)
        _say(f'{variant.key}: training, attention in {variant.label}, {params:,} parameters')
        opt = read_options(option_file, extra, purpose='train')
        iteration, total = _train(opt, stop_at, verbose)
        if iteration < total:
            path = _write_results(out, rows, digits)
            _say(
                f'{variant.key}: stopped after iteration {iteration} of {total} (--stop-at); '
                f'run the same command again to resume it. Table so far: {path}'
            )
            return 0
        stop_at = None  # only the first variant trained by this run stops
        checkpoint, found = read_pointer(folder)
        if checkpoint is None:
            raise UserError(f'{folder}: no checkpoint to test after training ({found})')
        test_opt = read_options(
            option_file,
            extra
            + [
                f'path.experiments_root={_yaml_value(osp.join(folder, "test"))}',
                f'path.pretrain_network_g={_yaml_value(checkpoint)}',
            ],
            purpose='test',
        )
        _say(f'{variant.key}: testing {checkpoint}')
        per_set = _test(test_opt, verbose)
        set_name, metric, psnr = _headline(per_set)
        rows[index] = dict(
            variant=variant.key,
            blocks_label=variant.label,
            attention_blocks=list(variant.blocks),
            parameters=params,
            psnr=psnr,
            set=set_name,
            metric=metric,
            metrics=per_set,
            iteration=iteration,
            checkpoint=osp.relpath(checkpoint, out),
            fingerprint=digest,
        )
        _write_json(rows[index], osp.join(folder, ROW_FILE))
        path = _write_results(out, rows, digits)
        _say(f'{variant.key}: PSNR {psnr:.{digits}f} dB on {set_name}; table: {path}')
    _say(f'all {len(plans)} variants finished; {osp.join(out, "results.md")}')
    return 0
