"""Every arch's ``BF16_PSNR_DB`` (basicattn/models/inference_precision.py) still holds.

The value is the bf16-autocast vs float32 PSNR of the arch's tiny case, measured as
tests/engine/test_amp.py does (``bf16_fidelity.measure_bf16_psnr``). It must agree with
a fresh measurement within ``TOLERANCE_DB``, and an arch that claims to be safe (>= 40 dB)
must measure safe. The tolerance covers what moves the measurement without making the
arch any less safe: the random weights and input (seeds 1-3 of the input moved it by at
most 0.7 dB), and other CPUs' bf16 kernels and thread counts (oneDNN limited to AVX2,
bf16 emulated, gave the same values here).
"""

import math

import pytest
from arch_cases import ARCH_CASES
from bf16_fidelity import measure_bf16_psnr

from basicattn.archs.facts import BF16_SAFE_DB
from basicattn.models.inference_precision import arch_bf16_psnr
from basicattn.registry import ARCHS

TOLERANCE_DB = 3.0


@pytest.mark.parametrize('name', sorted(ARCH_CASES))
def test_bf16_psnr_attribute_agrees_with_the_measurement(name):
    claimed = getattr(ARCHS.get(name), 'BF16_PSNR_DB', None)
    assert isinstance(claimed, float), (
        f'{name}: set the class attribute BF16_PSNR_DB to the PSNR this test measures'
    )
    measured = measure_bf16_psnr(name)
    if claimed >= BF16_SAFE_DB:
        assert measured >= BF16_SAFE_DB, f'{name}: {measured:.2f} dB, claimed {claimed}'
    if math.isinf(claimed):
        assert math.isinf(measured), f'{name}: {measured:.2f} dB, claimed inf'
    else:
        assert abs(measured - claimed) <= TOLERANCE_DB, f'{name}: {measured:.2f} dB vs {claimed}'
    assert arch_bf16_psnr(name) == claimed


def test_every_registered_arch_is_measured():
    ARCHS.import_from_location()
    missing = [n for n in sorted(ARCHS.module_dict) if arch_bf16_psnr(n) is None]
    assert not missing, f'archs without BF16_PSNR_DB: {missing}'
