"""Multi-stage schedules: parameter masks, stage lookup.
The stage rules: tests/config/test_stages.py.
Real runs of tools/train.py: tests/tools/test_multi_stage_training.py."""

import pytest

from basicattn.engine.stage_hook import MultiStageHook, trainable_mask

STAGES = [
    dict(name='body', until_iter=2, frozen=['conv_last.*', 'upsample.*'], losses=['pixel']),
    dict(name='head', until_iter=4, trainable=['conv_last.*'], losses=['mse'], lr=1e-2),
    dict(name='all', until_iter=6, losses=['pixel'], lr=1e-4, reset_optimizer=False),
]


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
