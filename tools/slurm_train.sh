#!/usr/bin/env bash
# Training on a SLURM cluster, one task per GPU.
#   tools/slurm_train.sh PARTITION JOB_NAME OPTION_FILE [tools/train.py arguments]
# Environment: GPUS (total, default 8), GPUS_PER_NODE (8), CPUS_PER_TASK (5),
# SRUN_ARGS (extra srun options). Each task reads its rank from SLURM's
# variables (--launcher slurm); the master port is dist_params.port.
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 PARTITION JOB_NAME OPTION_FILE [train.py args]" >&2
    exit 2
fi
PARTITION=$1
JOB_NAME=$2
OPT=$3
shift 3
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
TOOLS_DIR=$(cd "$(dirname "$0")" && pwd)
export PYTHONPATH="$TOOLS_DIR/..${PYTHONPATH:+:$PYTHONPATH}"
# the checkout's environment (tools/setup_env.sh) unless PYTHON names another interpreter
VENV=${BASICATTN_VENV:-$TOOLS_DIR/../.venv}
if [ -z "${PYTHON:-}" ] && [ -x "$VENV/bin/python" ]; then
    PYTHON="$VENV/bin/python"
fi
# shellcheck disable=SC2086
srun -p "$PARTITION" --job-name="$JOB_NAME" --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 ${SRUN_ARGS:-} \
    "${PYTHON:-python}" -u "$TOOLS_DIR/train.py" -opt "$OPT" --launcher slurm "$@"
