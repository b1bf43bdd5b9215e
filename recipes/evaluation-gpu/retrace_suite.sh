#!/usr/bin/env bash
# retrace's own suite (evaluate.py) at full length on GPUs with vLLM, then the runs compared side by side.
#
#   MODELS="raw=runs/raw/model ours=runs/ours/model" SYNTH=runs/synth bash recipes/evaluation-gpu/retrace_suite.sh
#
# One evaluate run per model (each model row then carries its own training data in the decontamination
# task: a model named raw* is checked against $SYNTH/baselines/raw_repos, any other against
# $SYNTH/documents), then `evaluate.py --compare` writes the paper-style table and bar chart. Sized for one 80 GB GPU
# per 8B model at 64k. The task keys marked TODO-lead are filled in when the RULER, HumanEval, BFCL and
# repo-fix tasks land (their names and keys are in docs/evaluation.md).
source "$(dirname "$0")/common.sh"
SYNTH=${SYNTH:?set SYNTH to the synthesize output dir (its heldout/ is scored, its documents are checked)}
MAX_LEN=${MAX_LEN:-65536}
runs=()
for spec in $MODELS; do
    name=${spec%%=*}
    documents=$SYNTH/documents; [[ $name == raw* ]] && documents=$SYNTH/baselines/raw_repos
    cmd=(python evaluate.py --config recipes/quickstart/evaluate.yaml --output_dir "$OUT/retrace/$name"
         --models "$spec" --heldout "$SYNTH/heldout" --backend vllm --dtype "$DTYPE" --seed "$SEED"
         --tensor_parallel_size "$TP" --max_model_len "$MAX_LEN"
         --max_context_tokens 16384 --max_target_tokens_per_file 0 --max_files 0 --batch_size 8
         --tasks heldout_nll decontamination          # TODO-lead: + ruler humaneval bfcl repofix
         --decontamination_documents "$name=$documents"
         # TODO-lead: --ruler_lengths 32768 65536 (and the other tasks' full-size keys)
    )
    record_run "$OUT/retrace/$name" "${cmd[@]}"
    "${cmd[@]}"
    runs+=("$name=$OUT/retrace/$name")
done
python evaluate.py --compare "${runs[@]}" --output_dir "$OUT/retrace/comparison"
