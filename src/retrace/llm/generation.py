"""Text generation for benchmarks: raw continuations and chat replies, n samples each, cut at stop strings.

The policy backends in `chat` serve one reply per conversation with fixed settings; benchmarks need
more: base-model completion (HumanEval, RULER's answer prefix), n samples per prompt for pass@k,
per-call sampling parameters that are recorded with the results, and stop strings. Three backends
offer the same `TextGenerator` surface: transformers (CPU or GPU, batched, left padding), vLLM
in-process (GPU, imported lazily) and any OpenAI-compatible server (`completions` and
`chat/completions`, through `OpenAIChatModel`'s retries). Every backend returns text cut before the
first stop string, so scores do not depend on where a backend happened to stop.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from tqdm.auto import tqdm

from retrace.llm.chat import GenerationUsage, Message
from retrace.llm.embedded import resolve_model_path

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SamplingParams:
    """How to sample; `temperature` 0 is greedy (then `n` > 1 repeats the same text)."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    n: int = 1
    stop: tuple[str, ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1 or self.n < 1 or self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ValueError(f"bad sampling parameters: {self}")
        object.__setattr__(self, "stop", tuple(self.stop))

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "stop": list(self.stop)}


def cut_at_stop(text: str, stop: tuple[str, ...]) -> str:
    """`text` up to (not including) the earliest occurrence of any stop string."""
    cut = len(text)
    for marker in stop:
        if marker and (at := text.find(marker)) != -1:
            cut = min(cut, at)
    return text[:cut]


class TextGenerator(Protocol):
    """What a benchmark needs of a model that writes text."""

    name: str
    tokenizer: Any
    max_model_len: int | None
    usage: GenerationUsage

    def complete(self, prompts: list[str], params: SamplingParams, desc: str = "generating") -> list[list[str]]:
        """`params.n` raw continuations of each prompt (no chat template), in prompt order."""
        ...

    def chat(self, conversations: list[list[Message]], params: SamplingParams,
             desc: str = "generating") -> list[list[str]]:
        """`params.n` assistant replies to each conversation, through the model's chat template."""
        ...

    def describe(self) -> dict[str, Any]: ...


class _StopInGeneratedText:
    """Stops a row once its *generated* text holds a stop string.

    transformers' own `stop_strings` also match across the prompt's end (a prompt ending in a newline
    stops at once on a "\n\n" stop), which vLLM and OpenAI servers do not do; this keeps all three
    backends equal. Only the tail that can hold a new match is decoded at each step.
    """

    def __init__(self, tokenizer: Any, stop: tuple[str, ...], prompt_width: int):
        self.tokenizer = tokenizer
        self.stop = stop
        self.prompt_width = prompt_width
        self.tail_tokens = max(len(s) for s in stop) + 4

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        generated = input_ids[:, self.prompt_width:]
        done = [any(marker in self.tokenizer.decode(row[-self.tail_tokens:], skip_special_tokens=True)
                    for marker in self.stop) for row in generated.tolist()]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


