#!/usr/bin/env bash
# Full RULER (all 13 tasks, NVIDIA's generator as packaged by lm-eval) at 32k and 64k, the paper's RULER@64k.
#
#   pip install "lm_eval[vllm,ruler]==0.4.9.1"
#   MODELS="raw=runs/raw/model ours=runs/ours/model" bash recipes/evaluation-gpu/lm_eval_ruler.sh
#   BACKEND=hf ... bash recipes/evaluation-gpu/lm_eval_ruler.sh     # transformers instead of vLLM
#
# Sized for one 80 GB GPU per 8B model at 64k (TP=2 halves the time). Needs the network once: the essays
# and SQuAD/HotpotQA for the QA tasks are downloaded by lm-eval; samples are built with each model's own
# tokenizer, so lengths are exact per model. The score per length is the mean over the 13 tasks
# (`ruler` group row of lm-eval's table); our CPU suite's `ruler` task runs the same synthetic tasks at
# small lengths offline (docs/evaluation.md).
source "$(dirname "$0")/common.sh"
LENGTHS=${LENGTHS:-32768,65536}
BACKEND=${BACKEND:-vllm}
MAX_LEN=$(( ${LENGTHS##*,} + 1024 ))   # longest sample plus room for the answer
for spec in $MODELS; do
    name=${spec%%=*}; path=${spec#*=}
    if [[ $BACKEND == vllm ]]; then
        args="pretrained=$path,dtype=$DTYPE,tensor_parallel_size=$TP,gpu_memory_utilization=0.9,max_model_len=$MAX_LEN"
    else
        args="pretrained=$path,dtype=$DTYPE,max_length=$MAX_LEN,parallelize=$([[ $TP -gt 1 ]] && echo True || echo False)"
    fi
    cmd=(lm_eval --model "$BACKEND" --model_args "$args" --tasks ruler
         --metadata "{\"max_seq_lengths\":[$LENGTHS]}" --batch_size auto --seed "$SEED"
         --output_path "$OUT/ruler/$name" --log_samples)
    record_run "$OUT/ruler/$name" "${cmd[@]}"
    "${cmd[@]}"
done
