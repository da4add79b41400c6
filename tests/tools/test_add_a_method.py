"""CONTRIBUTING.md's "add a method" walkthrough, done from outside the package.

A new arch is written in a temporary folder, registered through
``custom_imports`` (no file of basicattn is touched), trained for two
iterations with tools/train.py and evaluated with tools/test.py. The facts it
states on its class reach the arch test and docs/features.md with no other
file edited: a method is its arch file, its option files, its doc page and
one case in tests/archs/arch_cases.py.
"""

import json
import os.path as osp
import textwrap

import yaml
from conftest import tool_module

NEW_ARCH = textwrap.dedent(
    '''
    """TinyResNet: a made-up method for the walkthrough test (no paper)."""

    import torch.nn.functional as F
    from torch import nn

    from basicattn.registry import ARCHS
    from basicattn.utils.bounds import PositiveInt


    @ARCHS.register_module()
    class TinyResNet(nn.Module):
        """Bicubic upsampling plus a learned residual; RGB [0, 1] in and out."""

        PAPER_PARAMS = (dict(), 1_100)  # the facts of basicattn/archs/facts.py
        ONNX_DYNAMIC_HW = True

        def __init__(self, num_feat: PositiveInt = 8, upscale: PositiveInt = 2):
            super().__init__()
            self.upscale = upscale
            self.body = nn.Sequential(
                nn.Conv2d(3, num_feat, 3, padding=1),
                nn.LeakyReLU(0.1),
                nn.Conv2d(num_feat, 3 * upscale * upscale, 3, padding=1),
                nn.PixelShuffle(upscale),
            )

        def forward(self, x):
            base = F.interpolate(x, scale_factor=self.upscale, mode='bicubic', align_corners=False)
            return base + self.body(x)
    '''
)


def _experiment(tiny_experiment, network):
    path = tiny_experiment('added', **{'train.total_iter': 2, 'val.val_freq': 2})
    opt = yaml.safe_load(open(path))
    opt['custom_imports'] = ['tiny_res_net']
    opt['network_g'] = network
    opt['train'].update(warmup_iter=-1, ema_decay=0)
    opt['train']['scheduler']['milestones'] = [1]
    opt['logger']['save_checkpoint_freq'] = 2
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    with open(osp.join(osp.dirname(path), 'tiny_res_net.py'), 'w') as f:
        f.write(NEW_ARCH)
    return path


def test_new_arch_from_a_folder_trains_and_tests(tiny_experiment, forked_tool):
    opt = _experiment(tiny_experiment, {'type': 'TinyResNet', 'num_feat': 4})
    out = forked_tool('tools/train.py', '-opt', opt)
    assert out.returncode == 0, out.stderr[-3000:]
    exp = osp.join(tiny_experiment.root, 'added')
    checkpoint = osp.join(exp, 'iter_2.pth')
    assert osp.isfile(checkpoint)
    result = forked_tool(
        'tools/test.py', '-opt', opt, '--checkpoint', checkpoint,
        '--set', f'path.experiments_root={exp}/test',
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.load(open(result.stdout.strip().splitlines()[-1]))['metrics']
    assert metrics['tinyval']['psnr_y_crop2'] > 20  # bicubic plus a near-zero residual


def test_new_arch_arguments_are_checked_like_built_in_ones(tiny_experiment, forked_tool):
    opt = _experiment(tiny_experiment, {'type': 'TinyResNet', 'num_fet': 4})
    out = forked_tool('tools/train.py', '-opt', opt)
    assert out.returncode == 2
    assert out.stderr.startswith('error: ') and 'Traceback' not in out.stderr
    expected = "network_g.num_fet: unknown argument of TinyResNet. Did you mean 'num_feat'?"
    assert expected in out.stderr


def test_new_arch_facts_reach_the_arch_test_and_the_feature_table(tmp_path, monkeypatch):
    import importlib
    import sys

    import torch

    from basicattn.archs.facts import arch_facts
    from basicattn.registry import ARCHS

    (tmp_path / 'tiny_res_net_facts.py').write_text(NEW_ARCH)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        importlib.import_module('tiny_res_net_facts')
        facts = arch_facts('TinyResNet')
        assert facts.paper_params == (dict(), 1_100) and facts.onnx_dynamic_hw
        assert not facts.takes_frames and not facts.recurrent
        # what tests/archs/test_all_archs.py asserts of its paper-sized model
        kwargs, count = facts.paper_params
        net = ARCHS.build(dict(type='TinyResNet', **kwargs))
        assert sum(p.numel() for p in net.parameters()) == count
        assert net(torch.rand(1, 3, 8, 8)).shape == (1, 3, 16, 16)
        # the feature table gains its column from the facts alone
        tool = tool_module('gen_features_doc')
        table = tool.render()
        assert '| TinyResNet |' in table.splitlines()[1]
        assert '| 1,100 |' in table and 'dynamic H/W' in table
    finally:
        ARCHS._module_dict.pop('TinyResNet', None)
        sys.modules.pop('tiny_res_net_facts', None)
