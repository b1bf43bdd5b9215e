"""Fixtures for training tests: a tiny random Llama with the embedded model's tokenizer, and hand-made documents."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "recipes" / "quickstart" / "train.yaml"
REFERENCE_STEPS = 24


def train_env(tmp_path: Path, extra: dict | None = None) -> dict:
    """What a user's shell has on this machine: offline hub, offline wandb under tmp_path."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "WANDB_SILENT": "true",
            "TOKENIZERS_PARALLELISM": "false", **(extra or {})}


def reference_args(model_dir: Path, documents_dir: Path, output_dir: Path, max_steps: int) -> list[str]:
    """One training set-up shared by the plain, killed and DeepSpeed runs.

    A constant learning rate makes the first k steps of a longer run the same as a k-step run, so one plain
    run of REFERENCE_STEPS (checkpoints every 4 steps, all kept) is the reference for all of them.
    """
    return ["--config", str(QUICKSTART), "--model_name_or_path", str(model_dir), "--documents", str(documents_dir),
            "--max_length", "32", "--output_dir", str(output_dir), "--max_steps", str(max_steps),
            "--save_steps", "4", "--save_total_limit", "10", "--logging_steps", "1", "--learning_rate", "1e-3",
            "--lr_scheduler_type", "constant", "--warmup_steps", "0", "--disable_tqdm", "true"]


@pytest.fixture(scope="session")
def reference_run(tmp_path_factory, tiny_model_dir):
    """A plain `python train.py` run of REFERENCE_STEPS, reporting to an offline wandb: (tmp, documents, output)."""
    tmp_path = tmp_path_factory.mktemp("reference")
    documents = write_documents(tmp_path / "documents" / "a.jsonl", make_documents()[:2]).parent
    write_documents(documents / "b.jsonl", make_documents()[2:])
    out = tmp_path / "model"
    run = subprocess.run([sys.executable, str(REPO / "train.py"),
                          *reference_args(tiny_model_dir, documents, out, REFERENCE_STEPS),
                          "--report_to", "wandb", "--wandb_project", "retrace-test"],
                         cwd=tmp_path, env=train_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, (run.stdout[-3000:], run.stderr[-3000:])
    return tmp_path, documents, out
