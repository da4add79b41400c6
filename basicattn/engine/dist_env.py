"""Start the process group for ``--launcher pytorch|slurm``, on GPUs or CPUs.

mmengine's ``init_dist`` always calls ``torch.cuda.set_device``, which fails on
a CPU-only build of torch. Without CUDA we start the process group ourselves
with the gloo backend; the Runner then sees it initialised and leaves it be.
"""
import os
import subprocess

import torch
import torch.distributed as dist


def resolve_backend(backend='auto'):
    """``'auto'`` means nccl when CUDA is usable, gloo otherwise."""
    if backend == 'auto':
        return 'nccl' if torch.cuda.is_available() else 'gloo'
    if backend == 'nccl' and not torch.cuda.is_available():
        return 'gloo'
    return backend


def _slurm_environment(port):
    """Derive torch.distributed's variables from SLURM's (as srun sets them)."""
    proc_id = int(os.environ['SLURM_PROCID'])
    ntasks = int(os.environ['SLURM_NTASKS'])
    node_list = os.environ['SLURM_NODELIST']
    first_host = subprocess.getoutput(f'scontrol show hostname {node_list} | head -n1')
    os.environ.setdefault('MASTER_PORT', str(port))
    os.environ.setdefault('MASTER_ADDR', first_host)
    os.environ['WORLD_SIZE'] = str(ntasks)
    os.environ['RANK'] = str(proc_id)
    os.environ['LOCAL_RANK'] = str(int(os.environ.get('SLURM_LOCALID', proc_id)))


def init_distributed(launcher, backend='auto', port=29500):
    """Initialise torch.distributed for a launcher unless already done.

    Args:
        launcher (str): 'none', 'pytorch' (torchrun) or 'slurm'.
        backend (str): 'auto', 'nccl', 'gloo' or 'mpi'.
        port (int): Master port used by the slurm launcher.

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
    dist.init_process_group(backend=backend)
    return backend


def finish_distributed(wait_for_others=True):
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
