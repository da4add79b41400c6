"""``tools/analyze.py attention``: what a network's attention does on a set of inputs.

    python tools/analyze.py attention INPUTS --checkpoint W [--scale S] [-opt X.yml] --out DIR

Runs the network once per input with every attention tap recorded
(:mod:`basicattn.analysis.taps`) and writes, under ``DIR`` only:

* ``attention.json``: per tap name, ``mean``, ``std``, ``min``, ``max`` over
  the inputs and the per-input ``values`` (see
  :mod:`basicattn.analysis.attention_summary`);
* ``highpass_correlation.json`` / ``.md`` (A2N, paper Table 1): per block,
  the correlation of the attention map with the Laplace, Scharr and Sobel
  responses of the feature it multiplies (recipe:
  :mod:`basicattn.analysis.highpass`);
* ``figures/``: ``block_heatmaps_<input>.png`` (Fig. 2),
  ``enhanced_suppressed.png`` (Fig. 7), ``pi_att_distribution.png``;
  ``query_attention_<input>.png`` (MANA, DASAA); ``maps_<input>.png``
  (the other map taps: DKSAN's DKSA maps per level ...), for the first
  ``--figure-inputs`` inputs.

docs/analysis.md has the definitions and the A2N figures.
"""

import os.path as osp
from typing import List, Optional, Sequence, Tuple

from basicattn.errors import UserError

COMMAND = 'attention'
HELP = 'statistics, Table 1 and figures of every attention tap over a set of LR inputs'


def _pixels(text: str) -> List[Tuple[int, int]]:
    try:
        points = [tuple(int(v) for v in p.split(',')) for p in text.split(';') if p.strip()]
    except ValueError:
        points = []
    if not points or any(len(p) != 2 or min(p) < 0 for p in points):
        raise UserError(f'--queries {text!r}: give LR pixels as "y,x;y,x" (non-negative integers)')
    return points


def _blocks(text: str) -> List[int]:
    try:
        blocks = [int(v) for v in text.split(',') if v.strip()]
    except ValueError:
        blocks = []
    if not blocks or min(blocks) < 0:
        raise UserError(f'--blocks {text!r}: give block indices from 0 as "0,2,5,9"')
    return blocks


def add_arguments(parser) -> None:
    from basicattn.utils.run_arguments import add_network_arguments  # lazy: cheap

    parser.add_argument(
        'inputs', nargs='+', metavar='INPUTS', help='LR images, folders of them, or clip folders'
    )
    add_network_arguments(parser)
    parser.add_argument('--out', required=True, help='output folder (nothing is written elsewhere)')
    parser.add_argument(
        '--queries',
        default=None,
        help='query pixels "y,x;y,x" on the LR grid for the query-attention taps '
        '(MANA, DASAA; default: the centre pixel)',
    )
    parser.add_argument(
        '--blocks',
        default=None,
        help='blocks of the Fig. 2 heat maps, from 0 (default: 0,2,5,9 as the paper, '
        'those that exist)',
    )
    parser.add_argument(
        '--figure-inputs',
        type=int,
        default=5,
        help='draw the per-input figures for the first N inputs (default 5; 0: none)',
    )
    parser.add_argument(
        '--panel-size',
        type=int,
        default=144,
        help='longer side of a figure panel in pixels (default 144)',
    )


def _check_out(out: str) -> None:
    if osp.exists(out) and not osp.isdir(out):
        raise UserError(f'--out {out}: exists and is not a folder; name a folder')


def _table1_markdown(table, inputs: int) -> str:
    from basicattn.analysis.highpass import FILTERS  # lazy: cheap

    blocks = list(table)
    short = [b.replace('blocks.', '') for b in blocks]
    lines = [
        f'Correlation of the attention map with the high-pass responses of the feature it '
        f'multiplies (mean over channels and {inputs} inputs; docs/analysis.md).',
        '',
        '| filter | ' + ' | '.join(f'block {s}' for s in short) + ' |',
        '| --- |' + ' ---: |' * len(blocks),
    ]
    for f in FILTERS:
        lines.append(f'| {f} | ' + ' | '.join(f'{table[b][f]:.3f}' for b in blocks) + ' |')
    return '\n'.join(lines) + '\n'


def _fig2_blocks(requested: Optional[Sequence[int]], available: Sequence[int]) -> List[int]:
    if requested is None:
        return [i for i in (0, 2, 5, 9) if i in available] or list(available[:4])
    missing = [i for i in requested if i not in available]
    if missing:
        raise UserError(
            f'--blocks: no block {missing[0]} (the network has blocks 0..{max(available)})'
        )
    return list(requested)


