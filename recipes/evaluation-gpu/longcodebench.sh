#!/usr/bin/env bash
# LongCodeBench (Rando et al., 2025): LongCodeQA, multiple-choice questions about whole repositories, at 32k
# (the paper's LongCodeBench-32k; 64k optional), with the benchmark's own harness (hydra + vLLM).
#
#   git clone https://github.com/Zteefano/long-code-bench && (cd long-code-bench && pixi install)
#   # data: the LongCodeQA splits (Hugging Face dataset Steefano/LCB) under long-code-bench/data/LongCodeQA/
#   LCB_DIR=long-code-bench MODELS="raw=$PWD/runs/raw/model ours=$PWD/runs/ours/model" \
#       bash recipes/evaluation-gpu/longcodebench.sh
#
# The least settled of these recipes: the upstream harness is research code without releases. Pin LCB_REV to
# the commit you verified (TODO-lead: pin it after the first GPU run), check that its conf/dataset/codeqa/<L>.yaml
# paths match the downloaded data, and check the accuracy it prints against the saved predictions (at some
# revisions its LongCodeQA scorer reads a field the runner does not write). The model config written below
# uses the harness's vLLM model class; its sampling (temperature 0.7) is the harness's, not ours, and at the
# revision read it fixes tensor_parallel_size=2 and max_model_len=50000: 32K runs on two GPUs as is, 64K
# (LENGTHS="32K 64K") needs that class's max_model_len raised first.
source "$(dirname "$0")/common.sh"
LCB_DIR=${LCB_DIR:?set LCB_DIR to a clone of Zteefano/long-code-bench}
LCB_REV=${LCB_REV:-}
LENGTHS=${LENGTHS:-32K}
[[ -n $LCB_REV ]] && git -C "$LCB_DIR" checkout --quiet "$LCB_REV"
out=$(realpath "$OUT")
for spec in $MODELS; do
    name=${spec%%=*}; path=${spec#*=}
    printf '_target_: src.long_code_bench.models.vllm.OpenSourceVLLMModel\nhf_path: %s\n' "$path" \
        > "$LCB_DIR/conf/model/retrace_$name.yaml"
    for length in $LENGTHS; do
        mkdir -p "$out/longcodebench/$name"
        cmd=(pixi r python eval.py "dataset=codeqa/$length" "model=retrace_$name"
             "output=$out/longcodebench/$name/codeqa_$length.json" batch_size=8 batch_queue=false)
        record_run "$out/longcodebench/$name" "${cmd[@]}"
        (cd "$LCB_DIR" && "${cmd[@]}")
    done
done
