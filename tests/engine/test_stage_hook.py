"""Multi-stage schedules: stage-list checks, parameter masks, stage lookup.
Real runs of tools/train.py: tests/tools/test_multi_stage_training.py."""

import pytest

from basicattn.engine.stage_hook import MultiStageHook, check_stages, trainable_mask

STAGES = [
    dict(name='body', until_iter=2, frozen=['conv_last.*', 'upsample.*'], losses=['pixel']),
    dict(name='head', until_iter=4, trainable=['conv_last.*'], losses=['mse'], lr=1e-2),
    dict(name='all', until_iter=6, losses=['pixel'], lr=1e-4, reset_optimizer=False),
]


def test_check_stages_reports_each_problem():
    assert check_stages(STAGES, 6, ['pixel', 'mse']) == []
    problems = check_stages(
        [dict(until_iter=4, losses=['pixl']), dict(until_iter=3, frozn=[])], 10, ['pixel']
    )
    text = '\n'.join(problems)
    assert "0.losses: 'pixl' is not in train.losses" in text
    assert '1.frozn: unknown stage key' in text
    assert '1.until_iter: 3 must be larger than the previous stage end 4' in text
    assert 'the last stage ends at 4 but train.total_iter is 10' in text
    assert check_stages([]) == ['expected a non-empty list of stages']


def test_trainable_mask_and_unknown_pattern():
    names = ['body.0.w', 'body.1.w', 'memory.bank', 'memory.conv.w']
    assert trainable_mask(names) == [True] * 4
    assert trainable_mask(names, frozen=['memory.*']) == [True, True, False, False]
    assert trainable_mask(names, trainable=['memory.*'], frozen=['memory.conv.*']) == [
        False,
        False,
        True,
        False,
    ]
    with pytest.raises(ValueError, match="pattern 'memroy.*' matches no parameter"):
        trainable_mask(names, trainable=['memroy.*'])


def test_stage_index():
    hook = MultiStageHook(STAGES)
    assert [hook.stage_index(i) for i in range(7)] == [0, 0, 1, 1, 2, 2, 2]
    with pytest.raises(ValueError, match='until_iter'):
        MultiStageHook([dict(until_iter=0)])
