"""Analysis facts an agent may know before writing a file: names, signatures, docstrings, imports.

Everything here comes from the repository graph (tree-sitter summaries), never from code bodies, so
text written from these facts cannot paste the implementation it precedes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from retrace.data import Definition
from retrace.repo import FileSummary, RepoGraph
from retrace.repo.languages import is_code


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
        # A class line is "class Name(Base) - doc; methods: ...": the name ends at the first "(", " ", ";" or ":".
        names = [re.split(r"[( ;:]", c.removeprefix("class "), maxsplit=1)[0] for c in self.classes]
        return names + [f.split("(")[0].split()[-1] for f in self.functions]


def definitions(summary: FileSummary) -> list[Definition]:
    """Every class, method and top-level function in source order: the grounding a rewrite may use.

    Names, signatures and first docstring sentences only, never bodies.
    """
    found: list[Definition] = []
    for cls in summary.classes:
        bases = f"({', '.join(cls.bases)})" if cls.bases else ""
        found.append(Definition("class", cls.name, f"class {cls.name}{bases}", first_sentence(cls.docstring),
                                cls.line, None))
        for method in cls.methods:
            found.append(Definition("method", method.name, method.signature, first_sentence(method.docstring),
                                    method.line, cls.name))
    for function in summary.functions:
        found.append(Definition("function", function.name, function.signature,
                                first_sentence(function.docstring), function.line, None))
    return sorted(found, key=lambda d: (d.line, d.kind != "class"))


def _describe(summary: FileSummary) -> str:
    if summary.docstring:
        sentence = first_sentence(summary.docstring)
        return sentence if sentence.endswith((".", "?", "!")) else sentence + "."
    parts = []
    if summary.classes:
        parts.append("classes " + ", ".join(c.name for c in summary.classes[:6]))
    if summary.functions:
        parts.append("functions " + ", ".join(f.name for f in summary.functions[:6]))
    if not parts and not is_code(summary.language):
        return f"A {summary.language} file of {summary.n_lines} lines." if summary.n_lines else "An empty file."
    if not parts:
        return "Module-level definitions." if summary.n_lines else "An empty module."
    return "Defines " + " and ".join(parts) + "."


def _class_line(cls) -> str:
    bases = f"({', '.join(cls.bases)})" if cls.bases else ""
    methods = ", ".join(m.signature.removeprefix("async ").removeprefix("def ") for m in cls.methods[:8])
    more = f", ... ({len(cls.methods) - 8} more)" if len(cls.methods) > 8 else ""
    doc = first_sentence(cls.docstring, 100)
    return f"class {cls.name}{bases}" + (f" - {doc}" if doc else "") + (f"; methods: {methods}{more}" if methods else "")


def file_facts(graph: RepoGraph, path: str, written: set[str], text: str | None = None) -> FileFacts:
    """Facts for `path`, given the set of files already written before it in development order.

    Names used from a dependency come from the import statements where they name them (Python's `from m
    import a`); where they do not (`import m`, a JavaScript `require`), and the file's `text` is given, they
    are the dependency's top-level definitions that the text mentions as words.
    """
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
    if text is not None:
        for dep in summary.deps:
            if not imported.get(dep):
                dep_summary = graph.files[dep]
                names = [d.name for d in [*dep_summary.classes, *dep_summary.functions] if len(d.name) > 2]
                imported[dep] = [n for n in names if re.search(rf"(?<![\w$]){re.escape(n)}(?![\w$])", text)]
    imported = {dep: names for dep, names in imported.items() if names}
    return FileFacts(
        path=path, module=summary.module, purpose=_describe(summary),
        classes=[_class_line(c) for c in summary.classes],
        functions=[f.signature for f in summary.functions],
        deps=deps, later_deps=later, imported_names=imported, external_imports=sorted(external),
        calls=list(summary.calls[:20]), n_lines=summary.n_lines, parse_ok=summary.parse_ok,
    )

