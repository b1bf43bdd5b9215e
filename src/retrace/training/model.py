"""Load the causal LM and tokenizer a recipe names; importable with no Trainer side effects (evaluation reuses it)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from retrace.llm import resolve_model_path
from retrace.training.arguments import ModelArguments

logger = logging.getLogger(__name__)

DTYPES = {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def check_attn_implementation(name: str) -> str:
    """The kernel name, or a clear error when flash_attention_2 is asked for without flash-attn installed."""
    if name == "flash_attention_2":
        from transformers.utils import is_flash_attn_2_available

        if not is_flash_attn_2_available():
            raise RuntimeError(
                "attn_implementation=flash_attention_2 needs the flash-attn package and a CUDA GPU "
                "(pip install -r requirements-gpu.txt); use attn_implementation=sdpa on CPU")
    return name


def load_tokenizer(model_args: ModelArguments) -> Any:
    """The model's tokenizer, with pad set to EOS when it has none (packing pads only the last sequence)."""
    from transformers import AutoTokenizer

    path = resolve_model_path(model_args.model_name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(path, revision=model_args.model_revision,
                                              trust_remote_code=model_args.trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model_and_tokenizer(model_args: ModelArguments) -> tuple[Any, Any]:
    """(model, tokenizer) from a local path or hub id; see `load_model`."""
    tokenizer = load_tokenizer(model_args)
    return load_model(model_args, pad_token_id=tokenizer.pad_token_id), tokenizer


def load_model(model_args: ModelArguments, pad_token_id: int | None = None) -> Any:
    """The causal LM with dtype, attention kernel and RoPE overrides applied.

    Under DeepSpeed ZeRO-3 call this after the TrainingArguments exist, so weights load already sharded.
    """
    from transformers import AutoConfig, AutoModelForCausalLM

    path = resolve_model_path(model_args.model_name_or_path)
    attn = check_attn_implementation(model_args.attn_implementation)
    config = AutoConfig.from_pretrained(path, revision=model_args.model_revision,
                                        trust_remote_code=model_args.trust_remote_code)
    if model_args.rope_theta is not None:
        rope = dict(getattr(config, "rope_parameters", None) or {"rope_type": "default"})
        rope["rope_theta"] = model_args.rope_theta
        config.rope_parameters = rope
    if model_args.max_position_embeddings is not None:
        config.max_position_embeddings = model_args.max_position_embeddings
    model = AutoModelForCausalLM.from_pretrained(
        path, config=config, revision=model_args.model_revision, dtype=DTYPES[model_args.dtype],
        attn_implementation=attn, trust_remote_code=model_args.trust_remote_code)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = pad_token_id
    parameters = sum(getattr(p, "ds_numel", p.numel()) for p in model.parameters())  # ZeRO-3: full sizes
    logger.info("loaded %s (%s, %.1fM parameters, attention %s)", path, model.dtype, parameters / 1e6, attn)
    return model


def apply_lora(model: Any, model_args: ModelArguments, gradient_checkpointing: bool = False) -> Any:
    """Wrap `model` in peft LoRA adapters as the recipe's lora_* keys say; only the adapters train.

    With gradient checkpointing the embedding output must require grad, or no gradient reaches the
    adapters of the first checkpointed layer.
    """
    from peft import LoraConfig, get_peft_model

    targets = model_args.lora_target_modules
    config = LoraConfig(r=model_args.lora_r, lora_alpha=model_args.lora_alpha, lora_dropout=model_args.lora_dropout,
                        target_modules=targets[0] if targets == ["all-linear"] else targets, task_type="CAUSAL_LM")
    if gradient_checkpointing:
        model.enable_input_require_grads()
    model = get_peft_model(model, config)
    trainable, total = model.get_nb_trainable_parameters()
    logger.info("LoRA r=%d alpha=%d on %s: %.2fM of %.1fM parameters train", model_args.lora_r,
                model_args.lora_alpha, targets, trainable / 1e6, total / 1e6)
    return model


def merge_lora_adapter(adapter_dir: str | Path, target_dir: str | Path, model_args: ModelArguments) -> Path:
    """Load the base model fresh, merge the saved adapter into it, and save a plain checkpoint.

    Done from the saved adapter rather than the live model, so it works the same after ZeRO-3 (whose live
    parameters are shards). The result loads with `AutoModelForCausalLM.from_pretrained` without peft.
    """
    from peft import PeftModel

    base = load_model(model_args)
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(target_dir)
    load_tokenizer(model_args).save_pretrained(target_dir)
    logger.info("merged the LoRA adapter of %s into %s", adapter_dir, target_dir)
    return Path(target_dir)
