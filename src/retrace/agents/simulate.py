"""The multi-agent simulation: a main agent plans, one sub-agent per file reads and writes.

Grounding is total: every Read observation is the real content of the file read and every Write
payload is the real file, byte for byte. Only the words in between (requirements, plan descriptions,
Thinks, reports) come from the policy, and each text is written knowing the texts it builds on, so one
document tells one story. The policy is asked in four waves, each one `policy.write` call holding the
requests of every repository of the batch (batching stays across repositories, and the number of
waves does not grow with the depth of the import graph):

1. the requirements of every repository (from its README, manifests, tree and import graph);
2. every file's plan description, given its repository's requirements;
3. every file's report, given its plan entry and those of the later files that import it (what the file
   gives them);
4. every Think: before the Reads (why those files, given their reports) and before the Write (the real
   file, and the reports of what was read).

The prompts' contents are `retrace.agents.requests`; the templates are `prompts/*.prompt`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass

from retrace.agents.facts import definitions
from retrace.agents.policies import PolicyReply, PolicyRequest
from retrace.agents.requests import (
    RepoWork,
    purpose_request,
    report_request,
    requirements_request,
    think_read_request,
    think_write_request,
)
from retrace.data import MAIN_AGENT, Grounding, Plan, PlanEntry, Step, Trajectory
from retrace.repo import RepoGraph, RepoSnapshot

logger = logging.getLogger(__name__)


@dataclass
class SimulationOptions:
    """How much a sub-agent reads, and how much of each fact a model policy is shown (prefill is CPU cost)."""

    read_budget_chars: int = 0  # 0: observations are whole files; else longer files are cut, marked truncated
    min_forbidden_line_chars: int = 30
    prompt_facts_chars: int = 800    # definitions, manifests, the file tree
    prompt_readme_chars: int = 600   # the README (or package docstring) in the requirements prompt
    prompt_code_chars: int = 1000    # the real file shown to the Think before its Write
    prompt_context_chars: int = 400  # requirements and dependency reports shown to a sub-agent


Job = tuple[RepoWork, tuple[str, str], PolicyRequest]


def _ask(policy, jobs: list[Job]) -> None:
    """One wave: every job's request in one `policy.write` call; replies stored on their repository."""
    if not jobs:
        return
    start = time.perf_counter()
    replies = policy.write([request for _, _, request in jobs])
    for (work, key, _), reply in zip(jobs, replies):
        work.replies[key] = reply
    kinds = Counter(key[0] for _, key, _ in jobs)
    logger.info("policy wave %s: %d requests, %d by the model, %.0f s", "+".join(kinds), len(jobs),
                sum(r.source != "structural" for r in replies), time.perf_counter() - start)


def simulate_repositories(
    items: list[tuple[RepoSnapshot, RepoGraph]], policy, options: SimulationOptions | None = None
) -> list[Trajectory]:
    """One trajectory per (snapshot, graph), in input order; the policy is asked in waves (module docstring)."""
    options = options or SimulationOptions()
    works = [RepoWork.build(snapshot, graph) for snapshot, graph in items]
    _ask(policy, [(w, ("requirements", ""), requirements_request(w, options)) for w in works])
    _ask(policy, [(w, ("purpose", f.path), purpose_request(w, f, options)) for w in works for f in w.facts])
    _ask(policy, [(w, ("report", f.path), report_request(w, f, options)) for w in works for f in w.facts])
    thinks: list[Job] = []
    for work in works:
        for facts in work.facts:
            if facts.deps:
                thinks.append((work, ("think_read", facts.path), think_read_request(work, facts, options)))
            thinks.append((work, ("think_write", facts.path), think_write_request(work, facts, options)))
    _ask(policy, thinks)
    return [_assemble(work, options) for work in works]


def _observation(text: str, budget: int) -> tuple[str, bool]:
    if budget <= 0 or len(text) <= budget:
        return text, False
    return text[:budget] + f"\n... [truncated: {len(text) - budget} more characters]\n", True


