"""Export a network to ONNX and check the file against PyTorch with onnxruntime.

The exporter is PyTorch's TorchScript-based one (``torch.onnx.export(...,
dynamo=False)``): on torch 2.13 it exports every registered arch at a fixed
size, in about a second each, and needs only ``onnx`` and ``onnxruntime``.
The ``torch.export``-based exporter (``dynamo=True``, the default since torch
2.9) fails on Bicubic (its numpy weight matrices), MANA and DKSAN, and is
several times slower. The trace runs under ``torch.no_grad()``; the ops in
:mod:`basicattn.ops` then take their plain path (no custom autograd function,
no checkpointing, ``grid_sample`` as ONNX ``GridSample``, see
:func:`basicattn.ops.op_utils.exporting`).

A trace records the sizes that Python code computes from the input's shape
as constants. With ``dynamic=True`` the batch, height and width axes are
declared dynamic and the graph is then run at a second, different size; an
arch whose graph does not generalise fails that check with a message that
says so (export it at a fixed size instead). Nothing is written until the
check passed: the model is exported to memory, checked, then written to a
temporary file beside the target and renamed over it.

Inputs are RGB in [0, 1]: ``(N, 3, h, w)`` for image archs, ``(N, T, 3, h,
w)`` for video archs (``T`` = the arch's ``num_frames``). A recurrent arch
(DASAA) is exported either as its per-window forward without the state
(``net(lq)``, what ``tools/infer.py --mode window`` runs) or, with
``recurrent=True``, as a *step graph* ``(lq, state_h, state_c) -> (sr,
state_h_out, state_c_out)`` (:mod:`basicattn.deploy.onnx_step`) that
:mod:`basicattn.deploy.onnx_stream` runs frame after frame, carrying the state.

Which archs hold for any size is a fact on the arch class,
``ONNX_DYNAMIC_HW`` (True for every registered arch); a class that says False
is refused ``dynamic=True`` at once with its ``ONNX_DYNAMIC_HW_REASON``, and
one that says nothing (an arch of your own) is tried and checked.

After the trace the graph is simplified by onnxslim (``simplify=True``,
:func:`basicattn.deploy.onnx_graph.simplify_graph`) and checked against
PyTorch within :data:`TOLERANCE`; with ``precision='fp16'`` that checked
graph is converted to float16 (:func:`basicattn.deploy.onnx_graph.to_float16`)
and checked again within :data:`FP16_TOLERANCE`. The file records what it is
in its metadata (:data:`METADATA_KEYS`): the arch, the kind of graph, the
scale, the frames per window and the precision.
"""

import io
import os.path as osp
import warnings
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn

from basicattn.errors import NonFiniteError, UserError
from basicattn.utils.atomic_file import atomic_write_bytes
from basicattn.utils.finite import describe_values

from .onnx_graph import require_onnxslim, simplify_graph, to_float16
from .onnx_step import (
    STATE_INPUTS,
    STATE_OUTPUTS,
    RecurrentStep,
    example_input,
    has_state,
    initial_state,
)

__all__ = [
    'TOLERANCE',
    'FP16_TOLERANCE',
    'PRECISIONS',
    'METADATA_KEYS',
    'ExportResult',
    'require_onnx',
    'example_input',
    'export_onnx',
    'check_onnx',
]

#: Largest accepted max abs difference between onnxruntime and PyTorch (float32
#: graphs): other kernels and summation orders than PyTorch's move float32 results by
#: about 1e-7 per operation; 1e-4 is far above that and far below what a wrong graph does.
TOLERANCE = 1e-4

#: The same for float16 graphs: float16 keeps 11 significant bits, so every
#: activation in [0.5, 1) is rounded by up to 2.4e-4 (half a step of 2^-11 * 2), and
#: the errors of a few dozen layers add up; 2e-3 is half of one 8-bit output level
#: (1/255 = 3.9e-3), so a checked fp16 graph changes a written 8-bit pixel by at most one
#: level. Outputs larger than 1 (a recurrent state) are compared relative to their
#: largest magnitude.
FP16_TOLERANCE = 2e-3

