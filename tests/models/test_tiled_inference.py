"""Test-time clamping (basicattn/models/tiled_inference.py): overflow stays visible."""

import torch

from basicattn.config.test_settings import TestConfig
from basicattn.models.tiled_inference import apply_test_cfg, clamp_output


def test_clamp_turns_inf_into_nan_not_into_white_or_black():
    out = torch.tensor([-0.5, 0.25, 2.0, float('inf'), float('-inf'), float('nan')])
    clamped = clamp_output(out)
    assert clamped[:3].tolist() == [0.0, 0.25, 1.0]
    assert torch.isnan(clamped[3:]).all()


def test_apply_test_cfg_clamps_with_it():
    def overflowing(x):
        return x * float('inf')

    out = apply_test_cfg(overflowing, torch.ones(1, 3, 4, 4), TestConfig())
    assert torch.isnan(out).all()
    unclamped = apply_test_cfg(overflowing, torch.ones(1, 3, 4, 4), TestConfig(clamp=False))
    assert torch.isinf(unclamped).all()
