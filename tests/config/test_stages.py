"""``train.stages``: each key by the schema, the cross-key rules once (config/stages.py)."""

import pytest

from basicattn.config import OptionError, validate_options
from basicattn.config.stages import stage_order_problems

STAGES = [
    dict(name='body', until_iter=2, frozen=['conv_last.*'], losses=['pixel']),
    dict(name='head', until_iter=4, trainable=['conv_last.*'], losses=['mse'], lr=1e-2),
    dict(name='all', until_iter=6, losses=['pixel'], lr=1e-4, reset_optimizer=False),
]


def test_stage_order_problems_reports_each_problem():
    assert stage_order_problems(STAGES, 6, ['pixel', 'mse']) == []
    problems = stage_order_problems(
        [dict(until_iter=4, losses=['pixl']), dict(until_iter=3, losses=[])], 10, ['pixel']
    )
    text = '\n'.join(problems)
    assert "0.losses: 'pixl' is not in train.losses" in text
    assert '1.until_iter: 3 must be larger than the previous stage end 4' in text
    assert '1.losses: a stage needs at least one loss' in text
    assert 'the last stage ends at 4 but train.total_iter is 10' in text


def _options(stages):
    return {
        'model_type': 'SRModel',
        'scale': 2,
        'network_g': {'type': 'Bicubic', 'upscale': 2},
        'train': {
            'total_iter': 10,
            'losses': {'pixel': {'type': 'L1Loss'}},
            'optim_g': {'type': 'Adam', 'lr': 1e-4},
            'stages': stages,
        },
    }


def test_option_validator_reports_key_and_order_problems_once():
    with pytest.raises(OptionError) as info:
        validate_options(_options([dict(until_iter=4, frozn=[]), dict(until_iter=3)]), 'x.yml')
    text = str(info.value)
    assert 'train.stages.0.frozn' in text
    assert text.count('frozn') == 1  # the schema's rule; not repeated by another checker
    with pytest.raises(OptionError, match=r'train.stages.1.until_iter: 3 must be larger'):
        validate_options(_options([dict(until_iter=4), dict(until_iter=3)]), 'x.yml')
