"""The structural proposer: deterministic, grounded rewrites of a Think built from its `Grounding` alone.

It lets the CPU default exercise the search for real: each candidate is the incumbent plus one section it
lacks (an outline of the definitions in source order at some level of detail, the imports per dependency,
the calls, the classes with their methods, the intents of the definitions, the order of the file, its
purpose and size, or, when surprisal-guided, the definitions around the payload's most surprising lines),
then the incumbent plus two such sections at once, then compact rewrites (the original's first sentence
and one section). Later iterations build on whatever was accepted, so a Think grows section by section
while each addition lowers the payload's NLL, and the pairs leave new candidates for every iteration of
the default budget (3 x 2). Only names, signatures and first docstring sentences are used: never code bodies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from retrace.data import Definition, Grounding
from retrace.refine.structural_plan import plan_candidates

if TYPE_CHECKING:
    from retrace.refine.proposers import PlanRequest, ProposalRequest

# Section headings double as markers: a section already in the incumbent is not proposed again.
OUTLINE = "Outline, in source order:"
OUTLINE_DOCS = "Outline with intents, in source order:"
IMPORTS = "What I import:"
CALLS = "What the code calls:"
HOTSPOTS = "Parts that need the most care:"
STRUCTURE = "How it is organised:"
INTENTS = "What each part promises:"
ORDER = "Order of the file:"
PURPOSE = "What the file is for:"
MAX_ITEMS = 60  # definitions listed per outline (a 300-method module still gives a bounded Think)


def _definition_line(item: Definition, docs: bool) -> str:
    indent = "  " if item.parent else ""
    doc = f": {item.doc}" if docs and item.doc else ""
    return f"{indent}- {item.signature or item.name}{doc}"


def outline(facts: Grounding, docs: bool) -> str | None:
    items = facts.definitions
    if not items:
        return None
    lines = [_definition_line(item, docs) for item in items[:MAX_ITEMS]]
    if len(items) > MAX_ITEMS:
        lines.append(f"- ... and {len(items) - MAX_ITEMS} more definitions")
    return "\n".join([OUTLINE_DOCS if docs else OUTLINE, *lines])


def imports(facts: Grounding) -> str | None:
    lines = []
    for dep, names in facts.imported_names.items():
        names = ", ".join(f"`{n}`" for n in names) if names else "the module itself"
        lines.append(f"- from `{dep}` (already written): {names}")
    external = facts.external_imports
    if external:
        lines.append("- from outside the repository: " + ", ".join(f"`{m}`" for m in external))
    return "\n".join([IMPORTS, *lines]) if lines else None


def calls(facts: Grounding) -> str | None:
    names = facts.calls
    return f"{CALLS} " + ", ".join(f"`{n}`" for n in names) + "." if names else None


def hotspots(facts: Grounding, spans) -> str | None:
    """The definitions enclosing the payload's highest-loss lines: the structural analogue of surprisal guidance."""
    items = sorted(facts.definitions, key=lambda d: d.line)
    lines = []
    for span in spans:
        enclosing = [d for d in items if d.line <= span.line]
        if enclosing:
            d = enclosing[-1]
            doc = f" ({d.doc})" if d.doc else ""
            owner = f" of `{d.parent}`" if d.parent else ""
            lines.append(f"- `{d.signature or d.name}`{owner}, near line {span.line}{doc}")
        else:
            lines.append(f"- the module header before the first definition, near line {span.line}")
    lines = list(dict.fromkeys(lines))
    return "\n".join([HOTSPOTS, *lines]) if lines else None


