"""Parameter and multiply-add counting on top of mmengine's FlopAnalyzer.

:func:`count_flops` traces one forward pass with
:class:`mmengine.analysis.FlopAnalyzer` (a ``torch.jit`` trace on a real
input; the shape-only ``meta`` device does not trace convolutions in this
torch) and sorts every traced operator into one of three groups:

* **MACs** (the headline, the convention of SR papers' "Mult-Adds" /
  "MultiAdds" columns): multiply-accumulates of the linear-algebra ops,
  i.e. convolutions (``K*K*Cin/groups`` per output element, bias not
  counted), linear layers, ``matmul`` / ``mm`` / ``bmm`` / ``baddbmm`` /
  ``einsum`` and the two products of ``scaled_dot_product_attention``.
  These are the ops the A2N paper counted: A2N's convs alone give its
  Table 5 numbers (247.5G / 117.5G / 72.4G at 720p output).
* **other ops**, reported separately and never added to the MACs:
  element-wise ops (activations, gates, residual sums, softmax, ... : one
  per output element), reductions and pooling (one per input element),
  bilinear / bicubic interpolation and ``grid_sample`` (4 / 16 / 4
  multiply-adds per output element), and pure data movement counted as 0
  but handled (nearest upsampling, ``pixel_shuffle``).
* **unhandled**: any op that is neither counted nor known to be free.
  mmengine silently drops some ops and only warns about others; here every
  such op is returned by name with its number of calls, so a missing
  handle is visible instead of silently lowering the total.

For 5-D (N, T, C, H, W) inputs the totals are also divided by the number
of frames the forward *outputs* (T for a T -> T model, 1 for a model that
restores only the centre frame): the cost per restored frame.
"""

import math
from collections import Counter
from typing import Callable, Dict, Iterable, List, Optional, Sequence

import torch
import torch.nn as nn

__all__ = ['count_flops', 'einsum_macs', 'format_count', 'MAC_OPS']

#: Simplified op names whose counts form the headline MACs.
MAC_OPS = frozenset(
    {
        'conv',
        'linear',
        'addmm',
        'mm',
        'matmul',
        'bmm',
        'baddbmm',
        'einsum',
        'scaled_dot_product_attention',
    }
)


def _shape(value) -> List[int]:
    from mmengine.analysis.jit_handles import get_shape

    shape = get_shape(value)
    return list(shape) if shape is not None else []


def _numel(value) -> int:
    shape = _shape(value)
    return math.prod(shape) if shape else 1


def _per_output(factor: float) -> Callable:
    def handle(inputs, outputs):
        return int(factor * _numel(outputs[0]))

    return handle


def _per_input(factor: float) -> Callable:
    def handle(inputs, outputs):
        return int(factor * _numel(inputs[0]))

    return handle


def _free(inputs, outputs):
    return 0


def _baddbmm(inputs, outputs):
    # baddbmm(input, batch1 (b, n, m), batch2 (b, m, p))
    b, n, m = _shape(inputs[1])
    p = _shape(inputs[2])[-1]
    return b * n * m * p


def _sdpa(inputs, outputs):
    """Q (..., L, E), K (..., S, E), V (..., S, Ev): QK^T and AV."""
    q, k, v = (_shape(x) for x in inputs[:3])
    batch = math.prod(q[:-2])
    length, emb, src, emb_v = q[-2], q[-1], k[-2], v[-1]
    return Counter({'scaled_dot_product_attention': batch * length * src * (emb + emb_v)})


