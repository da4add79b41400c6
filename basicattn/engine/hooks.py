"""Hooks basicattn adds to mmengine's Runner.

* :class:`RNGStateHook`: random-number state in checkpoints, and a per-iteration
  reseed so that training randomness is a function of (seed, iteration).
* :class:`GeneratorLoadHook`: load pretrained network weights before training
  (unless resuming) or testing.
* :class:`SRVisualizationHook`: save super-resolved images and send a few to
  TensorBoard, as LR | SR | GT.
* :class:`NetworkRecordHook`: record the generator's arch config and scale in
  every checkpoint (``meta['arch']``, ``meta['scale']``), so that the file
  alone rebuilds the network; optionally also write the weights alone
  (``logger.save_weights``: ``net_g_<iter>.safetensors`` or ``.pth``).
* :class:`PlainCheckpointHook`: store mmengine's logging state as plain data so
  checkpoints load with ``weights_only=True``.
* :class:`StopAtIterHook`: checkpoint and stop after a given iteration, as a
  time-limited job would be stopped (``tools/train.py --stop-at``).
* :class:`LatestCheckpointHook`: keep ``latest.pth`` pointing at the newest
  checkpoint, and ``last_checkpoint`` relative to the work dir.
* :class:`ExperimentFolderHook`: on resume, refuse a weights-only file and
  move the checkpoint paths mmengine remembers into the current work dir.
"""

from __future__ import annotations

import os
import os.path as osp
import random
import re
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np
import torch
from mmengine.dist import get_dist_info, is_main_process
from mmengine.hooks import Hook
from mmengine.logging import print_log

from basicattn.errors import UserError
from basicattn.registry import HOOKS
from basicattn.utils.path_util import safe_path_component

if TYPE_CHECKING:
    from mmengine.runner import Runner

