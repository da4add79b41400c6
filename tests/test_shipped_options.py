"""Every option file we ship validates and builds its network (tiny forward where cheap).

One parametrised test over ``options/**/*.yml``: a new file is covered the day it
is added. Files with a ``train`` section are read as tools/train.py reads them,
the others as tools/test.py does, after merging the ``_base_`` files they inherit.
Files under a ``_base_/`` folder are pieces that other files inherit, not complete
option files: they are covered through the files that inherit them (and each
base must be inherited by at least one shipped file). Datasets are not built (their data is the
user's); the network is, with the file's ``scale`` propagated, and networks
small enough get one forward on an 8x8 LR input (a window of frames for video
archs) whose output must be ``scale`` times larger and finite. The benchmark
protocols (``options/test/benchmarks/``) name no network (the ``--checkpoint``
weights do): they are read with ``network_g.type=Bicubic``, their baseline row.
"""

import glob
import os.path as osp

import pytest
import torch
from conftest import REPO_ROOT

from basicattn.config.options import load_option_file

ALL_YAML = sorted(
    osp.relpath(p, REPO_ROOT)
    for p in glob.glob(osp.join(REPO_ROOT, 'options', '**', '*.yml'), recursive=True)
)
BASE_FILES = [p for p in ALL_YAML if '_base_' in p.split(osp.sep)[:-1]]
OPTION_FILES = [p for p in ALL_YAML if p not in BASE_FILES]
FORWARD_MAX_PARAMS = 6_000_000  # MANA (14 M) and DKSAN (30 M) are only built


def _purpose(path):
    opt, _ = load_option_file(osp.join(REPO_ROOT, path))
    return 'train' if opt.get('train') else 'test'


#: The files whose network comes from the weights given to tools/test.py.
NETWORK_FROM_WEIGHTS = osp.join('options', 'test', 'benchmarks') + osp.sep


def _overrides(path):
    return ['network_g.type=Bicubic'] if path.startswith(NETWORK_FROM_WEIGHTS) else []


def test_only_the_benchmark_protocols_leave_the_network_to_the_weights():
    for path in OPTION_FILES:
        opt, _ = load_option_file(osp.join(REPO_ROOT, path))
        assert ('network_g' in opt) != path.startswith(NETWORK_FROM_WEIGHTS), path


def test_there_are_option_files():
    assert len(OPTION_FILES) >= 30 and BASE_FILES


def test_every_base_file_is_inherited():
    inherited = set()
    for path in OPTION_FILES:
        _, origins = load_option_file(osp.join(REPO_ROOT, path))
        inherited |= {osp.relpath(osp.realpath(f), REPO_ROOT) for f in origins.values()}
    assert set(BASE_FILES) <= inherited, set(BASE_FILES) - inherited


@pytest.mark.parametrize('path', OPTION_FILES)
def test_option_file_validates_and_builds_its_network(path):
    from basicattn.archs.build import build_network
    from basicattn.config import read_options

    opt = read_options(osp.join(REPO_ROOT, path), _overrides(path), purpose=_purpose(path))
    torch.manual_seed(0)
    net = build_network(opt['network_g'], f'{path}: network_g').eval()
    params = sum(p.numel() for p in net.parameters())
    if params > FORWARD_MAX_PARAMS:
        return
    frames = getattr(net, 'num_frames', None)
    shape = (1, frames, 3, 8, 8) if frames else (1, 3, 8, 8)
    with torch.no_grad():
        out = net(torch.rand(shape))
    out = out[0] if isinstance(out, (tuple, list)) else out
    scale = opt['scale']
    assert tuple(out.shape[-2:]) == (8 * scale, 8 * scale), path
    assert torch.isfinite(out).all(), path
