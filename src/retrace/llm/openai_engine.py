"""The `openai` engine: any OpenAI-compatible server (`python -m vllm.entrypoints.openai.api_server`, a fleet
of replicas behind one address, a hosted API), requests sent concurrently through `http_client`.

Chat goes to `chat/completions`, raw continuations to `completions`; `n` samples come from one request
(`n`), so a seeded server gives `n` different samples rather than one sample `n` times.

Scoring sends token ids as the prompt of a `completions` request with `max_tokens: 1` and vLLM's
`prompt_logprobs: 0`, and keeps the log-probability of each target token; the ids come from the
model's tokenizer loaded here (`tokenizer` key), so the numbers are those of the `hf` and `vllm`
engines within float tolerance. vLLM's server skips its prefix cache for requests that ask for prompt
log-probabilities, so a served scorer forwards every row whole (no prefix reuse); a server that
returns no prompt log-probabilities cannot score and is refused with one line on the first request.
A scoring request that fails for good raises `ScoringFailed`: a score cannot be made up.
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from tqdm.auto import tqdm

from retrace.llm.config import EngineConfig
from retrace.llm.embedded import resolve_model_path
from retrace.llm.engine import Engine
from retrace.llm.http_client import OpenAIClient
from retrace.llm.scoring import PromptLogprobScoring
from retrace.llm.types import Message, Reply, SamplingParams, continues_reply, cut_at_stop

logger = logging.getLogger(__name__)


class ScoringFailed(RuntimeError):
    """A scoring request to the server failed for good, or the server cannot score at all."""


class OpenAIEngine(PromptLogprobScoring, Engine):
    """Requests to `config.base_url`; `config.model` is the served id (empty: the server's only model)."""

    backend = "openai"

    def __init__(self, config: EngineConfig, *, seed: int = 0, name: str = "", role: str = "policy",
                 max_context_tokens: int | None = None, max_chunk_tokens: int | None = None,
                 **client_options: Any):
        self._init_engine(name or config.model, config, seed)
        self.client = OpenAIClient(config.base_url, config.model, self.usage, api_key_env=config.api_key_env,
                                   concurrency=config.concurrency, timeout_s=config.timeout_s,
                                   max_retries=config.max_retries, ready_timeout_s=config.ready_timeout_s, seed=seed,
                                   key_prefix=role, **client_options)
        self.max_model_len = config.max_model_len or None
        self._windows = {"max_context_tokens": max_context_tokens, "max_chunk_tokens": max_chunk_tokens}
        self._hf_tokenizer = None

    # The tokenizer (and with it every scoring attribute) is loaded on first use: a chat-only role never needs
    # it, and the served model id is often not a path or hub id this machine can load.
    _SCORING_ATTRS = frozenset({"tokenizer", "special_prefix", "start_ids", "max_context_tokens",
                                "max_chunk_tokens", "max_positions", "tokens_forwarded"})

    def __getattr__(self, name: str) -> Any:
        if name in OpenAIEngine._SCORING_ATTRS and "_windows" in self.__dict__:
            self._load_scoring()
            return self.__dict__[name]
        raise AttributeError(name)

    def _load_scoring(self) -> None:
        path = self.config.tokenizer_path
        if not path:
            raise ScoringFailed(f"scoring on {self.client.base_url} needs the model's tokenizer here: set the "
                                "role's tokenizer key (or its model key to a local path)")
        if self._hf_tokenizer is None:
            from transformers import AutoTokenizer

            self._hf_tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(path))
        # vLLM wants room for the one generated token after a scored prompt.
        self._init_scoring(self._hf_tokenizer, max_positions=self.max_model_len and self.max_model_len - 1,
                           **self._windows)

    def _rescope_scoring(self, **scoring: Any) -> None:
        self._windows = {"max_context_tokens": None, "max_chunk_tokens": None, **scoring}
        for name in OpenAIEngine._SCORING_ATTRS:
            self.__dict__.pop(name, None)

    @classmethod
    def from_config(cls, config: EngineConfig, *, seed: int = 0, name: str = "", role: str = "",
                    **scoring: Any) -> OpenAIEngine:
        return cls(config, seed=seed, name=name, role=role or "the role's", **scoring)

    @property
    def base_url(self) -> str:
        return self.client.base_url

    def wait_until_ready(self) -> list[str]:
        return self.client.wait_until_ready()

    # -- generation --------------------------------------------------------------------------------

    def chat(self, conversations: list[list[Message]], params: SamplingParams | None = None,
             desc: str = "generating") -> list[Reply]:
        params = params or self.default_params
        # vLLM's (and SGLang's) server extension: the chat template's thinking switch, off unless the role's
        # `enable_thinking` key turns it on.
        thinking = {"chat_template_kwargs": {"enable_thinking": self.config.enable_thinking}}
        # ... and its continuation of a conversation that ends with the assistant's opener (`continues_reply`)
        prefilled = {"continue_final_message": True, "add_generation_prompt": False}
        return self._run("chat/completions",
                         [{**self._body(params), **thinking, **(prefilled if continues_reply(c) else {}), "messages": c}
                          for c in conversations], params, desc)

    def complete(self, prompts: list[str], params: SamplingParams | None = None,
                 desc: str = "generating") -> list[Reply]:
        params = params or self.default_params
        return self._run("completions", [{**self._body(params), "prompt": p} for p in prompts], params, desc)

    def _body(self, params: SamplingParams) -> dict[str, Any]:
        body: dict[str, Any] = {"max_tokens": params.max_new_tokens, "temperature": params.temperature,
                                "top_p": params.top_p, "n": params.n}
        if params.stop:
            body["stop"] = list(params.stop)
        if params.temperature > 0:
            body["seed"] = params.seed
        return body

    def _run(self, endpoint: str, bodies: list[dict], params: SamplingParams, desc: str) -> list[Reply]:
        chat = endpoint.startswith("chat")

        def parse(payload: dict) -> Reply:
            choices = sorted(payload["choices"], key=lambda c: c.get("index", 0))
            # A reasoning parser may leave `content` null (all of the reply was reasoning): no answer, "".
            texts = [(c["message"]["content"] or "") if chat else c["text"] for c in choices]
            if not texts or not all(isinstance(t, str) for t in texts):
                raise TypeError("no choices, or a choice whose text is not a string")
            finishes = tuple(c.get("finish_reason") or "unknown" for c in choices)
            usage = payload.get("usage") or {}
            self.usage.record(prompt_tokens=int(usage.get("prompt_tokens") or 0),
                              completion_tokens=int(usage.get("completion_tokens") or 0), finish_reasons=finishes)
            return Reply(tuple(cut_at_stop(t, params.stop) for t in texts), finishes)

        def one(body: dict) -> Reply:
            reply, error = self.client.call(endpoint, {"model": self.client.model, **body}, parse)
            return reply if reply is not None else Reply.failure(error or "unknown")

        replies = self._concurrently(one, bodies, desc)
        failed = sum(r.failed for r in replies)
        if failed:
            logger.warning("%s: %d of %d requests to %s failed after retries", desc, failed, len(bodies),
                           self.base_url)
        return replies

    def _concurrently(self, fn, items: list, desc: str) -> list:
        """`fn(item)` for every item on `concurrency` threads, results in input order."""
        if not items:
            return []
        if not self.client.ready:
            self.client.wait_until_ready()
        results: list = [None] * len(items)
        with ThreadPoolExecutor(max_workers=self.client.concurrency) as pool:
            futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
            for future in tqdm(as_completed(futures), total=len(futures), desc=desc, unit="request",
                               disable=len(futures) < 64):
                results[futures[future]] = future.result()
        return results

    # -- scoring -----------------------------------------------------------------------------------

    def _prompt_nlls(self, prompts: list[tuple[list[int], int]]) -> list[list[float]]:
        longest = max((len(ids) for ids, _ in prompts), default=0)
        if longest > self.max_positions:
            raise ValueError(f"a scored sequence of {longest} tokens exceeds the model's {self.max_positions} "
                             "positions")

        def one(prompt: tuple[list[int], int]) -> list[float]:
            ids, first = prompt
            body = {"model": self.client.model, "prompt": ids, "max_tokens": 1, "temperature": 0.0,
                    "prompt_logprobs": 0}
            nlls, error = self.client.call("completions", body, lambda payload: self._parse_nlls(payload, ids, first))
            if nlls is None:
                raise ScoringFailed(f"a scoring request to {self.base_url} failed after retries ({error})")
            return nlls

        results = self._concurrently(one, prompts, "scoring")
        self.tokens_forwarded += sum(len(ids) for ids, _ in prompts)
        return results

    def _parse_nlls(self, payload: dict, ids: list[int], first: int) -> list[float]:
        choice = payload["choices"][0]
        entries = choice.get("prompt_logprobs", payload.get("prompt_logprobs"))
        if entries is None:
            raise ScoringFailed(f"the server at {self.base_url} returned no prompt log-probabilities: scoring on a "
                                "server needs vLLM's OpenAI-compatible server (prompt_logprobs); or score with the "
                                "hf or vllm engine")
        if len(entries) != len(ids):
            raise ValueError(f"{len(entries)} prompt log-probabilities for {len(ids)} prompt tokens")
        usage = payload.get("usage") or {}
        self.usage.record(prompt_tokens=int(usage.get("prompt_tokens") or len(ids)),
                          completion_tokens=int(usage.get("completion_tokens") or 0))
        nlls = []
        for position in range(first, len(ids)):
            entry = entries[position] or {}
            logprob = entry.get(str(ids[position]), entry.get(ids[position]))
            value = logprob["logprob"] if isinstance(logprob, dict) else logprob
            if value is None or not math.isfinite(float(value)):
                raise ValueError(f"no finite log-probability for prompt position {position}")
            nlls.append(-float(value))
        return nlls

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "base_url": self.base_url, "model": self.client.model}

    def close(self) -> None:
        self.client.close()
