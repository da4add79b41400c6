#!/usr/bin/env bash
# Set up the environment (tools/setup_env.sh) and run the embedded demo
# (tools/demo.py): train a small x2 network on photographs shipped inside
# scikit-image and report its PSNR gain over bicubic on held-out photographs.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${BASICATTN_VENV:-$ROOT/.venv}
bash "$ROOT/tools/setup_env.sh"
cd "$ROOT"
exec "$VENV/bin/python" tools/demo.py "$@"
