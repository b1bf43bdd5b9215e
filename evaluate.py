"""Evaluate one or more models on named tasks: results.json, results.md (a table) and results.png.

The core task, `heldout_nll`, is the reconstruction objective on repositories that were not trained
on: the NLL of each real file given its trajectory context and given the raw earlier files.

Usage:
    # the quickstart (what `make quickstart` runs after synthesize and train)
    python evaluate.py --config recipes/quickstart/evaluate.yaml --output_dir runs/quickstart/eval \
        --models base=~/.cache/retrace/models/SmolLM2-135M-Instruct trained=runs/quickstart/model \
        --heldout runs/quickstart/synth/heldout

    # any key of the recipe can be overridden, e.g. a longer window and whole files on a GPU
    python evaluate.py --config recipes/quickstart/evaluate.yaml --heldout runs/big/synth/heldout \
        --models llama3=meta-llama/Meta-Llama-3-8B ours=runs/big/model \
        --max_context_tokens 8192 --max_target_tokens_per_file 0 --max_files 0 --eval_dtype bfloat16 --eval_batch_size 8

    # generation and scoring through vLLM in-process (GPU)
    python evaluate.py --config recipes/quickstart/evaluate.yaml --heldout runs/big/synth/heldout \
        --models ours=runs/big/model --eval_backend vllm --eval_dtype bfloat16 --eval_max_model_len 32768

    # through a running vLLM server (`vllm serve runs/big/model`: the served id is the model's path)
    python evaluate.py --config recipes/quickstart/evaluate.yaml --heldout runs/big/synth/heldout \
        --models ours=runs/big/model --eval_backend openai --eval_base_url http://127.0.0.1:8000/v1 \
        --eval_concurrency 32

`--models` takes `name=path` entries (or plain paths, named after their last component); `--heldout`
is a synthesize run's `heldout/` directory (its `documents/` are read), a documents directory or one
.jsonl file. The `eval_*` keys name the engine (see docs/evaluation.md). Outputs land in `--output_dir`,
beside the resolved recipe and run_info.json. A task whose requests to a server failed for good stops the
run: the reports say so, and the script exits 1 with one line naming the server.
"""

from __future__ import annotations

import logging
import sys

from retrace.evaluation import EvaluationConfig, RequestsFailed, run_evaluation, task_option_types
from retrace.recipe import run_entry


def main(config: EvaluationConfig, *task_options_and_recipe) -> None:
    *task_options, recipe = task_options_and_recipe
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if config.compare:
        from retrace.evaluation.compare import compare_runs

        paths = compare_runs(config.compare, config.output_dir, resamples=config.bootstrap_resamples,
                             seed=config.seed)
        print(f"comparison: {', '.join(str(p) for p in paths.values())}")
        print(paths["markdown"].read_text(encoding="utf-8"), end="")
        return
    # a RecipeError here (a path earlier stages make) is one line, exit 2
    try:
        run_evaluation(config, recipe, task_options)
    except RequestsFailed as error:  # the reports are written; they say which task has no score
        print(f"error: {error} (partial results: {config.output_dir}/results.md)", file=sys.stderr)
        raise SystemExit(1) from None
    print(f"results: {config.output_dir}/results.md, results.json, results.png")
    with open(f"{config.output_dir}/results.md", encoding="utf-8") as handle:
        print(handle.read(), end="")


if __name__ == "__main__":
    run_entry(main, EvaluationConfig, *task_option_types())