#: ``precision`` values: float32 as traced, or converted to float16.
PRECISIONS = ('fp32', 'fp16')

#: Metadata the file records (``onnx.ModelProto.metadata_props``), read by
#: :mod:`basicattn.deploy.onnx_stream`.
METADATA_KEYS = {
    'arch': 'basicattn.arch',
    'graph': 'basicattn.graph',  # 'image', 'window' or 'step'
    'scale': 'basicattn.scale',
    'num_frames': 'basicattn.num_frames',
    'precision': 'basicattn.precision',
}

#: Lowest opset: ONNX ``GridSample`` (deformable convolution) needs 16.
MIN_OPSET = 16

INPUT_NAME, OUTPUT_NAME = 'lq', 'sr'


@dataclass
class ExportResult:
    """What :func:`export_onnx` wrote and measured.

    Attributes:
        path (str): The ``.onnx`` file.
        opset (int): Its opset.
        dynamic (bool): Batch, height and width are dynamic axes.
        shapes (list[tuple]): The ``lq`` shapes checked.
        max_abs_diffs (list[float]): onnxruntime vs PyTorch, per shape, of
            the float32 graph (simplified when ``simplified``).
        size_bytes (int): File size.
        precision (str): ``'fp32'`` or ``'fp16'`` (the file's).
        fp16_max_abs_diffs (list[float]): The same for the float16 graph
            (empty for fp32).
        simplified (bool): onnxslim simplified the graph.
        graph (str): ``'image'``, ``'window'`` or ``'step'`` (state in and out).
        scale (int): Output size / input size.
    """

    path: str
    opset: int
    dynamic: bool
    shapes: List[Tuple[int, ...]] = field(default_factory=list)
    max_abs_diffs: List[float] = field(default_factory=list)
    size_bytes: int = 0
    precision: str = 'fp32'
    fp16_max_abs_diffs: List[float] = field(default_factory=list)
    simplified: bool = False
    graph: str = 'image'
    scale: int = 1


def max_opset() -> int:
    """The highest opset this torch's TorchScript exporter writes."""
    from torch.onnx import _constants

    return getattr(_constants, 'ONNX_MAX_OPSET', 20)


def require_onnx():
    """Import and return ``(onnx, onnxruntime)``.

    Raises:
        UserError: Either is not installed (with the install command).
    """
    try:
        import onnx
        import onnxruntime
    except ImportError as err:
        raise UserError(
            f'ONNX export needs onnx and onnxruntime ({err.name} is not installed): '
            "pip install -e '.[export]'"
        ) from None
    return onnx, onnxruntime


def _dynamic_axes(dims: int) -> dict:
    spatial = {0: 'batch', dims - 2: 'height', dims - 1: 'width'}
    return {INPUT_NAME: spatial, OUTPUT_NAME: {0: 'batch', 2: 'out_height', 3: 'out_width'}}


def _step_axes(dims: int) -> dict:
    """Dynamic axes of a step graph: ``lq``'s, and the HR size for the state."""
    axes = _dynamic_axes(dims)
    for name in STATE_INPUTS + STATE_OUTPUTS:
        axes[name] = {0: 'batch', 2: 'out_height', 3: 'out_width'}
    return axes


def _trace(
    net: nn.Module,
    example,
    opset: int,
    dynamic: bool,
    name: str,
    input_names: Sequence[str] = (INPUT_NAME,),
    output_names: Sequence[str] = (OUTPUT_NAME,),
) -> bytes:
    """The ONNX model of ``net(*example)`` as bytes (``example``: a tensor or a tuple)."""
    args = example if isinstance(example, tuple) else (example,)
    if dynamic:
        axes = _step_axes(args[0].dim()) if len(args) > 1 else _dynamic_axes(args[0].dim())
    else:
        axes = None
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            # TracerWarnings (Python ints taken from shapes) and the legacy
            # exporter's deprecation notice: the size check below is what tells.
            warnings.simplefilter('ignore')
            torch.onnx.export(
                net,
                args,
                buffer,
                dynamo=False,
                opset_version=opset,
                input_names=list(input_names),
                output_names=list(output_names),
                dynamic_axes=axes,
                do_constant_folding=True,
            )
    except (RuntimeError, torch.onnx.errors.OnnxExporterError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f'{name} cannot be exported to ONNX opset {opset}: {reason}') from None
    return buffer.getvalue()


