"""The models under evaluation: `name=path` specs, what identifies a checkpoint, and lazy loading.

Tasks get a `ModelUnderTest` and use its one engine (`model.engine`, built from the recipe's `eval_*`
keys) to generate and to score, so one set of weights is loaded once per model for all tasks.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrace.llm import EngineConfig, embedded_model_dir, engine_config, resolve_model_path
from retrace.recipe import RecipeError

if TYPE_CHECKING:
    from retrace.evaluation.config import EvaluationConfig
    from retrace.llm.engine import Engine

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
    """One model of the recipe with its engine, built on first use and released by `close()`."""

    def __init__(self, spec: ModelSpec, config: EvaluationConfig):
        self.spec = spec
        self.config = config
        self.resolved_path = resolve_model_path(spec.path)
        self._engine: Engine | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    def engine_config(self) -> EngineConfig:
        """The recipe's `eval_*` keys with this model filled in: empty `eval_model` is the model's path (with
        openai, as given: its served id), empty `eval_tokenizer` the model's resolved path."""
        config = engine_config(self.config, "eval")
        model = config.model or (self.spec.path if config.backend == "openai" else self.resolved_path)
        return dataclasses.replace(config, model=model, tokenizer=config.tokenizer or self.resolved_path)

    @property
    def engine(self) -> Engine:
        """The one engine every task uses: it generates, and scores with the recipe's windows when a task of
        the run scores (otherwise windows that fit the model, so a short-context model can still generate)."""
        if self._engine is None:
            from retrace.evaluation.tasks import get_task
            from retrace.llm import build_engine

            cfg = self.config
            scores = any(get_task(name).scores for name in cfg.tasks)
            windows = ({"max_context_tokens": cfg.max_context_tokens, "max_chunk_tokens": cfg.max_chunk_tokens}
                       if scores else {})
            try:
                self._engine = build_engine(self.engine_config(), seed=cfg.seed, name=self.name, role="eval",
                                            **windows)
            except ValueError as error:  # the scoring windows do not fit this model: a recipe error
                if "max_context_tokens" not in str(error):
                    raise
                raise RecipeError(f"key 'max_context_tokens': {self.name}: {error}; lower max_context_tokens "
                                  "or max_chunk_tokens") from error
        return self._engine

    def describe(self) -> dict[str, Any]:
        """Provenance for results.json: the checkpoint's identity and, once loaded, its engine and what it spent."""
        info = {"path": self.spec.path, **model_fingerprint(self.resolved_path)}
        if self._engine is not None:
            engine = self._engine.describe()
            info.update({key: engine[key] for key in ("dtype", "device", "revision", "tokens_forwarded")
                         if key in engine})
            info["engine"] = engine
        return info

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
        self._engine = None
        gc.collect()
