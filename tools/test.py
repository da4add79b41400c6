"""Evaluate a model on every test set of an option file.

    python tools/test.py -opt options/test/a2n_official_x2.yml [--checkpoint W.pth]
        [--launcher none|pytorch] [--verbose] [--set val.self_ensemble=true ...]

Prints a table (set x metric), saves SR images when ``val.save_img`` is true,
and writes, in the results folder:

* ``metrics.json``, whose path is printed on the last line: what was measured
  and the means, ``{"options": option file, "checkpoint": weights tested
  (absolute path; null for an arch without weights, e.g. Bicubic),
  "iteration": the training iteration the checkpoint was saved after (null
  for converted or official weights), "written": UTC time (ISO 8601),
  "basicattn": version, "metrics": {set: {metric: mean}}}``;
* ``metrics_per_image.json``: ``{set: {image key: {metric: value}}}``, the
  value of every image (every frame for video: key ``clip/frame``) the means
  were taken over, gathered from every process;
* for video test sets (items with a clip name), ``metrics_per_clip.json``
  (``{set: {clip: {metric: mean}}}``), also printed as a table per set; the
  set's value is the mean over clips (not over frames).
"""

import argparse
import json
import os.path as osp
import sys

import _bootstrap  # noqa: F401

from basicattn.errors import run_tool
from basicattn.utils.run_arguments import add_run_arguments


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('-opt', '--opt', required=True, help='YAML option file')
    parser.add_argument(
        '--checkpoint',
        help='weights to test (sets path.pretrain_network_g; without network_g in the '
        'option file, the network is the one the weights record or show)',
    )
    add_run_arguments(parser)
    return parser.parse_args(argv)


def format_table(per_set, first_column='set'):
    """Render ``{set: {metric: value}}`` as a fixed-width text table."""
    metrics = []
    for values in per_set.values():
        metrics += [m for m in values if m not in metrics]
    width = max([len(first_column)] + [len(s) for s in per_set])
    header = first_column.ljust(width) + ''.join(f'  {m:>16}' for m in metrics)
    rows = [header, '-' * len(header)]
    for name, values in per_set.items():
        cells = ''.join(f'  {values[m]:>16.4f}' if m in values else f'  {"-":>16}' for m in metrics)
        rows.append(name.ljust(width) + cells)
    return '\n'.join(rows)


def metrics_record(per_set, options, checkpoint=None, iteration=None):
    """The content of ``metrics.json``: what was measured, and ``per_set`` means.

    Args:
        per_set (dict): ``{set: {metric: mean}}``.
        options (str): The option file (made absolute).
        checkpoint (str, optional): The weights tested (made absolute).
        iteration (int, optional): The checkpoint's training iteration.
    """
    from datetime import datetime, timezone

    from basicattn import __version__

    return {
        'options': osp.abspath(options),
        'checkpoint': osp.abspath(checkpoint) if checkpoint else None,
        'iteration': iteration,
        'written': datetime.now(timezone.utc).isoformat(timespec='seconds'),
        'basicattn': __version__,
        'metrics': per_set,
    }


def _tested_checkpoint(runner):
    """``(path, iteration)`` of the weights the runner loaded, ``(None, None)`` if none."""
    from basicattn.engine.hooks import GeneratorLoadHook

    for hook in runner.hooks:
        if isinstance(hook, GeneratorLoadHook):
            return hook.path, hook.loaded_iteration
    return None, None


def _write_json(content, folder, name):
    """Write ``content`` as ``<folder>/<name>`` at once (never half-written); return the path."""
    from basicattn.engine.checkpoint_io import atomic_write_bytes

    path = osp.abspath(osp.join(folder, name))
    atomic_write_bytes(json.dumps(content, indent=2).encode('utf-8'), path)
    return path


def main(argv=None):
    """Run the tool; user mistakes end in one ``error:`` line and exit code 2."""
    return run_tool(_test, argv)


def _test(argv):
    args = parse_args(argv)
    from basicattn.engine import build_runner, read_options

    overrides = list(args.set)
    if args.checkpoint:
        from basicattn.engine.checkpoint_io import refuse_url

        refuse_url(args.checkpoint, '--checkpoint (path.pretrain_network_g)')
        overrides.append(f'path.pretrain_network_g={args.checkpoint}')
        from basicattn.converters.detect import network_overrides

        overrides += network_overrides(args.opt, args.checkpoint, overrides)
    opt = read_options(args.opt, overrides, purpose='test')
    runner = build_runner(opt, purpose='test', launcher=args.launcher, verbose=args.verbose)
    from basicattn.engine.dist_env import collective_timeout_report

    with collective_timeout_report():
        metrics = runner.test()
    from mmengine.dist import is_main_process

    if not is_main_process():
        return 0
    from basicattn.metrics.per_clip import result_tables

    tables = result_tables(metrics, runner.test_loop.set_names)
    print(format_table(tables.per_set))
    for name, clips in tables.per_clip.items():
        print(f'\n{name}, per clip (the set value is the mean over clips):')
        print(format_table(clips, first_column='clip'))
    if tables.per_clip:
        _write_json(tables.per_clip, runner.work_dir, 'metrics_per_clip.json')
    if tables.per_image:
        _write_json(tables.per_image, runner.work_dir, 'metrics_per_image.json')
    record = metrics_record(tables.per_set, args.opt, *_tested_checkpoint(runner))
    path = _write_json(record, runner.work_dir, 'metrics.json')
    print(f'metrics written to {path}', flush=True)
    print(path, flush=True)
    return 0


if __name__ == '__main__':
    exit_code = main()
    from basicattn.engine.dist_env import finish_distributed

    finish_distributed(wait_for_others=exit_code == 0)
    sys.exit(exit_code)
