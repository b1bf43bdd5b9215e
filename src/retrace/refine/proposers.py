"""Proposers: who writes the candidate rewrites of a Think step, looked up by name.

A proposer gets a batch of `ProposalRequest`s (one per Think being searched, so a model backend can
generate for many steps at once) and returns, per request, up to `n` candidate texts. A request carries
what the sub-agent knows at that point: the requirements, its plan entry, the files it read (or is about
to read) with their authors' reports, the grounding facts of the file it writes, and the incumbent. It
never sees the code it is writing toward, except the few high-loss lines of surprisal-guided search (the
leakage guard then rejects any candidate that copies them). Plan search (`refine_plan`) asks
`propose_plans` with `PlanRequest`s the same way; the search reads only the files' descriptions out of
what comes back (see `plan`).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any, Protocol

from retrace.agents.languages import language_phrase
from retrace.data import Grounding, Plan
from retrace.data.text_checks import grounding_terms, known_terms
from retrace.llm import raise_on_failures, synthesis_advice, with_opener
from retrace.llm.types import continues_reply
from retrace.refine.replies import clean_reply, instruction_sentences
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
    path: str                      # the file the sub-agent writes (its payload is what is scored)
    incumbent: str
    original: str                  # the Think before any search
    grounding: Grounding | None    # the analysis facts of `path`
    iteration: int                 # 0-based
    n: int                         # candidates wanted
    tried: set[str] = field(default_factory=set)        # texts already scored for this step
    hot_spans: list[HotSpan] = field(default_factory=list)  # surprisal-guided search only
    kind: str = "think"            # "think" (right before the Write) or "think_read" (before the Reads)
    requirements: str = ""
    plan_entry: str = ""           # the file's line of the plan
    reads: dict[str, str] = field(default_factory=dict)  # file read (or to be read) -> what is known of it


@dataclass
class PlanRequest:
    """One repository's plan under search: `plan` is the incumbent record (its descriptions change)."""

    repo: str
    requirements: str
    plan: Plan
    original: str
    groundings: dict[str, Grounding]   # path -> the grounding of the Think before its Write
    iteration: int
    n: int
    tried: set[str] = field(default_factory=set)

    @property
    def incumbent(self) -> str:
        return self.plan.render()


class Proposer(Protocol):
    """`propose` rewrites Thinks; a proposer that can also rewrite plans has `propose_plans` (same contract).

    `deterministic`: the same request always gets the same proposals, so a step given nothing new stops.
    """

    name: str
    deterministic: bool

    def propose(self, requests: list[ProposalRequest]) -> list[list[str]]: ...


def load_prompt(name: str) -> str:
    return resources.files("retrace.refine").joinpath("prompts", f"{name}.prompt").read_text(encoding="utf-8")


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 4].rstrip() + " ..."


