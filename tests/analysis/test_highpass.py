"""The Table 1 recipe (basicattn/analysis/highpass.py) on cases whose answer is known."""

import pytest
import torch

from basicattn.analysis.highpass import (
    FILTERS,
    highpass_correlation,
    highpass_response,
    pearson_per_channel,
)


@pytest.fixture
def feature():
    torch.manual_seed(0)
    return torch.randn(2, 3, 12, 10)


def test_response_of_known_signals():
    ramp = torch.arange(8.0).repeat(8, 1)[None, None]  # f = x: gradient 1 along x
    inner = (slice(None), slice(None), slice(1, -1), slice(1, -1))
    assert torch.equal(highpass_response(ramp, 'laplace')[inner], torch.zeros(1, 1, 6, 6))
    # Sobel of f = x: 2 * (1 + 2 + 1) = 8; Scharr: 2 * (3 + 10 + 3) = 32
    assert torch.equal(highpass_response(ramp, 'sobel')[inner], torch.full((1, 1, 6, 6), 8.0))
    assert torch.equal(highpass_response(ramp, 'scharr')[inner], torch.full((1, 1, 6, 6), 32.0))


@pytest.mark.parametrize('name', FILTERS)
def test_map_equal_to_the_response_correlates_one(feature, name):
    response = highpass_response(feature, name)
    got = highpass_correlation(response, feature)[name]
    torch.testing.assert_close(got, torch.ones(2, dtype=torch.float64))
    # an affine image of it, decreasing: exactly -1
    got = highpass_correlation(0.5 - 0.1 * response, feature)[name]
    torch.testing.assert_close(got, -torch.ones(2, dtype=torch.float64))


def test_independent_map_correlates_about_zero(feature):
    torch.manual_seed(5)
    big = torch.randn(1, 4, 64, 64)
    noise = torch.rand(1, 4, 64, 64)
    for r in highpass_correlation(noise, big).values():
        assert abs(float(r)) < 0.05  # 4096 pixels: the standard error is 1/64


def test_constant_channels_are_left_out():
    a = torch.rand(1, 2, 5, 5)
    a[:, 1] = 0.5  # constant: r undefined
    b = a.clone()
    b[:, 1] = torch.rand(5, 5)
    r = pearson_per_channel(a, b)
    assert torch.isnan(r[0, 1]) and abs(float(r[0, 0]) - 1) < 1e-12
    with pytest.raises(ValueError, match='differ in shape'):
        highpass_correlation(a, b[:, :1])
