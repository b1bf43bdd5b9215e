"""What the main agent knows of a project before it plans: its README, manifests, file tree and import graph.

All of it is read from the snapshot and the graph (model-free); the requirements prompt shows it, cut to
the recipe's `prompt_*_chars` sizes, and the structural requirements fall back on it.
"""

from __future__ import annotations

import configparser
import json
import re
from collections import Counter

from retrace.agents.facts import first_sentence
from retrace.agents.languages import language_phrase, project_languages
from retrace.repo import RepoGraph, RepoSnapshot
from retrace.repo.graph import PROJECT_FILE_NAMES

_FENCE = re.compile(r"^\s*(```|~~~)")
_BADGE_OR_HTML = re.compile(r"^\s*(\[!\[|!\[|<[a-zA-Z/!])")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MARKS = re.compile(r"^\s*(#+|[-*+] |\d+\. |>)\s*|[*_`]{1,3}")
_RST_RULE = re.compile(r"^\s*([=\-~^*#]{3,})\s*$")
_LINK_ONLY = re.compile(r"^\s*(?:[-*+]|\d+\.)?\s*\[[^\]]*\]\([^)]*\)\s*$")  # a table of contents' line


def readme_text(text: str) -> str:
    """A README as prose: code blocks, badges, images, HTML and link lists dropped, links and emphasis
    unwrapped, headings and other paragraphs of under 4 words dropped after the first (the title)."""
    paragraphs: list[list[str]] = [[]]
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if fenced or _BADGE_OR_HTML.match(line) or _RST_RULE.match(line) or _LINK_ONLY.match(line):
            continue
        line = _MARKS.sub("", _LINK.sub(r"\1", line)).strip()
        if line:
            paragraphs[-1].append(line)
        elif paragraphs[-1]:
            paragraphs.append([])
    texts = [" ".join(p) for p in paragraphs if p]
    return "\n".join(texts[:1] + [p for p in texts[1:] if len(p.split()) >= 4])


def about_text(snapshot: RepoSnapshot, graph: RepoGraph) -> tuple[str, str]:
    """(where from, text): the README as prose, else the docstring of the top package's `__init__`."""
    if snapshot.description.strip():
        return "README", readme_text(snapshot.description)
    for path in graph.dev_order:
        summary = graph.files[path]
        if path.rsplit("/", 1)[-1].startswith(("__init__.", "index.")) and summary.docstring:
            return "package docstring", " ".join(summary.docstring.split())
    return "", ""


def _toml_string(text: str, key: str) -> str | None:
    found = re.search(rf"^{key}\s*=\s*[\"']([^\"'\n]*)[\"']", text, re.M)
    return found.group(1) if found else None


def _manifest_fields(name: str, text: str) -> dict[str, object]:
    """The fields of a manifest worth stating: name, description, entry points, dependencies."""
    try:
        if name == "package.json":
            data = json.loads(text)
            deps = [*(data.get("dependencies") or {}), *(data.get("peerDependencies") or {})]
            return {"name": data.get("name"), "description": data.get("description"),
                    "main": data.get("main"), "keywords": (data.get("keywords") or [])[:6], "dependencies": deps}
        if name in ("pyproject.toml", "Cargo.toml"):  # no TOML parser before Python 3.11: the plain lines
            values = {key: _toml_string(text, key) for key in ("name", "description")}
            listed = re.search(r"^dependencies\s*=\s*\[(.*?)\]", text, re.M | re.S)
            table = re.search(r"^\[dependencies\]\s*\n(.*?)(?:^\[|\Z)", text, re.M | re.S)
            deps = (re.findall(r"[\"']([A-Za-z0-9_.\-]+)", listed.group(1)) if listed else
                    re.findall(r"^([A-Za-z0-9_\-]+)\s*=", table.group(1), re.M) if table else [])
            return {**values, "dependencies": deps}
        if name == "setup.cfg":
            parser = configparser.ConfigParser(interpolation=None)
            parser.read_string(text)
            requires = parser.get("options", "install_requires", fallback="").split()
            return {"name": parser.get("metadata", "name", fallback=None),
                    "description": parser.get("metadata", "description", fallback=None), "dependencies": requires}
        if name == "go.mod":
            module = re.search(r"^module\s+(\S+)", text, re.M)
            requires = re.findall(r"^\s*(?:require\s+)?([\w.\-]+\.[\w.\-/]+)\s+v[\w.\-+]+", text, re.M)
            return {"module": module.group(1) if module else None, "dependencies": requires}
    except (ValueError, KeyError, TypeError, AttributeError, configparser.Error):
        return {}
    return {}


def manifest_text(snapshot: RepoSnapshot) -> str:
    """One line per manifest among the snapshot's files (`package.json`, `pyproject.toml`, `Cargo.toml`,
    `setup.cfg`, `go.mod`): `path: name ..., description "...", dependencies a, b`."""
    lines = []
    for file in snapshot.files:
        name = file.path.rsplit("/", 1)[-1]
        if name not in PROJECT_FILE_NAMES:
            continue
        fields = _manifest_fields(name, file.text)
        parts = []
        for key, value in fields.items():
            if isinstance(value, list):
                shown = ", ".join(str(v) for v in value[:8]) + (" ..." if len(value) > 8 else "")
                value = shown or ("none" if key == "dependencies" else "")
            if value:
                parts.append(f'{key} "{value}"' if key == "description" else f"{key} {value}")
        if parts:
            lines.append(f"{file.path}: " + "; ".join(parts))
    return "\n".join(lines)


def tree_text(graph: RepoGraph) -> str:
    """The file tree, one line per directory: `lib/: argument.js, command.js` (the root as `./`)."""
    by_dir: dict[str, list[str]] = {}
    for path in sorted(graph.dev_order):
        directory, _, name = path.rpartition("/")
        by_dir.setdefault(f"{directory}/" if directory else "./", []).append(name)
    return "\n".join(f"{d}: {', '.join(names)}" for d, names in sorted(by_dir.items()))


# graph_text's own words: a sentence made of them says nothing of the project (a prompt's `framing`)
GRAPH_FRAMING = "No file of the project imports another. imports between files. Most imported: by. " \
                "Imported by no other file:"


def graph_text(graph: RepoGraph, limit: int = 4) -> str:
    """The import graph in two lines: the files most imported, and the code files nothing imports."""
    importers = Counter(imported for _, imported in graph.edges)
    if not importers:
        return "No file of the project imports another."
    most = ", ".join(f"{path} (by {n})" for path, n in importers.most_common(limit))
    imported = set(importers)
    tops = [p for p in graph.dev_order if graph.files[p].deps and p not in imported][:limit]
    lines = [f"{len(graph.edges)} imports between files. Most imported: {most}."]
    if tops:
        lines.append(f"Imported by no other file: {', '.join(tops)}.")
    return "\n".join(lines)


def repo_overview(snapshot: RepoSnapshot, graph: RepoGraph) -> dict[str, object]:
    """Facts for the main agent's structural text: the project's own description and its shape."""
    packages = sorted({p.rsplit("/", 1)[0] if "/" in p else "." for p in graph.dev_order})
    _, about = about_text(snapshot, graph)
    return {
        "repo": snapshot.project,
        "description": first_sentence(about, 300),
        "languages": language_phrase(project_languages(graph)),
        "n_files": len(graph.dev_order),
        "n_lines": sum(graph.files[p].n_lines for p in graph.dev_order),
        "packages": packages,
        "n_edges": len(graph.edges),
        "cycles": graph.cycles,
    }
