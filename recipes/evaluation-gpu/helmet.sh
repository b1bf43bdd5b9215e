#!/usr/bin/env bash
# HELMET (Yen et al., ICLR 2025) at 8k-64k with its own harness; the paper reports HELMET@32k.
#
#   git clone https://github.com/princeton-nlp/HELMET && (cd HELMET && pip install -r requirements.txt \
#       && bash scripts/download_data.sh)          # ~34 GB of preprocessed data, once
#   HELMET_DIR=HELMET MODELS="raw=$PWD/runs/raw/model ours=$PWD/runs/ours/model" \
#       bash recipes/evaluation-gpu/helmet.sh
#
# Runs the `*_short` configs (each covers 8192, 16384, 32768 and 65536 input tokens) of the categories
# that need no judge model: recall (synthetic recall, JSON KV), rag (KILT NQ/TriviaQA/HotpotQA/PopQA), rerank
# (MS MARCO), cite (ALCE), icl (many-shot classification). longqa and summ are scored by GPT-4o in HELMET
# (scripts/eval_gpt4_longqa.py, scripts/eval_gpt4_summ.py, need OPENAI_API_KEY): add them with
# CONFIGS="... longqa_short summ_short". HELMET@32k = mean over categories of the 32768 rows in
# `python scripts/collect_results.py` (edit its model list and output dirs first).
# USE_VLLM=1 is faster; HELMET's authors report final numbers with transformers generation (the default).
# Base (non-instruct) models: keep CHAT=0 (`--use_chat_template False`, as HELMET's README insists).
# Model paths must be absolute: the harness runs inside HELMET_DIR.
source "$(dirname "$0")/common.sh"
HELMET_DIR=${HELMET_DIR:?set HELMET_DIR to a clone of princeton-nlp/HELMET with its data downloaded}
CONFIGS=${CONFIGS:-recall_short rag_short rerank_short cite_short icl_short}
options=(--seed "$SEED" --use_chat_template "$([[ ${CHAT:-0} == 1 ]] && echo True || echo False)")
[[ ${USE_VLLM:-0} == 1 ]] && options+=(--use_vllm)
out=$(realpath "$OUT")
for spec in $MODELS; do
    name=${spec%%=*}; path=${spec#*=}
    for config in $CONFIGS; do
        cmd=(python eval.py --config "configs/$config.yaml" --model_name_or_path "$path"
             --output_dir "$out/helmet/$name" --tag retrace "${options[@]}")
        record_run "$out/helmet/$name" "${cmd[@]}"
        (cd "$HELMET_DIR" && "${cmd[@]}")
    done
done
