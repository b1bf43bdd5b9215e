"""Policies: who writes the agents' words (requirements, purposes, Think steps, reports).

Every request carries its structural text, written from analysis facts. The `structural` policy
returns it as is; a model-backed policy renders the request's prompt template, generates, validates
the reply and falls back to the structural text when the reply is unusable, counting why.
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


class HFPolicy:
    """A local transformers chat model (the embedded SmolLM2 on CPU, any chat model on GPU)."""

    name = "hf"

    def __init__(self, model_name_or_path: str, *, max_new_tokens: int = 96, batch_size: int = 16,
                 temperature: float = 0.0, dtype: str = "auto", seed: int = 0, kinds: list[str] | None = None):
        from retrace.llm.chat import HFChatModel

        self.chat = HFChatModel(model_name_or_path, dtype=dtype, max_new_tokens=max_new_tokens,
                                temperature=temperature, batch_size=batch_size, seed=seed)
        self.kinds = set(kinds or REQUEST_KINDS)
        unknown = self.kinds - set(REQUEST_KINDS)
        if unknown:
            raise ValueError(f"unknown policy request kinds {sorted(unknown)}; expected some of {REQUEST_KINDS}")
        self.system = load_prompt("system").strip()
        self.templates = {kind: load_prompt(kind) for kind in REQUEST_KINDS}
        self.counts: Counter[str] = Counter()

    def write(self, requests: list[PolicyRequest]) -> list[PolicyReply]:
        replies = [PolicyReply(r.structural, "structural") for r in requests]
        todo = [i for i, r in enumerate(requests) if r.kind in self.kinds]
        prompts = [self.templates[requests[i].kind].format(**requests[i].fields).strip() for i in todo]
        conversations = [[{"role": "system", "content": self.system}, {"role": "user", "content": prompt}]
                         for prompt in prompts]
        texts = self.chat.generate(conversations, desc="policy") if conversations else []
        for i, prompt, text in zip(todo, prompts, texts):
            reason = check_reply(text, requests[i], prompt)
            if reason is None:
                replies[i] = PolicyReply(text.strip(), self.name)
                self.counts[f"{self.name}"] += 1
            else:
                replies[i] = PolicyReply(requests[i].structural, "structural", reason)
                self.counts[f"fallback:{reason}"] += 1
        self.counts["structural"] += len(requests) - len(todo)
        return replies

    @property
    def usage(self) -> dict[str, int]:
        u = self.chat.usage
        return {"requests": u.requests, "prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens}


POLICIES = {"structural": StructuralPolicy, "hf": HFPolicy}


def build_policy(name: str, **kwargs):
    if name not in POLICIES:
        raise ValueError(f"unknown policy '{name}'; available: {', '.join(sorted(POLICIES))}")
    if name == "structural":
        return StructuralPolicy()
    return POLICIES[name](**kwargs)
