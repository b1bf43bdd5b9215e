"""Deterministic, grounded rewrites of the main agent's plan: each file's description plus one fact clause.

A clause states one kind of analysis fact about the file (what it provides, what it uses from earlier
files, its outside imports, its top-level signatures, its classes' methods, what its parts promise, its
size, what it calls), taken from the `Grounding` of the Think before the file's Write. A candidate adds
one clause kind to every description that lacks it, then two kinds at once, then swaps each description
for the file's own docstring purpose. Clauses start with a marker ("; provides ", ...), so one already
in a description is not proposed again and a plan grows clause by clause as each addition is accepted.
The file list never changes: candidates are rendered through the plan's skeleton.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from retrace.data import Grounding
from retrace.refine.plan import clean_description

if TYPE_CHECKING:
    from retrace.refine.proposers import PlanRequest


def _quoted(names: list[str], limit: int) -> str:
    shown = ", ".join(f"`{n}`" for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def provides(facts: Grounding) -> str | None:
    names = [d.name for d in facts.top_level]
    return _quoted(names, 6) if names else None


def uses(facts: Grounding) -> str | None:
    parts = [f"{_quoted(names, 4) if names else 'the module'} from `{dep}`"
             for dep, names in facts.imported_names.items()]
    return ", ".join(parts[:3]) if parts else None


def external(facts: Grounding) -> str | None:
    names = facts.external_imports
    return _quoted(names, 5) if names else None


def signatures(facts: Grounding) -> str | None:
    found = [d.signature or d.name for d in facts.top_level]
    return _quoted(found, 3) if found else None


def methods(facts: Grounding) -> str | None:
    parts = []
    for cls in [d for d in facts.top_level if d.kind == "class"][:2]:
        names = [d.name for d in facts.definitions if d.parent == cls.name]
        if names:
            parts.append(f"`{cls.name}` has {_quoted(names, 5)}")
    return ", ".join(parts) if parts else None


def intents(facts: Grounding) -> str | None:
    parts = [f"`{d.name}`: {d.doc.rstrip('.')}" for d in facts.top_level if d.doc][:2]
    return "; ".join(parts) if parts else None


def size(facts: Grounding) -> str | None:
    return f"{facts.n_lines} lines" if facts.n_lines else None


def calls(facts: Grounding) -> str | None:
    names = facts.calls
    return _quoted(names, 5) if names else None


# Clause kinds in order of usefulness: (marker, which also says a description has it; builder of the body).
CLAUSES: tuple[tuple[str, Callable[[Grounding], str | None]], ...] = (
    ("; provides ", provides), ("; uses ", uses), ("; imports ", external), ("; defines ", signatures),
    ("; where ", methods), ("; intents: ", intents), ("; about ", size), ("; calls ", calls),
)


def _has(text: str, marker: str) -> bool:
    return marker in text or text.startswith(marker[2:])


def _with_clauses(request: PlanRequest, kinds: list[int]) -> str:
    """The incumbent with clause kinds `kinds` added to every description that lacks them."""
    current = request.plan.descriptions()
    descriptions = dict(current)
    for path, text in current.items():
        facts = request.groundings.get(path)
        for kind in kinds:
            marker, build = CLAUSES[kind]
            body = None if _has(text, marker) or facts is None else build(facts)
            if body:
                head = text.rstrip().rstrip(".;")
                text = f"{head}{marker}{body}" if head else f"{marker[2:]}{body}"
        descriptions[path] = clean_description(text) or descriptions[path]
    return request.plan.render(descriptions)


def plan_candidates(request: PlanRequest) -> list[str]:
    """Every grounded variant of the incumbent plan not yet tried, best-first (deterministic)."""
    current = request.plan.descriptions()
    present = [i for i, (marker, _) in enumerate(CLAUSES) if all(_has(text, marker) for text in current.values())]
    open_kinds = [i for i in range(len(CLAUSES)) if i not in present]
    found = [_with_clauses(request, [i]) for i in open_kinds]
    found += [_with_clauses(request, [i, j]) for n, i in enumerate(open_kinds) for j in open_kinds[n + 1:]]
    purposes = {path: clean_description(g.purpose) for path, g in request.groundings.items() if path in current}
    found.append(request.plan.render({p: t for p, t in purposes.items() if t}))
    return [t for t in dict.fromkeys(found) if t != request.incumbent and t not in request.tried]
