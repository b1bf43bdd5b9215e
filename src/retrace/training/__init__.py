"""Continued pretraining on exported documents: tokenise with a loss mask, pack, train with the HF Trainer.

Reads documents through `retrace.data`, never the simulation. `load_model_and_tokenizer` has no Trainer
side effects, so evaluation may reuse it.
"""

from retrace.training.arguments import DataArguments, ModelArguments, RetraceTrainingArguments
from retrace.training.dataset import build_packed_dataset
from retrace.training.mixture import plan_budgets, select_documents
from retrace.training.model import apply_lora, load_model, load_model_and_tokenizer, load_tokenizer
from retrace.training.packing import IGNORE_INDEX, PackedCollator, pack_documents, tokenize_document
from retrace.training.run import close_process_group, run_training
from retrace.training.sources import SourceSpec, parse_mixture
from retrace.training.trainer import RetraceTrainer, check_global_batch

__all__ = [
    "IGNORE_INDEX", "DataArguments", "ModelArguments", "PackedCollator", "RetraceTrainer", "RetraceTrainingArguments",
    "SourceSpec", "apply_lora", "build_packed_dataset", "check_global_batch", "close_process_group",
    "load_model", "load_model_and_tokenizer",
    "load_tokenizer", "pack_documents", "parse_mixture", "plan_budgets", "run_training", "select_documents",
    "tokenize_document",
]
