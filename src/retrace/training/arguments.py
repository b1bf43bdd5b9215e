"""The three argument sections of a training recipe: model, data, and the HF Trainer's own arguments.

Keys are flat in the YAML (comments mark the sections), exactly as in alignment-handbook recipes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from transformers import TrainingArguments

DEFAULT_MODEL = "~/.cache/retrace/models/SmolLM2-135M-Instruct"


@dataclass
class ModelArguments:
    """Which causal LM to continue pretraining, and how to load it."""

    model_name_or_path: str = field(default=DEFAULT_MODEL, metadata={
        "help": "Local checkpoint directory or hub id; the default is the embedded SmolLM2-135M-Instruct."})
    model_revision: str = field(default="main", metadata={"help": "Hub revision (branch, tag or commit)."})
    dtype: str = field(default="auto", metadata={
        "help": "Weights dtype at load time: auto (the checkpoint's), float32, bfloat16 or float16.",
        "choices": ["auto", "float32", "bfloat16", "float16"]})
    attn_implementation: str = field(default="sdpa", metadata={
        "help": "Attention kernel: sdpa, eager, or flash_attention_2 (needs flash-attn, GPU only).",
        "choices": ["sdpa", "eager", "flash_attention_2"]})
    rope_theta: float | None = field(default=None, metadata={
        "help": "Override the RoPE base frequency (long-context continued pretraining raises it)."})
    max_position_embeddings: int | None = field(default=None, metadata={
        "help": "Override the model's maximum positions (needed when max_length exceeds it)."})
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow model code from the hub."})
    use_lora: bool = field(default=False, metadata={
        "help": "Train LoRA adapters (peft) instead of all weights; the adapter and a merged copy are saved."})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator (scale = alpha / r)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA branch."})
    lora_target_modules: list[str] = field(default_factory=lambda: ["all-linear"], metadata={
        "help": "Module names to adapt (e.g. q_proj v_proj), or all-linear for every linear layer but the head."})
    lora_merge: bool = field(default=True, metadata={
        "help": "After training, also write the base with the adapter merged in to <output_dir>/merged."})

    def __post_init__(self):
        if self.use_lora and self.lora_r < 1:
            raise ValueError(f"lora_r must be at least 1, got {self.lora_r}")
        if isinstance(self.lora_target_modules, str):
            self.lora_target_modules = [self.lora_target_modules]


@dataclass
class DataArguments:
    """Which documents to train on and how they become packed sequences."""

    # Checked when training starts, not at parse time: recipes name documents that synthesis writes later,
    # and every recipe must parse on a fresh clone (see run_training.check_documents).
    documents: list[str] = field(default_factory=list, metadata={
        "help": "Document files (.jsonl) or directories of them, as written by synthesize.py's export."})
    mixture: str | None = field(default=None, metadata={
        "help": "Several sources by weight or token budget: a mapping name -> {path | dataset, weight | tokens, "
                "text_field, ...} (YAML, or JSON on the command line); see docs/training.md."})
    mixture_total_tokens: int | None = field(default=None, metadata={
        "help": "Tokens in the whole mixture when sources are sized by weight (default: the most that no "
                "source repeats for)."})
    max_length: int = field(default=512, metadata={"help": "Tokens per packed training sequence."})
    shuffle_seed: int = field(default=0, metadata={"help": "Seed for the document order before packing."})
    max_documents: int | None = field(default=None, metadata={
        "help": "Use at most this many documents (after shuffling); for smoke runs."})
    add_bos: str = field(default="auto", metadata={
        "help": "Prepend BOS to each document: auto (only if the tokenizer adds one itself), always, never.",
        "choices": ["auto", "always", "never"]})
    separate_documents: bool = field(default=True, metadata={
        "help": "Restart position ids at every document inside a pack, so attention stays within documents."})
    packed_cache_dir: str | None = field(default=None, metadata={
        "help": "Where tokenised packs are cached (default: <output_dir>/packed_data)."})
    preprocessing_num_workers: int | None = field(default=None, metadata={
        "help": "Processes for tokenisation (datasets.map num_proc)."})
    pretokenize_only: bool = field(default=False, metadata={
        "help": "Tokenise, pack and cache, then exit: run once before a multi-node launch."})

    def __post_init__(self):
        if self.max_length < 2:
            raise ValueError(f"max_length must be at least 2, got {self.max_length}")
        if isinstance(self.documents, str):
            self.documents = [self.documents]
        self.documents = [d for d in self.documents if d]  # `--documents ''` clears a recipe's documents
        if isinstance(self.mixture, dict):  # built in code rather than parsed from a recipe
            self.mixture = json.dumps(self.mixture)
        from retrace.training.sources import parse_mixture

        parse_mixture(self.mixture)  # a malformed mixture fails at parse time, naming the source


@dataclass
class RetraceTrainingArguments(TrainingArguments):
    """HF TrainingArguments plus wandb naming (as open-r1 does) and defaults suited to packed pretraining."""

    wandb_project: str | None = field(default=None, metadata={"help": "Sets WANDB_PROJECT when reporting to wandb."})
    wandb_entity: str | None = field(default=None, metadata={"help": "Sets WANDB_ENTITY when reporting to wandb."})
    wandb_run_group: str | None = field(default=None, metadata={"help": "Sets WANDB_RUN_GROUP when reporting to wandb."})
    global_batch_sequences: int | None = field(default=None, metadata={
        "help": "The global batch the recipe was sized for, in sequences; a warning names any difference."})
    global_batch_tokens: int | None = field(default=None, metadata={
        "help": "The same intent in tokens (sequences x max_length); a warning names any difference."})
    include_num_input_tokens_seen: str | bool = field(default=True, metadata={
        "help": "Track tokens seen (logged as num_input_tokens_seen with train_tokens_per_second)."})
    ddp_find_unused_parameters: bool | None = field(default=False, metadata={
        "help": "DDP's search for parameters without gradients; off: a causal LM's forward uses them all, and "
                "the search costs a graph traversal per step (the stock default turns it on without "
                "gradient checkpointing)."})

    def __post_init__(self):
        super().__post_init__()
        if "wandb" in (self.report_to or []):
            for name, value in (("WANDB_PROJECT", self.wandb_project), ("WANDB_ENTITY", self.wandb_entity),
                                ("WANDB_RUN_GROUP", self.wandb_run_group)):
                if value:
                    os.environ[name] = value
