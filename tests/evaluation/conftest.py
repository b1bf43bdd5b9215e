"""Fixtures for the evaluate stage: a tiny random Llama checkpoint and hand-made held-out repositories."""

from __future__ import annotations

import json

import pytest
from evaluation_fixtures import FILES, OTHER, make_trajectory

from retrace.data import trajectory_to_document


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
def tiny_model_dir(tiny_llama_dir):
    """A 2-layer, hidden-64 random Llama saved with the embedded model's tokenizer."""
    return tiny_llama_dir
