"""Policies: who writes the agents' words (requirements, purposes, Think steps, reports).

Every request carries its structural text, written from analysis facts. The `structural` policy
returns it as is; the model-backed ones (`hf`, `openai`, `vllm`) are one `ChatPolicy` over different
chat backends of `retrace.llm`: it renders the request's prompt template, generates, validates the
reply, asks again when it is unusable and finally falls back to the structural text, counting why.
Policies are looked up by name in `POLICIES`.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources

logger = logging.getLogger(__name__)

REQUEST_KINDS = ("requirements", "purpose", "think_read", "think_write", "report")


@dataclass
class PolicyRequest:
    kind: str                       # one of REQUEST_KINDS; names the prompt template
    fields: dict[str, str]          # values for the template's placeholders
    structural: str                 # the grounded fallback text
    forbidden_lines: list[str] = field(default_factory=list)  # real code lines the text must not paste
    anchors: list[str] = field(default_factory=list)  # names of which a grounded text mentions at least one


@dataclass
class PolicyReply:
    text: str
    source: str                     # "structural" or the policy that wrote it
    fallback_reason: str | None = None


def load_prompt(kind: str) -> str:
    return resources.files("retrace.agents").joinpath("prompts", f"{kind}.prompt").read_text(encoding="utf-8")


class StructuralPolicy:
    """Offline and deterministic: the grounded text, nothing else."""

    name = "structural"

    def __init__(self, **_: object):
        self.counts: Counter[str] = Counter()

    def write(self, requests: list[PolicyRequest]) -> list[PolicyReply]:
        self.counts["structural"] += len(requests)
        return [PolicyReply(r.structural, "structural") for r in requests]


def check_reply(text: str, request: PolicyRequest, prompt: str = "", min_chars: int = 20,
                max_chars: int = 2000) -> str | None:
    """Why a generated reply is unusable, or None when it is fine.

    Beyond form (length, code blocks, markup), a reply must stay grounded: mention at least one of the
    request's anchors (the file, its names, its dependencies), not paste real code, and not parrot
    the prompt back.
    """
    stripped = text.strip()
    if len(stripped) < min_chars:
        return "too_short"
    if len(stripped) > max_chars:
        return "too_long"
    if "```" in stripped:
        return "code_block"
    if "<|" in stripped or "</write>" in stripped or "<observation" in stripped:
        return "markup"
    for line in request.forbidden_lines:
        if line in stripped:
            return "pastes_code"
    for line in prompt.splitlines():
        if len(line.strip()) >= 30 and line.strip() in stripped:
            return "echoes_prompt"
    lowered = stripped.lower()
    if request.anchors and not any(anchor.lower() in lowered for anchor in request.anchors):
        return "ungrounded"
    return None


class ChatPolicy:
    """A chat model behind any backend (`hf`, `openai`, `vllm`) writes the requested kinds of text.

    Each reply is validated with `check_reply`; an unusable one is asked again up to `retries` times,
    sampling at `retry_temperature` with a fresh seed so that the answer can differ (a greedy model
    asked twice says the same thing), then replaced by the structural text. A request the backend
    could not complete at all (`None`: its transport retries are spent) falls back at once.

    `counts` holds one outcome per request (the policy's name, `structural` for kinds not delegated,
    or `fallback:<reason>`), plus `retry` (requests asked again) and `recovered` (usable on a retry).
    """

    def __init__(self, backend, name: str, *, kinds: list[str] | None = None, retries: int = 1,
                 retry_temperature: float = 0.7, seed: int = 0):
        self.backend = backend
        self.name = name
        self.kinds = set(kinds or REQUEST_KINDS)
        unknown = self.kinds - set(REQUEST_KINDS)
        if unknown:
            raise ValueError(f"unknown policy request kinds {sorted(unknown)}; expected some of {REQUEST_KINDS}")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        self.retries = retries
        self.retry_temperature = retry_temperature
        self.seed = seed
        self.system = load_prompt("system").strip()
        self.templates = {kind: load_prompt(kind) for kind in REQUEST_KINDS}
        self.counts: Counter[str] = Counter()

    def write(self, requests: list[PolicyRequest]) -> list[PolicyReply]:
        replies = [PolicyReply(r.structural, "structural") for r in requests]
        prompts = {i: self.templates[r.kind].format(**r.fields).strip()
                   for i, r in enumerate(requests) if r.kind in self.kinds}
        pending = list(prompts)
        for attempt in range(self.retries + 1):
            if not pending:
                break
            sampling = {} if attempt == 0 else {"temperature": self.retry_temperature, "seed": self.seed + attempt}
            if attempt:
                self.counts["retry"] += len(pending)
            conversations = [[{"role": "system", "content": self.system}, {"role": "user", "content": prompts[i]}]
                             for i in pending]
            texts = self.backend.generate(conversations, desc="policy" if attempt == 0 else "policy retry",
                                          **sampling)
            still_pending = []
            for i, text in zip(pending, texts):
                reason = "request_failed" if text is None else check_reply(text, requests[i], prompts[i])
                if reason is None:
                    replies[i] = PolicyReply(text.strip(), self.name)
                    self.counts[self.name] += 1
                    if attempt:
                        self.counts["recovered"] += 1
                elif reason != "request_failed" and attempt < self.retries:
                    still_pending.append(i)
                else:
                    replies[i] = PolicyReply(requests[i].structural, "structural", reason)
                    self.counts[f"fallback:{reason}"] += 1
            pending = still_pending
        if len(requests) > len(prompts):
            self.counts["structural"] += len(requests) - len(prompts)
        return replies

    @property
    def usage(self) -> dict[str, int]:
        """Tokens and requests spent, plus the backend's own counts (finish reasons, transport retries)."""
        u = self.backend.usage
        return {"requests": u.requests, "prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
                **dict(sorted(getattr(self.backend, "counts", {}).items()))}


