"""Evaluate a model on every test set of an option file; merge runs into a results table.

    python tools/test.py -opt options/test/a2n_official_x2.yml [--checkpoint W.pth]
        [--label NAME] [--compare A.json B.json ...] [-o results.md] [--digits 2]
        [--launcher none|pytorch] [--verbose] [--set val.self_ensemble=true ...]
        [--precision fp32|bf16|fp16|auto]
    python tools/test.py --compare A.json B.json ... [-o results.md] [--digits 2]

Prints a table (set x metric), saves SR images when ``val.save_img`` is true,
and writes, in the results folder:

* ``metrics.json``, whose path is printed on the last line: what was measured
  and the means, ``{"options": option file, "checkpoint": weights tested
  (absolute path; null for an arch without weights, e.g. Bicubic),
  "iteration": the training iteration the checkpoint was saved after (null
  for converted or official weights), "written": UTC time (ISO 8601),
  "basicattn": version, "label": the run's row in results tables
  (``--label``, or network type, options name, checkpoint and inference
  mode), "network": network_g.type, "params": the generator's parameter
  count, "scale", "test_cfg": the test-time settings used (chop,
  self_ensemble, tile ...), "metrics": {set: {metric: mean}}, "runtime":
  {"device", "device_type", "threads", "torch", "processes", "sets": {set:
  {"ms_per_frame", "ms_per_frame_median", "frames"}}}}``: the test-time
  forward's time per output frame, warm, self-ensemble / tiles / chop
  included (:mod:`basicattn.models.forward_timing`);
* ``results.md`` (or ``-o``), the Markdown table papers print: methods as
  rows, sets as columns, ``PSNR / SSIM`` cells, a ``ms/frame`` column; the runs of ``--compare``
  (their ``metrics.json``) are rows above this run's
  (:mod:`basicattn.metrics.results_table`, ``docs/results_table.md``);
* ``metrics_per_image.json``: ``{set: {image key: {metric: value}}}``, the
  value of every image (every frame for video: key ``clip/frame``) the means
  were taken over, gathered from every process;
* for video test sets (items with a clip name), ``metrics_per_clip.json``
  (``{set: {clip: {metric: mean}}}``), also printed as a table per set; the
  set's value is the mean over clips (not over frames).

``--precision`` sets ``val.amp``: ``fp32`` (the default, unless the option file
sets ``val.amp``; published numbers are float32), ``bf16`` / ``fp16`` (autocast;
fp16 on CUDA only; the predictions are float32 again before any metric), or
``auto`` (bf16 on a CPU with AVX-512 BF16 or AMX or a GPU with bf16, for an arch
whose measured bf16 PSNR, ``BF16_PSNR_DB``, is at least 40 dB; else float32),
see basicattn/models/inference_precision.py. It is recorded in ``metrics.json``
(``test_cfg.amp``) and in the default label (``A2N (..., bf16)``).

Without ``-opt``, ``--compare`` runs nothing: it merges the records into one
table, prints it, and writes it to ``-o`` when given (that path is then the
last line). ``-o`` may not be (or contain) an input: a ``--compare`` record,
the option file, the checkpoint or a dataset path. ``--label`` is one line of
text (control characters are refused). A second run into a results folder in
use stops with one line naming the run that holds it.
"""

import argparse
import os.path as osp
import sys

import _bootstrap  # noqa: F401

from basicattn.utils.run_arguments import add_run_arguments
from basicattn.utils.tool_runner import run_tool


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument('-opt', '--opt', help='YAML option file (omit to only --compare)')
    parser.add_argument(
        '--checkpoint',
        help='weights to test (sets path.pretrain_network_g; without network_g in the '
        'option file, the network is the one the weights record or show)',
    )
    parser.add_argument(
        '--label',
        metavar='NAME',
        help="this run's row in results.md (default: network type, options name, "
        'checkpoint and inference mode, e.g. "A2N (a2n_official_x2, chop)")',
    )
    parser.add_argument(
        '--compare',
        nargs='+',
        action='extend',
        default=[],
        metavar='JSON',
        help='metrics.json files of other runs, merged into one results table (without '
        '-opt: only merge them, run nothing)',
    )
    parser.add_argument(
        '-o',
        '--output',
        metavar='MD',
        help='where to write the Markdown results table (default with -opt: results.md '
        'beside metrics.json; without -opt: print it only)',
    )
    parser.add_argument(
        '--digits',
        type=int,
        default=2,
        help='decimals of PSNR in the results table (default 2, as papers; SSIM: 4)',
    )
    parser.add_argument(
        '--precision',
        choices=('fp32', 'bf16', 'fp16', 'auto'),
        default=None,
        help="sets val.amp (default: the option file's val.amp, i.e. fp32 unless it sets one): "
        'bf16 / fp16 autocast (fp16: CUDA only); auto: bf16 where the CPU or GPU has it and the '
        "arch's measured bf16 PSNR is >= 40 dB, else fp32",
    )
    add_run_arguments(parser)
    args = parser.parse_args(argv)
    if args.opt is None and not args.compare:
        parser.error('give -opt to test a model, or --compare A.json B.json to merge runs')
    if args.opt is None:
        given = (args.checkpoint, args.label, args.precision)
        for flag, value in zip(('--checkpoint', '--label', '--precision'), given):
            if value is not None:
                parser.error(f'{flag} applies to the run of -opt; give -opt or leave it out')
    if not 0 <= args.digits <= 10:
        parser.error(f'--digits must be between 0 and 10, got {args.digits}')
    if args.label is not None:
        check_label(args.label)
    return args


