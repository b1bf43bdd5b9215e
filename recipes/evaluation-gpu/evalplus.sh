#!/usr/bin/env bash
# EvalPlus: HumanEval+ and MBPP+ (80x / 35x more tests than the originals), greedy pass@1.
#
#   pip install "evalplus[vllm]==0.3.1"
#   MODELS="raw=runs/raw/model ours=runs/ours/model" bash recipes/evaluation-gpu/evalplus.sh
#   BACKEND=hf ...   # transformers instead of vLLM
#
# Sized for one GPU per 8B model (minutes). EvalPlus downloads its datasets once and executes the
# generated code in its own sandboxed processes: run it on a machine where that is acceptable. Our continued-
# pretrained models are completion models, so the base (completion) prompt is forced; drop BASE_PROMPT=1 to let
# EvalPlus use the chat template of an instruct model. Prints base (HumanEval/MBPP) and plus pass@1 per model;
# results land in $OUT/evalplus/<name>/<dataset>/.
source "$(dirname "$0")/common.sh"
BACKEND=${BACKEND:-vllm}
DATASETS=${DATASETS:-humaneval mbpp}
base=(); [[ ${BASE_PROMPT:-1} == 1 ]] && base=(--force_base_prompt)
for spec in $MODELS; do
    name=${spec%%=*}; path=${spec#*=}
    for dataset in $DATASETS; do
        cmd=(evalplus.evaluate --model "$path" --dataset "$dataset" --backend "$BACKEND" --greedy
             --tp "$TP" --root "$OUT/evalplus/$name" "${base[@]}")
        record_run "$OUT/evalplus/$name" "${cmd[@]}"
        "${cmd[@]}" | tee "$OUT/evalplus/$name/$dataset.txt"
    done
done