class HFTextGenerator:
    """A transformers causal LM generating for many prompts at once (sorted by length, left padded)."""

    def __init__(self, model: Any, tokenizer: Any, *, name: str = "", batch_size: int = 8):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.name = name or getattr(model.config, "_name_or_path", "model")
        self.batch_size = batch_size
        self.max_model_len = getattr(model.config, "max_position_embeddings", None)
        self.usage = GenerationUsage()

    @classmethod
    def from_pretrained(cls, name_or_path: str, *, dtype: str = "float32", device: str | None = None,
                        batch_size: int = 8, name: str = "") -> HFTextGenerator:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = resolve_model_path(name_or_path)
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype = dtype if dtype == "auto" else getattr(torch, dtype)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype).to(device)
        return cls(model, AutoTokenizer.from_pretrained(path), name=name or name_or_path, batch_size=batch_size)

    @property
    def device(self):
        return next(self.model.parameters()).device

    def complete(self, prompts: list[str], params: SamplingParams, desc: str = "generating") -> list[list[str]]:
        encoded = [self.tokenizer(p, add_special_tokens=True)["input_ids"] for p in prompts]
        return self._generate(encoded, params, desc)

    def chat(self, conversations: list[list[Message]], params: SamplingParams,
             desc: str = "generating") -> list[list[str]]:
        if self.tokenizer.chat_template is None:
            raise ValueError(f"{self.name} has no chat template: use a completion-style prompt for it")
        encoded = [self.tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=True,
                                                      return_dict=True)["input_ids"] for c in conversations]
        return self._generate(encoded, params, desc)

    def _stop_token_ids(self) -> list[int]:
        """EOS plus the chat template's end-of-turn token, so chat replies end where the turn does."""
        ids = {self.tokenizer.eos_token_id}
        for token in ("<|im_end|>", "<|eot_id|>", "<|end|>"):
            token_id = self.tokenizer.convert_tokens_to_ids(token)
            if isinstance(token_id, int) and token_id != self.tokenizer.unk_token_id:
                ids.add(token_id)
        return sorted(i for i in ids if i is not None)

    def _generate(self, encoded: list[list[int]], params: SamplingParams, desc: str) -> list[list[str]]:
        import torch

        results: list[list[str]] = [[] for _ in encoded]
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
        batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        sampling = ({"do_sample": True, "temperature": params.temperature, "top_p": params.top_p}
                    if params.temperature > 0 else {"do_sample": False, "temperature": None, "top_p": None})
        pad = self.tokenizer.pad_token_id
        for batch in tqdm(batches, desc=desc, unit="batch", disable=len(batches) < 2):
            width = max(len(encoded[i]) for i in batch)
            ids = torch.tensor([[pad] * (width - len(encoded[i])) + encoded[i] for i in batch], device=self.device)
            mask = torch.tensor([[0] * (width - len(encoded[i])) + [1] * len(encoded[i]) for i in batch],
                                device=self.device)
            torch.manual_seed(params.seed)
            stopping = [_StopInGeneratedText(self.tokenizer, params.stop, width)] if params.stop else []
            with torch.inference_mode():
                output = self.model.generate(
                    input_ids=ids, attention_mask=mask, max_new_tokens=params.max_new_tokens,
                    num_return_sequences=params.n if params.temperature > 0 else 1, pad_token_id=pad,
                    eos_token_id=self._stop_token_ids(), top_k=None, stopping_criteria=stopping,
                    use_cache=True, **sampling)  # trained checkpoints save use_cache=False
            new_tokens = output[:, width:]
            self.usage.requests += len(batch)
            self.usage.prompt_tokens += int(mask.sum())
            per_prompt = params.n if params.temperature > 0 else 1
            for row in range(new_tokens.shape[0]):
                index = batch[row // per_prompt]
                tokens = [t for t in new_tokens[row].tolist() if t != pad]
                self.usage.completion_tokens += len(tokens)
                text = self.tokenizer.decode(tokens, skip_special_tokens=True)
                results[index].append(cut_at_stop(text, params.stop))
        if params.temperature == 0 and params.n > 1:
            results = [texts * params.n for texts in results]
        return results

    def describe(self) -> dict[str, Any]:
        return {"backend": "hf", "dtype": str(self.model.dtype).removeprefix("torch."), "device": str(self.device),
                "batch_size": self.batch_size, "usage": dataclasses.asdict(self.usage)}


class VLLMTextGenerator:
    """A `vllm.LLM` in-process (GPU); vLLM schedules and batches the whole request list itself."""

    def __init__(self, model_name_or_path: str, *, dtype: str = "auto", max_model_len: int = 0, seed: int = 0,
                 tensor_parallel_size: int = 1, gpu_memory_utilization: float = 0.9, name: str = "",
                 **engine_kwargs):
        from retrace.llm.vllm_chat import _import_vllm

        vllm = _import_vllm()
        self._sampling_params = vllm.SamplingParams
        path = resolve_model_path(model_name_or_path)
        engine = {"model": path, "dtype": dtype, "seed": seed, "tensor_parallel_size": tensor_parallel_size,
                  "gpu_memory_utilization": gpu_memory_utilization, "enable_prefix_caching": True,
                  **engine_kwargs}
        if max_model_len:
            engine["max_model_len"] = max_model_len
        self.llm = vllm.LLM(**engine)
        self.tokenizer = self.llm.get_tokenizer()
        self.name = name or model_name_or_path
        self.max_model_len = self.llm.llm_engine.model_config.max_model_len
        self.usage = GenerationUsage()
        self.engine = {k: v for k, v in engine.items() if k != "model"}

    def _params(self, params: SamplingParams):
        return self._sampling_params(n=params.n, temperature=params.temperature, top_p=params.top_p,
                                     max_tokens=params.max_new_tokens, stop=list(params.stop) or None,
                                     seed=params.seed if params.temperature > 0 else None)

    def _collect(self, outputs, params: SamplingParams) -> list[list[str]]:
        results = []
        for output in outputs:
            self.usage.requests += 1
            self.usage.prompt_tokens += len(output.prompt_token_ids or [])
            self.usage.completion_tokens += sum(len(o.token_ids) for o in output.outputs)
            results.append([cut_at_stop(o.text, params.stop) for o in output.outputs])
        return results

    def complete(self, prompts: list[str], params: SamplingParams, desc: str = "generating") -> list[list[str]]:
        return self._collect(self.llm.generate(prompts, self._params(params), use_tqdm=len(prompts) >= 16), params)

    def chat(self, conversations: list[list[Message]], params: SamplingParams,
             desc: str = "generating") -> list[list[str]]:
        outputs = self.llm.chat(conversations, self._params(params), use_tqdm=len(conversations) >= 16)
        return self._collect(outputs, params)

    def describe(self) -> dict[str, Any]:
        return {"backend": "vllm", "engine": self.engine, "usage": dataclasses.asdict(self.usage)}


class OpenAITextGenerator:
    """An OpenAI-compatible server (e.g. `python -m vllm.entrypoints.openai.api_server`), requests concurrent.

    The tokenizer (for measuring prompt lengths) is loaded locally from `tokenizer_path`.
    """

    def __init__(self, base_url: str, model: str, *, tokenizer_path: str, concurrency: int = 8,
                 timeout_s: float = 600.0, max_model_len: int = 0, name: str = "", **client_kwargs):
        from transformers import AutoTokenizer

        from retrace.llm.openai_chat import OpenAIChatModel

        self.client = OpenAIChatModel(base_url, model, concurrency=concurrency, timeout_s=timeout_s,
                                      **client_kwargs)
        self.tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(tokenizer_path))
        self.name = name or model
        self.max_model_len = max_model_len or None
        self.usage = self.client.usage

    def _run(self, endpoint: str, bodies: list[dict], desc: str) -> list[list[str]]:
        from concurrent.futures import ThreadPoolExecutor

        if not bodies:
            return []
        self.client.wait_until_ready()
        with ThreadPoolExecutor(max_workers=self.client.concurrency) as pool:
            replies = list(tqdm(pool.map(lambda body: self.client.request(endpoint, body), bodies),
                                total=len(bodies), desc=desc, unit="request", disable=len(bodies) < 16))
        failed = sum(r is None for r in replies)
        if failed:
            logger.warning("%s: %d of %d requests failed after retries; scored as empty", desc, failed, len(bodies))
        return [r or [""] for r in replies]

    def _body(self, params: SamplingParams) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.client.model, "max_tokens": params.max_new_tokens,
                                "temperature": params.temperature, "top_p": params.top_p, "n": params.n}
        if params.stop:
            body["stop"] = list(params.stop)
        if params.temperature > 0:
            body["seed"] = params.seed
        return body

    def complete(self, prompts: list[str], params: SamplingParams, desc: str = "generating") -> list[list[str]]:
        replies = self._run("completions", [{**self._body(params), "prompt": p} for p in prompts], desc)
        return [[cut_at_stop(t, params.stop) for t in texts] for texts in replies]

    def chat(self, conversations: list[list[Message]], params: SamplingParams,
             desc: str = "generating") -> list[list[str]]:
        replies = self._run("chat/completions", [{**self._body(params), "messages": c} for c in conversations], desc)
        return [[cut_at_stop(t, params.stop) for t in texts] for texts in replies]

    def describe(self) -> dict[str, Any]:
        return {"backend": "openai", "base_url": self.client.base_url, "model": self.client.model,
                "counts": dict(self.client.counts), "usage": dataclasses.asdict(self.usage)}