def _shape_text(x: torch.Tensor) -> str:
    return 'x'.join(str(s) for s in x.shape)


def check_onnx(
    model: bytes,
    net: nn.Module,
    inputs: Sequence,
    name: str,
    hints: Sequence[str] = (),
    tolerance: float = TOLERANCE,
    label: str = '',
) -> List[float]:
    """Run ``model`` with onnxruntime on each input (one session); compare with ``net``.

    Args:
        model (bytes): The serialised ONNX model.
        net (nn.Module): The network it was exported from (eval mode).
        inputs (Sequence): Per check, a tensor in [0, 1] or a tuple of
            tensors (the graph's inputs in order, e.g. ``(lq, h, c)`` of a
            step graph); ``net(*inputs)`` gives the expected outputs.
        name (str): The arch, for messages.
        hints (Sequence[str]): Per input, appended to the message when the
            graph fails on it (missing entries: nothing).
        tolerance (float): Largest accepted max abs difference; outputs
            whose magnitude exceeds 1 are compared relative to it.
            Default: :data:`TOLERANCE`.
        label (str): What the graph is (``'fp16 graph'``), for messages.

    Returns:
        list[float]: Max abs difference per input (over all outputs).

    Raises:
        UserError: The graph fails to run, gives another shape, or differs by
            more than ``tolerance``.
    """
    _, ort = require_onnx()
    options = ort.SessionOptions()
    options.log_severity_level = 4  # failures are raised below, not logged as well
    session = ort.InferenceSession(model, options, providers=['CPUExecutionProvider'])
    graph_inputs = [i.name for i in session.get_inputs()]
    output_names = [o.name for o in session.get_outputs()]
    what = f'the exported ONNX graph{f" ({label})" if label else ""}'
    diffs = []
    for i, case in enumerate(inputs):
        args = case if isinstance(case, tuple) else (case,)
        hint = hints[i] if i < len(hints) else ''
        shape = _shape_text(args[0])
        with torch.no_grad():
            wants = net(*args)
        wants = wants if isinstance(wants, tuple) else (wants,)
        if not all(bool(torch.isfinite(w).all()) for w in wants):
            bad = next(w for w in wants if not bool(torch.isfinite(w).all()))
            raise NonFiniteError(
                f'{name}: the PyTorch output holds {describe_values(bad)} on input {shape}, '
                'so there is nothing to check the graph against; nothing was exported '
                '(check the weights)'
            )
        feeds = {n: a.numpy() for n, a in zip(graph_inputs, args)}
        try:
            gots = [torch.from_numpy(g) for g in session.run(None, feeds)]
        except Exception as err:  # noqa: BLE001  (onnxruntime raises its own classes)
            reason = str(err).strip().splitlines()[0][:300]
            raise UserError(f'{name}: {what} fails on input {shape} ({reason}){hint}') from None
        worst = 0.0
        for out_name, got, want in zip(output_names, gots, wants):
            if got.shape != want.shape:
                raise UserError(
                    f'{name}: {what} gives {tuple(got.shape)} for input {shape} '
                    f'({out_name}), PyTorch {tuple(want.shape)}{hint}'
                )
            diff = (got.float() - want).abs().max().item()
            limit = tolerance * max(1.0, want.abs().max().item())
            if not diff <= limit:
                which = f' ({out_name})' if len(output_names) > 1 else ''
                raise UserError(
                    f'{name}: onnxruntime{f" ({label})" if label else ""} and PyTorch differ '
                    f'by {diff:.3g}{which} (> {limit:.3g}) on input {shape}{hint}'
                )
            worst = max(worst, diff)
        diffs.append(worst)
    return diffs


