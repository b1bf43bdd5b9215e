"""The model card (README.md) written beside a trained model: what it is, what it read, how to load it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from retrace.training.arguments import DataArguments, ModelArguments, RetraceTrainingArguments


def _sources_table(data_stats: dict[str, Any]) -> list[str]:
    sources = data_stats.get("sources") or {}
    if not sources:
        return []
    lines = ["", "## Data mixture (realised)", "",
             "| source | weight | budget (tokens) | documents | tokens | share | trained tokens | passes |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, entry in sources.items():
        weight = "" if entry.get("weight") is None else f"{entry['weight']:g}"
        budget = "whole source" if entry.get("budget_tokens") is None else f"{entry['budget_tokens']:,}"
        lines.append(f"| {name} | {weight} | {budget} | {entry['documents']:,} | {entry['tokens']:,} | "
                     f"{entry['share']:.2%} | {entry['trained_tokens']:,} | {entry['passes']:.2f} |")
    return lines


def _loading(training_dir: Path, model_args: ModelArguments, merged_dir: Path | None) -> list[str]:
    if not model_args.use_lora:
        return ["", "## Loading", "", "```python", "from transformers import AutoModelForCausalLM",
                f'model = AutoModelForCausalLM.from_pretrained("{training_dir}")', "```"]
    lines = ["", "## Loading", "",
             f"This directory holds a LoRA adapter (r={model_args.lora_r}, alpha={model_args.lora_alpha}, "
             f"targets {', '.join(model_args.lora_target_modules)}) on `{model_args.model_name_or_path}`. "
             "With peft installed, transformers loads base and adapter in one call:", "", "```python",
             "from transformers import AutoModelForCausalLM",
             f'model = AutoModelForCausalLM.from_pretrained("{training_dir}")  # base + adapter', "```"]
    if merged_dir is not None:
        lines += ["", f"`{merged_dir}` holds the base with the adapter merged in: a plain checkpoint that needs "
                  "no peft (vLLM, lm-eval, evaluate.py)."]
    return lines


def _front_matter(model_args: ModelArguments, data_stats: dict[str, Any]) -> list[str]:
    """The Hub's card metadata: library, tags, and `base_model` when the base is a hub id (not a local path)."""
    import yaml

    base = model_args.model_name_or_path
    meta: dict[str, Any] = {"library_name": "peft" if model_args.use_lora else "transformers",
                            "pipeline_tag": "text-generation",
                            "tags": ["retrace", "continued-pretraining", "agent-trajectories"]}
    if not Path(base).expanduser().exists() and not base.startswith((".", "/", "~")):
        meta["base_model"] = base
    if data_stats.get("sources"):
        meta["tags"].append("data-mixture")
    return ["---", yaml.safe_dump(meta, sort_keys=False).rstrip(), "---", ""]


def model_card(model_args: ModelArguments, data_args: DataArguments, training_args: RetraceTrainingArguments,
               metrics: dict[str, Any], data_stats: dict[str, Any], merged_dir: Path | None = None) -> str:
    """A short README.md: what the model is, what it saw, and how to reproduce and load it."""
    trained_share = data_stats["trained_tokens"] / max(1, data_stats["tokens"])
    training_dir = Path(training_args.output_dir)
    sources = ", ".join(f"`{d}`" for d in data_stats.get("documents_from") or data_args.documents)
    return "\n".join([
        *_front_matter(model_args, data_stats),
        f"# {training_dir.name}",
        "",
        f"Continued pretraining of `{model_args.model_name_or_path}` with retrace `train.py` on agent "
        "trajectories reconstructed from repositories (observation tokens masked out of the loss).",
        "",
        "| | |",
        "| --- | --- |",
        f"| base model | `{model_args.model_name_or_path}` |",
        f"| sources | {sources} |",
        f"| documents used | {data_stats['documents']:,} ({data_stats['tokens']:,} tokens, "
        f"{trained_share:.1%} trained) |",
        f"| packing | {data_stats['sequences']:,} sequences of {data_args.max_length} tokens, "
        f"{data_stats['pad_tokens']} pad tokens, separate documents: {data_args.separate_documents} |",
        f"| global batch | {metrics['global_batch_sequences']} sequences = {metrics['global_batch_tokens']:,} "
        "tokens |",
        f"| optimizer steps | {metrics['global_step']} |",
        f"| tokens seen | {metrics['num_input_tokens_seen']:,} |",
        f"| final train loss | {metrics.get('train_loss', float('nan')):.4f} |",
        f"| learning rate | {training_args.learning_rate} "
        f"({getattr(training_args.lr_scheduler_type, 'value', training_args.lr_scheduler_type)}) |",
        f"| DeepSpeed | {training_args.deepspeed or 'no'} |",
        f"| LoRA | {f'r={model_args.lora_r}' if model_args.use_lora else 'no (all weights trained)'} |",
        *_sources_table(data_stats),
        *_loading(training_dir, model_args, merged_dir),
        "",
        "The resolved recipe is in `recipe.yaml`; versions and the git revision in `run_info.json`; the realised",
        "per-source token counts in `train_results.json` (`data.sources`).",
        "",
    ])