def _quoted(names: list[str], limit: int) -> str:
    shown = ", ".join(f"`{n}`" for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def structure(facts: Grounding) -> str | None:
    """Classes with their methods, then the top-level functions: the file's shape without signatures."""
    lines = []
    for top in facts.top_level[:MAX_ITEMS]:
        methods = [d.name for d in facts.definitions if d.parent == top.name]
        if top.kind == "class":
            has = f" with methods {_quoted(methods, 12)}" if methods else ""
            lines.append(f"- class `{top.name}`{has}")
        else:
            lines.append(f"- {top.kind or 'definition'} `{top.name}`")
    return "\n".join([STRUCTURE, *lines]) if lines else None


def intents(facts: Grounding) -> str | None:
    """What each documented definition promises (its docstring's first sentence), names only."""
    lines = [f"- `{d.parent + '.' if d.parent else ''}{d.name}`: {d.doc}"
             for d in facts.definitions[:MAX_ITEMS] if d.doc]
    return "\n".join([INTENTS, *lines]) if lines else None


def order(facts: Grounding) -> str | None:
    """The top-level parts in source order, imports first."""
    names = [f"`{d.name}`" for d in sorted(facts.top_level, key=lambda d: d.line)]
    parts = (["the imports"] if facts.imported_names or facts.external_imports else []) + names
    if len(parts) < 2:
        return None
    shown = parts[:MAX_ITEMS] + ([f"{len(parts) - MAX_ITEMS} more"] if len(parts) > MAX_ITEMS else [])
    return f"{ORDER} " + ", then ".join(shown) + "."


def purpose(facts: Grounding) -> str | None:
    """The file's purpose and size, with its counts of classes and functions."""
    if not facts.purpose:
        return None
    tops = facts.top_level
    classes = sum(d.kind == "class" for d in tops)
    size = f" It has about {facts.n_lines} lines" if facts.n_lines else " It has"
    return (f"{PURPOSE} {facts.purpose}{size}, {classes} class(es) and {len(tops) - classes} top-level "
            "function(s).")


def render_facts(facts: Grounding | None) -> str:
    """The facts as plain text (for model proposers' prompts): purpose, imports, outline with intents."""
    if facts is None:
        return "(no analysis facts)"
    language = f" ({facts.language})" if facts.language else ""
    parts = [f"Purpose: {facts.purpose or '(unknown)'}", f"Length: {facts.n_lines or '?'} lines{language}"]
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
    deterministic = True

    def __init__(self, max_chars: int = 2400):
        self.max_chars = max_chars

    def _join(self, incumbent: str, sections: list[str]) -> str:
        # Sections that do not fit after the incumbent replace its prose (the first sentence stays).
        added = "\n\n".join(sections)
        if len(incumbent) + len(added) + 2 <= self.max_chars:
            return f"{incumbent}\n\n{added}"
        return f"{_first_sentence(incumbent)}\n\n{added}"

    def candidates(self, request: ProposalRequest) -> list[str]:
        facts, incumbent = request.grounding, request.incumbent.rstrip()
        if facts is None:
            return []
        missing: list[tuple[str, str | None]] = []
        if request.hot_spans and HOTSPOTS not in incumbent:
            missing.append((HOTSPOTS, hotspots(facts, request.hot_spans)))
        if OUTLINE_DOCS not in incumbent:
            missing.append((OUTLINE_DOCS, outline(facts, docs=True)))
        if OUTLINE not in incumbent and OUTLINE_DOCS not in incumbent:
            missing.append((OUTLINE, outline(facts, docs=False)))
        for marker, build in ((IMPORTS, imports), (CALLS, calls), (STRUCTURE, structure), (INTENTS, intents),
                              (ORDER, order), (PURPOSE, purpose)):
            if marker not in incumbent:
                missing.append((marker, build(facts)))
        sections = [(marker, text) for marker, text in missing if text]
        found = [self._join(incumbent, [text]) for _, text in sections]
        compact = outline(facts, docs=True)
        if compact:
            found.append(f"{_first_sentence(request.original)}\n\n{compact}")
        # Two sections at once (never both outlines), then the original's first sentence with one section.
        found += [self._join(incumbent, [a, b]) for i, (ma, a) in enumerate(sections) for mb, b in sections[i + 1:]
                  if {ma, mb} != {OUTLINE, OUTLINE_DOCS}]
        found += [f"{_first_sentence(request.original)}\n\n{text}" for _, text in sections]
        found = [fit(text, self.max_chars) for text in found]
        return [t for t in dict.fromkeys(found) if t != request.incumbent and t not in request.tried]

    def propose(self, requests: list[ProposalRequest]) -> list[list[str]]:
        return [self.candidates(r)[:r.n] for r in requests]

    def propose_plans(self, requests: list[PlanRequest]) -> list[list[str]]:
        """Grounded plan variants (see `structural_plan`), the first `n` not tried yet."""
        return [plan_candidates(r)[:r.n] for r in requests]
