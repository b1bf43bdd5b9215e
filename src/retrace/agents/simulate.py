"""The multi-agent simulation: a main agent plans, one sub-agent per file reads and writes.

Grounding is total: every Read observation is the real content of the file read and every Write
payload is the real file, byte for byte. Only the words in between (requirements, purposes, Think,
reports) come from the policy. All policy requests of all repositories are issued in one batch,
because no request depends on another's generated text.
"""

from __future__ import annotations

from dataclasses import dataclass

from retrace.agents import structural
from retrace.agents.facts import FileFacts, definitions, file_facts, repo_overview
from retrace.agents.policies import PolicyReply, PolicyRequest
from retrace.data import MAIN_AGENT, Step, Trajectory
from retrace.repo import RepoGraph, RepoSnapshot


@dataclass
class SimulationOptions:
    read_budget_chars: int = 0  # 0: observations are whole files; else longer files are cut, marked truncated
    min_forbidden_line_chars: int = 30
    prompt_facts_chars: int = 800  # facts shown to a model policy are cut here: prefill dominates CPU cost


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 4].rstrip() + " ..."


def _forbidden_lines(text: str, min_chars: int) -> list[str]:
    """Lines of the real file a policy must not paste (signature lines are facts, so allowed)."""
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if len(stripped) >= min_chars and not stripped.startswith(("def ", "async def ", "class ", "@")):
            lines.append(stripped)
    return lines


def _anchors(facts: FileFacts) -> list[str]:
    """Words a grounded text about this file mentions: its name, its definitions, its dependencies."""
    stems = [p.rsplit("/", 1)[-1].removesuffix(".py") for p in [facts.path, *facts.deps]]
    stems = [s for s in stems if s != "__init__"] + (
        [facts.path] if facts.path.endswith("__init__.py") else []
    )
    return stems + [n for n in facts.defined_names if len(n) > 2]


@dataclass
class _RepoPlan:
    snapshot: RepoSnapshot
    graph: RepoGraph
    facts: list[FileFacts]
    requests: dict[tuple[str, str], int]  # (kind, path or "") -> index into the batch


def _observation(text: str, budget: int) -> tuple[str, bool]:
    if budget <= 0 or len(text) <= budget:
        return text, False
    return text[:budget] + f"\n... [truncated: {len(text) - budget} more characters]\n", True


def simulate_repositories(
    items: list[tuple[RepoSnapshot, RepoGraph]], policy, options: SimulationOptions | None = None
) -> list[Trajectory]:
    """One trajectory per (snapshot, graph), in input order."""
    options = options or SimulationOptions()
    batch: list[PolicyRequest] = []
    plans: list[_RepoPlan] = []

    def request(index: dict, key: tuple[str, str], req: PolicyRequest) -> None:
        index[key] = len(batch)
        batch.append(req)

    for snapshot, graph in items:
        overview = repo_overview(snapshot, graph)
        index: dict[tuple[str, str], int] = {}
        module_list = "\n".join(f"- {p}" for p in graph.dev_order[:40])
        facts_text = (
            f"Description: {overview['description'] or 'none given'}\n"
            f"{overview['n_files']} files, {overview['n_lines']} lines. Files:\n{module_list}"
        )
        request(
            index,
            ("requirements", ""),
            PolicyRequest(
                "requirements",
                {"repo": snapshot.name, "facts": _cap(facts_text, options.prompt_facts_chars)},
                structural.requirements_text(overview),
                anchors=[snapshot.name, *(p.rsplit("/", 1)[-1].removesuffix(".py") for p in graph.dev_order)],
            ),
        )
        written: set[str] = set()
        all_facts = []
        texts = {f.path: f.text for f in snapshot.files}
        for path in graph.dev_order:
            facts = file_facts(graph, path, written)
            written.add(path)
            all_facts.append(facts)
            forbidden = _forbidden_lines(texts[path], options.min_forbidden_line_chars)
            definitions = "\n".join(facts.classes + facts.functions) or "module-level code only"
            fields = {"repo": snapshot.name, "path": path, "purpose": facts.purpose}
            anchors = _anchors(facts)
            cap = options.prompt_facts_chars
            request(
                index,
                ("purpose", path),
                PolicyRequest(
                    "purpose",
                    {**fields, "facts": _cap(definitions, cap)},
                    structural.purpose_text(facts),
                    forbidden,
                    anchors,
                ),
            )
            if facts.deps:
                dep_text = "\n".join(
                    f"- {d}: uses {', '.join(facts.imported_names.get(d, [])) or 'its interfaces'}"
                    for d in facts.deps
                )
                request(
                    index,
                    ("think_read", path),
                    PolicyRequest(
                        "think_read",
                        {**fields, "facts": _cap(dep_text, cap)},
                        structural.think_read_text(facts),
                        forbidden,
                        anchors,
                    ),
                )
            write_facts = structural.think_write_text(facts)
            request(
                index,
                ("think_write", path),
                PolicyRequest(
                    "think_write",
                    {**fields, "facts": _cap(write_facts, cap)},
                    write_facts,
                    forbidden,
                    anchors,
                ),
            )
            request(
                index,
                ("report", path),
                PolicyRequest(
                    "report",
                    {**fields, "facts": _cap(", ".join(facts.defined_names) or "module-level code", cap)},
                    structural.report_text(facts),
                    forbidden,
                    anchors,
                ),
            )
        plans.append(_RepoPlan(snapshot, graph, all_facts, index))

    replies = policy.write(batch)
    return [_assemble(plan, replies, options) for plan in plans]


