"""Analysis facts an agent may know before writing a file: names, signatures, docstrings, imports.

Everything here comes from the repository graph (tree-sitter summaries), never from code bodies, so
text written from these facts cannot paste the implementation it precedes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from retrace.repo import FileSummary, RepoGraph, RepoSnapshot


def first_sentence(text: str | None, limit: int = 160) -> str:
    """The first line/sentence of a docstring, trimmed; '' when there is none."""
    if not text:
        return ""
    line = " ".join(text.strip().split("\n\n")[0].split())
    for stop in (". ", "? ", "! "):
        if stop in line:
            line = line.split(stop)[0] + stop.strip()
            break
    return line if len(line) <= limit else line[: limit - 3].rstrip() + "..."


@dataclass
class FileFacts:
    """What the plan and the sub-agent know about one file before it exists."""

    path: str
    module: str | None
    purpose: str                      # docstring's first sentence, or a description built from names
    classes: list[str]                # "class Name(Base): method(a, b), other()" lines
    functions: list[str]              # top-level signatures
    deps: list[str]                   # in-repo files already written that this one imports
    later_deps: list[str]             # in-repo imports that come later (inside a cycle), not readable yet
    imported_names: dict[str, list[str]] = field(default_factory=dict)  # dep path -> names used from it
    external_imports: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    n_lines: int = 0
    parse_ok: bool = True

    @property
    def defined_names(self) -> list[str]:
        names = [c.split("(")[0].split(":")[0].removeprefix("class ").strip() for c in self.classes]
        return names + [f.split("(")[0].split()[-1] for f in self.functions]


def definitions(summary: FileSummary) -> list[dict[str, object]]:
    """Every class, method and top-level function in source order: the grounding a rewrite may use.

    Names, signatures and first docstring sentences only, never bodies.
    """
    found: list[dict[str, object]] = []
    for cls in summary.classes:
        bases = f"({', '.join(cls.bases)})" if cls.bases else ""
        found.append({"kind": "class", "name": cls.name, "signature": f"class {cls.name}{bases}",
                      "doc": first_sentence(cls.docstring), "line": cls.line, "parent": None})
        for method in cls.methods:
            found.append({"kind": "method", "name": method.name, "signature": method.signature,
                          "doc": first_sentence(method.docstring), "line": method.line, "parent": cls.name})
    for function in summary.functions:
        found.append({"kind": "function", "name": function.name, "signature": function.signature,
                      "doc": first_sentence(function.docstring), "line": function.line, "parent": None})
    return sorted(found, key=lambda d: (d["line"], d["kind"] != "class"))


def _describe(summary: FileSummary) -> str:
    if summary.docstring:
        sentence = first_sentence(summary.docstring)
        return sentence if sentence.endswith((".", "?", "!")) else sentence + "."
    parts = []
    if summary.classes:
        parts.append("classes " + ", ".join(c.name for c in summary.classes[:6]))
    if summary.functions:
        parts.append("functions " + ", ".join(f.name for f in summary.functions[:6]))
    if not parts:
        return "Module-level definitions." if summary.n_lines else "An empty module."
    return "Defines " + " and ".join(parts) + "."


def _class_line(cls) -> str:
    bases = f"({', '.join(cls.bases)})" if cls.bases else ""
    methods = ", ".join(m.signature.removeprefix("async ").removeprefix("def ") for m in cls.methods[:8])
    more = f", ... ({len(cls.methods) - 8} more)" if len(cls.methods) > 8 else ""
    doc = first_sentence(cls.docstring, 100)
    return f"class {cls.name}{bases}" + (f" - {doc}" if doc else "") + (f"; methods: {methods}{more}" if methods else "")


def file_facts(graph: RepoGraph, path: str, written: set[str]) -> FileFacts:
    """Facts for `path`, given the set of files already written before it in development order."""
    summary = graph.files[path]
    deps = [d for d in summary.deps if d in written]
    later = [d for d in summary.deps if d not in written]
    imported: dict[str, list[str]] = {}
    external: list[str] = []
    dep_modules = {graph.files[d].module: d for d in summary.deps if graph.files[d].module}
    repo_tops = {f.module.split(".")[0] for f in graph.files.values() if f.module}
    for imp in summary.imports:
        top = imp.module.split(".")[0]
        if imp.level == 0 and top and top not in repo_tops and top not in external:
            external.append(top)
        for name in imp.names:
            target = dep_modules.get(f"{imp.module}.{name}") or dep_modules.get(imp.module)
            if target is not None and name not in imported.setdefault(target, []):
                imported[target].append(name)
    return FileFacts(
        path=path, module=summary.module, purpose=_describe(summary),
        classes=[_class_line(c) for c in summary.classes],
        functions=[f.signature for f in summary.functions],
        deps=deps, later_deps=later, imported_names=imported, external_imports=sorted(external),
        calls=list(summary.calls[:20]), n_lines=summary.n_lines, parse_ok=summary.parse_ok,
    )


def repo_overview(snapshot: RepoSnapshot, graph: RepoGraph) -> dict[str, object]:
    """Facts for the main agent: the project's own description and its shape."""
    packages = sorted({p.rsplit("/", 1)[0] if "/" in p else "." for p in graph.dev_order})
    description = first_sentence(snapshot.description, 300) if snapshot.description else ""
    if not description:
        for path in graph.dev_order:
            if path.endswith("__init__.py") and graph.files[path].docstring:
                description = first_sentence(graph.files[path].docstring, 300)
                break
    return {
        "repo": snapshot.name,
        "description": description,
        "n_files": len(graph.dev_order),
        "n_lines": sum(graph.files[p].n_lines for p in graph.dev_order),
        "packages": packages,
        "n_edges": len(graph.edges),
        "cycles": graph.cycles,
    }