class ChatProposer:
    """Rewrites by a chat model on any engine: what the sub-agent knows in, a rewritten Think out (never code).

    Each of a request's `n` candidates is asked with its own rewrite angle (`prompts/angles.prompt`: candidate
    k at iteration i takes angle i*n + k, cycling), so the candidates of a step differ even from a greedy
    model, and successive iterations try new angles; the seed moves with the iteration. Replies are cleaned
    (`replies.clean_reply`) and deduplicated. A request the engine could not complete (its transport retries
    spent) raises `RequestsFailed` naming the server: a Think left unsearched because a server was down
    would be silently degraded data. `counts` holds `proposed` (candidates returned), `unusable:<why>`
    (replies refused), `cut` (replies cut back to their last full sentence), `sentences_dropped` (restating
    an instruction, or repeated) and `duplicate`.
    """

    def __init__(self, engine, *, seed: int = 0, facts_chars: int = 1500, context_chars: int = 700,
                 prefill: bool = False):
        self.engine = engine
        self.prefill = prefill  # each rewrite starts with the Think's opener, continued by the engine
        self.name = engine.backend
        self.deterministic = False  # each iteration asks with new angles and a new seed
        self.seed = seed
        self.counts: Counter[str] = Counter()
        self.facts_chars = facts_chars
        self.context_chars = context_chars   # requirements, and the reads together, are cut here
        self.system = load_prompt("system")
        self.templates = {"think": load_prompt("rewrite"), "think_read": load_prompt("rewrite_read")}
        self.angles = [line.strip() for line in load_prompt("angles").splitlines()
                       if line.strip() and not line.startswith("#")]
        self.surprisal_template = load_prompt("surprisal")
        self.plan_system = load_prompt("plan_system")
        self.plan_template = load_prompt("plan_rewrite")
        self.instructions = instruction_sentences([self.system, self.surprisal_template, *self.templates.values(),
                                                   *self.angles])
        # every instruction word, placeholders blanked: what a sentence naming nothing else says
        self.instruction_words = re.sub(r"\{\w+\}", " ", "\n".join(
            [self.system, self.surprisal_template, *self.templates.values(), *self.angles]))

    def angle(self, request: ProposalRequest, k: int) -> str:
        return self.angles[(request.iteration * request.n + k) % len(self.angles)]

    def conversation(self, request: ProposalRequest, angle: str = "") -> list[dict[str, str]]:
        hot = ""
        if request.hot_spans:
            spans = "\n".join(f"- line {s.line}: {s.text}" for s in request.hot_spans)
            hot = self.surprisal_template.format(spans=spans)
        reads = "\n".join(f"- `{path}`: {' '.join(note.split()) or '(no report)'}"
                          for path, note in request.reads.items())
        user = self.templates[request.kind].format(
            repo=request.repo, path=request.path, requirements=_cap(request.requirements.strip(), self.context_chars),
            plan_entry=request.plan_entry or f"implement `{request.path}`.",
            reads=_cap(reads, self.context_chars) or "(none)",
            facts=_cap(render_facts(request.grounding), self.facts_chars), incumbent=request.incumbent,
            surprisal=hot, angle=angle)
        conversation = [{"role": "system", "content": self.system}, {"role": "user", "content": user}]
        if self.prefill:
            conversation.append({"role": "assistant", "content": think_opener(request)})
        return conversation

    def plan_conversation(self, request: PlanRequest) -> list[dict[str, str]]:
        files = "\n".join(_plan_facts_line(path, request.groundings.get(path)) for path in request.plan.paths)
        user = self.plan_template.format(repo=request.repo, requirements=request.requirements,
                                         files=files[:self.facts_chars], incumbent=request.incumbent,
                                         first_path=request.plan.paths[0] if request.plan.paths else "")
        return [{"role": "system", "content": self.plan_system}, {"role": "user", "content": user}]

    def propose(self, requests: list[ProposalRequest]) -> list[list[str]]:
        """One engine call per iteration present: every candidate of every request is its own conversation."""
        out: list[list[str]] = [[] for _ in requests]
        by_iteration: dict[int, list[tuple[int, int]]] = {}
        for i, request in enumerate(requests):
            by_iteration.setdefault(request.iteration, []).extend((i, k) for k in range(request.n))
        for iteration, jobs in by_iteration.items():
            params = replace(self.engine.default_params, n=1, seed=self.seed + 1000 * (iteration + 1))
            conversations = [self.conversation(requests[i], self.angle(requests[i], k)) for i, k in jobs]
            replies = self.engine.chat(conversations, params, desc="refine proposals")
            raise_on_failures(replies, self.engine, "proposer", synthesis_advice("proposer"))
            for (i, _), reply, conversation in zip(jobs, replies, conversations):
                opener = conversation[-1]["content"] if continues_reply(conversation) else ""
                user = next(m["content"] for m in reversed(conversation) if m["role"] == "user")
                names = (requests[i].repo, requests[i].path)
                grounding = grounding_terms(user, self.instruction_words, names)
                # the file's plan entry is in the document already: its words support no sentence
                known = known_terms(f"{self.instruction_words}\n{requests[i].plan_entry}", names)
                out[i] += self._usable(reply, prose=True, grounding=grounding, opener=opener, known=known)
        return [self._new(texts, request) for texts, request in zip(out, requests)]

    def propose_plans(self, requests: list[PlanRequest]) -> list[list[str]]:
        """Plan rewrites as `n` samples of one request each; the search keeps only their descriptions."""
        out: list[list[str]] = [[] for _ in requests]
        by_call: dict[tuple[int, int], list[int]] = {}
        for i, request in enumerate(requests):
            by_call.setdefault((request.n, request.iteration), []).append(i)
        for (n, iteration), indices in by_call.items():
            params = replace(self.engine.default_params, n=n, seed=self.seed + 1000 * (iteration + 1))
            replies = self.engine.chat([self.plan_conversation(requests[i]) for i in indices], params,
                                       desc="refine plan proposals")
            raise_on_failures(replies, self.engine, "proposer", synthesis_advice("proposer"))
            for i, reply in zip(indices, replies):
                out[i] = self._usable(reply, prose=False)
        return [self._new(texts, request) for texts, request in zip(out, requests)]

    def _usable(self, reply, *, prose: bool, grounding: frozenset[str] | None = None, opener: str = "",
                known: frozenset[str] = frozenset()) -> list[str]:
        texts = []
        for text, finish in zip(reply.texts, reply.finish_reasons or (None,) * len(reply.texts)):
            cleaned = clean_reply(with_opener(opener, text), finish, prose=prose, instructions=self.instructions,
                                  grounding=grounding, known=known)
            if cleaned.problem:
                self.counts[f"unusable:{cleaned.problem}"] += 1
                continue
            if cleaned.cut:
                self.counts["cut"] += 1
            if cleaned.dropped:
                self.counts["sentences_dropped"] += cleaned.dropped
            texts.append(cleaned.text)
        return texts

    def _new(self, texts: list[str], request: ProposalRequest | PlanRequest) -> list[str]:
        """Distinct texts the step has not tried (the incumbent is always among the tried)."""
        new = [t for t in dict.fromkeys(texts) if t not in request.tried and t != request.incumbent]
        self.counts["duplicate"] += len(texts) - len(new)
        self.counts["proposed"] += len(new)
        return new

    @property
    def usage(self) -> dict[str, int]:
        return {**self.engine.usage.to_dict(), **{f"proposer:{k}": v for k, v in sorted(self.counts.items())}}


def _plan_facts_line(path: str, facts: Grounding | None) -> str:
    names = [d.name for d in facts.top_level] if facts else []
    defines = f"; defines {', '.join(names[:8])}" if names else ""
    return f"- {path}: {(facts.purpose if facts else '') or '(no docstring)'}{defines}"


def think_opener(request: ProposalRequest) -> str:
    """The words a rewritten Think starts with, as the policy's Thinks do: why it reads its files first, or
    how it writes its file."""
    if request.kind == "think_read" and request.reads:
        return f"I read {language_phrase(list(request.reads))} first because"
    return f"To write {request.path}, I"


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
    return ChatProposer(engine, seed=seed, facts_chars=args.refine_prompt_facts_chars,
                        context_chars=args.refine_prompt_context_chars, prefill=args.refine_prefill_opener)
