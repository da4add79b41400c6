"""Runtime per output frame of a test run, as SR papers report it.

``tools/test.py`` gives the model a :class:`ForwardTimer`
(:attr:`SRModel.forward_timer <basicattn.models.sr_model.SRModel>`); the
model then runs every test-time forward through :meth:`ForwardTimer.measure`:

* what is timed is the forward that turns a batch of inputs into its outputs
  on the device, with every test-time setting in it (x8 self-ensemble, tiles,
  chop, autocast): :meth:`SRModel.inference`, or one recurrent step in
  video sequence mode. Loading, moving the batch to the device, copying the
  output back and the metrics are not timed;
* before the first timed forward of the run, one untimed warm-up forward
  runs on the top-left ``WARMUP_SIZE x WARMUP_SIZE`` crop of the same input
  (CUDA context, kernels, allocator, lazy initialisation) and is thrown
  away: a crop, so that the warm-up costs little even when the first image
  is large (the whole input when the crop fails, for an arch that needs a
  larger one). In sequence mode it starts from a zero state, so the carried
  state is not touched. The metrics use only the timed forward's output,
  so timing changes no metric value;
* on CUDA the device is synchronised before and after the timed forward, so
  the time is the device's, not the launch's;
* a batch of ``N`` output frames (images, or centre frames of video windows)
  taking ``t`` ms counts as ``N`` frames of ``t / N`` ms.

:func:`runtime_record` turns the samples of every process into what
``metrics.json`` records under ``runtime``: per set the mean and median
ms per frame and the number of frames, and the device (CUDA device name, or
the CPU model), the torch version and the thread count.
"""

import platform
import statistics
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

import torch

from basicattn.metrics.results_table import device_text

__all__ = [
    'ForwardTimer',
    'cpu_model',
    'device_info',
    'runtime_lines',
    'runtime_record',
    'warmup_crop',
]

T = TypeVar('T')

#: One timed forward: ``(set name, milliseconds, output frames)``.
Sample = Tuple[str, float, int]
#: Height and width (input pixels) of the warm-up crop.
WARMUP_SIZE = 64


def warmup_crop(lq: torch.Tensor) -> torch.Tensor:
    """The top-left ``WARMUP_SIZE x WARMUP_SIZE`` of ``lq`` (its last two axes)."""
    return lq[..., :WARMUP_SIZE, :WARMUP_SIZE]


def _frames(output: Any) -> int:
    """Output frames of a forward: the batch size of its (first) tensor."""
    if isinstance(output, (tuple, list)) and output:
        output = output[0]
    return int(output.shape[0]) if torch.is_tensor(output) and output.dim() > 0 else 1


def _synchronize(device: Optional[torch.device]) -> None:
    if device is not None and device.type == 'cuda':
        torch.cuda.synchronize(device)


class ForwardTimer:
    """Collects the wall time of test-time forwards, per test set.

    Args:
        set_name: Returns the name of the set being tested (called once per
            forward), e.g. ``lambda: runner.test_loop.current_set``.
        clock: Seconds, monotonic (``time.perf_counter``; tests pass a fake).

    Attributes:
        samples (list): ``(set, ms, frames)`` of every timed forward, in order.
        device (torch.device | None): The device of the last timed input.
    """

    def __init__(
        self,
        set_name: Callable[[], Optional[str]] = lambda: None,
        clock: Callable[[], float] = time.perf_counter,
    ):
        self.set_name = set_name
        self.clock = clock
        self.samples: List[Sample] = []
        self.device: Optional[torch.device] = None
        self.warmed_up = False

    def measure(
        self,
        run: Callable[[torch.Tensor], T],
        lq: torch.Tensor,
        warmup: Optional[Callable[[torch.Tensor], Any]] = None,
    ) -> T:
        """Return ``run(lq)``, timed (after one untimed warm-up the first time).

        Args:
            run: The forward, e.g. ``model.inference``.
            lq: Its input.
            warmup: The untimed warm-up forward when it must differ from
                ``run`` (a recurrent step from a zero state); default ``run``.
                It gets :func:`warmup_crop` ``(lq)``, or ``lq`` if that fails.
        """
        self.device = lq.device
        if not self.warmed_up:
            self._warm_up(warmup or run, lq)
        _synchronize(self.device)
        start = self.clock()
        output = run(lq)
        _synchronize(self.device)
        elapsed_ms = (self.clock() - start) * 1000.0
        self.samples.append((str(self.set_name() or 'test'), elapsed_ms, _frames(output)))
        return output

    def _warm_up(self, forward: Callable[[torch.Tensor], Any], lq: torch.Tensor) -> None:
        crop = warmup_crop(lq)
        try:
            forward(crop)
        except (RuntimeError, ValueError):
            if crop.shape == lq.shape:
                raise
            forward(lq)  # an arch that needs more than the crop: warm up on the whole input
        self.warmed_up = True


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else ``platform.processor()`` or the machine."""
    try:
        with open('/proc/cpuinfo', encoding='utf-8', errors='replace') as f:
            for line in f:
                key, sep, value = line.partition(':')
                if sep and key.strip() in ('model name', 'Model', 'Hardware') and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or 'unknown CPU'


def device_info(device: Optional[torch.device]) -> Dict[str, Any]:
    """``device`` (its name), ``device_type``, ``threads`` and ``torch`` of a timed run."""
    device = device or torch.device('cpu')
    if device.type == 'cuda':
        name = torch.cuda.get_device_name(device)
    elif device.type == 'cpu':
        name = cpu_model()
    else:
        name = device.type
    return {
        'device': name,
        'device_type': device.type,
        'threads': torch.get_num_threads(),
        'torch': torch.__version__,
    }


def _set_summary(samples: Sequence[Sample]) -> Dict[str, Any]:
    per_frame = [ms / frames for _, ms, frames in samples for _ in range(frames)]
    return {
        'ms_per_frame': sum(ms for _, ms, _ in samples) / len(per_frame),
        'ms_per_frame_median': statistics.median(per_frame),
        'frames': len(per_frame),
    }


def runtime_record(
    samples_per_process: Sequence[Sequence[Sample]], device: Optional[torch.device]
) -> Optional[Dict[str, Any]]:
    """What ``metrics.json`` records under ``runtime``; None when nothing was timed.

    Args:
        samples_per_process: :attr:`ForwardTimer.samples` of every process
            (one list for a single-process run).
        device: The timed device of this process (named in the record).

    Returns:
        dict: ``device``, ``device_type``, ``threads``, ``torch``,
        ``processes`` and ``sets``: ``{set: {ms_per_frame (mean),
        ms_per_frame_median, frames}}`` over the frames of every process, sets
        in the order they were first timed.
    """
    by_set: Dict[str, List[Sample]] = {}
    for samples in samples_per_process:
        for sample in samples:
            by_set.setdefault(sample[0], []).append(sample)
    if not by_set:
        return None
    record = device_info(device)
    record['processes'] = len(samples_per_process)
    record['sets'] = {name: _set_summary(samples) for name, samples in by_set.items()}
    return record


def runtime_lines(runtime: Optional[Dict[str, Any]]) -> List[str]:
    """What ``tools/test.py`` prints of a ``runtime`` record: one line per set, then the device."""
    if not runtime:
        return []
    lines = [
        f'{name}: {s["ms_per_frame"]:.1f} ms/frame (median {s["ms_per_frame_median"]:.1f}, '
        f'{s["frames"]} frames)'
        for name, s in runtime['sets'].items()
    ]
    return lines + [f'forward time per output frame on {device_text(runtime)}']