def output_problem(path: str, overwrite: bool) -> str:
    """What stops writing the ONNX file ``path`` ('' when nothing does).

    A folder is refused whatever ``overwrite`` says (it is never replaced by
    a file), so the message does not suggest ``--overwrite`` for it.
    """
    if osp.isdir(path):
        name = osp.join(path, 'model.onnx')
        return f'{path} is a folder; OUT is the .onnx file to write, e.g. {name}'
    if osp.lexists(path) and not overwrite:
        return f'{path} exists; pass --overwrite to replace it'
    return ''


def dynamic_hw(net: nn.Module) -> Optional[bool]:
    """The arch's ``ONNX_DYNAMIC_HW`` class attribute (None when it declares none)."""
    value = getattr(type(net), 'ONNX_DYNAMIC_HW', None)
    return None if value is None else bool(value)


def _set_metadata(model: bytes, values: dict) -> bytes:
    """``model`` with ``values`` (keys of :data:`METADATA_KEYS`) in its metadata."""
    import onnx

    proto = onnx.load_from_string(model)
    keep = [p for p in proto.metadata_props if p.key not in METADATA_KEYS.values()]
    del proto.metadata_props[:]
    proto.metadata_props.extend(keep)
    for key, value in values.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_KEYS[key], str(value)
    return proto.SerializeToString()


def _check_inputs(net: nn.Module, size, dynamic: bool, recurrent: bool):
    """The check inputs: the export example first, then a second input (or more).

    A step graph is checked on two consecutive steps, from the zero state and
    then from the state PyTorch carried out of the first, and with
    ``dynamic`` on a batch of 2 at another size from a random state.
    """
    h, w = size
    first = example_input(net, size)
    if dynamic:
        second = example_input(net, (h + 8, w + 16), batch=2, seed=1)
    else:
        second = example_input(net, size, seed=1)
    if not recurrent:
        return [first, second]
    state = initial_state(net, first)
    with torch.no_grad():
        _, carried = net(first, state, return_state=True)
    cases = [(first, *state), (example_input(net, size, seed=2), *carried)]
    if dynamic:
        generator = torch.Generator().manual_seed(3)
        random = tuple(
            torch.rand(s.shape, generator=generator) * 2 - 1 for s in initial_state(net, second)
        )
        cases.append((second, *random))
    return cases


