"""Proposers: who writes the candidate rewrites of a Think step, looked up by name.

A proposer gets a batch of `ProposalRequest`s (one per Think being searched, so a model backend can
generate for many steps at once) and returns, per request, up to `n` candidate texts. It never sees the
code it is writing toward, except the few high-loss spans of surprisal-guided search (the leakage guard
then rejects any candidate that copies them). Plan search (`refine_plan`) asks `propose_plans` with
`PlanRequest`s the same way; what comes back is rendered through the plan's skeleton by the search, so
only the files' descriptions can change.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
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


def load_prompt(name: str) -> str:
    return resources.files("retrace.refine").joinpath("prompts", f"{name}.prompt").read_text(encoding="utf-8")


class ChatProposer:
    """Rewrites by a chat model on any engine: the incumbent and the grounded facts in, a new Think out (never
    the code).

    The `n` candidates of a request are `n` samples of one request (so a seeded server does not return one
    sample `n` times); the seed moves with the iteration, so an incumbent that did not change still gets
    fresh candidates. A request the engine could not complete gives no candidates and is counted
    `failed:<reason>` in `counts`, beside `proposed` (candidates returned) and `unusable` (replies dropped).
    """

    def __init__(self, engine, *, seed: int = 0, facts_chars: int = 1500):
        self.engine = engine
        self.name = engine.backend
        self.seed = seed
        self.counts: Counter[str] = Counter()
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
        out: list[list[str]] = [[] for _ in requests]
        by_call: dict[tuple[int, int], list[int]] = {}
        for i, request in enumerate(requests):
            by_call.setdefault((request.n, request.iteration), []).append(i)
        for (n, iteration), indices in by_call.items():
            params = replace(self.engine.default_params, n=n, seed=self.seed + 1000 * (iteration + 1))
            replies = self.engine.chat([conversation(requests[i]) for i in indices], params, desc=desc)
            for i, reply in zip(indices, replies):
                if reply.failed:
                    self.counts[f"failed:{reply.error}"] += 1
                    continue
                texts = [clean_reply(t) for t in reply.texts]
                self.counts["unusable"] += sum(not t for t in texts)
                out[i] = [t for t in dict.fromkeys(texts) if t and t not in requests[i].tried]
                self.counts["proposed"] += len(out[i])
        return out

    @property
    def usage(self) -> dict[str, int]:
        return {**self.engine.usage.to_dict(), **{f"proposer:{k}": v for k, v in sorted(self.counts.items())}}


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


def build_proposer(args: Any, *, seed: int = 0, engine: Any = None, engines: Any = None) -> Proposer:
    """The proposer of a `RefineArguments`: structural, or a `ChatProposer` over the `proposer_*` engine.

    `seed` is the recipe's; `engine` replaces the recipe's engine; `engines` (an `EnginePool`) shares loaded
    models with other roles.
    """
    from retrace.llm import STRUCTURAL, EnginePool, engine_config

    config = engine_config(args, "proposer")
    if config.backend == STRUCTURAL and engine is None:
        return StructuralProposer(max_chars=args.refine_max_think_chars)
    engine = engine or (engines or EnginePool(seed=seed)).get(config, role="proposer")
    return ChatProposer(engine, seed=seed)
