#!/usr/bin/env bash
# APTBench (Qin et al., 2025), the paper's agentic benchmark, at the published protocol: its 3-shot prompts,
# greedy generation and its answer extraction, on every item of the software-engineering subset (issue-fix
# locate 283, env-setup error 147, env-setup action 1,084) through retrace's `aptbench` task on vLLM.
#
#   git clone https://github.com/TencentYoutuResearch/APTBench && \
#       git -C APTBench checkout f944ac1ff6b81e659e1c314c3b1cf6433b560b7a
#   APTBENCH_DIR=$PWD/APTBench MODELS="raw=runs/raw/model ours=runs/ours/model" bash recipes/evaluation-gpu/aptbench.sh
#   (no APTBENCH_DIR: $RETRACE_APTBENCH_DATA, else ../shared/data/aptbench, the same files offline)
#   BACKEND=hf ...           # transformers instead of vLLM
#   PUBLISHED=1 ...          # also run APTBench's own code/predict.py on every task of the clone (needs its
#                            # requirements.txt; its other tasks are not in retrace's subset)
#
# Sized for one 80 GB GPU per 8B model at MAX_LEN=65536 (the paper's models are trained at 64k): 1,514
# prompts, ~6M prompt tokens (locate's prompt is ~10k tokens before its item; an estimate from the item
# lengths, not a measurement), tens of minutes on an H100 with vLLM.
# At MAX_LEN the full prompt of nearly every item fits; an item whose prompt does not is scored by
# log-likelihood of its choices and reported apart (`<subtask>_acc_loglik`, see docs/evaluation.md,
# "APTBench"); SCORING=generate instead cuts such a prompt in the middle and generates, as the published
# harness does (at 120k tokens there). Results: $OUT/aptbench/<name>/results.json (`average` and per subtask).
source "$(dirname "$0")/common.sh"
BACKEND=${BACKEND:-vllm}
MAX_LEN=${MAX_LEN:-65536}
SCORING=${SCORING:-auto}
data=(); [[ -n ${APTBENCH_DIR:-} ]] && data=(--aptbench_data "$APTBENCH_DIR")
revision=$(git -C "${APTBENCH_DIR:-.}" rev-parse HEAD 2>/dev/null || true)
[[ -n ${APTBENCH_DIR:-} && -n $revision ]] && data+=(--aptbench_revision "$revision")
engine=(--eval_backend "$BACKEND" --eval_dtype "$DTYPE" --eval_batch_size 8)
[[ $BACKEND == vllm ]] && engine+=(--eval_tensor_parallel_size "$TP" --eval_max_model_len "$MAX_LEN")
for spec in $MODELS; do
    name=${spec%%=*}; path=${spec#*=}
    cmd=(python evaluate.py --tasks aptbench --models "$spec" --output_dir "$OUT/aptbench/$name" --seed "$SEED"
         "${engine[@]}" "${data[@]}" --aptbench_samples 0 --aptbench_scoring "$SCORING")
    record_run "$OUT/aptbench/$name" "${cmd[@]}"
    "${cmd[@]}"
    if [[ ${PUBLISHED:-0} == 1 ]]; then
        APTBENCH_DIR=${APTBENCH_DIR:?PUBLISHED=1 runs the harness of a clone: set APTBENCH_DIR}
        published=$(realpath "$OUT/aptbench/$name/published")
        for dataset_task in env_setup/plan env_setup/action env_setup/error issue_fix/locate issue_fix/fix_patch \
                            issue_fix/plan issue_fix/action issue_fix/test_patch; do
            cmd=(python predict.py -d "${dataset_task%/*}" -t "${dataset_task#*/}" -m "$path" -b "$BACKEND"
                 -s "$published")
            record_run "$OUT/aptbench/$name" "${cmd[@]}"
            (cd "$APTBENCH_DIR/code" && "${cmd[@]}")
        done
        # The harness's accuracy: the share of items judged true, per task file.
        python - "$published" <<'EOF'
import json, pathlib, sys
for path in sorted(pathlib.Path(sys.argv[1]).glob("*/*/*.jsonl")):
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    print(f"{path.parent.parent.name}/{path.parent.name}: {100 * sum(r['judge'] for r in rows) / len(rows):.2f}% "
          f"of {len(rows)}")
EOF
    fi
done
