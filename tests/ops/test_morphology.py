"""Binary morphology on the device (basicattn/ops/morphology.py)."""

import torch
import torch.nn.functional as F

from basicattn.ops import binary_dilation, binary_erosion, disk


def test_disk_and_binary_morphology():
    d = disk(3)
    assert d.shape == (7, 7) and d.sum() == 29 and d[0, 3] == 1 and d[0, 2] == 0
    m = torch.zeros(1, 1, 9, 9)
    m[..., 4, 4] = 1
    torch.testing.assert_close(binary_dilation(m, d)[0, 0], F.pad(d, (1,) * 4))
    sq = torch.ones(3, 3)
    block = torch.zeros(1, 1, 9, 9)
    block[..., 2:7, 2:7] = 1
    expect = torch.zeros(1, 1, 9, 9)
    expect[..., 3:6, 3:6] = 1
    torch.testing.assert_close(binary_erosion(block, sq), expect)
    full = torch.ones(1, 1, 4, 4)  # border=1: no erosion from edges
    torch.testing.assert_close(binary_erosion(full, sq), full)
    assert binary_erosion(full, sq, border=0.0)[0, 0, 0].sum() == 0


def test_old_import_path_still_works():
    from basicattn.archs import dasaa_blocks

    assert dasaa_blocks.disk is disk
    assert dasaa_blocks.binary_dilation is binary_dilation
    assert dasaa_blocks.binary_erosion is binary_erosion
