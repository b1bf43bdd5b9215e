#!/usr/bin/env bash
# The paper's short-context rows through lm-eval with vLLM: BBH, MATH and GSM8k, plus AGIEval (the issue asks
# for it; the paper's table does not report it).
#
#   pip install "lm_eval[vllm,math]==0.4.9.1"
#   MODELS="raw=runs/raw/model ours=runs/ours/model" bash recipes/evaluation-gpu/lm_eval_reasoning.sh
#   TASKS="gsm8k" ...                    # a subset; lm-eval task or group names, space-separated
#
# Few-shot settings are each task's lm-eval default (no --num_fewshot, so each task keeps its own), greedy:
#   bbh_cot_fewshot  27 BIG-Bench Hard tasks, 3-shot chain of thought, exact_match after the get-answer filter
#   hendrycks_math   MATH (5,000 test problems), 0-shot "Problem: ... Answer:", exact_match. Chosen over
#                    minerva_math (4-shot CoT) because the paper's MATH numbers (1.6-3.8 for Llama-3-8B arms) are
#                    on this task's scale, far below a 4-shot Minerva score; TASKS="... minerva_math" adds it.
#   gsm8k            5-shot, exact_match with the strict-match filter ("#### <number>")
#   agieval_en       AGIEval's English tasks (the subset Llama 3 reports), 0-shot multiple choice, acc
# What the paper (and its ProLong lineage) used is not published in what we have: these are our choices.
# Sized for one 80 GB GPU per 8B model: about an hour per model (BBH's CoT generations dominate). lm-eval
# downloads the datasets once (~1 GB). Results land in $OUT/reasoning/<name>/<model>/results_<date>.json,
# read by `python -m retrace.evaluation.paper_table $OUT`. CHAT=1 applies the chat template (instruct models).
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
TASKS=${TASKS:-bbh_cot_fewshot hendrycks_math gsm8k agieval_en}
MAX_LEN=${MAX_LEN:-8192}
chat=(); [[ ${CHAT:-0} == 1 ]] && chat=(--apply_chat_template --fewshot_as_multiturn)
for spec in $MODELS; do
    name=${spec%%=*}; path=${spec#*=}
    cmd=(lm_eval --model vllm
         --model_args "pretrained=$path,dtype=$DTYPE,tensor_parallel_size=$TP,gpu_memory_utilization=0.9,max_model_len=$MAX_LEN"
         --tasks "${TASKS// /,}" "${chat[@]}" --batch_size auto --seed "$SEED"
         --output_path "$OUT/reasoning/$name" --log_samples)
    record_run "$OUT/reasoning/$name" "${cmd[@]}"
    "${cmd[@]}"
done