def _meta(reply: PolicyReply) -> dict:
    meta = {"source": reply.source}
    if reply.fallback_reason:
        meta["fallback"] = reply.fallback_reason
    return meta


def _step(agent: str, kind: str, path: str | None, reply: PolicyReply) -> Step:
    return Step(agent, kind, path, reply.text, _meta(reply))


def _plan_step(work: RepoWork, plan: Plan) -> Step:
    """The plan step: written by the model when most of its descriptions are (the rest are counted)."""
    replies = [work.replies[("purpose", f.path)] for f in work.facts]
    sources = Counter(r.source for r in replies)
    fallbacks = Counter(r.fallback_reason for r in replies if r.fallback_reason)
    model = {s: n for s, n in sources.items() if s != "structural"}
    writer = max(model, key=model.get) if model else "structural"
    meta = {"source": writer if 2 * sum(model.values()) > len(replies) else "structural",
            "descriptions": dict(sorted(sources.items()))}
    if fallbacks:
        meta["fallbacks"] = dict(sorted(fallbacks.items()))
    return Step(MAIN_AGENT, "plan", None, plan.render(), meta, plan=plan)


def _assemble(work: RepoWork, options: SimulationOptions) -> Trajectory:
    snapshot, graph = work.snapshot, work.graph
    plan = Plan([PlanEntry(f.path, work.said("purpose", f.path), tuple(f.deps + f.later_deps)) for f in work.facts])
    steps = [_step(MAIN_AGENT, "requirements", None, work.replies[("requirements", "")]), _plan_step(work, plan)]
    for facts in work.facts:
        path = facts.path
        # The delegation carries the plan entry: its description is the plan's, by whoever wrote that.
        steps.append(Step(MAIN_AGENT, "delegate", path, work.delegation(facts),
                          _meta(work.replies[("purpose", path)])))
        if facts.deps:
            steps.append(_step(path, "think", None, work.replies[("think_read", path)]))
            for dep in facts.deps:
                observation, truncated = _observation(work.texts[dep], options.read_budget_chars)
                steps.append(Step(path, "read", dep, observation, {"truncated": True} if truncated else {}))
        think = _step(path, "think", None, work.replies[("think_write", path)])
        # The grounding of this Think, for refinement's rewrites: analysis facts, never code bodies.
        think.grounding = Grounding(
            path=path, language=graph.files[path].language, purpose=facts.purpose, deps=facts.deps,
            imported_names=facts.imported_names, external_imports=facts.external_imports, calls=facts.calls,
            n_lines=facts.n_lines, definitions=definitions(graph.files[path]))
        steps.append(think)
        steps.append(Step(path, "write", path, work.texts[path], {}))
        steps.append(_step(path, "report", path, work.replies[("report", path)]))
    meta = {
        "revision": snapshot.revision,
        "license": snapshot.license,
        "languages": work.languages,
        "cycles": graph.cycles,
        "broken_edges": [list(e) for e in graph.broken_edges],
        "text_sources": _count_sources(steps),
        "parse_failures": sorted(p for p in graph.dev_order if not graph.files[p].parse_ok),
    }
    if snapshot.part_of:  # a sub-project: its repository, and the files of other parts it reads, never writes
        meta["repository"] = snapshot.part_of
        meta["reads_from_other_parts"] = [f.path for f in snapshot.readable]
    return Trajectory(
        repo=snapshot.name, source=snapshot.source, order=list(graph.dev_order), steps=steps, meta=meta
    )


def _count_sources(steps: list[Step]) -> dict[str, int]:
    """Text steps by who wrote them, and `fallback:<reason>` for each model reply replaced by structural text."""
    counts: Counter[str] = Counter()
    for step in steps:
        if step.kind in ("read", "write"):
            continue
        counts[step.meta.get("source", "structural")] += 1
        if step.meta.get("fallback"):
            counts[f"fallback:{step.meta['fallback']}"] += 1
    return dict(counts)
