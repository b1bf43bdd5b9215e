"""The repository graph: file summaries, in-repo dependency edges and a development order.

The development order is the order in which the simulated developer writes files, so it must put
every dependency before its dependents. Real repositories have import cycles; they are condensed
(strongly connected components), ordered topologically, and broken inside each component by a
deterministic rule, with every ignored edge recorded in `broken_edges`.

Placement rule (how files that no import orders are placed; `file_kind` and `placement_key`):
1. Project files come first, as the requirements the main agent writes before any code: text files
   at the repository root (README first), manifests anywhere (`package.json`, `go.mod`,
   `Cargo.toml`, `pyproject.toml`, `setup.cfg`, `CMakeLists.txt`, `Makefile`, ...) and the text
   files under a top-level `docs/` or `doc/`.
2. Everything else follows the file hierarchy, a directory's own files before its subdirectories:
   in a directory, its README first, then code, then tests; its other text files (data, configs,
   fixtures) after its subdirectories, at the end of the directory's group.
3. A test file comes after every in-repo file it imports (like any file) and after every non-test
   code file of the code it tests: for a file under a `test/`, `tests/` or `__tests__/` directory,
   the whole subtree of that directory's parent (`src/test/...` mirrors to `src/main/...`, one
   package); for a test named by pattern (`test_*.py`, `*_test.go`, `*.test.ts`, `*.spec.js`,
   `FooTest.java`, ...), the files of its own directory. A code file that imports a test, directly
   or not, is exempt (it must precede that test), so the rule never creates a cycle.
Rules 1-2 are a tie-break (a file is placed as soon as it is the smallest available one: a project
file has no imports, so it is always placed first); rule 3 and the imports are guarantees.

Promise: for every edge (a imports b) not in `broken_edges`, b precedes a in `dev_order`, and
every file appears in `dev_order` exactly once. The same snapshot always gives the same graph.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import networkx as nx

from .analysis import FileSummary
from .lang import build_resolvers, summarize_file
from .languages import is_code
from .snapshot import RepoSnapshot

TEST_DIRS = frozenset({"test", "tests", "__tests__"})
_TEST_FILE = re.compile(r"(test_.*|.*_test|.*_tests|conftest|.*\.(test|spec)|.*[a-z0-9]Tests?)\.[A-Za-z]+\Z")
PROJECT_FILE_NAMES = frozenset({
    "package.json", "tsconfig.json", "go.mod", "go.work", "Cargo.toml", "pyproject.toml", "setup.cfg",
    "tox.ini", "requirements.txt", "CMakeLists.txt", "Makefile", "makefile", "GNUmakefile", "meson.build",
    "pom.xml", "build.gradle", "settings.gradle", "Dockerfile",
})  # fmt: skip


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


def file_kind(path: str, language: str) -> str:
    """Where the placement rule puts a file: "project", "readme", "code", "test" or "text"."""
    parts = path.split("/")
    name = parts[-1]
    if is_code(language):
        in_test_dir = any(part in TEST_DIRS for part in parts[:-1])
        return "test" if in_test_dir or _TEST_FILE.match(name) else "code"
    if len(parts) == 1 or name in PROJECT_FILE_NAMES or (parts[0] in ("docs", "doc") and len(parts) > 1):
        return "project"
    return "readme" if name.upper().startswith("README") else "text"


def placement_key(path: str, kind: str = "code") -> tuple:
    """Tie-break key of the development order (smaller first), see the module docstring."""
    parts = path.split("/")
    name = parts[-1]
    if kind == "project":
        return (0, *hierarchy_key(path)[:-1], (0, 0 if name.upper().startswith("README") else 1, name))
    dirs = tuple((1, part) for part in parts[:-1])
    last = {"readme": (0, 0, name), "code": (0, 1, name), "test": (0, 2, name)}.get(kind, (2, name))
    return (1, *dirs, last)


def scope_tested_by(path: str) -> tuple[str, bool]:
    """(directory, whole subtree?) that a test file tests; see the module docstring."""
    parts = path.split("/")
    for i, part in enumerate(parts[:-1]):
        if part in TEST_DIRS:
            if i >= 1 and parts[i - 1] == "src":  # Maven/Gradle: src/test/java/p -> src/main/java/p
                return "/".join([*parts[:i], "main", *parts[i + 1 : -1]]), False
            return "/".join(parts[:i]), True
    return "/".join(parts[:-1]), False


def _test_barriers(kinds: dict[str, str], forward: dict[str, set[str]]) -> list[tuple[list[str], list[str]]]:
    """(files, tests) pairs: every test after every file of its scope, without creating a cycle.

    A file that comes after some test through imports (it imports a test, maybe indirectly) is left
    out of every barrier; then no barrier can close a cycle, since a path leaving a test reaches
    only such files before it could enter a barrier.
    """
    tests = sorted(p for p, kind in kinds.items() if kind == "test")
    if not tests:
        return []
    after_a_test, stack = set(tests), list(tests)
    while stack:
        for nxt in forward.get(stack.pop(), ()):
            if nxt not in after_a_test:
                after_a_test.add(nxt)
                stack.append(nxt)
    code_by_dir: dict[str, list[str]] = {}
    for path, kind in sorted(kinds.items()):
        if kind == "code" and path not in after_a_test:
            code_by_dir.setdefault(path.rpartition("/")[0], []).append(path)
    tests_by_scope: dict[tuple[str, bool], list[str]] = {}
    for path in tests:
        tests_by_scope.setdefault(scope_tested_by(path), []).append(path)
    barriers = []
    for (scope, subtree), scope_tests in sorted(tests_by_scope.items()):
        if subtree:
            files = [
                f
                for d, fs in code_by_dir.items()
                if not scope or d == scope or d.startswith(scope + "/")
                for f in fs
            ]
        else:
            files = list(code_by_dir.get(scope, []))
        if files:
            barriers.append((sorted(files), scope_tests))
    return barriers


def _order_component(members: list[str], deps: dict[str, set[str]], keys: dict) -> list[str]:
    """Order one import cycle: repeatedly take the file with fewest unplaced in-cycle dependencies.

    Ties go to the smaller placement key. Quadratic in the component size, which is small next to
    the repository (cycles are usually a handful of files).
    """
    inside = set(members)
    unplaced_deps = {f: {d for d in deps[f] if d in inside} for f in members}
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
    nodes: list[str], edges: list[tuple[str, str]], kinds: dict[str, str] | None = None
) -> tuple[list[str], list[list[str]], list[tuple[str, str]]]:
    """(dev_order, cycles, broken_edges) for files `nodes` and (importer, imported) `edges`.

    `kinds` (from `file_kind`) turns on the placement rule; without it every file is "code".
    """
    kinds = {node: (kinds or {}).get(node, "code") for node in nodes}
    keys: dict = {node: placement_key(node, kinds[node]) for node in nodes}
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from((imported, importer) for importer, imported in edges)  # deps point forward
    forward = {node: set(graph.successors(node)) for node in nodes}
    for i, (files, tests) in enumerate(_test_barriers(kinds, forward)):
        barrier = ("<barrier>", i)  # not a file: dropped from the order below
        keys[barrier] = (-1, i)
        graph.add_edges_from((f, barrier) for f in files)
        graph.add_edges_from((barrier, t) for t in tests)
    condensed = nx.condensation(graph)
    members = {c: sorted(condensed.nodes[c]["members"], key=keys.__getitem__) for c in condensed.nodes}
    deps: dict[str, set[str]] = {node: set() for node in nodes}
    for importer, imported in edges:
        deps[importer].add(imported)
    order: list[str] = []
    cycles: list[list[str]] = []
    broken: list[tuple[str, str]] = []
    for component in nx.lexicographical_topological_sort(condensed, key=lambda c: keys[members[c][0]]):
        files = members[component]
        if len(files) == 1:
            order.extend(f for f in files if isinstance(f, str))
            continue
        cycles.append(sorted(files))
        local = _order_component(files, deps, keys)
        position = {f: i for i, f in enumerate(local)}
        broken.extend(
            (a, b) for a in local for b in sorted(deps[a]) if b in position and position[b] > position[a]
        )
        order.extend(local)
    return order, sorted(cycles), sorted(broken)


def analyze_repository(snapshot: RepoSnapshot) -> RepoGraph:
    """Summarise every file of a snapshot, link imports to in-repo files and order the files."""
    files: dict[str, FileSummary] = {}
    texts: dict[str, str] = {}
    for source in snapshot.files:
        files[source.path] = summarize_file(source.path, source.language, source.text)
        texts[source.path] = source.text
    resolver_for = build_resolvers(snapshot.name, files, texts)
    edges: set[tuple[str, str]] = set()
    for path, summary in files.items():
        resolver = resolver_for(summary.language)
        if resolver is None:
            continue
        summary.module = resolver.module_of(path)
        summary.deps = sorted(resolver.deps(path))
        edges.update((path, dep) for dep in summary.deps)
    sorted_edges = sorted(edges)
    kinds = {path: file_kind(path, summary.language) for path, summary in files.items()}
    dev_order, cycles, broken = development_order(list(files), sorted_edges, kinds)
    return RepoGraph(
        repo=snapshot.name,
        files=files,
        edges=sorted_edges,
        dev_order=dev_order,
        cycles=cycles,
        broken_edges=broken,
    )
