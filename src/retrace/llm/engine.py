"""The engine protocol: one object per role that chats, completes and scores, whatever runs the model.

Every engine (`hf_engine`, `vllm_engine`, `openai_engine`, built through `retrace.llm.registry`) offers:

- `chat(conversations, params=None, desc=...)` and `complete(prompts, params=None, desc=...)`: one
  `Reply` per input, in order, each with `params.n` texts cut at `params.stop` and their finish
  reasons, or `error` set when the request failed for good. `params` defaults to the role's
  sampling keys (`default_params`).
- scoring (`score`, `score_ids`, `encode_prefix`, `score_after_prefix`, `encode_target`,
  `encode_context`; see `retrace.llm.scoring`).
- `usage` (a `Usage`), `tokenizer`, `max_model_len`, `name`, `describe()` and `close()`.
"""

from __future__ import annotations

import copy
from typing import Any

from retrace.llm.config import EngineConfig
from retrace.llm.scoring import WindowedScoring
from retrace.llm.types import Message, Reply, SamplingParams, Usage


class Engine(WindowedScoring):
    """Shared state of every engine: its name, the role's sampling defaults and the usage counters."""

    backend = ""

    def _init_engine(self, name: str, config: EngineConfig | None, seed: int) -> None:
        config = config or EngineConfig(backend=self.backend)
        self.name = name or config.model
        self.config = config
        self.seed = seed
        self.default_params = SamplingParams(max_new_tokens=config.max_new_tokens, temperature=config.temperature,
                                             top_p=config.top_p, seed=seed)
        self.usage = Usage()

    @classmethod
    def from_config(cls, config: EngineConfig, *, seed: int = 0, name: str = "", role: str = "",
                    **scoring: Any) -> Engine:
        raise NotImplementedError

    def chat(self, conversations: list[list[Message]], params: SamplingParams | None = None,
             desc: str = "generating") -> list[Reply]:
        raise NotImplementedError

    def complete(self, prompts: list[str], params: SamplingParams | None = None,
                 desc: str = "generating") -> list[Reply]:
        raise NotImplementedError

    def for_role(self, config: EngineConfig, *, seed: int = 0, **scoring: Any) -> Engine:
        """This engine's loaded model under another role's settings: its own sampling defaults, batch size,
        scoring windows and usage counters; the weights, engine or connection are shared, not copied."""
        view = copy.copy(self)
        view._init_engine(self.name, config, seed)
        if hasattr(view, "batch_size"):
            view.batch_size = config.batch_size
        view._rescope_scoring(**scoring)
        return view

    def _rescope_scoring(self, **scoring: Any) -> None:
        """New scoring windows on a role's view (`for_role`)."""
        self._init_scoring(self.tokenizer, max_positions=self.max_positions, **scoring)

    def describe(self) -> dict[str, Any]:
        """Provenance: the backend, its settings and what it spent."""
        return {"backend": self.backend, "model": self.name, "usage": self.usage.to_dict(),
                "tokens_forwarded": self.__dict__.get("tokens_forwarded", 0)}  # not loading a lazy tokenizer

    def close(self) -> None:
        """Release what the engine holds (connections, engines); the default holds nothing to release."""
