"""LPIPS weight files in the published layouts, and fixtures that write them.

Imported by the LPIPS tests (not a ``conftest.py``: test modules import
``REPO_ROOT`` and friends ``from conftest``, and a second conftest module
would shadow the one they mean).
"""

import pytest
import torch


def write_lpips_weights(folder, net='alex', seed=0):
    """Seeded random LPIPS weights as files: ``(backbone path, heads path)``.

    The backbone in torchvision's layout (with a ``classifier`` entry, as the
    real file has), the heads in the ``lpips`` package's layout, non-negative
    as the published heads are. For tests only: no reported number comes
    from them.
    """
    from basicattn.metrics.lpips_net import LPIPSNet

    gen = torch.Generator().manual_seed(seed)
    model = LPIPSNet(net)
    backbone = {
        k: torch.randn(v.shape, generator=gen) * (0.1 if k.endswith('bias') else 0.05)
        for k, v in model.backbone_state_dict().items()
    }
    backbone['classifier.1.weight'] = torch.zeros(2, 2)
    heads = {k: torch.rand(v.shape, generator=gen) for k, v in model.head_state_dict().items()}
    paths = (str(folder / f'{net}_backbone.pth'), str(folder / f'{net}_heads.pth'))
    torch.save(backbone, paths[0])
    torch.save(heads, paths[1])
    return paths


@pytest.fixture(scope='module')
def alex_weights(tmp_path_factory):
    """``(backbone path, heads path)`` of seeded random AlexNet LPIPS weights."""
    return write_lpips_weights(tmp_path_factory.mktemp('lpips_alex'), 'alex')


@pytest.fixture
def lpips_weights_writer():
    """:func:`write_lpips_weights`, for tests that write their own files."""
    return write_lpips_weights