def einsum_macs(equation: str, shapes: Sequence[Sequence[int]]) -> int:
    """Exact multiply-adds of ``torch.einsum(equation, *operands)``.

    Contractions follow numpy's optimal pairwise path; each pairwise step
    costs the product of the sizes of all indices it touches. (mmengine's
    own handle parses numpy's printed, rounded FLOP estimate.)
    """
    import numpy as np
    from numpy.lib.stride_tricks import as_strided

    equation = equation.replace(' ', '')
    lhs, _, rhs = equation.partition('->')
    terms = lhs.split(',')
    if '...' in equation:
        free = [c for c in 'ABCDEFGHIJKLMNOPQRSTUVWXYZ' if c not in equation]
        width = max(len(s) - (len(t) - 3) for t, s in zip(terms, shapes) if '...' in t)
        ell = ''.join(free[:width])
        terms = [
            t.replace('...', ell[width - (len(s) - (len(t) - 3)) :]) for t, s in zip(terms, shapes)
        ]
        rhs = rhs.replace('...', ell) if '->' in equation else None
    if not rhs and '->' not in equation:
        letters = ''.join(terms)
        rhs = ''.join(sorted(c for c in set(letters) if letters.count(c) == 1))
    sizes: Dict[str, int] = {}
    for term, shape in zip(terms, shapes):
        for letter, size in zip(term, shape):
            sizes[letter] = max(sizes.get(letter, 1), int(size))
    if len(terms) < 2:
        return 0
    dummies = [
        as_strided(np.zeros(1), shape=tuple(shape), strides=(0,) * len(shape)) for shape in shapes
    ]
    path = np.einsum_path(','.join(terms) + '->' + rhs, *dummies, optimize='optimal')[0][1:]
    live = [set(t) for t in terms]
    total = 0
    for step in path:
        picked = [live[i] for i in step]
        live = [t for i, t in enumerate(live) if i not in step]
        touched = set().union(*picked)
        total += math.prod(sizes[c] for c in touched)
        needed = set(rhs).union(*live) if live else set(rhs)
        live.append(touched & needed)
    return total


def _einsum(inputs, outputs):
    equation = inputs[0].toIValue()
    shapes = [_shape(v) for v in inputs[1].node().inputs()]
    return einsum_macs(equation, shapes)


def _generic_matmul(inputs, outputs):
    """Any-rank matmul: prod(batch of output) * M * K * N."""
    a, b = _shape(inputs[0]), _shape(inputs[1])
    a = [1, a[0]] if len(a) == 1 else a
    b = [b[0], 1] if len(b) == 1 else b
    out = _shape(outputs[0])
    batch = math.prod(out[:-2]) if len(out) > 2 else 1
    return batch * a[-2] * a[-1] * b[-1]


_ELEMENTWISE = (
    'add',
    'add_',
    'sub',
    'sub_',
    'rsub',
    'mul',
    'mul_',
    'div',
    'div_',
    'neg',
    'abs',
    'pow',
    'sqrt',
    'rsqrt',
    'exp',
    'exp_',
    'log',
    'log_',
    'reciprocal',
    'sigmoid',
    'sigmoid_',
    'tanh',
    'tanh_',
    'relu',
    'relu_',
    'relu6',
    'leaky_relu',
    'leaky_relu_',
    'elu',
    'elu_',
    'gelu',
    'silu',
    'silu_',
    'hardtanh',
    'hardtanh_',
    'hardswish',
    'hardsigmoid',
    'prelu',
    'mish',
    'softplus',
    'clamp',
    'clamp_',
    'clamp_min',
    'clamp_max',
    'softmax',
    'log_softmax',
    '_softmax',
    'where',
    'lerp',
    'addcmul',
    'addcdiv',
    'square',
    'sin',
    'cos',
    'atan2',
    'sign',
    'round',
    'maximum',
    'minimum',
    'scatter_add',
    'scatter_add_',
    'index_add',
    'index_add_',
)
_REDUCTIONS = (
    'mean',
    'sum',
    'prod',
    'amax',
    'amin',
    'std',
    'var',
    'norm',
    'linalg_vector_norm',
    'frobenius_norm',
    'logsumexp',
    'cumsum',
    'adaptive_avg_pool1d',
    'adaptive_avg_pool2d',
    'adaptive_avg_pool3d',
    'adaptive_max_pool2d',
    'avg_pool1d',
    'avg_pool2d',
    'avg_pool3d',
    'max_pool1d',
    'max_pool2d',
    'max_pool3d',
    'max_pool2d_with_indices',
)
_FREE = (
    'upsample_nearest1d',
    'upsample_nearest2d',
    'upsample_nearest3d',
    '_upsample_nearest_exact1d',
    '_upsample_nearest_exact2d',
    '_upsample_nearest_exact3d',
    'pixel_shuffle',
    'pixel_unshuffle',
    'channel_shuffle',
    'im2col',
    'col2im',
    'unfold',
    'fold',
    'flip',
    'repeat',
    'repeat_interleave',
    'tile',
    'pad',
    'reflection_pad2d',
    'replication_pad2d',
    'feature_dropout',
    'alias',
    'clone',
    'linspace',
    'meshgrid',
    'rand',
    'randn',
    'expand_as',
    'view_as',
    'movedim',
    'unflatten',
    'lift_fresh',
    'argmax',
    'argmin',
    'lt',
    'le',
    'ne',
    'fill_',
    'zero_',
    'triu',
    'tril',
)


