#!/usr/bin/env bash
# Distributed training with torchrun, one process per GPU (or per CPU worker).
#   tools/dist_train.sh NUM_GPUS OPTION_FILE [tools/train.py arguments]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node.
# Without CUDA the processes talk over gloo (useful for CPU checks).
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 NUM_GPUS OPTION_FILE [train.py args]" >&2
    exit 2
fi
GPUS=$1
OPT=$2
shift 2
TOOLS_DIR=$(cd "$(dirname "$0")" && pwd)
export PYTHONPATH="$TOOLS_DIR/..${PYTHONPATH:+:$PYTHONPATH}"
# the checkout's environment (tools/setup_env.sh) unless PYTHON names another interpreter
VENV=${BASICATTN_VENV:-$TOOLS_DIR/../.venv}
if [ -z "${PYTHON:-}" ] && [ -x "$VENV/bin/python" ]; then
    PYTHON="$VENV/bin/python"
fi
exec "${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-29500}" \
    --nproc_per_node="$GPUS" \
    "$TOOLS_DIR/train.py" -opt "$OPT" --launcher pytorch "$@"
