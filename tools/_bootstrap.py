"""Let the tools run from a checkout without ``pip install -e .``."""

import os.path as osp
import sys

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
try:
    import basicattn  # noqa: F401
except ImportError:
    sys.path.insert(0, REPO_ROOT)