def _step(agent: str, kind: str, path: str | None, reply: PolicyReply) -> Step:
    meta = {"source": reply.source}
    if reply.fallback_reason:
        meta["fallback"] = reply.fallback_reason
    return Step(agent, kind, path, reply.text, meta)


def _assemble(plan: _RepoPlan, replies: list[PolicyReply], options: SimulationOptions) -> Trajectory:
    snapshot, graph = plan.snapshot, plan.graph
    texts = {f.path: f.text for f in snapshot.files}

    def reply(kind: str, path: str = "") -> PolicyReply:
        return replies[plan.requests[(kind, path)]]

    purposes = {f.path: " ".join(reply("purpose", f.path).text.split()) for f in plan.facts}
    steps = [_step(MAIN_AGENT, "requirements", None, reply("requirements"))]
    steps.append(
        Step(
            MAIN_AGENT,
            "plan",
            None,
            structural.plan_text([(f, purposes[f.path]) for f in plan.facts]),
            {"source": "structural"},
        )
    )
    for facts in plan.facts:
        path = facts.path
        steps.append(
            Step(
                MAIN_AGENT,
                "delegate",
                path,
                structural.delegate_text(facts, purposes[path]),
                {"source": "structural"},
            )
        )
        if facts.deps:
            steps.append(_step(path, "think", None, reply("think_read", path)))
            for dep in facts.deps:
                observation, truncated = _observation(texts[dep], options.read_budget_chars)
                steps.append(Step(path, "read", dep, observation, {"truncated": True} if truncated else {}))
        think = _step(path, "think", None, reply("think_write", path))
        # The grounding of this Think, for refinement's rewrites: analysis facts, never code bodies.
        think.meta["facts"] = {
            "purpose": facts.purpose, "deps": facts.deps, "imported_names": facts.imported_names,
            "external_imports": facts.external_imports, "calls": facts.calls, "n_lines": facts.n_lines,
            "definitions": definitions(graph.files[path]),
        }
        steps.append(think)
        steps.append(Step(path, "write", path, texts[path], {}))
        steps.append(_step(path, "report", path, reply("report", path)))
    meta = {
        "revision": snapshot.revision,
        "license": snapshot.license,
        "cycles": graph.cycles,
        "broken_edges": [list(e) for e in graph.broken_edges],
        "text_sources": _count_sources(steps),
        "parse_failures": sorted(p for p, summary in graph.files.items() if not summary.parse_ok),
    }
    return Trajectory(
        repo=snapshot.name, source=snapshot.source, order=list(graph.dev_order), steps=steps, meta=meta
    )


def _count_sources(steps: list[Step]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for step in steps:
        for key in (step.meta.get("source"), step.meta.get("fallback") and f"fallback:{step.meta['fallback']}"):
            if key:
                counts[key] = counts.get(key, 0) + 1
    return counts
