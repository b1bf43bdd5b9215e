"""The repository graph: file summaries, in-repo dependency edges and a development order.

The development order is the order in which the simulated developer writes files, so it must put
every dependency before its dependents. Real repositories have import cycles; they are condensed
(strongly connected components), ordered topologically, and broken inside each component by a
deterministic rule, with every ignored edge recorded in `broken_edges`.

Promise: for every edge (a imports b) not in `broken_edges`, b precedes a in `dev_order`, and
every file appears in `dev_order` exactly once. The same snapshot always gives the same graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from .analysis import FileSummary, summarize_python
from .modules import ModuleIndex
from .snapshot import RepoSnapshot


@dataclass
class RepoGraph:
    repo: str
    files: dict[str, FileSummary]
    edges: list[tuple[str, str]]  # (importer, imported), sorted
    dev_order: list[str]
    cycles: list[list[str]]
    broken_edges: list[tuple[str, str]]

    def to_dict(self) -> dict:
        return {
            "repo": self.repo,
            "files": {path: summary.to_dict() for path, summary in self.files.items()},
            "edges": [list(edge) for edge in self.edges],
            "dev_order": list(self.dev_order),
            "cycles": [list(cycle) for cycle in self.cycles],
            "broken_edges": [list(edge) for edge in self.broken_edges],
        }

    @classmethod
    def from_dict(cls, d: dict) -> RepoGraph:
        return cls(
            repo=d["repo"],
            files={path: FileSummary.from_dict(summary) for path, summary in d["files"].items()},
            edges=[tuple(edge) for edge in d["edges"]],
            dev_order=list(d["dev_order"]),
            cycles=[list(cycle) for cycle in d["cycles"]],
            broken_edges=[tuple(edge) for edge in d["broken_edges"]],
        )


def hierarchy_key(path: str) -> tuple:
    """Sort key keeping a directory's files together: its files first, then its subdirectories."""
    parts = path.split("/")
    return tuple((1, part) for part in parts[:-1]) + ((0, parts[-1]),)


def _order_component(members: list[str], deps: dict[str, set[str]]) -> list[str]:
    """Order one import cycle: repeatedly take the file with fewest unplaced in-cycle dependencies.

    Ties go to the earlier file in the hierarchy. Quadratic in the component size, which is small
    next to the repository (cycles are usually a handful of files).
    """
    keys = {f: hierarchy_key(f) for f in members}
    unplaced_deps = {f: {d for d in deps[f] if d in keys} for f in members}
    dependents: dict[str, list[str]] = {f: [] for f in members}
    for f, ds in unplaced_deps.items():
        for d in ds:
            dependents[d].append(f)
    counts = {f: len(ds) for f, ds in unplaced_deps.items()}
    order: list[str] = []
    while counts:
        best = min(counts, key=lambda f: (counts[f], keys[f]))
        order.append(best)
        del counts[best]
        for f in dependents[best]:
            if f in counts:
                counts[f] -= 1
    return order


def development_order(
    nodes: list[str], edges: list[tuple[str, str]]
) -> tuple[list[str], list[list[str]], list[tuple[str, str]]]:
    """(dev_order, cycles, broken_edges) for files `nodes` and (importer, imported) `edges`."""
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from((imported, importer) for importer, imported in edges)  # deps point forward
    condensed = nx.condensation(graph)
    members = {c: sorted(condensed.nodes[c]["members"], key=hierarchy_key) for c in condensed.nodes}
    deps: dict[str, set[str]] = {node: set() for node in nodes}
    for importer, imported in edges:
        deps[importer].add(imported)
    order: list[str] = []
    cycles: list[list[str]] = []
    broken: list[tuple[str, str]] = []
    for component in nx.lexicographical_topological_sort(
        condensed, key=lambda c: hierarchy_key(members[c][0])
    ):
        files = members[component]
        if len(files) == 1:
            order.extend(files)
            continue
        cycles.append(sorted(files))
        local = _order_component(files, deps)
        position = {f: i for i, f in enumerate(local)}
        broken.extend(
            (a, b) for a in local for b in sorted(deps[a]) if b in position and position[b] > position[a]
        )
        order.extend(local)
    return order, sorted(cycles), sorted(broken)


def analyze_repository(snapshot: RepoSnapshot) -> RepoGraph:
    """Summarise every file of a snapshot, link imports to in-repo files and order the files."""
    index = ModuleIndex(snapshot.name, [f.path for f in snapshot.files])
    files: dict[str, FileSummary] = {}
    edges: set[tuple[str, str]] = set()
    for source in snapshot.files:
        if source.language == "python":
            summary = summarize_python(source.path, source.text)
        else:
            summary = FileSummary(
                path=source.path, language=source.language, module=None, docstring=None, imports=[],
                classes=[], functions=[], calls=[], deps=[], parse_ok=True,
                n_lines=source.text.count("\n") + (1 if source.text and not source.text.endswith("\n") else 0),
            )  # fmt: skip
        summary.module = index.module_of(source.path)
        deps = set()
        for info in summary.imports:
            deps.update(index.resolve(source.path, info))
        summary.deps = sorted(deps)
        edges.update((source.path, dep) for dep in summary.deps)
        files[source.path] = summary
    sorted_edges = sorted(edges)
    dev_order, cycles, broken = development_order(list(files), sorted_edges)
    return RepoGraph(
        repo=snapshot.name,
        files=files,
        edges=sorted_edges,
        dev_order=dev_order,
        cycles=cycles,
        broken_edges=broken,
    )
