"""The models under evaluation: `name=path` specs, what identifies a checkpoint, and lazy loading.

Tasks get a `ModelUnderTest` and ask it for the interface they need (a scorer today; a generator for
the generation benchmarks later), so one set of weights is loaded once per model for all tasks.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrace.llm import embedded_model_dir, resolve_model_path

if TYPE_CHECKING:
    from retrace.evaluation.config import EvaluationConfig
    from retrace.llm.generation import TextGenerator
    from retrace.llm.scoring import HFScorer

# Bytes hashed at each end of a weights file: enough to tell checkpoints apart, cheap for 16 GB ones.
FINGERPRINT_EDGE_BYTES = 8 << 20
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    path: str


def parse_model_specs(specs: list[str]) -> list[ModelSpec]:
    """`name=path` or a plain path/hub id (named after its last path component); names must be unique."""
    parsed = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or "/" in name or not name:
            name, path = os.path.basename(spec.rstrip("/")) or spec, spec
        if not path:
            raise ValueError(f"key 'models': empty path in {spec!r}")
        parsed.append(ModelSpec(name=name, path=path))
    names = [m.name for m in parsed]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"key 'models': duplicate model names {duplicates}; name them as name=path")
    if not parsed:
        raise ValueError("key 'models': give at least one model")
    return parsed


def missing_model_paths(specs: list[ModelSpec]) -> list[str]:
    """Specs that name a local path that is not there (hub ids `org/name` and the embedded model pass)."""
    missing = []
    for spec in specs:
        path = os.path.expanduser(spec.path)
        if Path(path).exists() or Path(path).resolve() == embedded_model_dir().resolve():
            continue
        looks_like_hub_id = spec.path.count("/") == 1 and not spec.path.startswith((".", "/", "~"))
        if not looks_like_hub_id:
            missing.append(f"{spec.name}={spec.path}")
    return missing


def model_fingerprint(path: str) -> dict[str, Any]:
    """What identifies the checkpoint evaluated: its resolved path, hub revision when known, and a digest.

    The digest covers config.json and, per weights file, its size and first and last bytes: it tells
    a trained checkpoint from its base without reading gigabytes. It is not a full checksum.
    """
    local = Path(path)
    info: dict[str, Any] = {"resolved_path": str(local.resolve()) if local.exists() else path}
    if not local.is_dir():
        return info
    digest = hashlib.sha256()
    config = local / "config.json"
    if config.is_file():
        digest.update(config.read_bytes())
        info["architectures"] = json.loads(config.read_text()).get("architectures")
    for weights in sorted(p for p in local.iterdir() if p.suffix in WEIGHT_SUFFIXES):
        size = weights.stat().st_size
        digest.update(f"{weights.name}:{size}".encode())
        with open(weights, "rb") as handle:
            digest.update(handle.read(FINGERPRINT_EDGE_BYTES))
            if size > 2 * FINGERPRINT_EDGE_BYTES:
                handle.seek(size - FINGERPRINT_EDGE_BYTES)
                digest.update(handle.read())
    info["digest"] = digest.hexdigest()[:16]
    return info


class ModelUnderTest:
    """One model of the recipe, loaded on first use and released by `close()`."""

    def __init__(self, spec: ModelSpec, config: EvaluationConfig):
        self.spec = spec
        self.config = config
        self.resolved_path = resolve_model_path(spec.path)
        self._scorer: HFScorer | None = None
        self._generator: TextGenerator | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def scorer(self) -> HFScorer:
        """Token log-likelihoods with the recipe's window and batch settings."""
        if self._scorer is None:
            from retrace.llm.scoring import HFScorer

            cfg = self.config
            windows = {"max_context_tokens": cfg.max_context_tokens, "max_chunk_tokens": cfg.max_chunk_tokens,
                       "batch_size": cfg.batch_size}
            hf_generator = getattr(self._generator, "model", None) is not None and cfg.backend == "hf"
            if hf_generator:  # one copy of the weights for both
                self._scorer = HFScorer(self._generator.model, self._generator.tokenizer, name=self.name, **windows)
            else:
                device = None if cfg.device == "auto" else cfg.device
                self._scorer = HFScorer.from_pretrained(self.resolved_path, dtype=cfg.dtype, device=device,
                                                        name=self.name, **windows)
        return self._scorer

    @property
    def generator(self) -> TextGenerator:
        """Text generation through the recipe's backend; with hf it shares the scorer's weights when loaded."""
        if self._generator is None:
            from retrace.llm import generation

            cfg = self.config
            if cfg.backend == "hf":
                if self._scorer is not None:
                    self._generator = generation.HFTextGenerator(
                        self._scorer.model, self._scorer.tokenizer, name=self.name,
                        batch_size=cfg.generation_batch_size)
                else:
                    device = None if cfg.device == "auto" else cfg.device
                    self._generator = generation.HFTextGenerator.from_pretrained(
                        self.resolved_path, dtype=cfg.dtype, device=device, name=self.name,
                        batch_size=cfg.generation_batch_size)
            elif cfg.backend == "vllm":
                self._generator = generation.VLLMTextGenerator(
                    self.resolved_path, dtype="auto" if cfg.dtype == "auto" else cfg.dtype, seed=cfg.seed,
                    max_model_len=cfg.max_model_len, tensor_parallel_size=cfg.tensor_parallel_size,
                    gpu_memory_utilization=cfg.gpu_memory_utilization, name=self.name)
            else:
                self._generator = generation.OpenAITextGenerator(
                    cfg.openai_base_url, cfg.openai_model or self.spec.path,
                    tokenizer_path=cfg.tokenizer or self.resolved_path, concurrency=cfg.openai_concurrency,
                    max_model_len=cfg.max_model_len, name=self.name)
        return self._generator

    def describe(self) -> dict[str, Any]:
        """Provenance for results.json."""
        info = {"path": self.spec.path, **model_fingerprint(self.resolved_path)}
        if self._generator is not None:
            info["generation"] = self._generator.describe()
        if self._scorer is not None:
            info["dtype"] = str(next(self._scorer.model.parameters()).dtype).removeprefix("torch.")
            info["device"] = str(self._scorer.device)
            info["tokens_forwarded"] = self._scorer.tokens_forwarded
            info["revision"] = getattr(self._scorer.model.config, "_commit_hash", None)
        return info

    def close(self) -> None:
        self._scorer = None
        self._generator = None
        gc.collect()
