"""Policies: who writes the agents' words (requirements, purposes, Think steps, reports).

Every request carries its structural text, written from analysis facts. The `structural` policy
returns it as is; a model-backed one is a `ChatPolicy` over any engine of `retrace.llm` (`hf`, `vllm`,
`openai`, chosen by the recipe's `policy_backend`): it renders the request's prompt template, generates,
validates the reply, asks again when it is unusable and finally falls back to the structural text,
counting why.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field, replace
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

    def __init__(self):
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
    """A chat model behind any engine writes the requested kinds of text.

    Each reply is validated with `check_reply`; an unusable one is asked again up to `retries` times,
    sampling at `retry_temperature` with a fresh seed so that the answer can differ (a greedy model
    asked twice says the same thing), then replaced by the structural text. A request the engine
    could not complete at all (a failed `Reply`: its transport retries are spent) falls back at once.

    `counts` holds one outcome per request (the engine's backend name, `structural` for kinds not
    delegated, or `fallback:<reason>`), plus `retry` (requests asked again) and `recovered` (usable on a
    retry). The policy's name, and the `source` of what it writes, is the engine's backend.
    """

    def __init__(self, engine, *, kinds: list[str] | None = None, retries: int = 1, retry_temperature: float = 0.7,
                 seed: int = 0):
        self.engine = engine
        self.name = engine.backend
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
            params = self.engine.default_params
            if attempt:
                params = replace(params, temperature=self.retry_temperature, seed=self.seed + attempt)
                self.counts["retry"] += len(pending)
            conversations = [[{"role": "system", "content": self.system}, {"role": "user", "content": prompts[i]}]
                             for i in pending]
            answers = self.engine.chat(conversations, params, desc="policy" if attempt == 0 else "policy retry")
            still_pending = []
            for i, answer in zip(pending, answers):
                reason = "request_failed" if answer.failed else check_reply(answer.text, requests[i], prompts[i])
                if reason is None:
                    replies[i] = PolicyReply(answer.text.strip(), self.name)
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
        """Requests and tokens spent, finish reasons, transport retries and failures (`Usage.to_dict`)."""
        return self.engine.usage.to_dict()


def build_policy(args, *, engine=None, engines=None):
    """The policy of a `SimulationArguments`: structural, or a `ChatPolicy` over the `policy_*` engine.

    `engine` replaces the recipe's engine; `engines` (an `EnginePool`) shares loaded models with other roles.
    """
    from retrace.llm import STRUCTURAL, EnginePool, engine_config

    config = engine_config(args, "policy")
    if config.backend == STRUCTURAL and engine is None:
        return StructuralPolicy()
    engine = engine or (engines or EnginePool(seed=args.seed)).get(config, role="policy")
    return ChatPolicy(engine, kinds=args.policy_kinds, retries=args.policy_retries,
                      retry_temperature=args.policy_retry_temperature, seed=args.seed)
