"""Proposers: who writes the candidate rewrites of a Think step, looked up by name.

A proposer gets a batch of `ProposalRequest`s (one per Think being searched, so a model backend can
generate for many steps at once) and returns, per request, up to `n` candidate texts. It never sees the
code it is writing toward, except the few high-loss spans of surprisal-guided search (the leakage guard
then rejects any candidate that copies them). Plan search (`refine_plan`) asks `propose_plans` with
`PlanRequest`s the same way; what comes back is rendered through the plan's skeleton by the search, so
only the files' descriptions can change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Protocol

from retrace.refine.plan import PlanSkeleton
from retrace.refine.structural import StructuralProposer, render_facts


@dataclass(frozen=True)
class HotSpan:
    """A stretch of the payload the incumbent leaves surprising: 1-based line, its text, summed NLL (nats)."""

    line: int
    text: str
    nll: float


@dataclass
class ProposalRequest:
    repo: str
    path: str                      # the file the Think precedes
    incumbent: str
    original: str                  # the Think before any search
    facts: dict[str, Any]
    iteration: int                 # 0-based
    n: int                         # candidates wanted
    tried: set[str] = field(default_factory=set)        # texts already scored for this step
    hot_spans: list[HotSpan] = field(default_factory=list)  # surprisal-guided search only


@dataclass
class PlanRequest:
    """One repository's plan under search; `descriptions` are the incumbent's, path -> text."""

    repo: str
    requirements: str
    skeleton: PlanSkeleton
    incumbent: str
    descriptions: dict[str, str]
    original: str
    facts: dict[str, dict[str, Any]]   # path -> the facts of the Think before its Write
    iteration: int
    n: int
    tried: set[str] = field(default_factory=set)


class Proposer(Protocol):
    """`propose` rewrites Thinks; a proposer that can also rewrite plans has `propose_plans` (same contract)."""

    name: str

    def propose(self, requests: list[ProposalRequest]) -> list[list[str]]: ...


class ChatBackend(Protocol):
    """Any chat generation backend of `retrace.llm` (HF, vLLM, OpenAI-compatible)."""

    def generate(self, conversations: list[list[dict[str, str]]], desc: str = ...) -> list[str]: ...


def load_prompt(name: str) -> str:
    return resources.files("retrace.refine").joinpath("prompts", f"{name}.prompt").read_text(encoding="utf-8")


class ChatProposer:
    """Rewrites by a chat model: the incumbent and the grounded facts in, a new Think out (never the code)."""

    name = "chat"

    def __init__(self, backend: ChatBackend, *, facts_chars: int = 1500):
        self.backend = backend
        self.facts_chars = facts_chars
        self.system = load_prompt("system")
        self.template = load_prompt("rewrite")
        self.surprisal_template = load_prompt("surprisal")
        self.plan_system = load_prompt("plan_system")
        self.plan_template = load_prompt("plan_rewrite")

    def conversation(self, request: ProposalRequest) -> list[dict[str, str]]:
        hot = ""
        if request.hot_spans:
            spans = "\n".join(f"- line {s.line}: {s.text}" for s in request.hot_spans)
            hot = self.surprisal_template.format(spans=spans)
        user = self.template.format(path=request.path, facts=render_facts(request.facts)[:self.facts_chars],
                                    incumbent=request.incumbent, surprisal=hot)
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]

    def plan_conversation(self, request: PlanRequest) -> list[dict[str, str]]:
        files = "\n".join(_plan_facts_line(path, request.facts.get(path) or {}) for path in request.skeleton.paths)
        user = self.plan_template.format(repo=request.repo, requirements=request.requirements,
                                         files=files[:self.facts_chars], incumbent=request.incumbent,
                                         first_path=request.skeleton.paths[0] if request.skeleton.paths else "")
        return [{"role": "system", "content": self.plan_system}, {"role": "user", "content": user}]

    def propose(self, requests: list[ProposalRequest]) -> list[list[str]]:
        return self._generate(requests, self.conversation, "refine proposals")

    def propose_plans(self, requests: list[PlanRequest]) -> list[list[str]]:
        """Plan rewrites; the search keeps only their per-file descriptions (see `PlanSkeleton.apply`)."""
        return self._generate(requests, self.plan_conversation, "refine plan proposals")

    def _generate(self, requests, conversation, desc: str) -> list[list[str]]:
        conversations = [conversation(r) for r in requests for _ in range(r.n)]
        replies = self.backend.generate(conversations, desc=desc) if conversations else []
        out, offset = [], 0
        for request in requests:
            texts = [clean_reply(t) for t in replies[offset:offset + request.n]]
            offset += request.n
            out.append([t for t in dict.fromkeys(texts) if t and t not in request.tried])
        return out


def _plan_facts_line(path: str, facts: dict[str, Any]) -> str:
    names = [d["name"] for d in facts.get("definitions") or [] if not d.get("parent")]
    defines = f"; defines {', '.join(names[:8])}" if names else ""
    return f"- {path}: {facts.get('purpose') or '(no docstring)'}{defines}"


def clean_reply(text: str) -> str:
    """The reply as a Think, or "" when unusable (code fences or markup: a Think is prose)."""
    text = text.strip()
    if "```" in text or "<think>" in text or "</" in text:
        return ""
    return text


def _structural(args: Any, backend: ChatBackend | None) -> Proposer:
    return StructuralProposer(max_chars=getattr(args, "refine_max_think_chars", 2400))


def _hf(args: Any, backend: ChatBackend | None) -> Proposer:
    if backend is None:
        from retrace.llm.chat import HFChatModel

        backend = HFChatModel(args.refine_proposer_model, max_new_tokens=args.refine_proposer_max_new_tokens,
                              temperature=args.refine_proposer_temperature, seed=getattr(args, "seed", 0))
    return ChatProposer(backend)


def _chat(args: Any, backend: ChatBackend | None) -> Proposer:
    if backend is None:
        raise ValueError("proposer 'chat' needs a backend object with generate(conversations, desc)")
    return ChatProposer(backend)


# name -> factory(args, backend): 'hf' builds the recipe's proposer model, 'chat' wraps any backend given
# (vLLM, OpenAI-compatible: built by the caller from retrace.llm, so this stage needs no server knowledge).
PROPOSERS = {"structural": _structural, "hf": _hf, "chat": _chat}


def build_proposer(args: Any, *, backend: ChatBackend | None = None) -> Proposer:
    """The proposer named by `args.refine_proposer` (a `RefineArguments`)."""
    name = args.refine_proposer
    if name not in PROPOSERS:
        raise ValueError(f"unknown proposer {name!r}; available: {sorted(PROPOSERS)}")
    return PROPOSERS[name](args, backend)
