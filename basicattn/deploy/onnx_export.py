"""Export a network to ONNX and check the file against PyTorch with onnxruntime.

The exporter is PyTorch's TorchScript-based one (``torch.onnx.export(...,
dynamo=False)``): on torch 2.13 it exports every registered arch at a fixed
size, in about a second each, and needs only ``onnx`` and ``onnxruntime``.
The ``torch.export``-based exporter (``dynamo=True``, the default since torch
2.9) fails on Bicubic (its numpy weight matrices), MANA and DKSAN, and is
several times slower. The trace runs under ``torch.no_grad()``; the ops in
:mod:`basicattn.ops` then take their plain path (no custom autograd function,
no checkpointing, ``grid_sample`` as ONNX ``GridSample``, see
:func:`basicattn.ops._utils.exporting`).

A trace records the sizes that Python code computes from the input's shape
as constants. With ``dynamic=True`` the batch, height and width axes are
declared dynamic and the graph is then run at a second, different size; an
arch whose graph does not generalise fails that check with a message that
says so (export it at a fixed size instead). Nothing is written until the
check passed: the model is exported to memory, checked, then written to a
temporary file beside the target and renamed over it.

Inputs are RGB in [0, 1]: ``(N, 3, h, w)`` for image archs, ``(N, T, 3, h,
w)`` for video archs (``T`` = the arch's ``num_frames``). A recurrent arch
(DASAA) is exported as its per-window forward without the state
(``net(lq)``, what ``tools/infer.py --mode window`` runs).
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

__all__ = [
    'TOLERANCE',
    'ExportResult',
    'require_onnx',
    'example_input',
    'export_onnx',
    'check_onnx',
]

#: Largest accepted max abs difference between onnxruntime and PyTorch.
TOLERANCE = 1e-4

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
        shapes (list[tuple]): The input shapes checked.
        max_abs_diffs (list[float]): onnxruntime vs PyTorch, per shape.
        size_bytes (int): File size.
    """

    path: str
    opset: int
    dynamic: bool
    shapes: List[Tuple[int, ...]] = field(default_factory=list)
    max_abs_diffs: List[float] = field(default_factory=list)
    size_bytes: int = 0


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


def example_input(
    net: nn.Module, size: Sequence[int], batch: int = 1, seed: int = 0
) -> torch.Tensor:
    """A random input in [0, 1] of LR ``size = (h, w)`` in the layout ``net`` takes.

    Video archs (a ``num_frames`` attribute) get ``(batch, T, 3, h, w)``,
    image archs ``(batch, 3, h, w)``.
    """
    h, w = size
    frames = getattr(net, 'num_frames', None)
    shape = (batch, frames, 3, h, w) if frames else (batch, 3, h, w)
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=generator)


def _dynamic_axes(dims: int) -> dict:
    spatial = {0: 'batch', dims - 2: 'height', dims - 1: 'width'}
    return {INPUT_NAME: spatial, OUTPUT_NAME: {0: 'batch', 2: 'out_height', 3: 'out_width'}}


def _trace(net: nn.Module, example: torch.Tensor, opset: int, dynamic: bool, name: str) -> bytes:
    """The ONNX model of ``net(example)`` as bytes."""
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            # TracerWarnings (Python ints taken from shapes) and the legacy
            # exporter's deprecation notice: the size check below is what tells.
            warnings.simplefilter('ignore')
            torch.onnx.export(
                net,
                (example,),
                buffer,
                dynamo=False,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes=_dynamic_axes(example.dim()) if dynamic else None,
                do_constant_folding=True,
            )
    except (RuntimeError, torch.onnx.errors.OnnxExporterError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f'{name} cannot be exported to ONNX opset {opset}: {reason}') from None
    return buffer.getvalue()


