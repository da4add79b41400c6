"""Find NaN and inf in tensors: which tensor, what kind, how many.

One fused reduction per call over any number of tensors (the 2-norm of each,
NaN or inf when the tensor holds one), an exact look only at the tensors whose
norm is not finite (a 2-norm also overflows for large finite values), and the
details only for the first tensor that is not finite. Used by the training
guard (:mod:`basicattn.engine.nan_guard`), the checkpoint loader
(:func:`basicattn.checkpoint.state.check_finite_weights`), the
evaluation loops and the tools, so every place says it the same way.
"""

from typing import Iterable, List, Optional, Tuple

import torch

__all__ = ['NonFinite', 'describe_values', 'first_non_finite', 'is_finite']

#: ``(name, description)`` of a tensor that holds NaN or inf.
NonFinite = Tuple[str, str]


def _norms(tensors: List[torch.Tensor]) -> torch.Tensor:
    """Each tensor's 2-norm, as one vector (NaN/inf when it holds one, or overflows)."""
    foreach_norm = getattr(torch, '_foreach_norm', None)
    if foreach_norm is not None:
        try:
            return torch.stack(foreach_norm(tensors)).float()
        except (RuntimeError, TypeError, NotImplementedError):  # an old torch, odd dtypes
            pass
    return torch.stack([torch.linalg.vector_norm(t).float() for t in tensors])


def describe_values(tensor: torch.Tensor) -> str:
    """``'nan'``, ``'inf'`` or ``'nan and inf'`` plus how many of how many values.

    Returns:
        str: e.g. ``'nan (12 of 4096 values)'``; ``'finite'`` for a finite tensor.
    """
    values = tensor.detach()
    nan = int(torch.isnan(values).sum())
    inf = int(torch.isinf(values).sum())
    if not nan and not inf:
        return 'finite'
    kind = ' and '.join(k for k, n in (('nan', nan), ('inf', inf)) if n)
    if values.numel() == 1:
        return kind
    return f'{kind} ({nan + inf} of {values.numel()} values)'


def first_non_finite(named: Iterable[Tuple[str, torch.Tensor]]) -> Optional[NonFinite]:
    """The first floating-point tensor that holds NaN or inf, and what it holds.

    Args:
        named: ``(name, tensor)`` pairs (``state_dict().items()``,
            ``named_parameters()``); other dtypes and ``None`` are skipped.

    Returns:
        tuple[str, str] | None: ``(name, describe_values(tensor))``, or None
        when every tensor is finite.
    """
    pairs = [
        (name, t.detach())
        for name, t in named
        if isinstance(t, torch.Tensor) and (t.is_floating_point() or t.is_complex()) and t.numel()
    ]
    if not pairs:
        return None
    by_device = {}
    for index, (_, t) in enumerate(pairs):
        by_device.setdefault((t.device, t.dtype), []).append(index)
    suspects = []
    for indices in by_device.values():
        norms = _norms([pairs[i][1] for i in indices])  # one pass, one sync per device
        suspects += [indices[j] for j in torch.nonzero(~torch.isfinite(norms)).flatten().tolist()]
    # a 2-norm also overflows for large finite values: look at the suspects exactly
    bad = [i for i in suspects if not bool(torch.isfinite(pairs[i][1]).all())]
    if not bad:
        return None
    name, tensor = pairs[min(bad)]
    return name, describe_values(tensor)


def is_finite(tensor: torch.Tensor) -> bool:
    """True when a tensor holds no NaN and no inf (any dtype; integers always are)."""
    if not (tensor.is_floating_point() or tensor.is_complex()):
        return True
    return bool(torch.isfinite(tensor.detach()).all())
