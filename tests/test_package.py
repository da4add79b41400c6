"""The package itself: a cheap import, registries with scope basicattn."""

import subprocess
import sys

from conftest import REPO_ROOT


def test_import_is_cheap_and_imports_no_arch():
    """``import basicattn`` loads no torch, arch, op or model module (registries are lazy).

    What keeps the import cheap is what it loads, so that is asserted; a wall-clock
    bound would be noise on shared cores.
    """
    code = (
        'import sys; import basicattn; heavy = ("torch", "basicattn.archs", '
        '"basicattn.ops", "basicattn.models", "basicattn.data", "mmengine.runner"); '
        'print(" ".join(sorted(m for m in sys.modules if m.split(".")[0] == "torch" '
        'or any(m == h or m.startswith(h + ".") for h in heavy))))'
    )
    out = subprocess.run(
        [sys.executable, '-c', code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == []


def test_registries_are_children_with_scope_basicattn():
    from mmengine.registry import MODELS as ROOT_MODELS

    from basicattn import registry as R

    for reg in (R.ARCHS, R.LOSSES, R.MODELS, R.DATASETS, R.METRICS, R.HOOKS, R.TRANSFORMS, R.LOOPS):
        assert reg.scope == 'basicattn'
        assert reg.parent is not None and reg.parent.scope == 'mmengine'
    assert ROOT_MODELS.children['basicattn'] is R.MODELS
    # names are found on first use (lazy import of the locations)
    assert R.ARCHS.get('EDSR') is not None and R.LOSSES.get('L1Loss') is not None
    assert R.MODELS.get('SRModel') is not None and R.DATASETS.get('PairedImageDataset')
    assert R.METRICS.get('PSNR') is not None and R.HOOKS.get('RNGStateHook') is not None
    # mmengine's own classes stay reachable through the parents
    assert R.HOOKS.get('CheckpointHook') is not None


def test_no_conftest_shadows_the_one_test_modules_import():
    """Test modules say ``from conftest import REPO_ROOT``; with pytest's default
    import mode, each folder's ``conftest.py`` takes the module name ``conftest`` in
    turn, so a new one without those names breaks every test module collected after
    it. Folder fixtures live in a helper module that the test files import instead."""
    import glob
    import os.path as osp

    found = sorted(
        osp.relpath(p, REPO_ROOT)
        for p in glob.glob(osp.join(REPO_ROOT, 'tests', '**', 'conftest.py'), recursive=True)
    )
    assert found == ['tests/conftest.py', 'tests/tools/conftest.py']
