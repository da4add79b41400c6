"""Where LPIPS looks for its two weight files, and what it says when one is missing."""

import os.path as osp
import shutil
import sys

import lpips_helpers
import pytest
import torch

from basicattn.errors import CheckpointError
from basicattn.metrics import lpips_weights as W

# fixtures of these tests, bound here: a conftest.py of this folder would shadow
# the module that `from conftest import REPO_ROOT` means in later test files
alex_weights = lpips_helpers.alex_weights
lpips_weights_writer = lpips_helpers.lpips_weights_writer


def fake_lpips_package(root, with_heads=True):
    """An ``lpips`` package whose import would fail: find_spec must not import it."""
    package = root / 'lpips'
    package.mkdir()
    (package / '__init__.py').write_text('raise ImportError("imported!")\n')
    if with_heads:
        (package / 'weights' / 'v0.1').mkdir(parents=True)
    return package


def test_heads_found_in_the_lpips_package_without_importing_it(tmp_path, monkeypatch):
    package = fake_lpips_package(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, 'lpips', raising=False)
    assert W.default_head_path('vgg') == str(package / 'weights' / 'v0.1' / 'vgg.pth')
    assert 'lpips' not in sys.modules


def test_backbone_default_is_the_torch_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, '_hub_dir', None, raising=False)
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    assert W.default_backbone_path('vgg') == str(
        tmp_path / 'hub' / 'checkpoints' / 'vgg16-397923af.pth'
    )


def test_the_defaults_load_and_are_shared(tmp_path, monkeypatch, lpips_weights_writer):
    """Files in the default places are used; a second metric reuses the loaded network."""
    checkpoints = tmp_path / 'torch' / 'hub' / 'checkpoints'
    checkpoints.mkdir(parents=True)
    package = fake_lpips_package(tmp_path)
    backbone, heads = lpips_weights_writer(tmp_path, 'alex', seed=1)
    shutil.copy(backbone, checkpoints / 'alexnet-owt-7be5be79.pth')
    shutil.copy(heads, package / 'weights' / 'v0.1' / 'alex.pth')
    monkeypatch.setattr(torch.hub, '_hub_dir', None, raising=False)
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    monkeypatch.syspath_prepend(str(tmp_path))
    net = W.load_lpips_net('alex')
    assert W.load_lpips_net('alex') is net
    assert torch.equal(net.lins[0][1].weight, torch.load(heads)['lin0.model.1.weight'])


def test_no_lpips_package(monkeypatch, alex_weights):
    monkeypatch.setattr(W, 'default_head_path', lambda net: None)
    with pytest.raises(CheckpointError) as info:
        W.load_lpips_net('alex', backbone_path=alex_weights[0])
    text = str(info.value)
    assert 'weights/v0.1/alex.pth ship in the lpips package, which is not installed' in text
    assert 'pip install --no-deps lpips' in text and '\n' not in text


def test_package_without_the_file(tmp_path, monkeypatch, alex_weights):
    fake_lpips_package(tmp_path, with_heads=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(CheckpointError, match=r'the installed lpips package has no .*vgg.pth'):
        W.load_lpips_net('vgg', backbone_path=alex_weights[0])


def test_missing_vgg_backbone_names_its_file(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, '_hub_dir', None, raising=False)
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    with pytest.raises(CheckpointError) as info:
        W.load_lpips_net('vgg', head_path=__file__)
    text = str(info.value)
    assert osp.join(str(tmp_path), 'hub', 'checkpoints', 'vgg16-397923af.pth') in text
    assert "torchvision's VGG16 ImageNet weights" in text and 'never downloads' in text
