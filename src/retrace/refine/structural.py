"""The structural proposer: deterministic, grounded rewrites of a Think built from `meta.facts` alone.

It lets the CPU default exercise the search for real: each candidate is the incumbent plus one section it
lacks (an outline of the definitions in source order at some level of detail, the imports per dependency,
the calls, or, when surprisal-guided, the definitions around the payload's most surprising lines), or a
compact rewrite (the incumbent's first sentence and a full outline). Later iterations build on whatever
was accepted, so a Think grows section by section while each addition lowers the payload's NLL.
Only names, signatures and first docstring sentences are used: never code bodies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from retrace.refine.proposers import ProposalRequest

# Section headings double as markers: a section already in the incumbent is not proposed again.
OUTLINE = "Outline, in source order:"
OUTLINE_DOCS = "Outline with intents, in source order:"
IMPORTS = "What I import:"
CALLS = "What the code calls:"
HOTSPOTS = "Parts that need the most care:"
MAX_ITEMS = 60  # definitions listed per outline (a 300-method module still gives a bounded Think)


def _definition_line(item: dict[str, Any], docs: bool) -> str:
    indent = "  " if item.get("parent") else ""
    doc = f": {item['doc']}" if docs and item.get("doc") else ""
    return f"{indent}- {item.get('signature') or item.get('name')}{doc}"


def outline(facts: dict[str, Any], docs: bool) -> str | None:
    items = facts.get("definitions") or []
    if not items:
        return None
    lines = [_definition_line(item, docs) for item in items[:MAX_ITEMS]]
    if len(items) > MAX_ITEMS:
        lines.append(f"- ... and {len(items) - MAX_ITEMS} more definitions")
    return "\n".join([OUTLINE_DOCS if docs else OUTLINE, *lines])


def imports(facts: dict[str, Any]) -> str | None:
    lines = []
    for dep, names in (facts.get("imported_names") or {}).items():
        names = ", ".join(f"`{n}`" for n in names) if names else "the module itself"
        lines.append(f"- from `{dep}` (already written): {names}")
    external = facts.get("external_imports") or []
    if external:
        lines.append("- from outside the repository: " + ", ".join(f"`{m}`" for m in external))
    return "\n".join([IMPORTS, *lines]) if lines else None


def calls(facts: dict[str, Any]) -> str | None:
    names = facts.get("calls") or []
    return f"{CALLS} " + ", ".join(f"`{n}`" for n in names) + "." if names else None


def hotspots(facts: dict[str, Any], spans) -> str | None:
    """The definitions enclosing the payload's highest-loss lines: the structural analogue of surprisal guidance."""
    items = sorted(facts.get("definitions") or [], key=lambda d: d.get("line") or 0)
    lines = []
    for span in spans:
        enclosing = [d for d in items if (d.get("line") or 0) <= span.line]
        if enclosing:
            d = enclosing[-1]
            doc = f" ({d['doc']})" if d.get("doc") else ""
            owner = f" of `{d['parent']}`" if d.get("parent") else ""
            lines.append(f"- `{d.get('signature') or d['name']}`{owner}, near line {span.line}{doc}")
        else:
            lines.append(f"- the module header before the first definition, near line {span.line}")
    lines = list(dict.fromkeys(lines))
    return "\n".join([HOTSPOTS, *lines]) if lines else None


def render_facts(facts: dict[str, Any]) -> str:
    """The facts as plain text (for model proposers' prompts): purpose, imports, outline with intents."""
    parts = [f"Purpose: {facts.get('purpose') or '(unknown)'}", f"Length: {facts.get('n_lines', '?')} lines"]
    parts += [p for p in (imports(facts), outline(facts, docs=True), calls(facts)) if p]
    return "\n".join(parts)


def _first_sentence(text: str) -> str:
    head = text.strip().split("\n", 1)[0]
    cut = head.find(". ")
    return head[:cut + 1] if cut > 0 else head


def fit(text: str, max_chars: int) -> str:
    """Cut at the last line boundary within `max_chars` (a candidate is never cut mid-line)."""
    if len(text) <= max_chars:
        return text
    cut = text.rfind("\n", 0, max_chars)
    return text[:cut] if cut > 0 else text[:max_chars]


class StructuralProposer:
    """Candidates in a fixed order of usefulness; the first `n` the step has not tried yet are proposed."""

    name = "structural"

    def __init__(self, max_chars: int = 2400):
        self.max_chars = max_chars

    def candidates(self, request: ProposalRequest) -> list[str]:
        facts, incumbent = request.facts or {}, request.incumbent.rstrip()
        sections = []
        if request.hot_spans and HOTSPOTS not in incumbent:
            sections.append(hotspots(facts, request.hot_spans))
        if OUTLINE_DOCS not in incumbent:
            sections.append(outline(facts, docs=True))
        if OUTLINE not in incumbent and OUTLINE_DOCS not in incumbent:
            sections.append(outline(facts, docs=False))
        if IMPORTS not in incumbent:
            sections.append(imports(facts))
        if CALLS not in incumbent:
            sections.append(calls(facts))
        # A section that does not fit after the incumbent replaces its prose (the first sentence stays).
        found = [f"{incumbent}\n\n{s}" if len(incumbent) + len(s) + 2 <= self.max_chars
                 else f"{_first_sentence(incumbent)}\n\n{s}" for s in sections if s]
        compact = outline(facts, docs=True)
        if compact:
            found.append(f"{_first_sentence(request.original)}\n\n{compact}")
        found = [fit(text, self.max_chars) for text in found]
        return [t for t in dict.fromkeys(found) if t != request.incumbent and t not in request.tried]

    def propose(self, requests: list[ProposalRequest]) -> list[list[str]]:
        return [self.candidates(r)[:r.n] for r in requests]
