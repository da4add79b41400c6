"""tools/_bootstrap.py: a tool started by a python without torch uses the checkout's .venv."""

import os
import subprocess
import sys

import pytest
from conftest import REPO_ROOT


@pytest.fixture(scope='module')
def bare_python(tmp_path_factory):
    """A python with no torch: a fresh venv made from the base interpreter, no packages."""
    folder = tmp_path_factory.mktemp('bare') / 'venv'
    base = getattr(sys, '_base_executable', sys.executable)
    subprocess.run([base, '-m', 'venv', '--without-pip', str(folder)], check=True)
    return str(folder / 'bin' / 'python')


def _run(python, venv):
    env = {'PATH': os.environ.get('PATH', '/usr/bin:/bin'), 'BASICATTN_VENV': venv}
    return subprocess.run(
        [python, 'tools/get_flops.py', '--arch', 'EDSR', '--input-shape', '3', '8', '8'],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_restarts_with_the_checkout_environment(bare_python):
    out = _run(bare_python, sys.prefix)  # the environment running these tests has torch
    assert out.returncode == 0, out.stderr[-2000:]
    assert f'has no torch; running with {sys.prefix}/bin/python' in out.stderr
    assert '(1, 3, 8, 8) -> (1, 3, 32, 32)' in out.stdout


def test_without_an_environment_one_error_line(bare_python, tmp_path):
    out = _run(bare_python, str(tmp_path / 'no-venv'))
    assert out.returncode == 2
    assert out.stderr.count('\n') == 1 and out.stderr.startswith('error: torch is not installed')
    assert 'bash tools/setup_env.sh' in out.stderr