def check_label(label):
    """Refuse a ``--label`` that cannot be one row name of a Markdown table.

    A newline or another control character would split the row of
    ``results.md`` (a ``|`` is escaped by the table writer); an empty label
    names nothing.
    """
    import unicodedata

    from basicattn.errors import UserError

    bad = [c for c in label if unicodedata.category(c) in ('Cc', 'Cf', 'Zl', 'Zp')]
    if bad:
        raise UserError(
            f'--label {label!r} holds the control character {bad[0]!r}; a label is one line '
            'of text (its row in results.md): remove it'
        )
    if not label.strip():
        raise UserError('--label is empty; give the name of the row in results.md, or leave it out')


def format_table(per_set, first_column='set'):
    """Render ``{set: {metric: value}}`` as a fixed-width text table (``↓``: lower is better)."""
    from basicattn.metrics.metric_direction import arrow

    metrics = []
    for values in per_set.values():
        metrics += [m for m in values if m not in metrics]
    width = max([len(first_column)] + [len(s) for s in per_set])
    header = first_column.ljust(width) + ''.join(f'  {m + arrow(m):>16}' for m in metrics)
    rows = [header, '-' * len(header)]
    for name, values in per_set.items():
        cells = ''.join(f'  {values[m]:>16.4f}' if m in values else f'  {"-":>16}' for m in metrics)
        rows.append(name.ljust(width) + cells)
    return '\n'.join(rows)


def metrics_record(
    per_set, options, checkpoint=None, iteration=None, label=None, run_info=None, runtime=None
):
    """The content of ``metrics.json``: what was measured, and ``per_set`` means.

    Args:
        per_set (dict): ``{set: {metric: mean}}``.
        options (str): The option file (made absolute).
        checkpoint (str, optional): The weights tested (made absolute).
        iteration (int, optional): The checkpoint's training iteration.
        label (str, optional): The row label (default:
            :func:`basicattn.metrics.results_table.default_label`).
        run_info (dict, optional): ``name``, ``network``, ``params``,
            ``scale`` and ``test_cfg`` of the run (see :func:`_run_info`).
        runtime (dict, optional): The forward times
            (:func:`basicattn.models.forward_timing.runtime_record`).
    """
    from datetime import datetime, timezone

    from basicattn import __version__
    from basicattn.metrics.results_table import default_label

    info = run_info or {}
    if label is None:
        label = default_label(
            info.get('network'), info.get('name'), checkpoint, info.get('test_cfg')
        )
    return {
        'options': osp.abspath(options),
        'checkpoint': osp.abspath(checkpoint) if checkpoint else None,
        'iteration': iteration,
        'written': datetime.now(timezone.utc).isoformat(timespec='seconds'),
        'basicattn': __version__,
        'label': label,
        'network': info.get('network'),
        'params': info.get('params'),
        'scale': info.get('scale'),
        'test_cfg': info.get('test_cfg'),
        'metrics': per_set,
        'runtime': runtime,
    }


def _run_info(opt, runner):
    """``name``, ``network`` type, ``params``, ``scale`` and ``test_cfg`` of a test run.

    ``params`` is the generator's parameter count (every parameter, trainable
    or not, each shared one once), as the papers' tables count it.
    """
    model = getattr(runner.model, 'module', runner.model)  # DDP wraps it
    generator = getattr(model, 'generator', None)
    test_cfg = getattr(model, 'test_cfg', None)
    network = opt.get('network_g') or {}
    scale = opt.get('scale')
    return {
        'name': opt.get('name'),
        'network': network.get('type') if isinstance(network, dict) else None,
        'params': (
            sum(p.numel() for p in generator.parameters()) if generator is not None else None
        ),
        'scale': scale if isinstance(scale, int) and not isinstance(scale, bool) else None,
        'test_cfg': test_cfg.to_dict() if hasattr(test_cfg, 'to_dict') else None,
    }


def _tested_checkpoint(runner):
    """``(path, iteration)`` of the weights the runner loaded, ``(None, None)`` if none."""
    from basicattn.engine.hooks import LOADED_WEIGHTS

    loaded = runner.message_hub.get_info(LOADED_WEIGHTS) or {}
    return loaded.get('path'), loaded.get('iteration')


