"""Helpers shared by test modules (a module of its own: `conftest` names collide across test dirs)."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build_tiny_llama(path: Path, seed: int = 0, sharpen: float = 1.0) -> Path:
    """A 2-layer, hidden-64 random LlamaForCausalLM saved with the embedded model's real tokenizer.

    Real architecture, real tokenizer, trains and scores in seconds: the plumbing is what is tested.
    """
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from retrace.llm import embedded_model_dir, resolve_model_path

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(str(embedded_model_dir())))
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    model = LlamaForCausalLM(config)
    if sharpen != 1.0:
        with torch.no_grad():
            model.model.embed_tokens.weight.mul_(sharpen)  # sharper than uniform predictions
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def write_shapes_repo(root: Path) -> Path:
    """A three-file Python package with one import chain (units -> area -> __init__)."""
    files = {"shapes/__init__.py": '"""Shapes."""\nfrom .area import area\n',
             "shapes/units.py": '"""Unit conversion."""\n\ndef to_metres(cm):\n    return cm / 100\n',
             "shapes/area.py": '"""Areas."""\nfrom shapes.units import to_metres\n\n'
                               'def area(w_cm, h_cm):\n    """Area in square metres."""\n'
                               '    return to_metres(w_cm) * to_metres(h_cm)\n'}
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def run_script(*args: str, cwd: Path = ROOT, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run an entry script as a user would, failing the test with its output when it fails."""
    result = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{args[0]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result


def ingest_specs(specs: list[str], **keys):
    """Ingest source specs with recipe keys as a user would; returns (snapshots, stats)."""
    from retrace.repo import IngestArguments, IngestStats, ingest_sources

    stats = IngestStats()
    return ingest_sources(specs, IngestArguments(sources=specs, **keys), stats), stats


class ScriptedEngine:
    """The words of a chat model, scripted (`reply(conversation, params) -> str | None`; None: the request
    failed for good). Everything around the words is the real engine protocol: `Reply` objects, `n` samples,
    the role's default sampling, `Usage` counts. Engines' plumbing is tested against real servers elsewhere.
    """

    backend = "scripted"

    def __init__(self, reply, *, max_new_tokens: int = 96, temperature: float = 0.0):
        from retrace.llm import SamplingParams, Usage

        self.reply = reply
        self.default_params = SamplingParams(max_new_tokens=max_new_tokens, temperature=temperature)
        self.usage = Usage()
        self.calls: list[tuple[list, object]] = []  # (conversations, params) per chat call

    def chat(self, conversations, params=None, desc=""):
        from retrace.llm import Reply

        params = params or self.default_params
        self.calls.append((conversations, params))
        replies = []
        for conversation in conversations:
            texts = [self.reply(conversation, params) for _ in range(params.n)]
            if any(t is None for t in texts):
                self.usage.count("failed:scripted")
                replies.append(Reply.failure("scripted"))
                continue
            self.usage.record(finish_reasons=["stop"] * len(texts))
            replies.append(Reply(tuple(texts), ("stop",) * len(texts)))
        return replies


def peak_traced_bytes(fn) -> int:
    """The peak of memory Python allocated while `fn()` ran (tracemalloc): what a reader holds at once."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
