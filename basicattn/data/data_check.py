"""Check that the data an option file names exists, before anything is built.

``tools/train.py`` and ``tools/test.py`` call :func:`check_dataset_paths`
(through :func:`basicattn.engine.builder.build_runner`) right after the
options are validated: a run whose data is not prepared yet stops with one
line naming the option key and the absolute path it resolved to, instead of
building the model, starting distribution and leaving an experiment folder
behind.

The path keys of a dataset block are those of the dataset classes:
``dataroot_gt``, ``dataroot_lq`` (any ``dataroot_*``) and ``meta_info_file``
(any ``*_file``). Relative paths resolve against the current directory, as
in BasicSR.
"""

import os
import os.path as osp
from typing import Any, Iterator, List, Mapping, Tuple

from basicattn.errors import DataError
from basicattn.utils.path_util import broken_link_target, shown_path

from .lmdb_swap import recover_interrupted_swap

#: Where the expected data layout is described (named in the error).
DATA_README = 'datasets/README.md'


def is_path_key(key: str) -> bool:
    """Whether a dataset option holds a file or folder path (``dataroot_*``, ``*_file``)."""
    return key.startswith('dataroot') or key.endswith('_file')


def used_dataset_keys(opt: Mapping[str, Any], purpose: str) -> List[str]:
    """The ``datasets`` keys a run of ``purpose`` reads.

    Training reads ``train`` and the ``val*`` sets; testing the ``test*`` and
    ``val*`` sets (see :func:`basicattn.engine.builder.dataset_sets`).
    """
    first = ('train',) if purpose == 'train' else ()
    datasets = opt.get('datasets') or {}
    return [
        k
        for k in datasets
        if k in first or k.startswith('val') or (purpose != 'train' and k.startswith('test'))
    ]


def dataset_paths(opt: Mapping[str, Any], purpose: str) -> Iterator[Tuple[str, str, str]]:
    """Yield ``(option key path, path, io backend)`` for every dataset path of a run."""
    datasets = opt.get('datasets') or {}
    for name in used_dataset_keys(opt, purpose):
        block = datasets[name] or {}
        backend = block.get('io_backend', 'disk')
        if isinstance(backend, Mapping):
            backend = backend.get('type', 'disk')
        for key, value in block.items():
            if is_path_key(key) and isinstance(value, (str, os.PathLike)) and os.fspath(value):
                yield f'datasets.{name}.{key}', os.fspath(value), backend


def _problem(key: str, path: str, backend: str) -> str:
    """What is wrong with one dataset path ('' when nothing is)."""
    is_lmdb_root = backend == 'lmdb' and key.rsplit('.', 1)[-1].startswith('dataroot')
    if is_lmdb_root and not osp.isfile(osp.join(path, 'data.mdb')):
        recover_interrupted_swap(path)  # an interrupted swap may have moved it aside
    if not osp.exists(path):
        target = broken_link_target(path)
        if target is not None:
            return f'is a broken symbolic link: it points to {target}, which does not exist'
        return 'does not exist'
    if is_lmdb_root and not osp.isfile(osp.join(path, 'data.mdb')):
        return 'has no data.mdb, so it is not an LMDB (io_backend: lmdb)'
    return ''


def check_dataset_paths(opt: Mapping[str, Any], purpose: str = 'train') -> None:
    """Raise on the first dataset path of the run that is missing.

    Args:
        opt (Mapping): Validated options (``read_options``).
        purpose (str): ``'train'`` or ``'test'``: which datasets the run reads.

    Raises:
        DataError: One line naming the option key, the absolute path it
            resolved to, :data:`DATA_README` and, for a relative path, the
            current directory it is relative to.
    """
    missing = []
    for key, path, backend in dataset_paths(opt, purpose):
        why = _problem(key, path, backend)
        if why:
            missing.append((key, path, why))
    if not missing:
        return
    key, path, why = missing[0]
    text = f'{key}: {shown_path(path)} {why}; prepare the data as {DATA_README} describes'
    if len(missing) > 1:
        text += f'; {len(missing) - 1} more missing: ' + ', '.join(k for k, _, _ in missing[1:])
    raise DataError(text)
