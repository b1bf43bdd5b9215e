"""Deterministic agent text written only from analysis facts: the offline policy and every fallback.

A reader should learn what each file provides and why it comes at this point of the development
order. Signatures and names appear; code bodies never do.
"""

from __future__ import annotations

from retrace.agents.facts import FileFacts


def _names(items: list[str], limit: int = 6) -> str:
    shown = ", ".join(f"`{i}`" for i in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def requirements_text(overview: dict) -> str:
    lines = [f"Project `{overview['repo']}`."]
    if overview["description"]:
        lines.append(f"Goal: {overview['description']}")
    packages = [p for p in overview["packages"] if p != "."]
    shape = f"It is a {overview['languages']} project of {overview['n_files']} files (~{overview['n_lines']} lines)"
    shape += f" organised in packages {_names(packages)}." if packages else " in a single package."
    lines.append(shape)
    if overview["n_edges"]:
        imports = "one in-repository import" if overview["n_edges"] == 1 else \
            f"{overview['n_edges']} in-repository imports"
        lines.append(f"The files depend on each other through {imports}, so each file is implemented after the "
                     "modules it imports, by a sub-agent that reads those modules first.")
    else:
        lines.append("No file imports another, so each file is implemented on its own, in the plan's order.")
    if overview["cycles"]:
        lines.append(f"{len(overview['cycles'])} import cycle(s) exist; inside a cycle, files that others need "
                     "first are written first and the remaining imports are resolved at run time.")
    return "\n".join(lines)


def purpose_text(facts: FileFacts) -> str:
    return facts.purpose


# The fixed words of a delegation (placeholders left out): a sub-agent's Think that only hands them back
# ("I read `index.d.ts` first, and it's already written.") says nothing of its own (validation.says_nothing).
DELEGATION_FRAMING = ("Plan entry of. Implement: It builds on, already written; read it them first. "
                      "It has nothing to read first.")


def delegate_text(facts: FileFacts, purpose: str, number: int = 0, total: int = 0) -> str:
    """The main agent hands one plan entry to a sub-agent: the entry's description and what to read first."""
    text = (f"Plan entry {number} of {total}. " if number else "") + f"Implement `{facts.path}`: {purpose}"
    if facts.deps:
        text += f" It builds on {_names(facts.deps)}, already written; read {'it' if len(facts.deps) == 1 else 'them'} first."
    else:
        text += " It has nothing to read first."  # true too when an import lies in a part not read
    return text


def think_read_text(facts: FileFacts) -> str:
    """Why the sub-agent reads each dependency before writing."""
    parts = [f"`{facts.path}` builds on {len(facts.deps)} file(s) written earlier."]
    for dep in facts.deps:
        names = facts.imported_names.get(dep)
        use = f" for {_names(names, 5)}" if names else " for the interfaces it exposes"
        parts.append(f"I read `{dep}`{use}, so that the names and signatures I use match exactly.")
    if facts.later_deps:
        parts.append(f"{_names(facts.later_deps)} come later (import cycle); I will import them lazily.")
    return " ".join(parts)


def think_write_text(facts: FileFacts) -> str:
    """The design of the file about to be written, from its definitions."""
    parts = [f"Now I write `{facts.path}` ({facts.n_lines} lines): {facts.purpose}"]
    if facts.external_imports:
        parts.append(f"It uses {_names(facts.external_imports)} from outside the repository.")
    if facts.classes:
        parts.append("Classes: " + "; ".join(facts.classes[:5]) + ("; ..." if len(facts.classes) > 5 else "") + ".")
    if facts.functions:
        parts.append("Functions: " + "; ".join(facts.functions[:8]) + ("; ..." if len(facts.functions) > 8 else "")
                     + ".")
    if facts.calls:
        parts.append(f"The code calls {_names(facts.calls, 8)}.")
    if not (facts.classes or facts.functions):
        parts.append("It holds module-level code only: constants, re-exports or a script body.")
    return " ".join(parts)


def report_text(facts: FileFacts, dependents: list[str] | None = None) -> str:
    """What the file gives the files after it: its names, and the files that import it (from the graph)."""
    defined = facts.defined_names
    users = f"{_names(dependents or [], 4)} import{'s' if len(dependents or []) == 1 else ''} it"
    if defined:
        tail = f"; {users}." if dependents else "; later files can import them."
        return f"Done: `{facts.path}` provides {_names(defined)}{tail}"
    return f"Done: `{facts.path}` is written" + (f"; {users}." if dependents else ".")