from basicattn.checkpoint import work_dir as experiment_folder
from basicattn.checkpoint.io import check_training_state, decode_plain, encode_plain, safe_load
from basicattn.checkpoint.partial_load import partial_load
from basicattn.checkpoint.run_lock import release
from basicattn.checkpoint.state import (
    check_checkpoint_scale,
    check_finite_weights,
    load_network_weights,
    recorded_scale,
    save_weights_file,
    unwrap_model,
)
from basicattn.converters.detect import generator_state
from basicattn.utils.finite import is_finite
from basicattn.utils.img_util import imwrite, tensor2img
from basicattn.visualization.comparison_image import comparison_image


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Make training randomness resumable.

    Before every training iteration the Python, numpy and torch generators are
    reseeded from ``(seed, iteration, rank)``: what happens between iterations
    (validation, building a data loader iterator, which draw from the global
    generators) can then never shift the randomness of later iterations, and
    a resumed run continues exactly like an uninterrupted one. The states are
    also saved in every checkpoint and restored on resume, for anything that
    draws outside the iterations.
    """

    priority = 'VERY_HIGH'

    def before_train_iter(self, runner: Runner, batch_idx: int, data_batch: Any = None) -> None:
        rank, _ = get_dist_info()
        seed = runner.seed if runner.seed is not None else 0
        state = np.random.SeedSequence([seed, runner.iter, rank]).generate_state(2)
        torch.manual_seed(int(state[0]))
        np.random.seed(int(state[1]))
        random.seed(int(state[0]) ^ int(state[1]))

    def before_save_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        checkpoint['rng_state'] = dict(
            python=random.getstate(),
            numpy=dict(
                kind=kind,
                keys=torch.from_numpy(keys.astype(np.int64)),
                pos=int(pos),
                has_gauss=int(has_gauss),
                cached_gaussian=float(cached),
            ),
            torch=torch.get_rng_state(),
            cuda=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        )

    def after_load_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        state = checkpoint.get('rng_state')
        if not state or not getattr(runner, '_resume', False):
            return
        python = state['python']
        random.setstate((python[0], tuple(python[1]), python[2]))
        nps = state['numpy']
        np.random.set_state(
            (
                nps['kind'],
                nps['keys'].numpy().astype(np.uint32),
                nps['pos'],
                nps['has_gauss'],
                nps['cached_gaussian'],
            )
        )
        torch.set_rng_state(state['torch'])
        if torch.cuda.is_available() and state['cuda']:
            torch.cuda.set_rng_state_all(state['cuda'])


def training_iteration(checkpoint: Any) -> Optional[int]:
    """The iteration a training checkpoint was saved after (``meta['iter']``).

    None for a file without it: converted or official weights.
    """
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    value = meta.get('iter') if isinstance(meta, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        return None
    return int(value)


#: The message-hub key under which :class:`GeneratorLoadHook` records the weights
#: it loaded: ``{'path': str, 'iteration': int | None}`` (``tools/test.py`` reports them).
LOADED_WEIGHTS = 'basicattn.loaded_weights'


@HOOKS.register_module()
class GeneratorLoadHook(Hook):
    """Load network weights before training starts (not on resume) or testing.

    The file (``.pth`` or ``.safetensors``) is read by
    :func:`~basicattn.checkpoint.io.safe_load` and its weights found by
    :func:`~basicattn.checkpoint.state.extract_state_dict`
    (``path.param_key_g``; wrapper prefixes removed); weights in an authors'
    layout that a converter recognises (A2N, MANA) are renamed by it
    (:func:`~basicattn.converters.detect.generator_state`).

    Args:
        path (str): Checkpoint file (``path.pretrain_network_g``).
        strict (bool): Require matching keys.
        param_key (str | None): Key of the weights in the file (``path.param_key_g``);
            None: found (:data:`~basicattn.checkpoint.state.NESTED_KEYS`).
        scale (int | None): The scale of the network; weights that record
            another are refused
            (:func:`~basicattn.checkpoint.state.check_checkpoint_scale`)
            unless ``partial``.
        partial (bool): Transfer load (``path.partial_load_g``,
            :func:`~basicattn.checkpoint.partial_load.partial_load`): keep the
            tensors that fit by name and shape and log one line of the rest.
        include (list[str] | None): ``path.partial_include_g`` patterns.
        exclude (list[str] | None): ``path.partial_exclude_g`` patterns.
    """

    priority = 'VERY_HIGH'

    def __init__(
        self,
        path: str,
        strict: bool = True,
        param_key: Optional[str] = None,
        scale: Optional[int] = None,
        partial: bool = False,
        include: Optional[Sequence[str]] = None,
        exclude: Optional[Sequence[str]] = None,
    ) -> None:
        self.path, self.strict, self.param_key, self.scale = path, strict, param_key, scale
        self.partial, self.include, self.exclude = partial, include, list(exclude or ())
        #: ``meta['iter']`` of the file last loaded (None: not a training checkpoint).
        self.loaded_iteration: Optional[int] = None

    def _load(self, runner: Runner) -> None:
        checkpoint = safe_load(self.path, option='path.pretrain_network_g')
        self.loaded_iteration = training_iteration(checkpoint)
        runner.message_hub.update_info(
            LOADED_WEIGHTS, dict(path=self.path, iteration=self.loaded_iteration)
        )
        generator = unwrap_model(runner.model).generator

        if self.partial:
            recorded, _ = recorded_scale(checkpoint)
            note = ''
            if recorded is not None and self.scale is not None and recorded != self.scale:
                note = f'x{recorded} weights into an x{self.scale} network'
            state = generator_state(checkpoint, self.param_key, self.path)
            line = partial_load(generator, state, self.path, self.include, self.exclude, note)
            print_log(line, logger='current')
            return
        check_checkpoint_scale(checkpoint, self.path, self.scale, "the option file's scale")
        state = generator_state(checkpoint, self.param_key, self.path)
        result = load_network_weights(generator, state, self.strict, self.path)
        print_log(
            f'Loaded network weights from {self.path} (strict={self.strict}); '
            f'missing: {len(result.missing_keys)}, unexpected: '
            f'{len(result.unexpected_keys)}',
            logger='current',
        )

    def before_train(self, runner: Runner) -> None:
        """Load the weights into a fresh run (a resumed one has its own)."""
        if runner.iter == 0:
            self._load(runner)

    def before_test(self, runner: Runner) -> None:
        """Load the weights before testing."""
        self._load(runner)


@HOOKS.register_module()
class SRVisualizationHook(Hook):
    """Save super-resolved images (PNG) and send a few to the visualizer.

    Validation images go to ``<work_dir>/visualization/<set>/<key>_<iter>.png``,
    test images to ``<work_dir>/results/<set>/<key>.png`` (the output only).
    The visualizer backends (TensorBoard) get ``LR | SR | GT`` side by side
    (:func:`~.comparison_image.comparison_image`: the input enlarged by
    nearest neighbour, the centre frame for video), under ``<set>/<key>``.

    Args:
        save_img (bool): Write every output image.
        num_tb_images (int): Images per set sent to the visualizer backends
            (TensorBoard) at each validation.
    """

    priority = 'LOW'

    def __init__(self, save_img: bool = False, num_tb_images: int = 2) -> None:
        self.save_img = save_img
        self.num_tb_images = num_tb_images
        self._sent = {}

    def before_val_epoch(self, runner: Runner) -> None:
        self._sent = {}

    def _handle(self, runner: Runner, outputs: Optional[Sequence[dict]], phase: str) -> None:

        loop = runner.val_loop if phase == 'val' else runner.test_loop
        set_name = safe_path_component(getattr(loop, 'current_set', None) or phase)

        for sample in outputs:
            if torch.is_tensor(sample.get('pred')) and not is_finite(sample['pred']):
                continue  # no image to show; the loop warned (validation) or refused (test)
            key = safe_path_component(sample.get('key', 'img'))
            image = None
            if self.save_img:  # every rank saves the images of its own shard
                image = tensor2img(sample['pred'])
                folder = 'visualization' if phase == 'val' else 'results'
                name = f'{key}_{runner.iter}.png' if phase == 'val' else f'{key}.png'
                imwrite(osp.join(runner.work_dir, folder, set_name, name), image)
            sent = self._sent.get(set_name, 0)
            if phase == 'val' and sent < self.num_tb_images and is_main_process():
                image = comparison_image(sample, image)
                runner.visualizer.add_image(f'{set_name}/{key}', image, step=runner.iter)
                self._sent[set_name] = sent + 1

    def after_val_iter(
        self, runner: Runner, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        self._handle(runner, outputs or [], 'val')

    def after_test_iter(
        self, runner: Runner, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        self._handle(runner, outputs or [], 'test')


#: ``logger.save_weights`` values -> extension of the weights file.
WEIGHTS_FORMATS = {'pth': '.pth', 'safetensors': '.safetensors'}

#: The generator's prefix in a training checkpoint's ``state_dict``.
GENERATOR_PREFIX = 'generator.'


def generator_weights(state_dict: dict) -> dict:
    """The generator's tensors of a training checkpoint's ``state_dict``, prefix removed."""
    return {
        k[len(GENERATOR_PREFIX) :]: v
        for k, v in state_dict.items()
        if k.startswith(GENERATOR_PREFIX)
    }


@HOOKS.register_module()
class NetworkRecordHook(Hook):
    """Make every checkpoint say which network it holds; export the weights alone.

    Before each checkpoint is saved, ``meta['arch']`` (the options'
    ``network_g`` after scale propagation) and ``meta['scale']`` are added,
    so ``tools/infer.py --checkpoint iter_N.pth`` needs no option file. With
    ``save_weights`` set, the generator's weights of the same checkpoint are
    also written, atomically, beside it as ``net_g_<iter>.safetensors`` (or
    ``.pth``) with the same ``meta`` (plus ``iter`` and ``weights``). When the
    run keeps an EMA (``train.ema_decay``), mmengine's EMAHook (which runs
    before this hook) has put the averaged weights under the checkpoint's
    ``state_dict``; those are the ones exported (``meta['weights']:
    'ema'``), as in the checkpoint's own ``state_dict``.

    Args:
        arch (dict): The generator's arch config (``type`` + kwargs).
        scale (int, optional): The run's ``scale``.
        save_weights (str, optional): ``'safetensors'``, ``'pth'`` or None (off).
        max_keep (int): Keep the newest ``max_keep`` ``net_g_<iter>`` files of
            the work dir, like ``logger.max_keep_ckpts`` for the checkpoints
            (-1: all). Only files named exactly ``net_g_<int>.<ext>`` of the
            chosen format, from earlier iterations, are removed.
    """

    priority = 'LOW'
    # checked by engine.hook_order: the record is of the EMA weights the NaN
    # guard has seen, and is added before the checkpoint is encoded
    runs_after = ('EMAHook', 'NonFiniteGuardHook')
    runs_before = ('PlainCheckpointHook',)

    def __init__(
        self,
        arch: dict,
        scale: Optional[int] = None,
        save_weights: Optional[str] = None,
        max_keep: int = -1,
    ) -> None:
        if save_weights is not None and save_weights not in WEIGHTS_FORMATS:
            raise ValueError(
                f'logger.save_weights: {save_weights!r} is not one of '
                f'{", ".join(WEIGHTS_FORMATS)} or null'
            )
        self.arch, self.scale, self.save_weights = dict(arch), scale, save_weights
        self.max_keep = max_keep
        self._written_iter: Optional[int] = None

    def before_save_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        """Record arch and scale in ``meta``; write ``net_g_<iter>.*`` when asked."""
        meta = checkpoint.setdefault('meta', {})
        meta['arch'] = dict(self.arch)
        if self.scale is not None:
            meta['scale'] = self.scale
        iteration = meta.get('iter')
        if not self.save_weights or iteration is None or iteration == self._written_iter:
            return
        self._written_iter = iteration
        if not is_main_process():
            return
        state = generator_weights(checkpoint.get('state_dict', {}))
        path = osp.join(runner.work_dir, f'net_g_{iteration}{WEIGHTS_FORMATS[self.save_weights]}')
        exported = dict(
            arch=dict(self.arch),
            iter=int(iteration),
            weights='ema' if 'ema_state_dict' in checkpoint else 'raw',
            experiment_name=runner.experiment_name,
        )
        if self.scale is not None:
            exported['scale'] = self.scale
        save_weights_file(path, state, exported, overwrite=True)
        print_log(f'Saved the generator weights to {path}', logger='current')
        self._remove_old_weights(runner.work_dir, int(iteration))

    def _remove_old_weights(self, work_dir: str, iteration: int) -> None:
        """Delete ``net_g_<k>`` files (k < ``iteration``) beyond the newest ``max_keep``."""
        if self.max_keep is None or self.max_keep < 1:
            return
        pattern = re.compile(rf'net_g_(\d+){re.escape(WEIGHTS_FORMATS[self.save_weights])}')
        found = sorted(
            (int(m.group(1)), name)
            for name in os.listdir(work_dir)
            if (m := pattern.fullmatch(name)) and int(m.group(1)) <= iteration
        )
        for _, name in found[: max(0, len(found) - self.max_keep)]:
            os.remove(osp.join(work_dir, name))
            print_log(f'Removed old weights file {name} (logger.max_keep_ckpts)', logger='current')


@HOOKS.register_module()
class PlainCheckpointHook(Hook):
    """Encode the message hub (HistoryBuffers, numpy values) as tensors and ints.

    Runs last when saving (after every other hook added its entries) and
    decodes on load before the Runner reads the message hub.
    """

    priority = 'LOWEST'
    runs_after = ('NetworkRecordHook',)  # it adds meta['arch'], encoded here

    def before_save_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        """Encode ``message_hub`` and ``meta`` (:func:`~.checkpoint_io.encode_plain`)."""
        for key in ('message_hub', 'meta'):
            if key in checkpoint:
                checkpoint[key] = encode_plain(checkpoint[key])

    def after_load_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        """Decode them again (:func:`~.checkpoint_io.decode_plain`)."""
        for key in ('message_hub', 'meta'):
            if key in checkpoint:
                checkpoint[key] = decode_plain(checkpoint[key])


@HOOKS.register_module()
class StopAtIterHook(Hook):
    """Save a full resume checkpoint after iteration ``stop_iter`` and stop.

    The schedule is untouched (``total_iter`` stays what the options say), so a
    later ``--auto-resume`` continues exactly where this run stopped.
    """

    priority = 95
    # checked by engine.hook_order: the last checkpoint is written before the stop
    runs_after = ('CheckpointHook',)
    runs_before = ('LatestCheckpointHook',)

    def __init__(self, stop_iter: int) -> None:
        self.stop_iter = int(stop_iter)

    def before_train(self, runner: Runner) -> None:
        """Refuse a stop iteration that a resumed run has already passed."""
        if runner.iter >= self.stop_iter:
            raise UserError(
                f'--stop-at {self.stop_iter}: the run resumes after iteration {runner.iter}, '
                'so it would never stop there; give a later ITER or drop --stop-at'
            )

    def after_train_iter(
        self, runner: Runner, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        done = runner.iter + 1  # mmengine counts the finishing iteration after this hook
        if done != self.stop_iter or done >= runner.max_iters:
            return
        name = f'iter_{done}.pth'
        runner.save_checkpoint(
            runner.work_dir, name, by_epoch=False, save_optimizer=True, save_param_scheduler=True
        )
        if is_main_process():
            experiment_folder.write_pointer(runner.work_dir, name)
        print_log(
            f'Stopped after iteration {done} as asked (--stop-at); resume with --auto-resume.',
            logger='current',
        )
        runner.train_loop.stop_training = True


@HOOKS.register_module()
class LatestCheckpointHook(Hook):
    """Keep ``<work_dir>/latest.pth`` a symbolic link to the newest checkpoint.

    mmengine's CheckpointHook (which runs just before) writes an absolute path
    into ``last_checkpoint``; it is rewritten relative to the work dir, so a
    copied or moved experiment folder resumes from its own files.
    """

    priority = 'LOWEST'
    runs_after = ('CheckpointHook',)  # checked by engine.hook_order

    def __init__(self) -> None:
        self._target = None

    def _refresh(self, runner: Runner) -> None:
        if not is_main_process():
            return
        pointer = osp.join(runner.work_dir, experiment_folder.POINTER)
        if not osp.isfile(pointer):
            return
        with open(pointer, encoding='utf-8') as f:
            content = f.read().strip()
        if not content:
            return
        target = experiment_folder.relative_to(content, runner.work_dir)
        if content != target:
            experiment_folder.write_pointer(runner.work_dir, target)
        if target == self._target:
            return
        link = osp.join(runner.work_dir, 'latest.pth')
        tmp = f'{link}.tmp-{os.getpid()}'
        if osp.lexists(tmp):
            os.remove(tmp)
        os.symlink(target, tmp)
        os.replace(tmp, link)
        self._target = target

    def after_train_iter(
        self, runner: Runner, batch_idx: int, data_batch: Any = None, outputs: Any = None
    ) -> None:
        self._refresh(runner)

    def after_val_epoch(self, runner: Runner, metrics: Optional[dict] = None) -> None:
        self._refresh(runner)

    def after_train(self, runner: Runner) -> None:
        self._refresh(runner)


def rebase_runtime_paths(checkpoint: dict, work_dir: str) -> dict:
    """Move the checkpoint paths in a checkpoint's message hub into ``work_dir``.

    mmengine stores absolute paths (``best_ckpt``, ``best_ckpt_<metric>``,
    ``last_ckpt``) in the runtime info and removes the previous best
    checkpoint by that path; from a copied folder it would be the original's.

    Returns:
        dict: ``{key: (old, new)}`` of the paths that changed.
    """
    info = (checkpoint.get('message_hub') or {}).get('runtime_info') or {}
    changed = {}
    for key, value in list(info.items()):
        if (key == 'last_ckpt' or key.startswith('best_ckpt')) and isinstance(value, str):
            new = experiment_folder.rebase(value, work_dir)
            if new != value:
                info[key] = new
                changed[key] = (value, new)
    return changed


@HOOKS.register_module()
class ExperimentFolderHook(Hook):
    """Check a resume checkpoint first and keep the run inside its work dir.

    Runs before every other hook's ``after_load_checkpoint`` when resuming:
    a file with network weights only (no iteration, optimizer, logging state)
    or with weights that are NaN or inf (from a run without the NaN guard) is
    refused with a :class:`~basicattn.errors.CheckpointError` naming it,
    and the paths mmengine remembers are rebased onto the current work dir
    (:func:`rebase_runtime_paths`).

    Args:
        resume_option (str, optional): Where the resume checkpoint was named
            (``path.resume_state`` or ``--auto-resume``), for messages.
    """

    priority = 'HIGHEST'

    def __init__(self, resume_option: Optional[str] = None) -> None:
        self.resume_option = resume_option or 'path.resume_state'

    def after_load_checkpoint(self, runner: Runner, checkpoint: dict) -> None:
        if not getattr(runner, '_resume', False):
            return
        path = getattr(runner, '_load_from', None)
        check_training_state(checkpoint, path, self.resume_option)
        for key in ('state_dict', 'ema_state_dict'):  # written by a run without the NaN guard
            if isinstance(checkpoint.get(key), dict):
                check_finite_weights(checkpoint[key], f'{self.resume_option}: {path} ({key})')
        for key, (old, new) in rebase_runtime_paths(checkpoint, runner.work_dir).items():
            print_log(f'{key}: {old} is taken as {new} (inside this work dir)', logger='current')


@HOOKS.register_module()
class RunLockHook(Hook):
    """Remove the run lock file and free the lock when the run ends normally.

    The last hook to run (after the logger and visualizer close their files;
    see :mod:`basicattn.checkpoint.run_lock`). A run that fails leaves the file,
    and the kernel frees the lock when the process ends, so the next run
    takes it over.
    """

    priority = 'LOWEST'

    def after_run(self, runner: Runner) -> None:

        release(runner.work_dir, remove=True)
