"""Continued pretraining with the HF Trainer: the stage function that train.py calls.

Resumes by itself: when `output_dir` holds a `checkpoint-*`, training continues from the newest one with
the same data order (the Trainer's seeded sampler skips the batches already seen).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import datasets
import transformers
from transformers import Trainer
from transformers.trainer_utils import get_last_checkpoint

from retrace.atomic import write_json, write_text
from retrace.provenance import save_run_info
from retrace.recipe import Recipe, RecipeError
from retrace.training.arguments import DataArguments, ModelArguments, RetraceTrainingArguments
from retrace.training.dataset import build_packed_dataset
from retrace.training.model import load_model, load_tokenizer
from retrace.training.packing import PackedCollator

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
    """Documents are checked here, not at parse time, so recipes naming not-yet-synthesised data still parse."""
    where = f"recipe {recipe.path}" if recipe.path else "the command line"
    if not data_args.documents:
        raise RecipeError(f"key 'documents' is empty: name exported document files or directories ({where})")
    for item in data_args.documents:
        path = Path(os.path.expanduser(item))
        if not path.exists():
            raise RecipeError(f"key 'documents': path does not exist: {item} ({where}); "
                              "run synthesize.py first or pass --documents")
        if path.is_dir() and not any(path.glob("*.jsonl")):
            raise RecipeError(f"key 'documents': no *.jsonl files in {item} ({where})")


def find_resume_checkpoint(training_args: RetraceTrainingArguments) -> str | None:
    """The checkpoint to resume from: the one the recipe names, else the newest in output_dir, else None."""
    if training_args.resume_from_checkpoint:
        return training_args.resume_from_checkpoint
    if os.path.isdir(training_args.output_dir):
        return get_last_checkpoint(training_args.output_dir)
    return None


def check_global_batch(training_args: RetraceTrainingArguments, max_length: int) -> int:
    """Log the realised global batch; warn when the world size made it differ from the recipe's intent."""
    realised = (training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps
                * training_args.world_size)
    logger.info("global batch: %d sequences x %d tokens = %d tokens (%d processes)", realised, max_length,
                realised * max_length, training_args.world_size)
    intended = training_args.global_batch_sequences
    if intended and intended != realised:
        logger.warning("global batch is %d sequences but the recipe was sized for %d: adjust "
                       "gradient_accumulation_steps to %.2f for this world size", realised, intended,
                       intended / (training_args.per_device_train_batch_size * training_args.world_size))
    return realised


def run_training(model_args: ModelArguments, data_args: DataArguments, training_args: RetraceTrainingArguments,
                 recipe: Recipe) -> dict[str, Any]:
    """Tokenise and pack the documents, train (resuming if possible), save model, card, metrics and provenance."""
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
    check_global_batch(training_args, data_args.max_length)

    model = load_model(model_args, pad_token_id=tokenizer.pad_token_id)
    model.config.use_cache = False  # a KV cache in training also hides packed-sequence boundaries
    collator = PackedCollator(flatten=model_args.attn_implementation == "flash_attention_2"
                              and data_args.separate_documents)
    trainer = Trainer(model=model, args=training_args, train_dataset=train_dataset, data_collator=collator,
                      processing_class=tokenizer)
    result = trainer.train(resume_from_checkpoint=last_checkpoint)
    trainer.save_model()
    trainer.save_state()
    metrics = {**result.metrics, "global_step": trainer.state.global_step,
               "num_input_tokens_seen": trainer.state.num_input_tokens_seen}
    trainer.log_metrics("train", metrics)
    if trainer.is_world_process_zero():
        write_json(output_dir / "train_results.json", {"train": metrics, "data": data_stats})
        write_text(output_dir / "README.md", model_card(model_args, data_args, training_args, metrics, data_stats))
        logger.info("saved the model, tokenizer, model card and metrics to %s", output_dir)
    return {"train": metrics, "data": data_stats}


def model_card(model_args: ModelArguments, data_args: DataArguments, training_args: RetraceTrainingArguments,
               metrics: dict[str, Any], data_stats: dict[str, Any]) -> str:
    """A short README.md: what the model is, what it saw, and how to reproduce it."""
    trained_share = data_stats["trained_tokens"] / max(1, data_stats["tokens"])
    return "\n".join([
        f"# {Path(training_args.output_dir).name}",
        "",
        f"Continued pretraining of `{model_args.model_name_or_path}` with retrace `train.py` on agent "
        "trajectories reconstructed from repositories (observation tokens masked out of the loss).",
        "",
        "| | |",
        "| --- | --- |",
        f"| base model | `{model_args.model_name_or_path}` |",
        f"| documents | {', '.join(f'`{d}`' for d in data_args.documents)} |",
        f"| documents used | {data_stats['documents']} ({data_stats['tokens']:,} tokens, "
        f"{trained_share:.1%} trained) |",
        f"| packing | {data_stats['sequences']} sequences of {data_args.max_length} tokens, "
        f"{data_stats['pad_tokens']} pad tokens, separate documents: {data_args.separate_documents} |",
        f"| optimizer steps | {metrics['global_step']} |",
        f"| tokens seen | {metrics['num_input_tokens_seen']:,} |",
        f"| final train loss | {metrics.get('train_loss', float('nan')):.4f} |",
        f"| learning rate | {training_args.learning_rate} "
        f"({getattr(training_args.lr_scheduler_type, 'value', training_args.lr_scheduler_type)}) |",
        "",
        "The resolved recipe is in `recipe.yaml`; versions and the git revision in `run_info.json`.",
        "",
    ])
