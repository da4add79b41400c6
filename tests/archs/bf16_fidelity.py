"""How an arch's ``BF16_PSNR_DB`` is measured (basicattn/models/inference_precision.py).

The set-up of tests/engine/test_amp.py::test_bf16_inference_within_40db_of_float32: the
tiny instance of tests/archs/arch_cases.py with the weights of ``torch.manual_seed(0)``,
one random input in [0, 1] (generator seed 1), ``SRModel`` / ``VideoSRModel.inference``
without clamping, float32 and then ``test_cfg.amp = 'bf16'`` (autocast) on the CPU; the PSNR
of the bf16 output against the float32 one. Run this file to print every arch's value::

    PYTHONPATH=. python tests/archs/bf16_fidelity.py
"""

import os.path as osp
import sys

import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from arch_cases import ARCH_CASES  # noqa: E402

from basicattn.models.inference_precision import psnr_db  # noqa: E402


def measure_bf16_psnr(name: str, seed: int = 1) -> float:
    """bf16-autocast vs float32 PSNR (dB) of the tiny ``name`` on a random input."""
    from basicattn.models.sr_model import SRModel
    from basicattn.models.video_sr_model import VideoSRModel
    from basicattn.registry import ARCHS

    case = ARCH_CASES[name]
    torch.manual_seed(0)
    generator = ARCHS.build(dict(type=name, **case['kwargs']))
    model_class = VideoSRModel if len(case['input']) == 5 else SRModel
    model = model_class(generator, test_cfg=dict(clamp=False)).eval()
    lq = torch.rand(*case['input'], generator=torch.Generator().manual_seed(seed))
    full = model.inference(lq)
    model.test_cfg.amp = 'bf16'
    half = model.inference(lq)
    assert half.dtype == torch.float32 and half.shape == full.shape
    return psnr_db(half, full)


if __name__ == '__main__':
    for arch in sorted(ARCH_CASES):
        values = ', '.join(f'{measure_bf16_psnr(arch, seed):.2f}' for seed in (1, 2, 3))
        print(f'{arch}: {values} dB (input seeds 1, 2, 3)')
