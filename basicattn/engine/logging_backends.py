"""Where training logs go: mmengine visualizer backends from the ``logger`` options.

Scalars and validation images always go to the run folder (``LocalVisBackend``),
to TensorBoard with ``logger.use_tb_logger`` and to Weights & Biases with
``logger.wandb.project`` (BasicSR's keys), through mmengine's
``WandbVisBackend``. wandb is an optional extra: when it is not installed the
run goes on without it after one warning line.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Mapping

from basicattn.config.basicsr_compat import warn_option

__all__ = ['vis_backends']

INSTALL_HINT = 'pip install wandb (or: pip install -e ".[wandb]")'


def wandb_installed() -> bool:
    """Whether ``import wandb`` would work (without importing it)."""
    return importlib.util.find_spec('wandb') is not None


def vis_backends(opt: Mapping[str, Any], purpose: str) -> list[dict]:
    """The visualizer backend configs of a run.

    Args:
        opt (Mapping): Validated options.
        purpose (str): ``'train'`` or ``'test'``; W&B logs training only, as in BasicSR.

    Returns:
        list[dict]: mmengine ``vis_backends`` entries.
    """
    logger = opt.get('logger') or {}
    backends = [dict(type='LocalVisBackend')]
    if logger.get('use_tb_logger', True):
        backends.append(dict(type='TensorboardVisBackend'))
    wandb = logger.get('wandb') or {}
    if purpose != 'train' or not wandb.get('project'):
        return backends
    if not wandb_installed():
        warn_option(
            'logger.wandb',
            f'wandb is not installed, so this run does not log to W&B ({INSTALL_HINT})',
        )
        return backends
    init = dict(project=wandb['project'], name=opt.get('name'))
    if wandb.get('entity'):
        init['entity'] = wandb['entity']
    if wandb.get('resume_id'):
        init.update(id=wandb['resume_id'], resume='allow')
    backends.append(dict(type='WandbVisBackend', init_kwargs=init))
    return backends
