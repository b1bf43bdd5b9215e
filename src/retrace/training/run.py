"""Continued pretraining with the HF Trainer: the stage function that train.py calls.

Resumes by itself: when `output_dir` holds a `checkpoint-*`, training continues from the newest one with
the same data order (the Trainer's seeded sampler skips the batches already seen).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

import datasets
import transformers
from transformers.integrations.deepspeed import unset_hf_deepspeed_config

from retrace.atomic import write_json, write_text
from retrace.provenance import save_run_info
from retrace.recipe import Recipe, RecipeError
from retrace.training.arguments import DataArguments, ModelArguments, RetraceTrainingArguments
from retrace.training.card import model_card
from retrace.training.dataset import build_packed_dataset, training_sources
from retrace.training.model import apply_lora, load_model, load_tokenizer, merge_lora_adapter
from retrace.training.packing import PackedCollator
from retrace.training.sources import check_source
from retrace.training.trainer import RetraceTrainer, check_global_batch

logger = logging.getLogger("retrace.training")


def setup_logging(training_args: RetraceTrainingArguments) -> None:
    """One format for every library; only the main process logs at info unless asked otherwise."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S",
                        handlers=[logging.StreamHandler(sys.stdout)])
    level = training_args.get_process_log_level()
    logging.getLogger("retrace").setLevel(logging.INFO if training_args.should_log else level)
    datasets.utils.logging.set_verbosity(level)
    transformers.utils.logging.set_verbosity(level)
    transformers.utils.logging.enable_default_handler()
    transformers.utils.logging.enable_explicit_format()


def check_documents(data_args: DataArguments, recipe: Recipe) -> None:
    """Sources are checked here, not at parse time, so recipes naming not-yet-synthesised data still parse."""
    where = f"recipe {recipe.path}" if recipe.path else "the command line"
    try:
        specs = training_sources(data_args)
    except ValueError as exc:
        raise RecipeError(f"{exc} ({where})") from None
    if not data_args.mixture and not data_args.documents:
        raise RecipeError(f"key 'documents' is empty: name exported document files or directories, or give a "
                          f"'mixture' ({where})")
    for spec in specs:
        problem = check_source(spec)
        if problem is None:
            continue
        if spec.name == "documents" and not data_args.mixture:
            raise RecipeError(f"key 'documents': {problem} ({where}); run synthesize.py first or pass --documents")
        raise RecipeError(f"key 'mixture', source '{spec.name}': {problem} ({where})")


def find_resume_checkpoint(training_args: RetraceTrainingArguments) -> str | None:
    """The checkpoint to resume from: the one the recipe names, else the newest complete one in output_dir.

    The Trainer writes a checkpoint's files one by one and `trainer_state.json` last (not atomically), so a
    run killed while saving leaves a directory without it, or with a part of it; that one is skipped (with a
    warning), and the previous complete checkpoint, which the Trainer deletes only after the new one is whole,
    is used.
    """
    if training_args.resume_from_checkpoint:
        return training_args.resume_from_checkpoint
    if not os.path.isdir(training_args.output_dir):
        return None
    steps = {}
    for entry in Path(training_args.output_dir).iterdir():
        match = re.fullmatch(r"checkpoint-(\d+)", entry.name)
        if match and entry.is_dir():
            steps[int(match.group(1))] = entry
    for step in sorted(steps, reverse=True):
        if _complete_state(steps[step] / "trainer_state.json"):
            return str(steps[step])
        logger.warning("skipping %s: its trainer_state.json is missing or cut short (the run stopped while saving "
                       "it)", steps[step])
    return None


def _complete_state(path: Path) -> bool:
    try:
        return isinstance(json.loads(path.read_text()), dict)
    except (OSError, ValueError):
        return False


