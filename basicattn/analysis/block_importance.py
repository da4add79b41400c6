"""Block importance of A2N: PSNR when one block's attention dropout is forced.

Beyond the A2N paper (which retrains networks with attention switched off,
Table 2), and needing no training: for trained weights, for each block
``i``, force its branch weights through the taps
(:func:`~basicattn.analysis.taps.replace_taps`):

* ``pi_att = 0, pi_na = 1``: the block's non-attention branch only;
* ``pi_att = 1, pi_na = 0``: the attention branch only;

every other block unchanged, and measure the PSNR on a test set (Y channel,
``scale`` pixels cropped at each border, as ``tools/test.py``). The change
from the unforced network is the block's importance for that branch.
"""

import math
from typing import Dict, List, Sequence

import numpy as np
import torch

from basicattn.errors import UserError
from basicattn.metrics.psnr_ssim import calculate_psnr
from basicattn.utils.img_util import tensor2img

from .taps import record_taps, replace_taps, tap_names

__all__ = ['FORCED', 'forceable_blocks', 'psnr_y', 'block_importance']

#: name -> (pi_att, pi_na) forced values.
FORCED = {'pi_att=0': (0.0, 1.0), 'pi_att=1': (1.0, 0.0)}


def forceable_blocks(net: torch.nn.Module) -> List[int]:
    """Blocks ``i`` with both ``blocks.{i}.pi_att`` and ``blocks.{i}.pi_na`` taps."""
    names = set(tap_names(net))
    blocks = []
    i = 0
    while f'blocks.{i}.pi_att' in names and f'blocks.{i}.pi_na' in names:
        blocks.append(i)
        i += 1
    if not blocks:
        raise UserError(
            f'{type(net).__name__} has no blocks.{{i}}.pi_att / pi_na taps: block importance '
            'needs an arch whose blocks mix an attention and a non-attention branch (A2N)'
        )
    return blocks


def psnr_y(sr: torch.Tensor, hr: np.ndarray, scale: int) -> float:
    """PSNR on Y of the network output ``sr`` (1, 3, H, W) against uint8 ``hr``, crop = scale."""

    return calculate_psnr(tensor2img(sr), hr, crop_border=scale, test_y_channel=True)


def _const(value: float):
    return lambda t: torch.full_like(t, value)


def block_importance(
    net: torch.nn.Module,
    pairs: Sequence[tuple],
    scale: int,
    blocks: Sequence[int],
    progress=None,
) -> Dict[str, object]:
    """PSNR of the unforced network and of every forced block.

    Args:
        net: The network (eval mode).
        pairs: ``(name, lr (1, 3, h, w) tensor, hr uint8 HWC)`` of the test set.
        scale: The network's scale (crop border).
        blocks: The blocks to force.
        progress: Called once per forward (optional).

    Returns:
        dict: ``baseline`` (mean PSNR and per-image ``values``), ``blocks``:
        block -> forced name -> ``psnr``, ``delta`` (mean change) and
        per-image ``values``, and the per-block mean ``pi_att``.
    """

    def run_all():
        values = {}
        for name, lr, hr in pairs:
            with torch.no_grad():
                values[name] = psnr_y(net(lr), hr, scale)
            if progress is not None:
                progress()
        return values

    pi_att = {i: [] for i in blocks}
    base = {}
    for name, lr, hr in pairs:
        with torch.no_grad(), record_taps(net, [f'blocks.{i}.pi_att' for i in blocks]) as rec:
            base[name] = psnr_y(net(lr), hr, scale)
        for i in blocks:
            pi_att[i].append(float(rec[f'blocks.{i}.pi_att'][0]))
        if progress is not None:
            progress()
    base_mean = float(np.mean(list(base.values())))
    result = {'baseline': {'psnr': base_mean, 'values': base}, 'blocks': {}}
    for i in blocks:
        row = {'pi_att_mean': float(np.mean(pi_att[i]))}
        for forced, (att, na) in FORCED.items():
            with replace_taps(
                net, {f'blocks.{i}.pi_att': _const(att), f'blocks.{i}.pi_na': _const(na)}
            ):
                values = run_all()
            mean = float(np.mean(list(values.values())))
            row[forced] = {
                'psnr': mean,
                'delta': mean - base_mean if math.isfinite(mean) else math.nan,
                'values': values,
            }
        result['blocks'][str(i)] = row
    return result
