"""Continue pretraining a causal LM on retrace documents (agent trajectories with observations masked).

Usage:
    # the CPU quickstart: the embedded SmolLM2-135M-Instruct, documents from synthesize.py
    python train.py --config recipes/quickstart/train.yaml --documents runs/quickstart/synth/documents

    # any recipe key can be overridden on the command line (CLI > YAML > default)
    python train.py --config recipes/quickstart/train.yaml --max_steps 5 --report_to wandb

    # LoRA adapters instead of all weights (the adapter and a merged copy under <output_dir>/merged)
    python train.py --config recipes/quickstart/train.yaml --use_lora true --lora_r 16

    # DeepSpeed on one machine, CPU or GPU (ZeRO-2, ZeRO-3, ZeRO-3 with optimizer offload)
    deepspeed --num_gpus 1 train.py --config recipes/quickstart/train.yaml --deepspeed recipes/deepspeed/zero2.json

    # the paper's setting: Llama-3-8B-Instruct, 64k context, bf16, ZeRO-3, FlashAttention-2, 8 GPUs
    deepspeed --num_gpus 8 train.py --config recipes/llama3-8b/cpt_64k_zero3.yaml

    # several nodes: a DeepSpeed hostfile ("node1 slots=8" per line), run from the first node;
    # 4 nodes x 8 GPUs keep the recipe's 64-sequence global batch with 2 accumulation steps
    deepspeed --hostfile hostfile --num_nodes 4 --num_gpus 8 --master_addr node1 train.py \
        --config recipes/llama3-8b/cpt_64k_zero3.yaml --gradient_accumulation_steps 2

    # or with accelerate (the DeepSpeed JSON is named by the recipe's `deepspeed` key)
    accelerate launch --num_processes 8 train.py --config recipes/llama3-8b/cpt_64k_zero3.yaml

    # tokenise and pack once before a multi-node launch, so no rank waits on it past the timeout
    # (on a machine without a GPU add --use_cpu true; the model is not loaded)
    python train.py --config recipes/llama3-8b/cpt_64k_zero3.yaml --pretokenize_only true

Data is `documents` (exported trajectories) or a `mixture` of sources by weight or token budget (exported
documents, parquet/JSONL tables with a text column, hub datasets): see docs/training.md. A relaunch with
the same output_dir resumes from its newest complete checkpoint. Outputs: checkpoints, the final model and
tokenizer, README.md (model card with the realised mixture), train_results.json, recipe.yaml and
run_info.json.
"""

from __future__ import annotations

from retrace.recipe import run_entry
from retrace.training import (
    DataArguments,
    ModelArguments,
    RetraceTrainingArguments,
    close_process_group,
    run_training,
)


def main(model_args: ModelArguments, data_args: DataArguments, training_args: RetraceTrainingArguments,
         recipe) -> None:
    # A RecipeError from here (documents that do not exist yet) is one line and exit 2, like a parse error.
    run_training(model_args, data_args, training_args, recipe)
    close_process_group()  # every rank, before exit (a launched run's ranks must not abort in teardown)


if __name__ == "__main__":
    run_entry(main, ModelArguments, DataArguments, RetraceTrainingArguments)
