"""Convert foreign weights into a basicattn checkpoint (``.pth`` or ``.safetensors``).

Examples::

    python tools/convert_model.py --list
    python tools/convert_model.py --source a2n_official --scale 2 \\
        aan_x2.pt experiments/pretrained/a2n_official_x2.pth
    # the format told from the keys and shapes, written as safetensors
    python tools/convert_model.py aan_x2.pt a2n_official_x2.safetensors
    # a training checkpoint's generator weights alone, to share
    python tools/convert_model.py --to safetensors experiments/run/iter_6.pth net_g.safetensors

Without ``--source`` the input's format is detected
(:func:`basicattn.converters.detect.detect_format`): a basicattn file
(``meta['arch']``: a training checkpoint, a converted file) is re-written as
weights only, an authors' file is converted. ``--to safetensors`` (or an
OUTPUT ending in ``.safetensors``) writes a safetensors file, the metadata
below as JSON in it; ``--to pth`` a ``torch.save`` file. OUTPUT must end in
``.pth``, ``.pt`` or ``.safetensors`` (``x.onnx`` is refused: ONNX is
tools/export.py's), and must not be INPUT, even with ``--overwrite``.

The output is ``{'state_dict': ..., 'meta': {'arch': {type + kwargs},
'scale': ..., 'scale_source': ..., 'converted_from': ..., 'source_sha256':
...}}``, written atomically. After writing, the file is read back and loaded
into the arch with ``strict=True`` as a self-check.

The scale is checked where it can be known: x2 and x3 A2N weights have the
same shapes, so a wrong ``--scale`` would convert cleanly and score wrong.
When the input's file name (``aan_x2.pt``: ``x2`` as a token) or its own
metadata states a scale, a different ``--scale`` is refused; without
``--scale`` that scale is assumed. The scale and where it came from are
printed and recorded in ``meta`` (and in ``meta['arch']`` as the arch's
``upscale`` argument where it has one).
"""

import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # tools/, also when imported
import _bootstrap  # noqa: F401,E402  (the checkout's .venv and package)

from basicattn.archs.build import network_from_checkpoint  # noqa: E402
from basicattn.checkpoint.io import safe_load  # noqa: E402
from basicattn.checkpoint.safetensors_io import SUFFIX as SAFETENSORS_SUFFIX  # noqa: E402
from basicattn.checkpoint.state import (  # noqa: E402
    check_finite_weights,
    extract_state_dict,
    read_state_dict,
    save_weights_file,
)
from basicattn.converters.base import (  # noqa: E402
    ConversionError,
    check_scale,
    get_converter,
    list_converters,
    scale_hints,
    sha256_file,
)
from basicattn.converters.detect import (  # noqa: E402
    BASICATTN,
    check_named_format,
    detect_format,
)
from basicattn.errors import UserError  # noqa: E402
from basicattn.utils.tool_runner import add_debug_argument, run_tool


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert foreign weights to a basicattn checkpoint.'
    )
    parser.add_argument('input', nargs='?', help='foreign checkpoint')
    parser.add_argument(
        'output', nargs='?', help='basicattn checkpoint to write (.pth or .safetensors)'
    )
    parser.add_argument(
        '--source', help='registered converter name (see --list; default: detected from the file)'
    )
    parser.add_argument(
        '--to',
        choices=('pth', 'safetensors'),
        default=None,
        help='output format (default: safetensors for an OUTPUT ending in .safetensors, else pth)',
    )
    parser.add_argument(
        '--scale',
        type=int,
        default=None,
        help='upscaling factor of the weights, when the converter needs it',
    )
    parser.add_argument('--key', default=None, help='key of a nested state_dict in the input')
    parser.add_argument('--overwrite', action='store_true', help='replace an existing output file')
    parser.add_argument(
        '--list', action='store_true', help='list the registered converters and exit'
    )
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    if not args.list:
        missing = [name for name in ('input', 'output') if getattr(args, name) is None]
        if missing:
            parser.error('missing ' + ', '.join(missing) + ' (or use --list)')
    return args


def main(argv=None) -> int:
    """Run the tool; user mistakes end in one ``error:`` line and exit code 2."""
    return run_tool(_convert, argv)


