"""Start the process group for ``--launcher pytorch|slurm``, on GPUs or CPUs.

mmengine's ``init_dist`` always calls ``torch.cuda.set_device``, which fails on
a CPU-only build of torch. Without CUDA we start the process group ourselves
with the gloo backend; the Runner then sees it initialised and leaves it be.

Every collective waits at most ``dist_params.timeout`` seconds. When one times
out, :func:`collective_timeout_report` (wrapped around training and testing
by the tools) asks the other ranks, through the process group's key-value
store, which of them are still alive, and fails with one line naming the
ranks that did not answer: gloo's own message says only "Timed out waiting
5000ms for recv operation to complete".
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import subprocess
import time
from collections.abc import Iterator

import torch
import torch.distributed as dist

from basicattn.errors import UserError

DEFAULT_TIMEOUT_S = 600
_ROLL_CALL_KEY = 'basicattn/timeout_roll_call/{rank}'
_state = {'timeout_s': DEFAULT_TIMEOUT_S}


class DistributedError(UserError, RuntimeError):
    """The distributed job cannot start or cannot go on (launcher, peers, timeout)."""


class CollectiveTimeout(DistributedError):
    """A collective operation waited longer than ``dist_params.timeout`` for other ranks."""


def resolve_backend(backend: str = 'auto') -> str:
    """``'auto'`` means nccl when CUDA is usable, gloo otherwise."""
    if backend == 'auto':
        return 'nccl' if torch.cuda.is_available() else 'gloo'
    if backend == 'nccl' and not torch.cuda.is_available():
        return 'gloo'
    return backend


def first_slurm_host(node_list: str) -> str:
    """The first host name of a SLURM node list (``node[1-4]`` -> ``node1``).

    Runs ``scontrol show hostname NODE_LIST`` with an argument list (never
    through a shell, so the node list cannot inject commands).

    Raises:
        DistributedError: ``scontrol`` is missing, fails or prints nothing.
    """
    try:
        proc = subprocess.run(
            ['scontrol', 'show', 'hostname', node_list], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise DistributedError(
            '--launcher slurm: the scontrol command is not found; run inside a SLURM '
            'allocation (tools/slurm_train.sh) or set MASTER_ADDR to the first '
            "node's address"
        ) from None
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise DistributedError(
            f'--launcher slurm: scontrol show hostname {node_list!r} failed '
            f'(exit code {proc.returncode}){": " + detail[0] if detail else ""}'
        )
    hosts = [line.strip() for line in proc.stdout.splitlines() if line.strip()]
    if not hosts:
        raise DistributedError(
            f'--launcher slurm: scontrol show hostname {node_list!r} printed no host name'
        )
    return hosts[0]


def _slurm_environment(port):
    """Derive torch.distributed's variables from SLURM's (as srun sets them)."""
    try:
        proc_id = int(os.environ['SLURM_PROCID'])
        ntasks = int(os.environ['SLURM_NTASKS'])
        node_list = os.environ['SLURM_NODELIST']
    except KeyError as err:
        raise DistributedError(
            f'--launcher slurm: {err.args[0]} is not set; start the job '
            'with srun (tools/slurm_train.sh)'
        ) from None
    os.environ.setdefault('MASTER_PORT', str(port))
    if 'MASTER_ADDR' not in os.environ:
        os.environ['MASTER_ADDR'] = first_slurm_host(node_list)
    os.environ['WORLD_SIZE'] = str(ntasks)
    os.environ['RANK'] = str(proc_id)
    os.environ['LOCAL_RANK'] = str(int(os.environ.get('SLURM_LOCALID', proc_id)))


def init_distributed(
    launcher: str, backend: str = 'auto', port: int = 29500, timeout: int = DEFAULT_TIMEOUT_S
) -> str:
    """Initialise torch.distributed for a launcher unless already done.

    Args:
        launcher (str): 'none', 'pytorch' (torchrun) or 'slurm'.
        backend (str): 'auto', 'nccl', 'gloo' or 'mpi'.
        port (int): Master port used by the slurm launcher.
        timeout (int): Seconds a collective may wait for the other ranks
            (``dist_params.timeout``).

    Returns:
        str: The backend in use ('' for 'none').
    """
    if launcher == 'none':
        return ''
    if launcher not in ('pytorch', 'slurm'):
        raise ValueError(f'--launcher {launcher!r}: expected none, pytorch or slurm')
    backend = resolve_backend(backend)
    if dist.is_available() and dist.is_initialized():
        return dist.get_backend()
    if launcher == 'slurm':
        _slurm_environment(port)
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', 0)))
    _state['timeout_s'] = timeout
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout))
    return backend


def finish_distributed(wait_for_others: bool = True) -> None:
    """Tear the process group down once every rank is done.

    A rank that failed (``wait_for_others=False``) leaves without the barrier,
    which the others would never reach.

    Called by ``tools/train.py`` and ``tools/test.py`` before they exit: a
    process that leaves with gloo's threads still running can abort at exit
    (``terminate called without an active exception``), which fails the
    whole torchrun job although the work finished.
    """
    if dist.is_available() and dist.is_initialized():
        if wait_for_others:
            dist.barrier()
        dist.destroy_process_group()


def is_collective_timeout(err: BaseException) -> bool:
    """Whether ``err`` is a collective operation that timed out (gloo, nccl, store)."""
    if not isinstance(err, RuntimeError) or isinstance(err, UserError):
        return False
    text = str(err)
    if 'DataLoader' in text:  # a worker timeout, not a collective
        return False
    return re.search(r'timed out|timeout', text, re.IGNORECASE) is not None


def _default_store():
    from torch.distributed import distributed_c10d

    return distributed_c10d._get_default_store()


def silent_ranks(grace_s: float) -> list[int] | None:
    """Ranks that do not answer a roll call within ``grace_s`` seconds, or None.

    Every rank whose collective timed out writes its rank into the process
    group's store and waits for the others to do the same: ranks stuck in
    the same collective time out within moments of each other, so the ranks
    still missing at the end are the ones that stopped answering. None when
    the store cannot be reached (its host is gone).
    """
    rank, world = dist.get_rank(), dist.get_world_size()
    try:
        store = _default_store()
        # an unreachable store must not block for the whole process-group timeout
        store.set_timeout(datetime.timedelta(seconds=max(grace_s, 1.0)))
        store.set(_ROLL_CALL_KEY.format(rank=rank), str(os.getpid()))
        missing = [r for r in range(world) if r != rank]
        deadline = time.monotonic() + grace_s
        while missing:
            missing = [r for r in missing if not store.check([_ROLL_CALL_KEY.format(rank=r)])]
            if not missing or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
    except Exception:  # noqa: BLE001  (no store, no peers: say we do not know)
        return None
    return missing


def describe_timeout(
    err: BaseException, missing: list[int] | None, rank: int, world: int, timeout_s: float
) -> str:
    """The one line reported for a timed-out collective."""
    first = next((line for line in str(err).splitlines() if line.strip()), '')
    first = re.sub(r'^\[[^\]]*\]\s*', '', first)  # drop gloo's "[/path/file.cc:78]"
    text = (
        f'rank {rank}: a collective operation timed out after {timeout_s} s (dist_params.timeout); '
    )
    if missing is None:
        text += 'the other ranks could not be asked which of them is stuck'
    elif missing:
        text += (
            f'rank(s) that did not answer: {", ".join(map(str, missing))} (of {world}); '
            'look at their log for where they stopped'
        )
    else:
        text += (
            'every rank answered, so they wait in different collectives (the ranks are out of step)'
        )
    text += f'. Raise dist_params.timeout if a rank legitimately works alone for longer ({first})'
    return text


@contextlib.contextmanager
def collective_timeout_report(grace_s: float | None = None) -> Iterator[None]:
    """Turn a timed-out collective into a :class:`CollectiveTimeout` naming silent ranks.

    Wrap the part of a tool that runs collectives (training, testing). Outside
    a distributed run, and for any other error, it does nothing.

    Args:
        grace_s (float, optional): How long to wait for the other ranks' roll
            call (default: the timeout, at most 10 s).
    """
    try:
        yield
    except Exception as err:  # noqa: BLE001  (re-raised unless it is a timeout)
        distributed = dist.is_available() and dist.is_initialized()
        if not distributed or not is_collective_timeout(err):
            raise
        timeout_s = _state['timeout_s']
        grace = min(float(timeout_s), 10.0) if grace_s is None else grace_s
        missing = silent_ranks(grace)
        raise CollectiveTimeout(
            describe_timeout(err, missing, dist.get_rank(), dist.get_world_size(), timeout_s)
        ) from err
