"""The training and testing runtime: option files -> mmengine Runner.

Runner building (:mod:`.builder`), the loops and hooks basicattn adds, the
schedulers, mixed precision, distributed set-up, progress and logging.
Importing this package registers the loops and hooks (it is the location of
the LOOPS and HOOKS registries).
"""

from basicattn.engine import hooks, loops, nan_guard, stage_hook  # noqa: F401  (registration)
from basicattn.engine.builder import build_runner, runner_cfg

__all__ = ['build_runner', 'runner_cfg']