def export_onnx(
    net: nn.Module,
    path: str,
    size: Sequence[int] = (32, 32),
    opset: int = 17,
    dynamic: bool = False,
    overwrite: bool = False,
    name: Optional[str] = None,
    precision: str = 'fp32',
    simplify: bool = True,
    recurrent: bool = False,
) -> ExportResult:
    """Export ``net`` to ``path`` and check it with onnxruntime on two inputs.

    The first input has the export size; the second is a batch of 2 at
    ``(h + 8, w + 16)`` when ``dynamic``, else another random input of the
    export size (a step graph: two consecutive steps, and the other size
    too when ``dynamic``). The file is written only when every check agreed
    with PyTorch: the float32 graph (after onnxslim when ``simplify``)
    within :data:`TOLERANCE`, and for ``precision='fp16'`` the float16 graph
    within :data:`FP16_TOLERANCE`.

    Args:
        net (nn.Module): The network (put in eval mode, moved to CPU).
        path (str): The ``.onnx`` file to write.
        size (Sequence[int]): LR ``(h, w)`` of the export. Default: 32x32.
        opset (int): ONNX opset (>= :data:`MIN_OPSET`). Default: 17.
        dynamic (bool): Dynamic batch, height and width. Default: False.
        overwrite (bool): Replace an existing ``path``. Default: False.
        name (str, optional): The arch, for messages (default: class name).
        precision (str): ``'fp32'`` or ``'fp16'`` (:data:`PRECISIONS`).
            Default: ``'fp32'``.
        simplify (bool): Simplify the graph with onnxslim. Default: True.
        recurrent (bool): Export a recurrent arch's step graph, the state as
            inputs and outputs (:mod:`basicattn.deploy.onnx_step`).
            Default: False.

    Returns:
        ExportResult: What was written and the differences measured.

    Raises:
        UserError: ``path`` exists, onnx (or onnxslim) is missing, a bad
            opset, size or precision, ``dynamic`` for an arch whose
            ``ONNX_DYNAMIC_HW`` is False, ``recurrent`` for an arch without
            a state, an arch that cannot be exported (with the exporter's
            reason), or a check that failed.
    """
    name = name or type(net).__name__
    problem = output_problem(path, overwrite)
    if problem:
        raise UserError(problem)
    if opset < MIN_OPSET:
        raise UserError(
            f'--opset {opset}: at least {MIN_OPSET} is needed (ONNX GridSample, used by '
            'the deformable convolutions)'
        )
    if opset > max_opset():
        raise UserError(f'--opset {opset}: this torch exports opsets {MIN_OPSET} to {max_opset()}')
    if len(size) != 2 or min(size) < 1:
        raise UserError(f'--input-size {size}: give two positive numbers H W')
    if precision not in PRECISIONS:
        raise UserError(f'--precision {precision}: choose one of {PRECISIONS}')
    if dynamic and dynamic_hw(net) is False:
        reason = getattr(type(net), 'ONNX_DYNAMIC_HW_REASON', 'its graph fixes the input size')
        raise UserError(
            f'{name} does not export with --dynamic ({reason}); export a fixed size '
            'without --dynamic'
        )
    require_onnx()
    if simplify:
        require_onnxslim()
    net = net.cpu().eval()
    if recurrent and not has_state(net):
        raise UserError(f'{name} has no recurrent state; export it without the state')
    cases = _check_inputs(net, size, dynamic, recurrent)
    if recurrent:
        module, names = (
            RecurrentStep(net),
            ((INPUT_NAME, *STATE_INPUTS), (OUTPUT_NAME, *STATE_OUTPUTS)),
        )
    else:
        module, names = net, ((INPUT_NAME,), (OUTPUT_NAME,))
    model = _trace(module, cases[0], opset, dynamic, name, *names)
    if simplify:
        model = simplify_graph(model, name)
    lq = cases[0][0] if recurrent else cases[0]
    with torch.no_grad():
        scale = net(lq).shape[-1] // lq.shape[-1]
    graph = 'step' if recurrent else ('window' if lq.dim() == 5 else 'image')
    meta = dict(arch=name, graph=graph, scale=scale, precision=precision)
    if lq.dim() == 5:
        meta['num_frames'] = lq.shape[1]
    model = _set_metadata(model, dict(meta, precision='fp32'))
    if dynamic:
        hint = (
            f': {name} does not export with --dynamic (its forward turns input sizes '
            'into constants); export a fixed size without --dynamic'
        )
    else:
        hint = ''
    hints = ('', hint, hint)
    diffs = check_onnx(model, module, cases, name, hints=hints)
    diffs16 = []
    if precision == 'fp16':
        model = _set_metadata(to_float16(model, name), meta)
        diffs16 = check_onnx(
            model, module, cases, name, hints, tolerance=FP16_TOLERANCE, label='fp16 graph'
        )

    atomic_write_bytes(model, path)
    return ExportResult(
        path=path,
        opset=opset,
        dynamic=dynamic,
        shapes=[tuple((c[0] if isinstance(c, tuple) else c).shape) for c in cases],
        max_abs_diffs=diffs,
        size_bytes=len(model),
        precision=precision,
        fp16_max_abs_diffs=diffs16,
        simplified=simplify,
        graph=graph,
        scale=scale,
    )
