#!/usr/bin/env bash
# Create (or reuse) a virtual environment and install basicattn into it with
# its test, export (onnx, onnxruntime, onnxslim) and video (PyAV) extras, at the versions pinned in
# tools/constraints.txt. Used by tools/run_demo.sh,
# tools/run_tests.sh and CI.
#   BASICATTN_VENV  where the environment lives (default: <repo>/.venv)
#   PYTHON          interpreter that creates it (default: python3)
#   TORCH_SPEC      torch requirement installed first (default: torch==2.13.0)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${BASICATTN_VENV:-$ROOT/.venv}
if [ ! -x "$VENV/bin/python" ]; then
    echo "[setup] creating virtual environment $VENV"
    "${PYTHON:-python3}" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
# torch first, pinned: an unpinned resolution could pull a CUDA build of
# several GB; with a matching torch present the package's requirement is met.
if ! "$VENV/bin/python" -c 'import torch' >/dev/null 2>&1; then
    echo "[setup] installing ${TORCH_SPEC:-torch==2.13.0}"
    "${PIP[@]}" "${TORCH_SPEC:-torch==2.13.0}"
fi
echo "[setup] installing basicattn (editable) with test, export and video extras"
# tools/constraints.txt pins what README's demo figures depend on (opencv ...)
"${PIP[@]}" -c "$ROOT/tools/constraints.txt" -e "$ROOT[test,export,video]"
"$VENV/bin/python" -c 'import basicattn, torch, mmengine; print("[setup] basicattn", basicattn.__version__, "| torch", torch.__version__, "| mmengine", mmengine.__version__)'