def _share_process_group_with_deepspeed(training_args: RetraceTrainingArguments) -> None:
    """Let DeepSpeed's comm layer adopt the process group the Trainer made.

    On GPUs accelerate starts DeepSpeed's comm itself; with `use_cpu` it starts plain torch.distributed
    (gloo), and ZeRO-3's `zero.Init` (inside from_pretrained) then counts a world of 1 and refuses the
    batch size of a multi-process launch. `deepspeed.init_distributed` wraps an existing group as is.
    """
    import torch.distributed

    if training_args.deepspeed and torch.distributed.is_initialized():
        import deepspeed

        if not deepspeed.comm.is_initialized():
            deepspeed.init_distributed()


def run_training(model_args: ModelArguments, data_args: DataArguments, training_args: RetraceTrainingArguments,
                 recipe: Recipe) -> dict[str, Any]:
    """Tokenise and pack the sources, train (resuming if possible), save model, card, metrics and provenance."""
    setup_logging(training_args)
    check_documents(data_args, recipe)
    output_dir = Path(training_args.output_dir)
    if training_args.process_index == 0:
        save_run_info(output_dir, recipe, stage="train")
    last_checkpoint = find_resume_checkpoint(training_args)
    if last_checkpoint:
        logger.info("resuming from %s", last_checkpoint)

    tokenizer = load_tokenizer(model_args)
    cache_root = data_args.packed_cache_dir or output_dir / "packed_data"
    with training_args.main_process_first(desc="tokenising and packing"):
        train_dataset, data_stats = build_packed_dataset(data_args, tokenizer, cache_root)
    if data_args.pretokenize_only:
        logger.info("pretokenize_only: %d packed sequences cached under %s", len(train_dataset), cache_root)
        return {"data": data_stats}
    global_batch = check_global_batch(training_args, data_args.max_length)
    if training_args.max_steps > 0:
        planned = training_args.max_steps * global_batch * data_args.max_length
        logger.info("this run reads %d tokens (%.2f passes over the %d packed tokens)", planned,
                    planned / max(1, len(train_dataset) * data_args.max_length), len(train_dataset) * data_args.max_length)

    _share_process_group_with_deepspeed(training_args)
    model = load_model(model_args, pad_token_id=tokenizer.pad_token_id)
    model.config.use_cache = False  # a KV cache in training also hides packed-sequence boundaries
    if model_args.use_lora:
        model = apply_lora(model, model_args, gradient_checkpointing=training_args.activation_checkpointing)
    collator = PackedCollator(flatten=model_args.attn_implementation == "flash_attention_2"
                              and data_args.separate_documents)
    trainer = RetraceTrainer(model=model, args=training_args, train_dataset=train_dataset, data_collator=collator,
                             processing_class=tokenizer, max_length=data_args.max_length)
    result = trainer.train(resume_from_checkpoint=last_checkpoint)
    trainer.save_model()
    trainer.save_state()
    metrics = {**result.metrics, "global_step": trainer.state.global_step,
               "num_input_tokens_seen": trainer.state.num_input_tokens_seen,
               "global_batch_sequences": global_batch, "global_batch_tokens": global_batch * data_args.max_length}
    trainer.log_metrics("train", metrics)
    if trainer.is_world_process_zero():
        merged = None
        if model_args.use_lora and model_args.lora_merge:
            unset_hf_deepspeed_config()  # the merge loads the base whole, not as ZeRO-3 shards
            merged = merge_lora_adapter(output_dir, output_dir / "merged", model_args)
        write_json(output_dir / "train_results.json", {"train": metrics, "data": data_stats})
        write_text(output_dir / "README.md", model_card(model_args, data_args, training_args, metrics, data_stats,
                                                        merged_dir=merged))
        logger.info("saved the model, tokenizer, model card and metrics to %s", output_dir)
    return {"train": metrics, "data": data_stats}


def close_process_group() -> None:
    """Tear down the distributed process group of a launched run before the interpreter exits. Left to the
    interpreter's teardown, a rank can abort after saving ("terminate called without an active exception",
    exit 250: ZeRO-3 on two CPU ranks, 2026-12-05), and the launcher then reports the whole run as failed."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
