"""The one engine registry: every role (policy, proposer, scorer, evaluation) builds its engine here.

An engine is one module with one class offering what its backend can: `chat`, `complete` and
`score` (see `retrace.llm.engine.Engine`). Adding an engine is that module plus one line in `ENGINES`.
Classes are imported on first use, so naming `vllm` in a recipe costs nothing until it is built.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from retrace.llm.cache import CachedEngine, RequestCache

if TYPE_CHECKING:
    from retrace.llm.config import EngineConfig
    from retrace.llm.engine import Engine


@dataclass(frozen=True)
class EngineSpec:
    target: str                       # "module:Class"
    capabilities: frozenset[str]      # what the engine can do: chat, complete, score
    summary: str


ENGINES: dict[str, EngineSpec] = {
    "hf": EngineSpec("retrace.llm.hf_engine:HFEngine", frozenset({"chat", "complete", "score"}),
                     "transformers in this process (CPU or GPU); scoring reuses the prefix's key/value cache"),
    "vllm": EngineSpec("retrace.llm.vllm_engine:VLLMEngine", frozenset({"chat", "complete", "score"}),
                       "vLLM in this process (GPU); scoring by prompt log-probabilities with prefix caching"),
    "openai": EngineSpec("retrace.llm.openai_engine:OpenAIEngine", frozenset({"chat", "complete", "score"}),
                         "any OpenAI-compatible server; scoring needs prompt log-probabilities (vLLM's server)"),
}


def engine_class(name: str) -> type[Engine]:
    if name not in ENGINES:
        raise ValueError(f"unknown engine '{name}'; available: {', '.join(sorted(ENGINES))}")
    module, _, attr = ENGINES[name].target.partition(":")
    return getattr(importlib.import_module(module), attr)


def build_engine(config: EngineConfig, *, seed: int = 0, name: str = "", role: str = "", **scoring: Any) -> Engine:
    """The engine `config.backend` names, built from the role's keys; `seed` is the recipe's.

    `scoring` holds the caller's window settings (`max_context_tokens`, `max_chunk_tokens`) for
    engines that will score; they are not engine keys because each role cuts its own windows. `role`
    (the recipe prefix) makes error messages name the role's keys.
    """
    return engine_class(config.backend).from_config(config, seed=seed, name=name, role=role, **scoring)


class EnginePool:
    """Engines built once per loaded model: roles that name the same model with the same load settings share
    its weights (or its vLLM engine, or its connection), each role with its own sampling defaults, batch
    size, scoring windows and usage (`Engine.for_role`). Two in-process vLLM engines of one model would not
    fit on one GPU; on a CPU the quickstart's policy and scorer load SmolLM2 once.

    `request_cache` (a directory, or None for none): every engine returned looks its chat and completion
    requests up there first and keeps their replies (`retrace.llm.cache`), so a retried batch does not pay
    for them twice; scoring is not cached.
    """

    PER_ROLE_KEYS = ("max_new_tokens", "temperature", "top_p", "batch_size")

    def __init__(self, seed: int = 0, request_cache: str | os.PathLike | None = None):
        self.seed = seed
        self._loaded: dict[EngineConfig, Engine] = {}
        self.request_cache = RequestCache(request_cache) if request_cache else None

    def get(self, config: EngineConfig, *, role: str = "", **scoring: Any) -> Engine:
        from retrace.llm.config import EngineConfig

        default = EngineConfig()
        key = dataclasses.replace(config, **{k: getattr(default, k) for k in self.PER_ROLE_KEYS})
        if key not in self._loaded:
            self._loaded[key] = engine = build_engine(config, seed=self.seed, role=role, **scoring)
        else:
            engine = self._loaded[key].for_role(config, seed=self.seed, **scoring)
        if self.request_cache is None:
            return engine
        return CachedEngine(engine, self.request_cache)  # an Engine by delegation
