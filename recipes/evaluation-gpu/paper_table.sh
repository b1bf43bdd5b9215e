#!/usr/bin/env bash
# The paper's whole table for a list of models: every benchmark it reports, run by its own harness, then one
# comparison table in the paper's layout (benchmarks down; our models, then the paper's columns, across).
#
#   MODELS="raw=$PWD/runs/raw/model ours=$PWD/runs/ours/model" HELMET_DIR=$PWD/HELMET LCB_DIR=$PWD/long-code-bench \
#       bash recipes/evaluation-gpu/paper_table.sh
#   SKIP="helmet longcodebench" ...     # leave harnesses out (their rows read "-", with the reason)
#   SKIP=all ...                        # only rebuild the table from what is already under $OUT
#
# Steps (names for SKIP), each the recipe beside this file with its own header for install and sizing:
#   ruler         lm_eval_ruler.sh at RULER_LENGTHS (default 65536: the paper's RULER@64k)
#   helmet        helmet.sh (needs HELMET_DIR; HELMET@32k is read from its 32768 rows)
#   humaneval     evalplus.sh on HumanEval (greedy pass@1)
#   longcodebench longcodebench.sh at LCB_LENGTHS (default "32K 64K"; needs LCB_DIR; 64K needs the harness's
#                 vLLM max_model_len raised first, see that script)
#   reasoning     lm_eval_reasoning.sh: BBH, MATH, GSM8k, AGIEval
#   aptbench      aptbench.sh: the whole of APTBench (retrace's `aptbench` task)
# Model paths must be absolute (HELMET and LongCodeBench run inside their own clones). Every step writes under
# $OUT/<step's folder>/<name>/ and records its command; a step that fails is logged to
# $OUT/paper_table_failures.txt and the next one runs, so one broken harness costs its rows only. The table
# (`python -m retrace.evaluation.paper_table`) is written to $OUT/paper_table.md and .json, each number with the
# file it came from, and $OUT/harness_versions.txt records the versions and commits that ran; the script exits
# non-zero when a step failed. Sizing and the whole-run estimate:
# docs/evaluation.md, "The paper's table on GPUs".
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
here=$(dirname "$0")
PYTHON=${PYTHON:-python}
SKIP=${SKIP:-}
STEPS="ruler helmet humaneval longcodebench reasoning aptbench"
[[ $SKIP == all ]] && SKIP=$STEPS
for step in $SKIP; do
    [[ " $STEPS " == *" $step "* ]] || { echo "SKIP: unknown step '$step' (steps: $STEPS)" >&2; exit 2; }
done
wanted() { [[ " $SKIP " != *" $1 "* ]]; }

# Fail before any GPU time is spent when a wanted step cannot start.
problems=()
wanted helmet && [[ -z ${HELMET_DIR:-} ]] && problems+=("helmet: set HELMET_DIR (or SKIP=helmet)")
wanted longcodebench && [[ -z ${LCB_DIR:-} ]] && problems+=("longcodebench: set LCB_DIR (or SKIP=longcodebench)")
wanted aptbench && [[ ! -f $here/aptbench.sh ]] && problems+=("aptbench: $here/aptbench.sh missing (or SKIP=aptbench)")
for spec in $MODELS; do
    if wanted helmet || wanted longcodebench; then
        [[ ${spec#*=} == /* ]] || problems+=("model path of '${spec%%=*}' must be absolute for HELMET/LongCodeBench")
    fi
done
if (( ${#problems[@]} )); then printf '%s\n' "${problems[@]}" >&2; exit 2; fi

# What ran, for the table's record: package versions in $PYTHON's environment and the harness clones' commits.
{ for package in lm_eval evalplus vllm transformers torch; do
      echo "$package $("$PYTHON" -c 'import importlib.metadata as m, sys; print(m.version(sys.argv[1]))' \
          "$package" 2>/dev/null || echo "not installed beside $PYTHON")"
  done
  for clone in "${HELMET_DIR:-}" "${LCB_DIR:-}"; do
      if [[ -n $clone ]]; then
          echo "$(basename "$clone") $(git -C "$clone" rev-parse HEAD 2>/dev/null || echo unknown)"
      fi
  done
} > "$OUT/harness_versions.txt"

failures=$OUT/paper_table_failures.txt
: > "$failures"
run_step() {  # run_step <name> <command...>: run unless skipped; a failure is logged, not fatal
    local step=$1; shift
    if ! wanted "$step"; then echo "== $step: skipped"; return 0; fi
    echo "== $step: $*"
    if ! "$@"; then echo "$(date -u +%FT%TZ) $step failed: $*" | tee -a "$failures" >&2; fi
}
run_step ruler env LENGTHS="${RULER_LENGTHS:-65536}" bash "$here/lm_eval_ruler.sh"
run_step helmet bash "$here/helmet.sh"
run_step humaneval env DATASETS=humaneval bash "$here/evalplus.sh"
run_step longcodebench env LENGTHS="${LCB_LENGTHS:-32K 64K}" bash "$here/longcodebench.sh"
run_step reasoning bash "$here/lm_eval_reasoning.sh"
run_step aptbench bash "$here/aptbench.sh"

names=(); for spec in $MODELS; do names+=("${spec%%=*}"); done
read -ra categories <<< "${HELMET_CATEGORIES:-Recall RAG Re-rank Cite ICL}"   # averaged into HELMET@32k
"$PYTHON" -m retrace.evaluation.paper_table "$OUT" --models "${names[@]}" --helmet_categories "${categories[@]}"
if [[ -s $failures ]]; then echo "failed steps (their rows read '-'):" >&2; cat "$failures" >&2; exit 1; fi
