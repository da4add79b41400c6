"""An output never replaces an input: the one check every tool that writes runs first.

A tool's outputs (a file or a folder it writes, renames or archives) are
compared with its inputs (files and folders it reads) before anything is
written, whatever ``--overwrite`` says. An output is refused when it

* **is** an input (the same path once ``..`` and symbolic links are
  resolved, or the same file under another name: a hard link,
  :func:`os.path.samefile`);
* **contains** an input (an output folder that holds an input: writing or
  archiving it would replace or move the input);
* **lies inside** an input folder (results written among the images a tool
  reads, which the next scan of that folder would take for inputs).

Paths that do not exist yet are resolved as far as they exist
(:func:`os.path.realpath`), so a new output under a symbolic link to an input
folder is caught too. URLs and empty values are skipped (they are refused or
ignored elsewhere).
"""

import os
import os.path as osp
from typing import Iterable, Optional, Tuple, Union

from basicattn.errors import UserError

PathLike = Union[str, os.PathLike]
Named = Tuple[str, Optional[PathLike]]  # (what the user calls it, e.g. '--gt', path)


def _inside(path: str, folder: str) -> bool:
    return path.startswith(folder.rstrip(os.sep) + os.sep)


def _same_file(a: str, b: str) -> bool:
    try:
        return osp.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def overlap(output: PathLike, input_path: PathLike) -> Optional[str]:
    """How ``output`` overlaps ``input_path``: 'is', 'contains', 'lies inside' or None.

    Args:
        output (str | os.PathLike): A path the tool writes (may not exist yet).
        input_path (str | os.PathLike): A path the tool reads.

    Returns:
        str | None: The relation, worded for a message, or None when they are apart.
    """
    out_real, in_real = osp.realpath(os.fspath(output)), osp.realpath(os.fspath(input_path))
    if out_real == in_real or _same_file(out_real, in_real):
        return 'is'
    if _inside(in_real, out_real):
        return 'contains'
    if _inside(out_real, in_real):
        return 'lies inside'
    return None


def _is_url(path: str) -> bool:
    return '://' in path


def _named(items: Iterable[Named]):
    for name, path in items:
        if path is None:
            continue
        text = os.fspath(path)
        if text and not _is_url(text):
            yield name, text


def refuse_outputs_over_inputs(outputs: Iterable[Named], inputs: Iterable[Named]) -> None:
    """Raise :class:`UserError` when an output is, contains or lies inside an input.

    Call it before anything is written (and regardless of ``--overwrite``).

    Args:
        outputs (Iterable[tuple[str, path]]): ``(name, path)`` of every output,
            ``name`` as the user knows it (``'OUT_DIR'``, ``'-o'``); None paths
            are skipped.
        inputs (Iterable[tuple[str, path]]): ``(name, path)`` of every input.

    Raises:
        UserError: Naming the output, the input, both paths and what to do.
    """
    inputs = list(_named(inputs))
    for out_name, out_path in _named(outputs):
        for in_name, in_path in inputs:
            relation = overlap(out_path, in_path)
            if relation is not None:
                raise UserError(
                    f'{out_name} {out_path} {relation} the input {in_name} {in_path}; an output '
                    'never replaces an input (not even with --overwrite): write it elsewhere'
                )
