"""The one way every tool reports the user's errors: :func:`run_tool`.

A tool's ``main`` runs its work through :func:`run_tool`. A
:class:`~basicattn.errors.UserError` (bad option, data file, checkpoint,
LMDB), a file that cannot be read or written (missing, no permission, disk
full) and Ctrl-C print one ``error: ...`` line on stderr and give exit code 2
(130 for Ctrl-C). Anything else is a bug in basicattn and keeps its traceback.
``--debug`` on the command line (or ``BASICATTN_DEBUG=1``, e.g. for torchrun
jobs) keeps the traceback for every error.
"""

import errno
import os
import sys

from basicattn.errors import UserError
from basicattn.utils.path_util import broken_link_target, shown_path

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
DEBUG_FLAG = '--debug'

# OSErrors that are about the user's files or machine, not about our code
_USER_ERRNOS = {
    errno.ENOENT: 'not found',
    errno.EACCES: 'permission denied',
    errno.EPERM: 'operation not permitted',
    errno.EISDIR: 'is a folder, expected a file',
    errno.ENOTDIR: 'a part of the path is not a folder',
    errno.EEXIST: 'already exists',
    errno.ENOTEMPTY: 'folder is not empty',
    errno.ENOSPC: 'no space left on the device',
    errno.EDQUOT: 'disk quota exceeded',
    errno.EROFS: 'read-only file system',
    errno.EFBIG: 'file too large',
    errno.ENAMETOOLONG: 'file name too long',
    errno.EINVAL: 'invalid argument',
    errno.EIO: 'input/output error',
}
_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def first_line_of_worker_error(message):
    """The original message of an error re-raised from a DataLoader worker.

    PyTorch re-raises a worker's exception as ``type(err)(text)`` where
    ``text`` holds the worker's whole traceback; its last line is
    ``module.Class: original message``.
    """
    if 'Original Traceback' not in message:
        return message
    last = [line for line in message.strip().splitlines() if line.strip()][-1]
    head, sep, rest = last.partition(': ')
    return rest if sep and ' ' not in head else last


# raised by our own code with a ready message (no errno) when a path is wrong
_PATH_ERRORS = (
    FileNotFoundError,
    FileExistsError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
)


def describe_os_error(err):
    """One line for an OSError about the user's files, or None if it is not one."""
    if isinstance(err, _PATH_ERRORS) and err.errno is None:
        return str(err)
    if not isinstance(err, OSError) or err.errno not in _USER_ERRNOS:
        return None
    what = err.strerror or _USER_ERRNOS[err.errno]
    target = None if err.errno != errno.ENOENT else broken_link_target(err.filename or '')
    if target is not None:  # the name exists: it points nowhere
        what = f'a broken symbolic link: it points to {target}, which does not exist'

    where = ' -> '.join(shown_path(f) for f in (err.filename, err.filename2) if f is not None)
    text = f'{where}: {what}' if where else what
    if err.errno in _SPACE_ERRNOS:
        text += ' (free some space or write the outputs elsewhere; nothing finished was lost)'
    return text


def describe(err):
    """The one-line message for a user-facing error, or None for a bug."""
    if isinstance(err, UserError):
        return first_line_of_worker_error(str(err))
    text = describe_os_error(err)
    if text is not None:
        return text
    try:
        import lmdb
    except ImportError:  # pragma: no cover  (lmdb is a requirement)
        return None
    if isinstance(err, lmdb.Error):  # paths are added where the database is opened
        return f'LMDB: {err}'
    return None


def debug_requested(argv):
    """True when ``--debug`` is among the arguments or ``BASICATTN_DEBUG`` is set."""
    return DEBUG_FLAG in (argv or []) or os.environ.get('BASICATTN_DEBUG', '') not in ('', '0')


def add_debug_argument(parser):
    """Give an argparse parser the ``--debug`` flag that :func:`run_tool` honours."""
    parser.add_argument(
        DEBUG_FLAG, action='store_true', help='show the full traceback of any error'
    )
    return parser


def run_tool(work, argv=None):
    """Run ``work(argv)`` and turn user-facing errors into one ``error:`` line.

    Args:
        work (callable): The tool's body; takes ``argv`` and returns an exit code.
        argv (list[str], optional): Arguments (default ``sys.argv[1:]``).

    Returns:
        int: ``work``'s exit code, 2 for a user-facing error, 130 for Ctrl-C.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = debug_requested(argv)
    try:
        return work(argv)
    except KeyboardInterrupt:
        if debug:
            raise
        print('error: interrupted (outputs that were complete are kept)', file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:  # noqa: BLE001  (sorted into user errors and bugs below)
        message = None if debug else describe(err)
        if message is None:
            raise
        print(f'error: {message}', file=sys.stderr, flush=True)
        return EXIT_USER_ERROR
