"""Hook order that matters is stated by the hooks and checked on every runner."""

import pytest
from mmengine.hooks import CheckpointHook, EMAHook

from basicattn.engine.hook_order import check_hook_order
from basicattn.engine.hooks import LatestCheckpointHook, NetworkRecordHook, PlainCheckpointHook
from basicattn.engine.nan_guard import NonFiniteGuardHook


def _hooks():
    return [
        EMAHook(),
        NonFiniteGuardHook(),
        NetworkRecordHook(arch={'type': 'Bicubic'}),
        CheckpointHook(interval=1),
        PlainCheckpointHook(),
        LatestCheckpointHook(),
    ]


def test_the_order_the_priorities_give_passes():
    check_hook_order(_hooks())


@pytest.mark.parametrize(
    'swap, message',
    [
        ((0, 1), 'NonFiniteGuardHook must run after EMAHook'),
        ((1, 2), 'NetworkRecordHook must run after NonFiniteGuardHook'),
        ((2, 4), 'NetworkRecordHook must run before PlainCheckpointHook'),
        ((3, 5), 'LatestCheckpointHook must run after CheckpointHook'),
    ],
)
def test_a_hook_on_the_wrong_side_is_refused(swap, message):
    hooks = _hooks()
    i, j = swap
    hooks[i], hooks[j] = hooks[j], hooks[i]
    with pytest.raises(RuntimeError, match=message):
        check_hook_order(hooks)
