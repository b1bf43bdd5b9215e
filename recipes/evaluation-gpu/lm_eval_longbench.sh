#!/usr/bin/env bash
# LongBench (v1, 21 tasks in six groups; lm-eval's `longbench` group), greedy, inputs up to 32k tokens.
#
#   pip install "lm_eval[vllm,longbench]==0.4.9.1"
#   MODELS="raw=runs/raw/model ours=runs/ours/model" bash recipes/evaluation-gpu/lm_eval_longbench.sh
#   TASKS=longbench_code ...  # one group only (longbench_single, _multi, _summarization, _fewshot, _synthetic, _code)
#
# Sized for one 80 GB GPU per 8B model. lm-eval downloads THUDM/LongBench once. Prompts longer than
# MAX_LEN are truncated in the middle by lm-eval's vLLM backend, as LongBench's own harness does.
# Instruct models: LongBench's authors use the chat template except for lcc, repobench-p, samsum, trec and
# triviaqa; pass CHAT=1 to apply it (lm-eval's --apply_chat_template) to every task.
source "$(dirname "$0")/common.sh"
TASKS=${TASKS:-longbench}
MAX_LEN=${MAX_LEN:-32768}
chat=(); [[ ${CHAT:-0} == 1 ]] && chat=(--apply_chat_template)
for spec in $MODELS; do
    name=${spec%%=*}; path=${spec#*=}
    cmd=(lm_eval --model vllm
         --model_args "pretrained=$path,dtype=$DTYPE,tensor_parallel_size=$TP,gpu_memory_utilization=0.9,max_model_len=$MAX_LEN"
         --tasks "$TASKS" "${chat[@]}" --batch_size auto --seed "$SEED" --output_path "$OUT/longbench/$name" --log_samples)
    record_run "$OUT/longbench/$name" "${cmd[@]}"
    "${cmd[@]}"
done
