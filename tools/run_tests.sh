#!/usr/bin/env bash
# Set up the environment (tools/setup_env.sh) and run the whole test suite,
# slow real-data and multi-process checks included. Extra arguments go to
# pytest, e.g. `bash tools/run_tests.sh -m "not slow"` for the quick part.
# Real data is read from BASICATTN_TESTDATA (default ../shared/data).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${BASICATTN_VENV:-$ROOT/.venv}
bash "$ROOT/tools/setup_env.sh"
cd "$ROOT"
export BASICATTN_TESTDATA=${BASICATTN_TESTDATA:-$ROOT/../shared/data}
exec "$VENV/bin/python" -m pytest "$@"
