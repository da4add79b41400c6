"""``tools/analyze.py block-importance``: PSNR change when one A2N block is forced.

    python tools/analyze.py block-importance LR --gt HR --checkpoint W [--scale S] --out DIR

For each block, ``pi_att`` forced to 0 (non-attention branch only) and to 1
(attention branch only), every other block unchanged; PSNR on Y, crop =
scale (:mod:`basicattn.analysis.block_importance`). Writes under ``DIR``
only: ``block_importance.json``, ``block_importance.md`` (the table) and
``figures/block_importance.png`` (the change per block and image).
"""

import os.path as osp

from basicattn.errors import DataError, UserError

COMMAND = 'block-importance'
HELP = 'PSNR change per A2N block with pi_att forced to 0 and to 1 (no training)'


def add_arguments(parser) -> None:
    from basicattn.utils.run_arguments import add_network_arguments  # lazy: cheap

    parser.add_argument('inputs', nargs='+', metavar='LR', help='LR images or folders of them')
    parser.add_argument('--gt', required=True, help='folder of the HR images, named as the LR ones')
    add_network_arguments(parser)
    parser.add_argument('--out', required=True, help='output folder (nothing is written elsewhere)')


def _markdown(result, metric: str) -> str:
    base = result['baseline']['psnr']
    lines = [
        f'{metric}; unforced network: {base:.3f} dB. Delta: change from it (dB).',
        '',
        '| block | mean pi_att | pi_att=0 (non-attention only) | delta | '
        'pi_att=1 (attention only) | delta |',
        '| ---: | ---: | ---: | ---: | ---: | ---: |',
    ]
    for block, row in result['blocks'].items():
        zero, one = row['pi_att=0'], row['pi_att=1']
        lines.append(
            f'| {block} | {row["pi_att_mean"]:.3f} | {zero["psnr"]:.3f} | {zero["delta"]:+.3f} | '
            f'{one["psnr"]:.3f} | {one["delta"]:+.3f} |'
        )
    return '\n'.join(lines) + '\n'


def _hr_for(lr_path: str, gt: str) -> str:
    from basicattn.data.frame_io import IMG_SUFFIXES  # lazy: cheap

    base = osp.splitext(osp.basename(lr_path))[0]
    for candidate in [base] + [base[: -len(s)] for s in ('x2', 'x3', 'x4') if base.endswith(s)]:
        for ext in IMG_SUFFIXES:
            path = osp.join(gt, candidate + ext)
            if osp.isfile(path):
                return path
    raise DataError(f'--gt {gt}: no HR image named {base} (any image extension) for {lr_path}')


def run(args) -> int:
    from basicattn.analysis.block_importance import (  # lazy: cheap
        block_importance,
        forceable_blocks,
    )
    from basicattn.analysis.inputs import (  # lazy: cheap
        list_inputs,
        load_network,
        network_input,
        read_input,
    )
    from basicattn.analysis.output_folder import OutputFolder  # lazy: cheap
    from basicattn.analysis.plot import column_plot  # lazy: cheap
    from basicattn.engine.progress import SetProgress  # lazy: cheap
    from basicattn.metrics.psnr_ssim import metric_name  # lazy: cheap
    from basicattn.utils.img_util import imread, mod_crop  # lazy: cheap

    if osp.exists(args.out) and not osp.isdir(args.out):
        raise UserError(f'--out {args.out}: exists and is not a folder; name a folder')
    if not osp.isdir(args.gt):
        raise DataError(f'--gt {args.gt}: not a folder of HR images')
    net, cfg = load_network(args)
    blocks = forceable_blocks(net)
    scale = getattr(net, 'upscale', None) or args.scale
    if not scale:
        raise UserError('the network does not tell its scale: pass --scale')
    paths = list_inputs(args.inputs, video=False)
    pairs = []
    for path in paths:
        item = read_input(path, paths)
        hr = mod_crop(imread(_hr_for(path, args.gt)), scale)
        h, w = item.tensor.shape[-2:]
        if hr.shape[:2] != (h * scale, w * scale):
            raise DataError(
                f'{path}: LR {h}x{w} times {scale} is not the HR size '
                f'{hr.shape[0]}x{hr.shape[1]} (after cropping to a multiple of {scale})'
            )
        pairs.append((item.name, network_input(net, item.tensor), hr))
    total = len(pairs) * (1 + 2 * len(blocks))
    progress = SetProgress('block-importance', f'{len(pairs)} images', total)
    try:
        result = block_importance(net, pairs, scale, blocks, progress.update)
    finally:
        progress.close()
    metric = metric_name('psnr', True, scale)
    result['metric'] = metric
    out = OutputFolder(args.out)
    out.make()
    out.json('block_importance.json', result)
    out.text('block_importance.md', _markdown(result, metric))
    names = [p[0] for p in pairs]
    columns = [
        [
            [row[f]['values'][n] - result['baseline']['values'][n] for n in names]
            for f in ('pi_att=0', 'pi_att=1')
        ]
        for row in result['blocks'].values()
    ]
    plot = column_plot(
        columns,
        list(result['blocks']),
        ['pi_att=0 (non-attention only)', 'pi_att=1 (attention only)'],
        f'{cfg["type"]}: PSNR change per forced block (x: block index)',
        'delta dB',
        zero_line=True,
    )
    out.png('figures/block_importance.png', plot)
    print(f'{len(pairs)} images, {len(blocks)} blocks -> {args.out}')
    return 0
