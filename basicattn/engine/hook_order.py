"""Hook order that matters, stated by the hooks and checked on every runner.

mmengine runs hooks by priority. Some of ours are only correct in a given
order relative to another hook: the NaN guard must see the EMA weights before
any checkpoint records them, the network record must be added to a checkpoint
before :class:`~basicattn.engine.hooks.PlainCheckpointHook` encodes it, and so
on. Each such hook states its neighbours as class attributes:

* ``runs_after``: hook class names that must come before it;
* ``runs_before``: hook class names that must come after it.

:func:`check_hook_order` compares them with the runner's sorted hook list;
:func:`~basicattn.engine.builder.build_runner` calls it on every runner it
builds, so a priority changed in one place fails at once instead of writing
checkpoints that cannot be resumed.
"""

from typing import Any, Sequence

__all__ = ['check_hook_order']


def check_hook_order(hooks: Sequence[Any]) -> None:
    """Raise ``RuntimeError`` when a hook runs on the wrong side of one it names.

    Args:
        hooks (Sequence[mmengine.hooks.Hook]): The runner's hooks, in the
            order it calls them (``runner.hooks``).

    Raises:
        RuntimeError: A bug in basicattn's hook priorities (not a user error),
            naming both hooks and their priorities.
    """
    position = {type(hook).__name__: i for i, hook in enumerate(hooks)}
    wrong = []
    for i, hook in enumerate(hooks):
        name = type(hook).__name__
        for other in getattr(hook, 'runs_after', ()):
            if other in position and position[other] > i:
                wrong.append(f'{name} must run after {other}')
        for other in getattr(hook, 'runs_before', ()):
            if other in position and position[other] < i:
                wrong.append(f'{name} must run before {other}')
    if wrong:
        order = ', '.join(f'{type(h).__name__}({getattr(h, "priority", "?")})' for h in hooks)
        raise RuntimeError('hook order: ' + '; '.join(wrong) + f' (order: {order})')
