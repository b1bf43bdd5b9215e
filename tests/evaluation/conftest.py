"""Fixtures for the evaluate stage: a tiny random Llama checkpoint and hand-made held-out repositories."""

from __future__ import annotations

import json

import pytest
from evaluation_fixtures import FILES, OTHER, make_trajectory

from retrace.data import trajectory_to_document
from retrace.llm import embedded_model_dir


@pytest.fixture(scope="session")
def heldout_dir(tmp_path_factory):
    """A synthesize-like `heldout/` dir: documents/ with two repositories (one has an empty file)."""
    root = tmp_path_factory.mktemp("synth") / "heldout"
    (root / "documents").mkdir(parents=True)
    for repo, files in (("pkg", FILES), ("tool", OTHER)):
        doc = trajectory_to_document(make_trajectory(repo, files))
        (root / "documents" / f"{repo}.jsonl").write_text(json.dumps(doc.to_dict()) + "\n")
    return root


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A 2-layer, hidden-64 random Llama saved with the embedded model's tokenizer."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(embedded_model_dir())
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         tie_word_embeddings=True)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        model.model.embed_tokens.weight.mul_(40)  # sharper than uniform predictions
    path = tmp_path_factory.mktemp("models") / "tiny"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
