"""Run an exported ONNX file with onnxruntime, frame after frame.

A file written by :func:`basicattn.deploy.onnx_export.export_onnx` is one of
three kinds of graph (its metadata says which, :data:`~.onnx_export.METADATA_KEYS`;
files without it are told apart by their inputs):

* ``image``: ``lq (N, 3, h, w) -> sr``, every frame on its own;
* ``window``: ``lq (N, T, 3, h, w) -> sr``, the centre frame of a window of
  ``T`` frames (a sliding window over the clip);
* ``step``: ``(lq, state_h, state_c) -> (sr, state_h_out, state_c_out)``, a
  recurrent arch's step (DASAA's ConvLSTM): the state each step returns is
  what the next step takes, zeros before the first frame of a clip.

:func:`load_onnx_network` wraps a file as a module with the interface of the
PyTorch archs (``num_frames`` for video graphs; ``forward(x, state,
return_state)`` for step graphs), so ``tools/infer.py --backend onnxruntime``
runs it with the same frame loop, windows and output checks as a PyTorch
network. :class:`OnnxStream` is the loop on its own: feed it the frames of a
clip in order and it yields the SR frames, building the windows and carrying
the state.

Inputs and outputs are float32 whatever the file's precision (an fp16 export
keeps float32 inputs and outputs); a graph whose inputs are float16 is fed
float16.
"""

from typing import Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from basicattn.data.frame_io import sliding_windows
from basicattn.errors import CheckpointError, UserError

from .onnx_export import INPUT_NAME, METADATA_KEYS, require_onnx
from .onnx_step import STATE_INPUTS

__all__ = ['OnnxNetwork', 'OnnxRecurrentNetwork', 'OnnxStream', 'load_onnx_network', 'providers']

GRAPH_KINDS = ('image', 'window', 'step')


def providers(device: str) -> List:
    """onnxruntime execution providers for a torch-style ``device`` string.

    Raises:
        UserError: CUDA asked for but this onnxruntime has no CUDA provider.
    """
    _, ort = require_onnx()
    dev = torch.device(device)
    if dev.type == 'cpu':
        return ['CPUExecutionProvider']
    if dev.type == 'cuda' and 'CUDAExecutionProvider' in ort.get_available_providers():
        return [('CUDAExecutionProvider', {'device_id': dev.index or 0}), 'CPUExecutionProvider']
    raise UserError(
        f'--device {device}: this onnxruntime runs on {ort.get_available_providers()}; '
        'install onnxruntime-gpu for CUDA, or use --device cpu'
    )


def _numpy_dtype(onnx_type: str):
    return np.float16 if onnx_type == 'tensor(float16)' else np.float32