def check_onnx(
    model: bytes,
    net: nn.Module,
    inputs: Sequence[torch.Tensor],
    name: str,
    hints: Sequence[str] = (),
) -> List[float]:
    """Run ``model`` with onnxruntime on each input (one session); compare with ``net``.

    Args:
        model (bytes): The serialised ONNX model.
        net (nn.Module): The network it was exported from (eval mode).
        inputs (Sequence[Tensor]): Inputs in [0, 1].
        name (str): The arch, for messages.
        hints (Sequence[str]): Per input, appended to the message when the
            graph fails on it (missing entries: nothing).

    Returns:
        list[float]: Max abs difference per input.

    Raises:
        UserError: The graph fails to run, gives another shape, or differs by
            more than :data:`TOLERANCE`.
    """
    _, ort = require_onnx()
    options = ort.SessionOptions()
    options.log_severity_level = 4  # failures are raised below, not logged as well
    session = ort.InferenceSession(model, options, providers=['CPUExecutionProvider'])
    diffs = []
    for i, x in enumerate(inputs):
        hint = hints[i] if i < len(hints) else ''
        shape = 'x'.join(str(s) for s in x.shape)
        with torch.no_grad():
            want = net(x)
        if not bool(torch.isfinite(want).all()):
            raise NonFiniteError(
                f'{name}: the PyTorch output holds {describe_values(want)} on input {shape}, '
                'so there is nothing to check the graph against; nothing was exported '
                '(check the weights)'
            )
        try:
            got = torch.from_numpy(session.run(None, {INPUT_NAME: x.numpy()})[0])
        except Exception as err:  # noqa: BLE001  (onnxruntime raises its own classes)
            reason = str(err).strip().splitlines()[0][:300]
            raise UserError(
                f'{name}: the exported ONNX graph fails on input {shape} ({reason}){hint}'
            ) from None
        if got.shape != want.shape:
            raise UserError(
                f'{name}: the exported ONNX graph gives {tuple(got.shape)} for input {shape}, '
                f'PyTorch {tuple(want.shape)}{hint}'
            )
        diff = (got - want).abs().max().item()
        if not diff <= TOLERANCE:
            raise UserError(
                f'{name}: onnxruntime and PyTorch differ by {diff:.3g} (> {TOLERANCE:g}) '
                f'on input {shape}{hint}'
            )
        diffs.append(diff)
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


def export_onnx(
    net: nn.Module,
    path: str,
    size: Sequence[int] = (32, 32),
    opset: int = 17,
    dynamic: bool = False,
    overwrite: bool = False,
    name: Optional[str] = None,
) -> ExportResult:
    """Export ``net`` to ``path`` and check it with onnxruntime on two inputs.

    The first input has the export size; the second is a batch of 2 at
    ``(h + 8, w + 16)`` when ``dynamic``, else another random input of the
    export size. The file is written only when both agree with PyTorch
    within :data:`TOLERANCE`.

    Args:
        net (nn.Module): The network (put in eval mode, moved to CPU).
        path (str): The ``.onnx`` file to write.
        size (Sequence[int]): LR ``(h, w)`` of the export. Default: 32x32.
        opset (int): ONNX opset (>= :data:`MIN_OPSET`). Default: 17.
        dynamic (bool): Dynamic batch, height and width. Default: False.
        overwrite (bool): Replace an existing ``path``. Default: False.
        name (str, optional): The arch, for messages (default: class name).

    Returns:
        ExportResult: What was written and the differences measured.

    Raises:
        UserError: ``path`` exists, onnx is missing, a bad opset or size, an
            arch that cannot be exported (with the exporter's reason), or a
            check that failed.
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
    require_onnx()
    net = net.cpu().eval()
    example = example_input(net, size)
    model = _trace(net, example, opset, dynamic, name)
    if dynamic:
        second = example_input(net, (size[0] + 8, size[1] + 16), batch=2, seed=1)
        hint = (
            f': {name} does not export with --dynamic (its forward turns input sizes '
            'into constants); export a fixed size without --dynamic'
        )
    else:
        second, hint = example_input(net, size, seed=1), ''
    inputs = [example, second]
    diffs = check_onnx(model, net, inputs, name, hints=('', hint))

    atomic_write_bytes(model, path)
    return ExportResult(
        path=path,
        opset=opset,
        dynamic=dynamic,
        shapes=[tuple(x.shape) for x in inputs],
        max_abs_diffs=diffs,
        size_bytes=len(model),
    )