# Each builder takes the recipe's policy keys as keywords and ignores those of other backends, so one
# recipe switches backend by its `policy` key alone.

def _policy_options(kinds=None, retries: int = 1, retry_temperature: float = 0.7, seed: int = 0) -> dict:
    return {"kinds": kinds, "retries": retries, "retry_temperature": retry_temperature, "seed": seed}


def build_hf_policy(model_name_or_path: str, *, max_new_tokens: int = 96, batch_size: int = 16,
                    temperature: float = 0.0, dtype: str = "auto", seed: int = 0, kinds=None, retries: int = 1,
                    retry_temperature: float = 0.7, **_) -> ChatPolicy:
    """A local transformers chat model (the embedded SmolLM2 on CPU, any chat model on GPU)."""
    from retrace.llm.chat import HFChatModel

    backend = HFChatModel(model_name_or_path, dtype=dtype, max_new_tokens=max_new_tokens,
                          temperature=temperature, batch_size=batch_size, seed=seed)
    return ChatPolicy(backend, "hf", **_policy_options(kinds, retries, retry_temperature, seed))


def build_openai_policy(model_name_or_path: str, *, base_url: str, api_key_env: str = "OPENAI_API_KEY",
                        max_new_tokens: int = 96, temperature: float = 0.0, seed: int = 0, concurrency: int = 8,
                        timeout_s: float = 60.0, max_retries: int = 4, ready_timeout_s: float = 600.0,
                        kinds=None, retries: int = 1, retry_temperature: float = 0.7, **_) -> ChatPolicy:
    """Any OpenAI-compatible chat-completions server; `model_name_or_path` is the served model's id."""
    from retrace.llm.openai_chat import OpenAIChatModel

    backend = OpenAIChatModel(base_url, model_name_or_path, api_key_env=api_key_env, max_new_tokens=max_new_tokens,
                              temperature=temperature, seed=seed, concurrency=concurrency, timeout_s=timeout_s,
                              max_retries=max_retries, ready_timeout_s=ready_timeout_s)
    return ChatPolicy(backend, "openai", **_policy_options(kinds, retries, retry_temperature, seed))


def build_vllm_policy(model_name_or_path: str, *, max_new_tokens: int = 96, temperature: float = 0.0,
                      dtype: str = "auto", seed: int = 0, max_model_len: int = 0, tensor_parallel_size: int = 1,
                      gpu_memory_utilization: float = 0.9, kinds=None, retries: int = 1,
                      retry_temperature: float = 0.7, **_) -> ChatPolicy:
    """vLLM in-process (GPU); the batch goes to the engine whole, so `batch_size` does not apply."""
    from retrace.llm.vllm_chat import VLLMChatModel

    backend = VLLMChatModel(model_name_or_path, dtype=dtype, max_new_tokens=max_new_tokens, temperature=temperature,
                            seed=seed, max_model_len=max_model_len, tensor_parallel_size=tensor_parallel_size,
                            gpu_memory_utilization=gpu_memory_utilization)
    return ChatPolicy(backend, "vllm", **_policy_options(kinds, retries, retry_temperature, seed))


def build_structural_policy(**_) -> StructuralPolicy:
    return StructuralPolicy()


POLICIES = {"structural": build_structural_policy, "hf": build_hf_policy, "openai": build_openai_policy,
            "vllm": build_vllm_policy}


def build_policy(name: str, **kwargs):
    """The policy registered as `name`, built from recipe keys (those of other backends are ignored)."""
    if name not in POLICIES:
        raise ValueError(f"unknown policy '{name}'; available: {', '.join(sorted(POLICIES))}")
    return POLICIES[name](**kwargs)
