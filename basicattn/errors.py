"""Errors that are the user's to fix.

Raise the most specific subclass, with a message that names the file, key or
value at fault and says what to do. Subclasses take a single message argument
so that code which re-raises ``type(err)(message)`` keeps working. Tools report
them through :func:`basicattn.utils.tool_runner.run_tool`: one ``error: ...``
line on stderr and exit code 2.
"""


class UserError(Exception):
    """Something the user gave (a file, key or value) is wrong; the message says what to do."""


class OptionError(UserError, ValueError):
    """One or more problems in an option file (each names file and key path).

    ``OptionError(message)`` with a single argument is a ready message.
    ``files`` (one per problem) names the file in which each problem's key
    was written when that is not ``source`` (a ``_base_`` file, ``--set``).
    """

    def __init__(self, source, problems=None, files=None):
        if problems is None:
            self.source, self.problems, self.files = None, [str(source)], [None]
            super().__init__(str(source))
            return
        self.source = source
        self.problems = list(problems)
        self.files = list(files) if files is not None else [source] * len(self.problems)
        lines = [f'{f}: {p}' for f, p in zip(self.files, self.problems)]
        header = f'{len(self.problems)} problem(s) in option file {source}:\n  '
        super().__init__(header + '\n  '.join(lines))


class CheckpointError(UserError, RuntimeError):
    """A checkpoint that cannot or must not be loaded (torn, unsafe, remote, wrong kind)."""


class DataError(UserError, ValueError):
    """A dataset, image, video or LMDB that cannot be used as it is."""


class NonFiniteError(UserError, ArithmeticError):
    """NaN or inf where numbers must be finite: a diverged training run (loss,
    gradient, weights), a checkpoint's weights or a network's output."""