def _extra_handles() -> Dict[str, Callable]:
    handles: Dict[str, Callable] = {}
    for name in _ELEMENTWISE:
        handles['aten::' + name] = _per_output(1)
    for name in _REDUCTIONS:
        handles['aten::' + name] = _per_input(1)
    for name in _FREE:
        handles['aten::' + name] = _free
    handles.update(
        {
            'aten::upsample_linear1d': _per_output(2),
            'aten::upsample_bilinear2d': _per_output(4),
            'aten::_upsample_bilinear2d_aa': _per_output(4),
            'aten::upsample_bicubic2d': _per_output(16),
            'aten::_upsample_bicubic2d_aa': _per_output(16),
            'aten::upsample_trilinear3d': _per_output(8),
            'aten::grid_sampler': _per_output(4),
            'aten::grid_sampler_2d': _per_output(4),
            'aten::baddbmm': _baddbmm,
            'aten::matmul': _generic_matmul,
            'aten::einsum': _einsum,
            'aten::scaled_dot_product_attention': _sdpa,
        }
    )
    return handles


def format_count(value: float, unit: str = '') -> str:
    """``247466188800 -> '247.47 G'`` (K, M, G, T)."""
    for factor, prefix in ((1e12, 'T'), (1e9, 'G'), (1e6, 'M'), (1e3, 'K')):
        if abs(value) >= factor:
            return f'{value / factor:.2f} {prefix}{unit}'
    return f'{value:g} {unit}'.rstrip()


def _first_tensor(obj):
    if isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, (list, tuple)):
        for item in obj:
            found = _first_tensor(item)
            if found is not None:
                return found
    if isinstance(obj, dict):
        return _first_tensor(list(obj.values()))
    return None


#: The largest input side and window traced (a real forward pass runs: time and memory).
MAX_SIDE = 4096
MAX_FRAMES = 64


def is_video_arch(model: nn.Module) -> bool:
    """True for archs that take frame windows ``(N, T, C, H, W)``.

    The arch states it (``TAKES_FRAMES``, see :mod:`basicattn.archs.facts`;
    read as an attribute here, as this module sits below the archs).
    """
    return bool(getattr(model, 'TAKES_FRAMES', False))


def input_shape_problem(
    model: nn.Module, input_shape: Sequence[int], name: str = '', num_in_ch: Optional[int] = None
) -> str:
    """What is wrong with an input shape for ``model`` ('' when nothing is).

    Checked before tracing: the rank (``C H W`` for image archs, ``T C H W``
    for video archs), sizes >= 1, ``C`` = the arch's ``num_in_ch`` and ``T`` =
    its ``num_frames`` where it has them, and at most :data:`MAX_SIDE` pixels
    a side and :data:`MAX_FRAMES` frames.

    Args:
        model (nn.Module): The network.
        input_shape (Sequence[int]): Without the batch dimension.
        name (str): The arch, for the message (default: the class name).
        num_in_ch (int, optional): The input channels of the arch config
            (default: the model's ``num_in_ch`` attribute, if any).
    """
    name = name or type(model).__name__
    shape = [int(s) for s in input_shape]
    video = is_video_arch(model)
    if len(shape) not in (3, 4):
        return f'give C H W (image archs) or T C H W (video archs), got {len(shape)} numbers'
    if video and len(shape) == 3:
        return f'{name} is a video arch: give T C H W (frames, channels, height, width)'
    if not video and len(shape) == 4:
        return f'{name} is an image arch: give C H W (channels, height, width)'
    if min(shape) < 1:
        return 'every size must be at least 1'
    channels, height, width = shape[-3:]
    frames = getattr(model, 'num_frames', None)
    if len(shape) == 4 and isinstance(frames, int) and shape[0] != frames:
        return f'{name} takes windows of num_frames={frames} frames: give T = {frames}'
    in_ch = num_in_ch if num_in_ch is not None else getattr(model, 'num_in_ch', None)
    if isinstance(in_ch, int) and channels != in_ch:
        return f'{name} takes num_in_ch={in_ch} channels: give C = {in_ch}'
    if max(height, width) > MAX_SIDE or (len(shape) == 4 and shape[0] > MAX_FRAMES):
        return (
            f'at most {MAX_SIDE} pixels a side and {MAX_FRAMES} frames (the count traces a '
            'real forward pass); MACs grow with H x W, so count a smaller input and scale'
        )
    return ''


