# shellcheck shell=bash
# Shared by the GPU evaluation recipes in this folder (sourced, not run).
#
# MODELS: space-separated `name=path` pairs, the same names as evaluate.py's --models, e.g.
#   MODELS="base=meta-llama/Meta-Llama-3-8B-Instruct raw=runs/raw/model ours=runs/ours/model"
# OUT: where each harness writes (one folder per harness and model). TP: GPUs per model.
set -euo pipefail
MODELS=${MODELS:?set MODELS="name=path ..." (see the header of the recipe you ran)}
OUT=${OUT:-runs/eval-gpu}
TP=${TP:-1}
DTYPE=${DTYPE:-bfloat16}
SEED=${SEED:-0}
mkdir -p "$OUT"

# Every harness run leaves a note of exactly what ran beside its outputs.
record_run() {  # record_run <dir> <command...>
    local dir=$1; shift
    mkdir -p "$dir"
    { echo "# $(date -u +%FT%TZ) retrace $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
      printf '%q ' "$@"; echo; } >> "$dir/commands.sh"
}