def _write_json(content, folder, name):
    """Write ``content`` as ``<folder>/<name>`` at once (never half-written); return the path.

    The file is strict JSON, readable by any parser: a value that is not a
    finite number (the PSNR of an image equal to its ground truth is
    infinite) is written as the string ``"inf"``, ``"-inf"`` or ``"nan"``
    (:mod:`basicattn.utils.strict_json`), not as JavaScript's ``Infinity``.
    """
    from basicattn.utils.strict_json import dumps

    return _write_text(dumps(content), osp.join(folder, name))


def _write_text(text, path):
    """Write ``text`` to ``path`` at once (never half-written); return the absolute path."""
    from basicattn.utils.atomic_file import atomic_write_bytes

    path = osp.abspath(path)
    atomic_write_bytes(text.encode('utf-8'), path)
    return path


def _refuse_output_over_inputs(args, opt=None):
    """``-o`` must not be, contain or lie inside an input (:mod:`basicattn.utils.output_guard`).

    The inputs: the ``--compare`` records, the option file, ``--checkpoint``
    and, once the options are read (``opt``), their dataset paths and weights.
    """
    from basicattn.utils.output_guard import refuse_outputs_over_inputs

    inputs = [('--compare', path) for path in args.compare]
    inputs += [('-opt', args.opt), ('--checkpoint', args.checkpoint)]
    if opt is not None:
        from basicattn.engine.builder import run_inputs

        inputs += run_inputs(opt, 'test')
    refuse_outputs_over_inputs([('-o', args.output)], inputs)


def main(argv=None):
    """Run the tool; user mistakes end in one ``error:`` line and exit code 2."""
    return run_tool(_test, argv)


def _test(argv):
    args = parse_args(argv)
    from basicattn.metrics.results_table import format_results_table, read_record

    _refuse_output_over_inputs(args)  # before anything is read or written
    compared = [read_record(path) for path in args.compare]  # before a long run
    table = format_results_table(compared, digits=args.digits) if compared else None
    if args.opt is None:
        print(table, end='', flush=True)
        if args.output:
            print(_write_text(table, args.output), flush=True)
        return 0
    from basicattn.checkpoint.io import install as install_safe_checkpoint_io
    from basicattn.config import read_options
    from basicattn.engine import build_runner

    install_safe_checkpoint_io()
    overrides = list(args.set)
    if args.checkpoint:
        from basicattn.checkpoint.io import refuse_url

        refuse_url(args.checkpoint, '--checkpoint (path.pretrain_network_g)')
        overrides.append(f'path.pretrain_network_g={args.checkpoint}')
        from basicattn.converters.detect import network_overrides

        overrides += network_overrides(args.opt, args.checkpoint, overrides)
    opt = read_options(args.opt, overrides, purpose='test')
    from basicattn.models.inference_precision import set_test_precision

    set_test_precision(opt, args.precision)  # val.amp, checked against the arch
    _refuse_output_over_inputs(args, opt)
    runner = build_runner(opt, purpose='test', launcher=args.launcher, verbose=args.verbose)
    from basicattn.checkpoint.run_lock import release
    from basicattn.engine.dist_env import collective_timeout_report
    from basicattn.models.forward_timing import ForwardTimer, runtime_lines, runtime_record

    timer = ForwardTimer(lambda: runner.test_loop.current_set)
    getattr(runner.model, 'module', runner.model).forward_timer = timer
    try:
        with collective_timeout_report():
            metrics = runner.test()
            from mmengine.dist import all_gather_object

            runtime = runtime_record(all_gather_object(timer.samples), timer.device)
    finally:  # also after a failure: the folder is free again (the hook did it otherwise)
        release(runner.work_dir, remove=True)
    from mmengine.dist import is_main_process

    if not is_main_process():
        return 0
    from basicattn.metrics.per_clip import result_tables

    tables = result_tables(metrics, runner.test_loop.set_names)
    print(format_table(tables.per_set))
    for line in runtime_lines(runtime):
        print(line)
    for name, clips in tables.per_clip.items():
        print(f'\n{name}, per clip (the set value is the mean over clips):')
        print(format_table(clips, first_column='clip'))
    if tables.per_clip:
        _write_json(tables.per_clip, runner.work_dir, 'metrics_per_clip.json')
    if tables.per_image:
        _write_json(tables.per_image, runner.work_dir, 'metrics_per_image.json')
    record = metrics_record(
        tables.per_set,
        args.opt,
        *_tested_checkpoint(runner),
        label=args.label,
        run_info=_run_info(opt, runner),
        runtime=runtime,
    )
    path = _write_json(record, runner.work_dir, 'metrics.json')
    from basicattn.metrics.results_table import record_from_dict

    records = compared + [record_from_dict(record, path)]
    table = format_results_table(records, digits=args.digits)
    results = _write_text(table, args.output or osp.join(runner.work_dir, 'results.md'))
    print(f'results table written to {results}', flush=True)
    print(f'metrics written to {path}', flush=True)
    print(path, flush=True)
    return 0


if __name__ == '__main__':
    exit_code = main()
    from basicattn.engine.dist_env import finish_distributed

    finish_distributed(wait_for_others=exit_code == 0)
    sys.exit(exit_code)