def count_flops(
    model: nn.Module, input_shape: Sequence[int], batch_size: int = 1, device=None, seed: int = 0
) -> dict:
    """Count parameters and multiply-adds of one forward pass.

    Args:
        model (nn.Module): The network (any registered arch).
        input_shape (Sequence[int]): ``(C, H, W)`` for images or
            ``(T, C, H, W)`` for videos, without the batch dimension.
        batch_size (int): Batch of the traced input; counts are reported
            for the whole batch. Default: 1.
        device (str | torch.device, optional): Where to trace. Default: the
            device of the model's first parameter (CPU if none).
        seed (int): Seed of the random input. Default: 0.

    Returns:
        dict: With keys

        - ``params`` (int): number of parameters (shared ones once).
        - ``macs`` (int): headline multiply-adds (see :data:`MAC_OPS`).
        - ``macs_by_op`` (dict): the MACs per op.
        - ``other_ops`` (dict): counts of the other handled ops (not in
          ``macs``), per op.
        - ``other_total`` (int): their sum.
        - ``unhandled`` (dict): op name -> number of calls, for ops no handle
          counts (empty when everything is accounted for).
        - ``input_shape`` / ``output_shape`` (list): traced shapes.
        - ``frames`` (int): restored frames per forward (1 for images).
        - ``macs_per_frame`` (float): ``macs / frames``.
    """
    from mmengine.analysis import FlopAnalyzer

    input_shape = tuple(int(s) for s in input_shape)
    if len(input_shape) not in (3, 4):
        raise ValueError(
            f'count_flops: input_shape must be (C, H, W) or (T, C, H, W) '
            f'without the batch dimension, got {input_shape}'
        )
    if device is None:
        param = next(iter(model.parameters()), None)
        device = param.device if param is not None else 'cpu'
    gen = torch.Generator().manual_seed(seed)
    inputs = torch.rand((batch_size,) + input_shape, generator=gen)
    inputs = inputs.to(device)

    captured = {}

    def grab_output(module, args, output):
        captured['output'] = _first_tensor(output)

    was_training = model.training
    model.eval()
    hook = model.register_forward_hook(grab_output)
    try:
        analyzer = FlopAnalyzer(model, (inputs,))
        analyzer.set_op_handle(**_extra_handles())
        analyzer.unsupported_ops_warnings(False)
        analyzer.uncalled_modules_warnings(False)
        analyzer.tracer_warnings('none')
        with torch.no_grad():
            by_op = Counter(analyzer.by_operator())
            unhandled = Counter(analyzer.unsupported_ops())
    finally:
        hook.remove()
        model.train(was_training)

    macs_by_op = {k: int(v) for k, v in by_op.items() if k in MAC_OPS}
    other = {k: int(v) for k, v in by_op.items() if k not in MAC_OPS}
    # Ops handled as free still show up (with 0) so callers can see them.
    macs = sum(macs_by_op.values())
    output = captured.get('output')
    output_shape = list(output.shape) if output is not None else []
    if len(input_shape) == 4:
        frames = output_shape[1] if len(output_shape) == 5 else 1
    else:
        frames = 1
    params = sum(p.numel() for p in _unique(model.parameters()))
    return dict(
        params=int(params),
        macs=int(macs),
        macs_by_op=dict(sorted(macs_by_op.items())),
        other_ops=dict(sorted(other.items())),
        other_total=int(sum(other.values())),
        unhandled=dict(sorted(unhandled.items())),
        input_shape=list(inputs.shape),
        output_shape=output_shape,
        frames=int(frames),
        macs_per_frame=macs / frames,
    )


def _unique(params: Iterable[torch.Tensor]):
    seen = set()
    for p in params:
        if id(p) not in seen:
            seen.add(id(p))
            yield p
