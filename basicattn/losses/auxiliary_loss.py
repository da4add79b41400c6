"""Losses that a network computes itself, such as MANA's quantisation loss.

An arch that has such terms accepts ``forward(x, return_aux=True)`` and then
returns ``(output, {name: scalar tensor})``. An :class:`AuxiliaryLoss` in the
option file's ``train.losses`` picks one of those terms by name and weights
it; the model asks the generator for its terms only when such a loss is
active, so plain archs need nothing.

    losses:
      pixel: {type: L1Loss}
      quant: {type: AuxiliaryLoss, term: quant}   # MANA's memory quantisation
"""

import torch
from torch import nn

from basicattn.registry import LOSSES


@LOSSES.register_module()
class AuxiliaryLoss(nn.Module):
    """Weight one auxiliary term returned by the generator.

    Args:
        term (str): Name of the term in the generator's aux dict.
        loss_weight (float): Multiplier. Default: 1.0.
    """

    reads_generator_aux = True

    def __init__(self, term: str, loss_weight: float = 1.0):
        super().__init__()
        if not isinstance(term, str) or not term:
            raise ValueError(f'AuxiliaryLoss: term must be a non-empty name, got {term!r}')
        self.term = term
        self.loss_weight = float(loss_weight)

    def forward(self, aux: dict) -> torch.Tensor:
        """Return ``loss_weight * aux[term]``.

        Args:
            aux (dict[str, Tensor]): The generator's auxiliary terms.

        Returns:
            Tensor: The weighted scalar.
        """
        if self.term not in aux:
            raise KeyError(
                f'AuxiliaryLoss: the generator returned no term '
                f'{self.term!r}; it returned {sorted(aux)}'
            )
        return self.loss_weight * aux[self.term]
