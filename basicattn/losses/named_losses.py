"""The named losses of a model (``train.losses`` of an option file).

``{'pixel': {'type': 'L1Loss'}, 'quant': {'type': 'AuxiliaryLoss', 'term': 'quant'}}``
becomes an ``nn.ModuleDict`` whose entries the model sums and logs as
``loss_<name>``.
"""

from typing import Mapping, Sequence, Union

from torch import nn

from basicattn.registry import LOSSES

__all__ = ['LossesArg', 'build_named_losses']

#: What a model's ``losses`` argument may be.
LossesArg = Union[Mapping[str, Union[dict, nn.Module]], Sequence[Union[dict, nn.Module]], None]


def build_named_losses(losses: LossesArg) -> nn.ModuleDict:
    """Build the losses of a model, each under its name.

    Args:
        losses: A dict ``{name: loss config or module}`` (logged as
            ``loss_<name>``), a list (named ``'0'``, ``'1'``, ...) or None
            (no losses).

    Returns:
        The losses, built with ``LOSSES.build``.

    Raises:
        TypeError: Not a dict, list or None; an entry neither a dict nor a module.
        ValueError: A name that is empty or has a dot; a config without ``type``.
    """
    if losses is None:
        return nn.ModuleDict()
    if isinstance(losses, (list, tuple)):
        losses = {str(i): cfg for i, cfg in enumerate(losses)}
    elif not isinstance(losses, dict):
        raise TypeError(
            'losses must be a dict of name -> loss config, a '
            f'list of configs or None, got '
            f'{type(losses).__name__}'
        )
    built = nn.ModuleDict()
    for name, cfg in losses.items():
        if not isinstance(name, str) or not name or '.' in name:
            raise ValueError(f'loss name {name!r} must be a non-empty string without dots')
        if isinstance(cfg, nn.Module):
            built[name] = cfg
        elif isinstance(cfg, dict):
            if 'type' not in cfg:
                raise ValueError(f"losses.{name} has no 'type' key: {dict(cfg)}")
            built[name] = LOSSES.build(cfg)
        else:
            raise TypeError(
                f'losses.{name} must be a config dict or an nn.Module, got {type(cfg).__name__}'
            )
    return built
