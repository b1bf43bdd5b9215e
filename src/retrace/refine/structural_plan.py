"""Deterministic, grounded rewrites of the main agent's plan: each file's description plus one fact clause.

A clause states one kind of analysis fact about the file (what it provides, what it uses from earlier
files, its outside imports, its top-level signatures, its classes' methods, what its parts promise, its
size, what it calls), taken from the `meta.facts` of the Think before the file's Write. A candidate adds
one clause kind to every description that lacks it, then two kinds at once, then swaps each description
for the file's own docstring purpose. Clauses start with a marker ("; provides ", ...), so one already
in a description is not proposed again and a plan grows clause by clause as each addition is accepted.
The file list never changes: candidates are rendered through the plan's skeleton.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from retrace.refine.plan import clean_description

if TYPE_CHECKING:
    from retrace.refine.proposers import PlanRequest


def _quoted(names: list[str], limit: int) -> str:
    shown = ", ".join(f"`{n}`" for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _top(facts: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for d in facts.get("definitions") or [] if not d.get("parent")]


def provides(facts: dict[str, Any]) -> str | None:
    names = [d["name"] for d in _top(facts)]
    return _quoted(names, 6) if names else None


def uses(facts: dict[str, Any]) -> str | None:
    parts = [f"{_quoted(names, 4) if names else 'the module'} from `{dep}`"
             for dep, names in (facts.get("imported_names") or {}).items()]
    return ", ".join(parts[:3]) if parts else None


def external(facts: dict[str, Any]) -> str | None:
    names = facts.get("external_imports") or []
    return _quoted(names, 5) if names else None


def signatures(facts: dict[str, Any]) -> str | None:
    found = [d.get("signature") or d["name"] for d in _top(facts)]
    return _quoted(found, 3) if found else None


def methods(facts: dict[str, Any]) -> str | None:
    items = facts.get("definitions") or []
    parts = []
    for cls in [d for d in _top(facts) if d.get("kind") == "class"][:2]:
        names = [d["name"] for d in items if d.get("parent") == cls["name"]]
        if names:
            parts.append(f"`{cls['name']}` has {_quoted(names, 5)}")
    return ", ".join(parts) if parts else None


def intents(facts: dict[str, Any]) -> str | None:
    parts = [f"`{d['name']}`: {d['doc'].rstrip('.')}" for d in _top(facts) if d.get("doc")][:2]
    return "; ".join(parts) if parts else None


def size(facts: dict[str, Any]) -> str | None:
    return f"{facts['n_lines']} lines" if facts.get("n_lines") else None


def calls(facts: dict[str, Any]) -> str | None:
    names = facts.get("calls") or []
    return _quoted(names, 5) if names else None


# Clause kinds in order of usefulness: (marker, which also says a description has it; builder of the body).
CLAUSES: tuple[tuple[str, Callable[[dict[str, Any]], str | None]], ...] = (
    ("; provides ", provides), ("; uses ", uses), ("; imports ", external), ("; defines ", signatures),
    ("; where ", methods), ("; intents: ", intents), ("; about ", size), ("; calls ", calls),
)


def _has(text: str, marker: str) -> bool:
    return marker in text or text.startswith(marker[2:])


def _with_clauses(request: PlanRequest, kinds: list[int]) -> str:
    """The incumbent with clause kinds `kinds` added to every description that lacks them."""
    descriptions = dict(request.descriptions)
    for path, text in request.descriptions.items():
        facts = request.facts.get(path) or {}
        for kind in kinds:
            marker, build = CLAUSES[kind]
            body = None if _has(text, marker) else build(facts)
            if body:
                head = text.rstrip().rstrip(".;")
                text = f"{head}{marker}{body}" if head else f"{marker[2:]}{body}"
        descriptions[path] = clean_description(text) or descriptions[path]
    return request.skeleton.render(descriptions)


def plan_candidates(request: PlanRequest) -> list[str]:
    """Every grounded variant of the incumbent plan not yet tried, best-first (deterministic)."""
    present = [i for i, (marker, _) in enumerate(CLAUSES)
               if all(_has(text, marker) for text in request.descriptions.values())]
    open_kinds = [i for i in range(len(CLAUSES)) if i not in present]
    found = [_with_clauses(request, [i]) for i in open_kinds]
    found += [_with_clauses(request, [i, j]) for n, i in enumerate(open_kinds) for j in open_kinds[n + 1:]]
    purposes = {path: clean_description((request.facts.get(path) or {}).get("purpose") or "")
                for path in request.descriptions}
    found.append(request.skeleton.render({p: t for p, t in purposes.items() if t}))
    return [t for t in dict.fromkeys(found) if t != request.incumbent and t not in request.tried]
