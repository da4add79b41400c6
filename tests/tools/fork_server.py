"""Run many tool invocations quickly: import once, then fork a process per run.

Started by :class:`ForkServer` (below) as ``python tests/tools/fork_server.py``.
It imports torch, mmengine and basicattn once (about 3 s that every fresh
``python tools/X.py`` pays again), then reads one JSON request per line on
stdin: ``{"script", "args", "cwd", "env", "stdout", "stderr", "timeout"}``.
For each it forks a child that runs the script as ``__main__`` with its own
stdout/stderr files, exactly as the interpreter would (an uncaught exception
prints its traceback and gives exit code 1), and answers
``{"returncode": N}`` (``-9`` when the child ran past its timeout).

Each child is a separate process forked from the same freshly-imported
state, so runs never see each other's registrations, loggers or globals.
Nothing here runs a parallel torch op before forking (no thread pool exists
that a child could inherit in a locked state).
"""

import json
import os
import runpy
import signal
import subprocess
import sys
import time
import traceback


def _preload():
    import cv2  # noqa: F401
    import lmdb  # noqa: F401
    import mmengine.runner  # noqa: F401
    import torch  # noqa: F401
    import torch.utils.tensorboard  # noqa: F401

    import basicattn.engine  # noqa: F401
    from basicattn import registry

    for name in ('ARCHS', 'DATASETS', 'LOSSES', 'METRICS', 'MODELS'):
        getattr(registry, name).import_from_location()


def _child(request):
    os.chdir(request['cwd'])
    os.environ.update(request['env'])
    out = os.open(request['stdout'], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    err = os.open(request['stderr'], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(out, 1)
    os.dup2(err, 2)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    sys.stdin = open(0, closefd=False)
    sys.stdout = open(1, 'w', buffering=1, closefd=False)
    sys.stderr = open(2, 'w', buffering=1, closefd=False)
    script = os.path.abspath(request['script'])
    sys.argv = [script, *request['args']]
    sys.path[0] = os.path.dirname(script)
    code = 0
    try:
        runpy.run_path(script, run_name='__main__')
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
        if stop.code is not None and not isinstance(stop.code, int):
            print(stop.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001  (as the interpreter: traceback, exit 1)
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _wait(pid, timeout):
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return -9
        time.sleep(0.02)


def serve():
    _preload()
    print(json.dumps({'ready': True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)
        code = _wait(pid, request.get('timeout', 300))
        print(json.dumps({'returncode': code}), flush=True)


class ForkServer:
    """Client side: ``run(script, *args, cwd=..., env=..., timeout=...)``."""

    def __init__(self, python, env, workdir):
        self.workdir = workdir
        self.count = 0
        self.proc = subprocess.Popen(
            [python, os.path.abspath(__file__)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        ready = self.proc.stdout.readline()
        if not ready:
            raise RuntimeError('the fork server did not start')

    def run(self, script, *args, cwd, env=None, timeout=300):
        """Run ``script args`` in a forked child; return (returncode, stdout, stderr)."""
        self.count += 1
        out = os.path.join(self.workdir, f'run{self.count}.out')
        err = os.path.join(self.workdir, f'run{self.count}.err')
        request = dict(
            script=script,
            args=list(args),
            cwd=cwd,
            env=env or {},
            stdout=out,
            stderr=err,
            timeout=timeout,
        )
        self.proc.stdin.write(json.dumps(request) + '\n')
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline())
        with (
            open(out, encoding='utf-8', errors='replace') as f_out,
            open(err, encoding='utf-8', errors='replace') as f_err,
        ):
            return reply['returncode'], f_out.read(), f_err.read()

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


if __name__ == '__main__':
    serve()
