"""Make every tool run from a checkout: the repository's ``.venv`` and package.

Imported first by each script in ``tools/``:

* When the interpreter that started the tool has no torch (``python
  tools/train.py`` in a shell where ``.venv`` is not activated) and the
  checkout's environment exists (``BASICATTN_VENV``, default ``<repo>/.venv``,
  made by ``tools/setup_env.sh``), the tool restarts itself with that
  environment's python and says so in one line. Without it, one ``error:``
  line says how to create it. No traceback either way.
* Without ``pip install -e .``, the repository is put on ``sys.path``.
"""

import importlib.util
import os
import os.path as osp
import sys

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
VENV = os.environ.get('BASICATTN_VENV') or osp.join(REPO_ROOT, '.venv')
VENV_PYTHON = osp.join(VENV, 'bin', 'python')


if importlib.util.find_spec('torch') is None:
    # (a venv's python links to the base interpreter: compare prefixes, not files)
    if osp.isfile(VENV_PYTHON) and osp.realpath(sys.prefix) != osp.realpath(VENV):
        print(
            f'[basicattn] {sys.executable} has no torch; running with {VENV_PYTHON} '
            f'(activate it once with: source {VENV}/bin/activate)',
            file=sys.stderr,
        )
        sys.stderr.flush()
        os.execv(VENV_PYTHON, [VENV_PYTHON, *sys.argv])
    print(
        f'error: torch is not installed for {sys.executable}; run `bash tools/setup_env.sh` '
        f'(it creates {VENV}), then `source {VENV}/bin/activate`',
        file=sys.stderr,
    )
    sys.exit(2)

try:
    import basicattn  # noqa: F401
except ImportError:
    sys.path.insert(0, REPO_ROOT)
