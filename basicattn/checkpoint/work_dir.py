"""The experiment folder: what a run may overwrite, remove and resume from.

* A fresh run never writes into a folder that holds an earlier run's files:
  :func:`archive_existing` renames it to ``<folder>_archived_<timestamp>``
  first (as BasicSR does). A test run whose results folder is a training
  experiment folder (``path.experiments_root`` of a training option file)
  adds its results there instead, and is refused when earlier test results
  would be overwritten (:func:`plan_fresh_run`).
* ``last_checkpoint`` (the pointer ``--auto-resume`` follows) holds a path
  relative to the work dir (:func:`write_pointer`), and :func:`read_pointer`
  resolves it inside the current work dir whatever it holds, so a copied
  folder resumes from its own files; a URL is refused.
* :func:`rebase` moves a path mmengine remembered (``best_ckpt``) into the
  current work dir.
"""

from __future__ import annotations

import os
import os.path as osp
import re
import time
from collections.abc import Iterable

from basicattn.checkpoint.io import (
    atomic_write_bytes,
    check_training_state,
    is_inside,
    is_url,
    safe_load,
)
from basicattn.checkpoint.run_lock import LOCK_NAME
from basicattn.errors import CheckpointError, UserError

POINTER = 'last_checkpoint'


def rebase(path: str, work_dir: str) -> str:
    """``path`` taken inside ``work_dir``.

    A relative path is joined to ``work_dir``; an absolute path, or one that
    leaves ``work_dir`` (``../x``), keeps only its file name.

    Args:
        path (str): A path read from a pointer or from a checkpoint.
        work_dir (str): The current work dir.

    Returns:
        str: An absolute path inside ``work_dir``.
    """
    work_dir = osp.abspath(work_dir)
    candidate = osp.normpath(osp.join(work_dir, path))
    if osp.isabs(path) or not is_inside(candidate, work_dir):
        candidate = osp.join(work_dir, osp.basename(osp.normpath(path)))
    return candidate


def relative_to(path: str, work_dir: str) -> str:
    """``path`` relative to ``work_dir`` (its file name when it lies outside)."""
    work_dir = osp.abspath(work_dir)
    full = osp.abspath(osp.join(work_dir, path))
    if is_inside(full, work_dir):
        return osp.relpath(full, work_dir)
    return osp.basename(full)


def write_pointer(work_dir: str, checkpoint: str) -> str:
    """Write ``<work_dir>/last_checkpoint`` (atomically) relative to ``work_dir``.

    Returns:
        str: What was written.
    """
    text = relative_to(checkpoint, work_dir)
    atomic_write_bytes(text.encode('utf-8'), osp.join(work_dir, POINTER))
    return text


def read_pointer(work_dir: str) -> tuple[str | None, str]:
    """The checkpoint ``<work_dir>/last_checkpoint`` points to, inside ``work_dir``.

    Returns:
        tuple[str | None, str]: The resolved local file (None when there is
        no pointer, it is empty or its file is missing) and a sentence
        saying what was found, for the log.

    Raises:
        CheckpointError: The pointer holds a URL, is not UTF-8 text or holds
            a NUL byte (a damaged file).
    """
    pointer = osp.join(work_dir, POINTER)
    if not osp.isfile(pointer):
        return None, f'no {pointer}'
    with open(pointer, 'rb') as f:
        raw = f.read(64 * 1024)  # a file name; anything longer is not a pointer
    damaged = (
        f'{pointer} is damaged: %s; put the file name of a checkpoint of this folder in it '
        f'(e.g. iter_1000.pth) or delete it to start afresh'
    )
    try:
        content = raw.decode('utf-8').strip()
    except UnicodeDecodeError as err:
        raise CheckpointError(
            damaged % f'byte 0x{raw[err.start]:02x} at offset {err.start} is not UTF-8'
        ) from None
    if '\0' in content:
        raise CheckpointError(damaged % f'a NUL byte at offset {raw.index(0)}')
    if is_url(content):
        raise CheckpointError(
            f'{pointer} holds the URL {content}; --auto-resume only resumes from a local '
            f'checkpoint in the work dir. Put the local file name there (or delete {POINTER} '
            'to start afresh)'
        )
    if not content:
        return None, f'{pointer} is empty'
    target = rebase(content, work_dir)
    if not osp.isfile(target):
        return None, f'{pointer} names {content}, but {target} does not exist'
    return target, f'{pointer} names {content}'


def holds_files(folder: str) -> bool:
    """True when ``folder`` exists and holds more than the run lock (:mod:`.run_lock`)."""

    return osp.isdir(folder) and any(e.name != LOCK_NAME for e in os.scandir(folder))


_ITER_NAME = re.compile(r'iter_(\d+)\.pth')


def iteration_checkpoints(work_dir: str) -> list:
    """The ``iter_<N>.pth`` files of ``work_dir``, newest (largest ``N``) first."""
    if not osp.isdir(work_dir):
        return []
    found = []
    for entry in os.scandir(work_dir):
        match = _ITER_NAME.fullmatch(entry.name)
        if match and entry.is_file():
            found.append((int(match.group(1)), entry.path))
    return [path for _, path in sorted(found, reverse=True)]


