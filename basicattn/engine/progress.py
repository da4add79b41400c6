"""What a person sees on the console while basicattn runs.

* :class:`ConsoleDumpFilter` / :func:`quiet_console`: keep mmengine's start-up
  dumps (system environment, config, hook order; about 200 lines) out of the
  console while the log file keeps them. Warnings and errors always pass.
* :class:`QuietDumpsRunner`: mmengine's Runner whose logger gets that filter
  unless ``verbose``.
* :class:`SetProgress`: progress over the images/frames of one evaluation
  set, with the running mean of its first metric: a tqdm bar when stderr is a
  terminal, else a plain log line every 10 %.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Optional, Sequence

from mmengine.dist import is_main_process
from mmengine.logging import MMLogger, print_log
from mmengine.runner import Runner

# how mmengine's Runner starts the INFO messages it dumps at start-up
DUMP_PREFIXES = (
    'System environment:',
    'Config:',
    'Hooks will be executed in the following order',
)


class ConsoleDumpFilter(logging.Filter):
    """Drop mmengine's start-up dumps (INFO records starting with :data:`DUMP_PREFIXES`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Return False for a start-up dump at INFO level or below, True otherwise."""
        if record.levelno > logging.INFO:
            return True
        text = record.getMessage().lstrip('\n-')
        return not text.startswith(DUMP_PREFIXES)


def quiet_console(logger: logging.Logger, verbose: bool = False) -> logging.Logger:
    """Keep mmengine's dumps off ``logger``'s console handlers unless ``verbose``.

    File handlers are left alone, so the log file still holds the dumps.

    Args:
        logger: An :class:`mmengine.logging.MMLogger` (or any logger).
        verbose: Leave the console as it is.

    Returns:
        The same logger.
    """
    if verbose:
        return logger
    for handler in logger.handlers:
        is_console = isinstance(handler, logging.StreamHandler) and not isinstance(
            handler, logging.FileHandler
        )
        if is_console and not any(isinstance(f, ConsoleDumpFilter) for f in handler.filters):
            handler.addFilter(ConsoleDumpFilter())
    return logger


class QuietDumpsRunner(Runner):
    """mmengine's Runner, with the start-up dumps in the log file only unless ``verbose``.

    Args:
        *args: Passed to :class:`mmengine.runner.Runner`.
        verbose: Also print the dumps on the console.
        **kwargs: Passed to :class:`mmengine.runner.Runner`.
    """

    def __init__(self, *args: Any, verbose: bool = False, **kwargs: Any):
        self._verbose_console = verbose  # read by build_logger, called inside __init__
        super().__init__(*args, **kwargs)

    def build_logger(
        self, log_level: Any = 'INFO', log_file: Optional[str] = None, **kwargs: Any
    ) -> MMLogger:
        """Build mmengine's logger, then filter its console handler (see :func:`quiet_console`)."""
        logger = super().build_logger(log_level=log_level, log_file=log_file, **kwargs)
        return quiet_console(logger, getattr(self, '_verbose_console', False))


def _first_metric(evaluator: Any) -> Any:
    metrics: Sequence[Any] = getattr(evaluator, 'metrics', None) or []
    return metrics[0] if metrics else None


class SetProgress:
    """Progress over one evaluation set, shown on the main process only.

    On a terminal (stderr is a TTY) a tqdm bar with count, ETA and the running
    mean of the set's first metric; otherwise (logs, CI) a plain log line each
    time another 10 % of the set is done, so that logs are not flooded.

    Args:
        phase: ``'val'`` or ``'test'``.
        set_name: The set's name.
        total: Images (or frames) this process evaluates.
        evaluator: The set's evaluator; the running mean reads the
            ``value`` of the results of its first metric, when it has them.
        stream: Where the bar goes (default ``sys.stderr``).
        tty: Force the bar on or off (default: whether ``stream`` is a TTY).
    """

    def __init__(
        self,
        phase: str,
        set_name: str,
        total: int,
        evaluator: Any = None,
        stream: Any = None,
        tty: Optional[bool] = None,
    ):
        self.phase, self.set_name, self.total = phase, set_name, max(int(total), 0)
        self.metric = _first_metric(evaluator)
        self.count, self._sum, self._seen = 0, 0.0, 0
        self._last_decile = 0
        self._start = time.time()
        self.enabled = is_main_process() and self.total > 0
        stream = stream if stream is not None else sys.stderr
        if tty is None:
            tty = bool(getattr(stream, 'isatty', lambda: False)())
        self.bar = None
        if self.enabled and tty:
            from tqdm import tqdm

            self.bar = tqdm(
                total=self.total,
                desc=f'{phase} {set_name}',
                unit='img',
                file=stream,
                leave=phase == 'test',
                dynamic_ncols=True,
                mininterval=0.5,
            )

    def running_mean(self) -> Optional[float]:
        """The mean of the first metric over the images so far (None if unknown)."""
        results = getattr(self.metric, 'results', None)
        if not isinstance(results, list):
            return None
        for result in results[self._seen :]:
            value = result.get('value') if isinstance(result, dict) else None
            if isinstance(value, (int, float)):
                self._sum += float(value)
                self._seen += 1
            else:
                return None
        return self._sum / self._seen if self._seen else None

    def _mean_text(self) -> str:
        mean = self.running_mean()
        name = getattr(self.metric, 'name', 'mean')
        return f'{name} {mean:.4f}' if mean is not None else ''

    def update(self, n: int = 1) -> None:
        """Record ``n`` more images done."""
        if not self.enabled:
            return
        self.count += n
        if self.bar is not None:
            self.bar.set_postfix_str(self._mean_text(), refresh=False)
            self.bar.update(n)
            return
        decile = min(self.count * 10 // self.total, 10)
        if decile > self._last_decile:
            self._last_decile = decile
            self._log_line()

    def _log_line(self) -> None:
        elapsed = time.time() - self._start
        eta = elapsed / self.count * (self.total - self.count) if self.count else 0.0
        mean = self._mean_text()
        print_log(
            f'{self.phase} {self.set_name}: {self.count}/{self.total} images'
            + (f', {mean}' if mean else '')
            + f', {elapsed:.0f}s elapsed, ETA {eta:.0f}s',
            logger='current',
        )

    def close(self) -> None:
        """Close the bar."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
