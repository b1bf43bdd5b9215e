#!/usr/bin/env bash
# retrace's own suite (evaluate.py) at full length on GPUs with vLLM, then the runs compared side by side.
#
#   MODELS="raw=runs/raw/model ours=runs/ours/model" SYNTH=runs/synth bash recipes/evaluation-gpu/retrace_suite.sh
#
# One evaluate run per model (each model row then carries its own training data in the decontamination
# task: a model named raw* is checked against $SYNTH/baselines/raw_repos, any other against
# $SYNTH/documents), then `evaluate.py --compare` writes the paper-style table and bar chart. One vLLM engine
# per model generates and scores (heldout_nll by prompt log-probabilities). Sized for one 80 GB GPU
# per 8B model at 64k. The quickstart recipe's slices are widened to full size here: RULER's 11 tasks at
# 4k-64k with 100 samples per cell, all 164 HumanEval problems, all 1,240 BFCL questions, every repo-fix
# mutation kind over the five default stdlib repositories (keys: docs/evaluation.md).
source "$(dirname "$0")/common.sh"
SYNTH=${SYNTH:?set SYNTH to the synthesize output dir (its heldout/ is scored, its documents are checked)}
MAX_LEN=${MAX_LEN:-65536}
runs=()
for spec in $MODELS; do
    name=${spec%%=*}
    documents=$SYNTH/documents; [[ $name == raw* ]] && documents=$SYNTH/baselines/raw_repos
    cmd=(python evaluate.py --config recipes/quickstart/evaluate.yaml --output_dir "$OUT/retrace/$name"
         --models "$spec" --heldout "$SYNTH/heldout" --eval_backend vllm --eval_dtype "$DTYPE" --seed "$SEED"
         --eval_tensor_parallel_size "$TP" --eval_max_model_len "$MAX_LEN"
         --max_context_tokens 16384 --max_target_tokens_per_file 0 --max_files 0 --eval_batch_size 8
         --tasks heldout_nll ruler humaneval bfcl repo_fix decontamination
         --decontamination_documents "$name=$documents"
         --ruler_tasks niah_single_1 niah_single_2 niah_single_3 niah_multikey_1 niah_multikey_2 niah_multikey_3
                       niah_multivalue niah_multiquery vt cwe fwe
         --ruler_lengths 4096 8192 16384 32768 "$MAX_LEN" --ruler_samples 100
         --humaneval_problems 0 --humaneval_max_new_tokens 512
         --bfcl_categories simple multiple parallel parallel_multiple irrelevance --bfcl_samples 0
         --bfcl_max_new_tokens 384
         --repofix_repos stdlib:textwrap stdlib:shlex stdlib:graphlib stdlib:colorsys stdlib:fractions
         --repofix_kinds flip_operator swap_operands remove_conditional remove_assign shuffle_lines operation_change
                         if_else_invert change_constants class_rm_funcs break_chains remove_loop
         --repofix_max_tasks 0 --repofix_max_turns 8 --repofix_max_new_tokens 1024
    )
    record_run "$OUT/retrace/$name" "${cmd[@]}"
    "${cmd[@]}"
    runs+=("$name=$OUT/retrace/$name")
done
python evaluate.py --compare "${runs[@]}" --output_dir "$OUT/retrace/comparison"
