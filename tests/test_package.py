"""The package itself: a cheap import, registries with scope basicattn."""
import subprocess
import sys

from conftest import REPO_ROOT


def test_import_is_cheap_and_imports_no_arch():
    code = ('import sys, time; t = time.perf_counter(); import basicattn; '
            'dt = time.perf_counter() - t; '
            'print(dt, "torch" in sys.modules, any(m.startswith("basicattn.archs") '
            'for m in sys.modules))')
    out = subprocess.run([sys.executable, '-c', code], cwd=REPO_ROOT, capture_output=True,
                         text=True, check=True).stdout.split()
    seconds, torch_loaded, archs_loaded = float(out[0]), out[1] == 'True', out[2] == 'True'
    assert not torch_loaded and not archs_loaded
    assert seconds < 0.5


def test_registries_are_children_with_scope_basicattn():
    from mmengine.registry import MODELS as ROOT_MODELS
    from basicattn import registry as R
    for reg in (R.ARCHS, R.LOSSES, R.MODELS, R.DATASETS, R.METRICS, R.HOOKS, R.TRANSFORMS,
                R.LOOPS):
        assert reg.scope == 'basicattn'
        assert reg.parent is not None and reg.parent.scope == 'mmengine'
    assert ROOT_MODELS.children['basicattn'] is R.MODELS
    # names are found on first use (lazy import of the locations)
    assert R.ARCHS.get('EDSR') is not None and R.LOSSES.get('L1Loss') is not None
    assert R.MODELS.get('SRModel') is not None and R.DATASETS.get('PairedImageDataset')
    assert R.METRICS.get('PSNR') is not None and R.HOOKS.get('RNGStateHook') is not None
    # mmengine's own classes stay reachable through the parents
    assert R.HOOKS.get('CheckpointHook') is not None