def _convert(argv) -> int:
    args = parse_args(argv)
    if args.list:
        for name, doc in list_converters().items():
            print(f'{name:20s} {doc}')
        return 0
    output_format(args)
    from basicattn.utils.output_guard import refuse_outputs_over_inputs

    refuse_outputs_over_inputs([('OUTPUT', args.output)], [('INPUT', args.input)])
    if osp.exists(args.output) and not args.overwrite:
        raise UserError(f'{args.output} exists; pass --overwrite to replace it')
    foreign = None
    if args.source:
        convert = get_converter(args.source)
        foreign, raw = read_state_dict(args.input, args.key, option='input', key_option='--key')
        state_dict, meta = _converted(args, args.source, convert, foreign, raw)
    else:
        raw = safe_load(args.input, option='input')
        found = detect_format(
            raw, args.input, args.scale, args.key, hint='name the format with --source (see --list)'
        )
        if found.name == BASICATTN:
            state_dict, meta = found.state_dict, _weights_meta(args.input, raw['meta'], found)
        else:
            args.source = found.name
            foreign = extract_state_dict(raw, args.key, args.input, '--key')
            state_dict, meta = _converted(args, found.name, get_converter(found.name), foreign, raw)
    check_finite_weights(state_dict, args.input)  # before anything is written
    save_weights_file(args.output, state_dict, meta, overwrite=args.overwrite)
    model = network_from_checkpoint(args.output)  # strict=True self-check
    num_params = sum(p.numel() for p in model.parameters())
    arch, scale, scale_source = meta['arch'], meta.get('scale'), meta.get('scale_source', '')
    arch_args = ', '.join(f'{k}={v!r}' for k, v in arch.items() if k != 'type')
    print(f'source        : {args.source or BASICATTN} ({args.input})')
    print(f'source sha256 : {meta["source_sha256"]}')
    print(f'arch          : {arch["type"]}({arch_args})')
    print(
        f'scale         : x{scale} (from {scale_source})'
        if scale
        else f'scale         : not known ({scale_source})'
    )
    print(f'tensors       : {len(foreign or state_dict)} -> {len(state_dict)}')
    print(f'parameters    : {num_params:,}')
    print(f'written       : {args.output} (reloaded with strict=True: ok)')
    return 0


#: OUTPUT extensions of a ``torch.save`` checkpoint.
PTH_SUFFIXES = ('.pth', '.pt')


def output_format(args) -> str:
    """``'pth'`` or ``'safetensors'`` from ``--to`` and OUTPUT, refusing a mismatch.

    OUTPUT must end in ``.pth`` / ``.pt`` (a torch checkpoint) or
    ``.safetensors``; anything else (``x.onnx``) is refused, since the file
    would not be what its name says.
    """
    ext = osp.splitext(args.output)[1].lower()
    if ext not in PTH_SUFFIXES + (SAFETENSORS_SUFFIX,):
        hint = '; to export ONNX use tools/export.py' if ext == '.onnx' else ''
        raise UserError(
            f'OUTPUT {args.output}: convert_model.py writes .pth / .pt (a torch checkpoint) or '
            f'.safetensors files, not {ext or "a name without an extension"}{hint}'
        )
    is_st = ext == SAFETENSORS_SUFFIX
    if args.to is None:
        return 'safetensors' if is_st else 'pth'
    if (args.to == 'safetensors') != is_st:
        want = SAFETENSORS_SUFFIX if args.to == 'safetensors' else 'not .safetensors'
        raise UserError(f'--to {args.to}: OUTPUT {args.output} should end in {want}')
    return args.to


def _converted(args, name, convert, foreign, raw):
    """Convert an authors' state dict; return it and the ``meta`` to record."""
    check_named_format(name, convert, foreign, args.input)
    hints = scale_hints(args.input, raw)
    hinted = hints[0][0] if hints else None
    try:
        state_dict, arch = convert(foreign, scale=args.scale if args.scale is not None else hinted)
    except ConversionError as err:  # the converter sees tensors only: add the file
        raise ConversionError(f'{args.input}: {err}') from None
    scale, scale_source = check_scale(args.scale, hints, args.input)
    scale, scale_source = _scale_of_arch(arch, convert, scale, scale_source)
    meta = dict(
        arch=arch,
        scale=scale,
        scale_source=scale_source,
        converted_from=f'{name}:{osp.basename(args.input)}',
        source_sha256=sha256_file(args.input),
    )
    return state_dict, meta


#: What a weights-only copy of a basicattn file keeps of its ``meta``.
KEPT_META = ('scale_source', 'converted_from', 'source_sha256', 'iter', 'weights')


def _weights_meta(path, meta, found):
    """The ``meta`` of a weights-only copy of a basicattn file (a training checkpoint ...)."""
    out = dict(arch=found.arch, scale=found.scale)
    out.update({k: meta[k] for k in KEPT_META if k in meta})
    out.setdefault('scale_source', found.scale_source)
    out.setdefault('converted_from', f'{BASICATTN}:{osp.basename(path)}')
    out['source_sha256'] = sha256_file(path)
    return out


def _scale_of_arch(arch, convert, scale, source):
    """Reconcile the scale with the arch config the converter returned."""
    in_arch = arch.get('upscale', arch.get('scale'))
    fixed = getattr(convert, 'fixed_scale', None)
    if scale is None and in_arch is not None:
        return in_arch, f'the converted arch ({arch["type"]} upscale={in_arch})'
    if scale is None and fixed is not None:
        return fixed, f'the converter ({arch["type"]} is x{fixed} only)'
    if scale is not None and in_arch is not None and in_arch != scale:
        raise ConversionError(
            f'{arch["type"]} was built for x{in_arch}, but x{scale} was assumed (from {source})'
        )
    return scale, source


if __name__ == '__main__':
    sys.exit(main())