class OnnxNetwork(nn.Module):
    """An exported ``image`` or ``window`` graph as a module: ``forward(lq) -> sr``.

    Args:
        path (str): The ``.onnx`` file.
        device (str): ``cpu`` or ``cuda[:i]`` (onnxruntime's CUDA provider).
            Default: ``'cpu'``.
        session: An onnxruntime ``InferenceSession`` of ``path`` already made
            (default: one is made here).

    Attributes:
        arch (str): The arch the file records (``'ONNX'`` if none).
        graph (str): ``'image'``, ``'window'`` or ``'step'``.
        scale (int | None): Output / input size, from the file.
        num_frames (int): Frames per window (video graphs only).
    """

    def __init__(self, path: str, device: str = 'cpu', session=None):
        super().__init__()
        self.path = path
        self.session = session if session is not None else _session(path, device)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.inputs = {i.name: i for i in self.session.get_inputs()}
        if INPUT_NAME not in self.inputs:
            raise UserError(
                f'{path}: the graph has no input named {INPUT_NAME!r} (inputs: '
                f'{sorted(self.inputs)}); export it with tools/export.py'
            )
        self.lq_shape = list(self.inputs[INPUT_NAME].shape)
        self.arch = meta.get(METADATA_KEYS['arch'], 'ONNX')
        self.graph = meta.get(METADATA_KEYS['graph']) or _graph_kind(self.inputs)
        scale = meta.get(METADATA_KEYS['scale'])
        self.scale = int(scale) if scale else None
        if len(self.lq_shape) == 5:
            frames = self.lq_shape[1]
            self.num_frames = int(meta.get(METADATA_KEYS['num_frames'], frames))
        self.output_names = [o.name for o in self.session.get_outputs()]

    def _check_size(self, x: torch.Tensor) -> None:
        """A fixed-size graph refuses other sizes with a message naming both."""
        fixed = self.lq_shape[-2:]
        if all(isinstance(d, int) for d in fixed) and list(x.shape[-2:]) != fixed:
            got = 'x'.join(str(d) for d in x.shape[-2:])
            raise UserError(
                f'{self.path} was exported for LR frames of {fixed[0]}x{fixed[1]} (a fixed '
                f'size); these are {got}: export with --dynamic, or with --input-size '
                f'{x.shape[-2]} {x.shape[-1]}'
            )

    def _feed(self, name: str, x: torch.Tensor) -> np.ndarray:
        dtype = _numpy_dtype(self.inputs[name].type)
        return x.detach().to('cpu', torch.float32).numpy().astype(dtype, copy=False)

    def _run(self, feeds: Dict[str, torch.Tensor], like: torch.Tensor) -> List[torch.Tensor]:
        self._check_size(feeds[INPUT_NAME])
        arrays = {name: self._feed(name, x) for name, x in feeds.items()}
        try:
            outs = self.session.run(None, arrays)
        except Exception as err:  # noqa: BLE001  (onnxruntime raises its own classes)
            text = str(err).strip()
            reason = text.splitlines()[0][:300] if text else type(err).__name__
            shape = 'x'.join(str(d) for d in feeds[INPUT_NAME].shape)
            raise UserError(f'{self.path}: onnxruntime fails on input {shape} ({reason})') from None
        return [torch.from_numpy(np.asarray(o, dtype=np.float32)).to(like.device) for o in outs]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``sr`` of ``x`` (``(N, 3, h, w)`` or ``(N, T, 3, h, w)``, float in [0, 1])."""
        return self._run({INPUT_NAME: x}, x)[0]


class OnnxRecurrentNetwork(OnnxNetwork):
    """An exported ``step`` graph as a module with DASAA's recurrent interface.

    ``forward(x)`` is one step from the zero state; ``forward(x, state,
    return_state=True)`` returns ``(sr, state')`` to pass to the next frame,
    as ``DASAA.forward`` (``tools/infer.py --mode sequence``).
    """

    def zero_state(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """The state before a clip's first frame, for the input ``x``.

        Raises:
            UserError: The file records no scale and its state has no fixed size.
        """
        spec = self.inputs[STATE_INPUTS[0]].shape
        channels = spec[1]
        if self.scale is not None:
            size = [self.scale * d for d in x.shape[-2:]]
        elif all(isinstance(d, int) for d in spec[-2:]):
            size = list(spec[-2:])
        else:
            raise UserError(
                f'{self.path}: the file records no scale, so the size of its state is not '
                'known; export it again with tools/export.py'
            )
        zeros = torch.zeros(x.shape[0], channels, *size, device=x.device)
        return tuple(zeros for _ in STATE_INPUTS)

    def forward(
        self,
        x: torch.Tensor,
        state: Optional[Tuple[torch.Tensor, ...]] = None,
        return_state: bool = False,
    ):
        """One step: ``sr`` (and the new state when ``return_state``)."""
        if state is None:
            state = self.zero_state(x)
        feeds = {INPUT_NAME: x, **dict(zip(STATE_INPUTS, state))}
        out, *new_state = self._run(feeds, x)
        return (out, tuple(new_state)) if return_state else out


def _graph_kind(inputs: Dict) -> str:
    """``image``, ``window`` or ``step`` from the inputs of a file without metadata."""
    if all(name in inputs for name in STATE_INPUTS):
        return 'step'
    return 'window' if len(inputs[INPUT_NAME].shape) == 5 else 'image'


def _session(path: str, device: str):
    _, ort = require_onnx()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(path, options, providers=providers(device))
    except UserError:
        raise
    except Exception as err:  # noqa: BLE001  (onnxruntime raises its own classes)
        text = str(err).strip()
        reason = text.splitlines()[0][:300] if text else type(err).__name__
        raise CheckpointError(
            f'{path}: onnxruntime cannot load it ({reason}); give an .onnx file written by '
            'tools/export.py'
        ) from None


def load_onnx_network(path: str, device: str = 'cpu') -> Tuple[OnnxNetwork, dict]:
    """The file ``path`` as a network and its arch config (``{'type': arch}``).

    A step graph becomes an :class:`OnnxRecurrentNetwork`, anything else an
    :class:`OnnxNetwork`.

    Raises:
        UserError: onnxruntime is missing, ``path`` does not exist or is no
            ONNX file onnxruntime can load, or the device has no provider.
    """
    import os.path as osp

    if not osp.isfile(path):
        raise UserError(f'--checkpoint {path} does not exist; give the .onnx file to run')
    session = _session(path, device)
    net = OnnxNetwork(path, device, session=session)
    if net.graph == 'step':
        net = OnnxRecurrentNetwork(path, device, session=session)
    return net.eval(), {'type': net.arch}


class OnnxStream:
    """Super-resolve a clip frame by frame with an exported file.

    Video graphs see the window of ``num_frames`` frames around each frame
    (mirrored at the ends, ``padding``, as ``tools/infer.py``); a step graph
    gets the state the previous frame returned, zeros before the first.

    Args:
        path (str): The ``.onnx`` file.
        device (str): ``cpu`` or ``cuda[:i]``. Default: ``'cpu'``.
        padding (str): Border policy of the windows. Default: ``'reflection'``.

    Example::

        stream = OnnxStream('dasaa_step.onnx')
        for sr in stream.run(frames):  # frames: (3, h, w) tensors in [0, 1], in order
            ...
    """

    def __init__(self, path: str, device: str = 'cpu', padding: str = 'reflection'):
        self.net, _ = load_onnx_network(path, device)
        self.padding = padding
        self.state = None

    def reset(self) -> None:
        """Forget the state: the next frame starts a clip."""
        self.state = None

    def __call__(self, lq: torch.Tensor) -> torch.Tensor:
        """One output frame from one input (a window for video graphs), carrying the state."""
        if isinstance(self.net, OnnxRecurrentNetwork):
            out, self.state = self.net(lq, self.state, return_state=True)
            return out
        return self.net(lq)

    def run(self, frames: Iterable[torch.Tensor]) -> Iterator[torch.Tensor]:
        """The SR frames ``(3, H, W)`` of ``frames`` ``(3, h, w)``, in order, from a new clip."""
        self.reset()
        num_frames = getattr(self.net, 'num_frames', None)
        if num_frames:
            for _, window in sliding_windows(iter(frames), num_frames, self.padding):
                yield self(torch.stack(window)[None])[0]
        else:
            for frame in frames:
                yield self(frame[None])[0]


def network_from_onnx_arguments(args) -> Tuple[OnnxNetwork, dict]:
    """``tools/infer.py --backend onnxruntime``: the network is the file ``--checkpoint``.

    Args:
        args: The parsed command line (``checkpoint``, ``opt``, ``arch``,
            ``arch_args``, ``scale``, ``compile``, ``device``).

    Raises:
        UserError: No ``--checkpoint``, or a flag that only a PyTorch network
            takes (``-opt``, ``--arch``, ``--arch-args``, ``--scale``, ``--compile``).
    """
    if not args.checkpoint:
        raise UserError(
            '--backend onnxruntime: give the exported graph as --checkpoint X.onnx '
            '(written by tools/export.py)'
        )
    given = [
        flag
        for flag, value in (
            ('-opt', args.opt),
            ('--arch', args.arch),
            ('--arch-args', args.arch_args not in (None, '{}')),
            ('--scale', args.scale),
            ('--compile', getattr(args, 'compile', False)),
        )
        if value
    ]
    if given:
        raise UserError(
            f'--backend onnxruntime: {" ".join(given)} only apply to a PyTorch network; '
            f'{args.checkpoint} holds the whole graph (export another one with tools/export.py)'
        )
    return load_onnx_network(args.checkpoint, args.device)