def run(args) -> int:
    import torch

    from basicattn.analysis.attention_figures import (
        block_heatmaps,
        blocks_of,
        enhanced_suppressed,
        query_attention_figure,
        scalar_distribution,
        tap_maps,
    )  # lazy: cheap
    from basicattn.analysis.attention_summary import TapSummary  # lazy: cheap
    from basicattn.analysis.inputs import (
        iter_inputs,
        list_inputs,
        load_network,
        network_input,
    )  # lazy: cheap
    from basicattn.analysis.output_folder import OutputFolder  # lazy: cheap
    from basicattn.analysis.taps import record_taps, tap_names  # lazy: cheap
    from basicattn.archs.facts import takes_frames  # lazy: cheap
    from basicattn.engine.progress import SetProgress  # lazy: cheap

    queries = _pixels(args.queries) if args.queries is not None else None
    requested = _blocks(args.blocks) if args.blocks is not None else None
    if args.figure_inputs < 0:
        raise UserError(f'--figure-inputs {args.figure_inputs}: give 0 or more')
    if args.panel_size < 16:
        raise UserError(f'--panel-size {args.panel_size}: give 16 pixels or more')
    size = args.panel_size
    _check_out(args.out)
    net, cfg = load_network(args)
    names = tap_names(net)
    if not names:
        raise UserError(f'{cfg["type"]} has no attention taps: nothing to analyse')
    gates = blocks_of(names, 'attention_map')
    fig2 = _fig2_blocks(requested, gates) if gates and blocks_of(names, 'attention_input') else []
    paths = list_inputs(args.inputs, takes_frames(net))
    summary = TapSummary(keep_maps=args.figure_inputs)
    frames, used_queries = [], []
    set_name = osp.basename(osp.normpath(args.inputs[0])) if len(args.inputs) == 1 else 'inputs'
    progress = SetProgress('attention', set_name, len(paths))
    try:
        for item in iter_inputs(paths, net):
            h, w = item.tensor.shape[-2:]
            points = queries if queries is not None else [(h // 2, w // 2)]
            bad = [(y, x) for y, x in points if y >= h or x >= w]
            if bad:
                raise UserError(f'--queries: pixel {bad[0]} is outside {item.name} ({h}x{w})')
            with torch.no_grad(), record_taps(net, '*', points, reduce=summary.reduce) as rec:
                net(network_input(net, item.tensor))
            summary.add(item.name, rec)
            if len(frames) < args.figure_inputs:
                frames.append(item.frames)
                used_queries.append(points)
            progress.update()
    finally:
        progress.close()

    out = OutputFolder(args.out)
    out.make()
    stats = summary.statistics()
    out.json('attention.json', stats)
    table = summary.table1()
    if table is not None:
        out.json('highpass_correlation.json', table)
        out.text('highpass_correlation.md', _table1_markdown(table, len(summary.inputs)))
    if blocks_of(stats, 'pi_att'):
        out.png(
            'figures/pi_att_distribution.png', scalar_distribution(stats, 'pi_att', summary.inputs)
        )
    pis = blocks_of(stats, 'pi_att')
    rows = []
    for k, maps in enumerate(summary.figure_maps):
        name = summary.inputs[k]
        if fig2:
            out.png(f'figures/block_heatmaps_{name}.png', block_heatmaps(maps, fig2, size))
        if pis and gates:
            pi = {i: stats[f'blocks.{i}.pi_att']['values'][name] for i in pis}
            rows.append((name, maps, pi))
        for tap in [t for t in maps if t.endswith('query_attention')]:
            fig = query_attention_figure(frames[k], maps[tap], used_queries[k], tap, size)
            out.png(f'figures/query_attention_{name}.png', fig)
        others = [
            t
            for t in maps
            if not t.endswith('query_attention')
            and not any(t.endswith(s) for s in ('attention_input', 'attention_output'))
            and not (t.startswith('blocks.') and t.endswith('.attention_map') and pis)
        ]
        fig = tap_maps(maps, others, panel=size)
        if fig is not None:
            out.png(f'figures/maps_{name}.png', fig)
    if rows:
        out.png('figures/enhanced_suppressed.png', enhanced_suppressed(rows, panel=size))
    print(f'{len(summary.inputs)} inputs, {len(stats)} taps -> {args.out}')
    return 0
