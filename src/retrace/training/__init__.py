"""Continued pretraining on exported documents: tokenise with a loss mask, pack, train with the HF Trainer.

Reads documents through `retrace.data`, never the simulation. `load_model_and_tokenizer` has no Trainer
side effects, so evaluation may reuse it.
"""

from retrace.training.arguments import DataArguments, ModelArguments, RetraceTrainingArguments
from retrace.training.dataset import build_packed_dataset
from retrace.training.model import load_model, load_model_and_tokenizer, load_tokenizer
from retrace.training.packing import IGNORE_INDEX, PackedCollator, pack_documents, tokenize_document
from retrace.training.run import run_training

__all__ = [
    "IGNORE_INDEX", "DataArguments", "ModelArguments", "PackedCollator", "RetraceTrainingArguments",
    "build_packed_dataset", "load_model", "load_model_and_tokenizer", "load_tokenizer", "pack_documents", "run_training",
    "tokenize_document",
]
