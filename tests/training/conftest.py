"""Fixtures for training tests: a tiny random Llama with the embedded model's tokenizer, and hand-made documents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrace.data import Document, Segment


def make_documents() -> list[Document]:
    """Three small documents with trained and untrained segments, like an exported trajectory."""
    docs = []
    for i in range(3):
        docs.append(Document(repo=f"repo{i}", segments=[
            Segment(f"<repository name=\"repo{i}\">\n<plan>\nWrite a module that adds {i}.\n</plan>\n", True, "plan"),
            Segment("<read path=\"util.py\"/>\n", True, "action", "util.py"),
            Segment(f"<observation>\ndef helper():\n    return {i * 7}\n</observation>\n", False, "observation"),
            Segment(f"<write path=\"m{i}.py\">\n", True, "action", f"m{i}.py"),
            Segment(f"def add_{i}(x):\n    return x + {i}  # " + "word " * (20 + 10 * i) + "\n", True, "payload"),
            Segment("</write>\n</repository>\n", True, "header"),
        ]))
    return docs


def write_documents(path: Path, docs: list[Document]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(d.to_dict()) + "\n" for d in docs), encoding="utf-8")
    return path


@pytest.fixture
def documents() -> list[Document]:
    return make_documents()


@pytest.fixture
def documents_dir(tmp_path, documents) -> Path:
    """The hand-made documents split over two .jsonl files, as synthesize.py's export lays them out."""
    write_documents(tmp_path / "documents" / "a.jsonl", documents[:2])
    write_documents(tmp_path / "documents" / "b.jsonl", documents[2:])
    return tmp_path / "documents"


@pytest.fixture(scope="session")
def tokenizer():
    from transformers import AutoTokenizer

    from retrace.llm import embedded_model_dir, resolve_model_path

    return AutoTokenizer.from_pretrained(resolve_model_path(str(embedded_model_dir())))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A 2-layer random LlamaForCausalLM (hidden 64) saved with the embedded tokenizer: trains in a second."""
    from retrace_testing import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama") / "model")
