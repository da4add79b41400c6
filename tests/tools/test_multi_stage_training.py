"""Multi-stage schedules end to end: tools/train.py with train.stages trains
what each stage says, and a run resumed inside a stage equals a straight one."""

import os.path as osp

import pytest
import torch
import yaml
from conftest import tiny_options

from basicattn.checkpoint.io import safe_load
from basicattn.config import OptionError, validate_options

STAGES = [
    dict(name='body', until_iter=2, frozen=['conv_last.*', 'upsample.*'], losses=['pixel']),
    dict(name='head', until_iter=4, trainable=['conv_last.*'], losses=['mse'], lr=1e-2),
    dict(name='all', until_iter=6, losses=['pixel'], lr=1e-4, reset_optimizer=False),
]


def _staged_options(root, name):
    opt = tiny_options(root)
    opt['name'] = name
    opt['path']['experiments_root'] = osp.join(root, name)
    opt['train'].update(
        losses={'pixel': {'type': 'L1Loss'}, 'mse': {'type': 'MSELoss'}},
        stages=[dict(s) for s in STAGES],
        ema_decay=0,
        warmup_iter=-1,
        scheduler=None,
    )
    opt['logger']['save_checkpoint_freq'] = 2
    opt['val']['val_freq'] = 100
    return opt


def test_option_file_stage_errors(tmp_path):
    opt = _staged_options(str(tmp_path), 'bad')
    opt['train']['stages'][1]['losses'] = ['mes']
    opt['train']['stages'][2]['until_iter'] = 5
    with pytest.raises(OptionError) as info:
        validate_options(opt, source='bad.yml')
    text = str(info.value)
    assert "train.stages.1.losses: 'mes' is not in train.losses" in text
    assert 'train.stages.2.until_iter: the last stage ends at 5' in text
    # Misspelt keys and wrong types are found first, with a did-you-mean.
    opt = _staged_options(str(tmp_path), 'bad')
    opt['train']['stages'][0]['frozne'] = []
    opt['train']['stages'][1]['lr'] = 'fast'
    with pytest.raises(OptionError) as info:
        validate_options(opt, source='bad.yml')
    text = str(info.value)
    assert "train.stages.0.frozne: unknown key. Did you mean 'frozen'?" in text
    assert "train.stages.1.lr: expected float or int or null, got str 'fast'" in text


@pytest.mark.slow
def test_stages_train_what_they_say_and_resume_exactly(tiny_experiment, tmp_path, tool):
    """Stage 1 leaves the head alone, stage 2 trains only conv_last, stage 3
    everything; 6 iterations straight == stop at 3 (inside stage 2) + resume."""
    root = tiny_experiment.root
    init = str(tmp_path / 'init.pth')
    from basicattn.archs.edsr_arch import EDSR

    torch.manual_seed(0)
    torch.save({'state_dict': EDSR(num_feat=8, num_block=1, upscale=2).state_dict()}, init)
    files = {}
    for name in ('straight', 'resumed'):
        opt = _staged_options(root, name)
        opt['path'].update(pretrain_network_g=init)
        files[name] = tmp_path / f'{name}.yml'
        files[name].write_text(yaml.safe_dump(opt, sort_keys=False))
    out = tool('tools/train.py', '-opt', str(files['straight']))
    assert out.returncode == 0, out.stderr[-3000:]
    log = out.stdout + out.stderr
    assert 'stage 2/3 head from iteration 2 to 4' in log and 'optimizer reset' in log
    weights = {0: safe_load(init)['state_dict']}
    for it in (2, 4, 6):
        weights[it] = safe_load(osp.join(root, 'straight', f'iter_{it}.pth'))['state_dict']
        weights[it] = {k.replace('generator.', '', 1): v for k, v in weights[it].items()}

    def changed(a, b):
        return sorted(k for k in weights[a] if not torch.equal(weights[a][k], weights[b][k]))

    head = ['upsample.0.weight', 'upsample.0.bias', 'conv_last.weight', 'conv_last.bias']
    assert changed(0, 2) == sorted(k for k in weights[0] if k not in head)
    assert changed(2, 4) == ['conv_last.bias', 'conv_last.weight']
    assert changed(4, 6) == sorted(weights[0])
    # Resume in the middle of stage 2, in a new process.
    first = tool('tools/train.py', '-opt', str(files['resumed']), '--stop-at', '3')
    assert first.returncode == 0, first.stderr[-3000:]
    second = tool('tools/train.py', '-opt', str(files['resumed']), '--auto-resume')
    assert second.returncode == 0, second.stderr[-3000:]
    assert 'stage 2/3 head from iteration 3 to 4' in second.stdout + second.stderr
    a = safe_load(osp.join(root, 'straight', 'iter_6.pth'))
    b = safe_load(osp.join(root, 'resumed', 'iter_6.pth'))
    for key in a['state_dict']:
        assert torch.equal(a['state_dict'][key], b['state_dict'][key]), key
    assert b['stage_hook'] == {'applied': 2}