def resume_problem(path: str) -> str | None:
    """Why ``path`` cannot resume a run (unloadable, weights only), or None when it can.

    The file is read with the safe loader (a pickle with code is refused, not run).
    """

    try:
        check_training_state(safe_load(path, option='--auto-resume'), path, '--auto-resume')
    except (UserError, OSError) as err:
        return str(err).splitlines()[0] if str(err) else type(err).__name__
    return None


def find_resume_checkpoint(work_dir: str) -> tuple[str | None, str]:
    """The checkpoint ``--auto-resume`` continues from, and a sentence saying why.

    ``last_checkpoint`` is followed when its file can resume the run;
    otherwise (missing pointer or file, a torn or weights-only file) the
    newest ``iter_<N>.pth`` that can is taken. Each candidate is loaded
    with the safe loader and must hold a full training state.

    Returns:
        tuple[str | None, str]: The checkpoint (None: the folder has no
        checkpoint at all, the run starts afresh) and the sentence.

    Raises:
        CheckpointError: The pointer holds a URL, or there are checkpoints
            but none of them can resume the run (nothing is archived then).
    """
    target, found = read_pointer(work_dir)
    rejected = []
    if target is not None:
        problem = resume_problem(target)
        if problem is None:
            return target, found
        rejected.append(f'{osp.basename(target)} ({problem})')
        found = f'{found}, which cannot resume the run'
    for path in iteration_checkpoints(work_dir):
        if target is not None and osp.abspath(path) == osp.abspath(target):
            continue
        problem = resume_problem(path)
        if problem is None:
            return path, f'{found}; the newest valid checkpoint is {osp.basename(path)}'
        rejected.append(f'{osp.basename(path)} ({problem})')
    if rejected:
        raise CheckpointError(
            f'--auto-resume: no checkpoint in {work_dir} can resume the run: '
            + '; '.join(rejected)
            + '. Nothing was moved; remove the broken files, or start afresh without '
            '--auto-resume (the folder is then archived)'
        )
    return None, found


def archive_name(folder: str, stamp: str | None = None) -> str:
    """``<folder>_archived_<YYYYmmdd_HHMMSS>``, with ``_2``, ``_3`` ... if taken."""
    stamp = stamp or time.strftime('%Y%m%d_%H%M%S')
    base = f'{osp.normpath(folder)}_archived_{stamp}'
    name, count = base, 1
    while osp.lexists(name):
        count += 1
        name = f'{base}_{count}'
    return name


RESULT_FILES = ('metrics.json', 'metrics_per_clip.json', 'metrics_per_image.json')


def is_training_folder(folder: str) -> bool:
    """True when ``folder`` holds a training run (``last_checkpoint`` or ``*.pth``)."""
    return osp.isfile(osp.join(folder, POINTER)) or any(
        entry.name.endswith('.pth') for entry in os.scandir(folder)
    )


def plan_fresh_run(folder: str, purpose: str, keep: Iterable[str | None] = ()) -> str:
    """What a run that does not resume does with its folder.

    Args:
        folder (str): The work dir.
        purpose (str): 'train' or 'test'.
        keep (Sequence[str]): Checkpoints the run reads.

    Returns:
        str: 'use' (missing, empty, or a training folder a test run adds its
        results to) or 'archive' (rename it first, :func:`archive_existing`).

    Raises:
        UserError: Archiving would take an input away, or a test run would
            overwrite the test results of a training folder.
    """
    what = 'experiment folder' if purpose == 'train' else 'results folder'
    if not holds_files(folder):
        return 'use'
    if purpose == 'test' and is_training_folder(folder):
        earlier = [n for n in RESULT_FILES if osp.exists(osp.join(folder, n))]
        if earlier:
            raise UserError(
                f'results folder {folder} is a training experiment folder that already holds '
                f'test results ({earlier[0]}); give this test run its own folder, e.g. '
                f'--set path.experiments_root={osp.normpath(folder)}/test_<name>'
            )
        return 'use'
    refuse_if_inputs_inside(folder, keep, what)
    return 'archive'


def refuse_if_inputs_inside(
    folder: str, keep: Iterable[str | None], what: str = 'experiment folder'
) -> None:
    """Raise :class:`UserError` when ``folder`` holds files and an input of the run.

    Archiving ``folder`` would take the input (a checkpoint the run reads) away.
    """
    if not holds_files(folder):
        return
    inside = [str(p) for p in keep if p and not is_url(str(p)) and is_inside(p, folder)]
    if inside:
        raise UserError(
            f'{what} {folder} already holds files, and this run reads {inside[0]} from it; '
            'resume with --auto-resume or path.resume_state, or give the new run another '
            'folder (name or path.experiments_root)'
        )


def archive_existing(
    folder: str, keep: Iterable[str | None] = (), what: str = 'experiment folder'
) -> str | None:
    """Rename ``folder`` out of the way when it already holds files.

    Args:
        folder (str): The work dir of a fresh run.
        keep (Sequence[str]): Inputs of the run (checkpoints it reads): when
            one lies inside ``folder``, renaming would take it away, so
            nothing is renamed (see :func:`refuse_if_inputs_inside`).
        what (str): How to call the folder in messages.

    Returns:
        str | None: The new name of the old folder, or None if nothing moved.
    """
    if not holds_files(folder):
        return None
    refuse_if_inputs_inside(folder, keep, what)
    target = archive_name(folder)
    os.rename(folder, target)
    print(
        f'basicattn: {what} {folder} already held files; moved them to {target} '
        '(nothing is overwritten)',
        flush=True,
    )
    return target
