"""Documents that fit the training context: repositories over a token budget become sub-projects.

The paper's documents fit its 64k training context (mean 12,083 tokens); a repository simulated whole
does not when it is large, since its document holds every file once as a Write and once more per file
that reads it. This module decides, before any simulation and without a model, which files go into
which document. The rule (docs/documents.md says why):

1. Estimate the trajectory's tokens from the graph: every Write payload, every Read of a dependency
   (a file is read by each later file that imports it, cut at `read_budget_chars` as the simulation
   cuts it) with its markup, plus an allowance for the agents' text per file and per document.
2. A repository whose estimate fits `document_budget_tokens` is one document, as before.
3. Otherwise it is split along its directories: the files directly in a directory, then each of its
   subdirectories, in path order, are packed into sub-projects while the estimate of the pack fits
   (the directory's own files first, so they keep their small subpackages); a subdirectory that does
   not fit alone is split the same way, recursively; a directory's own files that do not fit together
   are cut into consecutive runs of the development order. Each sub-project is simulated as a
   repository of its own (its own requirements and plan).
4. The parts fixed, each fills what room its budget leaves with Reads of the files of other parts that
   its files import (the repository around a sub-project exists, and its sub-agents read what they
   build on, as in a whole repository): in development order, every such Read that still fits is taken,
   the others are left out (that import is then like an external library's). These files are read,
   never written again; a file too large to be any document's payload is never read from another.
5. A file whose estimate alone exceeds the budget is skipped (`file_over_budget`); a repository that
   would need more than `document_max_parts` documents is skipped whole (`too_many_parts`). Both are
   counted and logged.

Names: a sub-project is `<repo>/<directory>` (the repository's own files keep the name `<repo>`), a
pack of several subdirectories `<repo>/<dir>/<first>..<last>`, a run of one directory's own files
`<name>#<k>`. The same snapshot and graph always give the same parts; the export then verifies each
document with its real token count (retrace.data.budget_check).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

from retrace.repo.graph import RepoGraph
from retrace.repo.snapshot import RepoSnapshot

logger = logging.getLogger(__name__)

TokenCounter = Callable[[Sequence[str]], list[int]]
SKIP_REASONS = ("file_over_budget", "too_many_parts")
# What the simulation writes around one Read (its markup and the truncation note); counted, not guessed.
_READ_MARKUP = '<read path="{path}"/>\n<observation truncated="true">\n</observation>\n'
_TRUNCATION_NOTE = "\n... [truncated: {n} more characters]\n"


@dataclass
class DocumentBudgetArguments:
    """How long a training document may be, and how its length is estimated before simulation."""

    document_budget_tokens: int = field(default=64_000, metadata={
        "help": "Most tokens one trajectory document may hold (sized for a 64k training context); a larger "
                "repository is split into sub-projects (docs/documents.md). 0: no budget, one document per "
                "repository."})
    document_chars_per_token: float = field(default=3.2, metadata={
        "help": "Characters per token when the recipe names no tokenizer (dataset_card_tokenizer): a "
                "conservative figure for code (Llama-3 and SmolLM2 measure 3.9-4.3 on Python)."})
    document_agent_tokens_per_file: int = field(default=800, metadata={
        "help": "Allowance per file for the agents' words around its Write (plan entry, delegation, Thinks, "
                "report, markup) in the estimate."})
    document_agent_tokens_per_document: int = field(default=512, metadata={
        "help": "Allowance per document for the requirements and the plan's frame in the estimate."})
    document_max_parts: int = field(default=64, metadata={
        "help": "A repository that would need more documents than this is skipped whole (too_many_parts). "
                "0: no limit."})

    def __post_init__(self) -> None:
        if self.document_budget_tokens < 0:
            raise ValueError(f"key 'document_budget_tokens': must be >= 0, got {self.document_budget_tokens}")
        if self.document_chars_per_token <= 0:
            raise ValueError(f"key 'document_chars_per_token': must be > 0, got {self.document_chars_per_token}")
        if min(self.document_agent_tokens_per_file, self.document_agent_tokens_per_document,
               self.document_max_parts) < 0:
            raise ValueError("keys 'document_agent_tokens_per_file', 'document_agent_tokens_per_document' and "
                             "'document_max_parts' must be >= 0")


def ratio_counter(chars_per_token: float) -> TokenCounter:
    """Token counts estimated from lengths: ceil(chars / chars_per_token) per text."""
    return lambda texts: [math.ceil(len(text) / chars_per_token) for text in texts]


@dataclass
class Part:
    """One document's share of a repository: its files in development order."""

    name: str
    root: str  # the directory it stands for ("" = the repository root)
    paths: list[str]
    estimated_tokens: int
    # file -> the files of other parts it reads (room left in the budget; rule 4): read, never written here
    reads: dict[str, list[str]] = field(default_factory=dict)

    @property
    def readable(self) -> list[str]:
        """Every file of another part that this part reads, once each, in order of first Read."""
        return list(dict.fromkeys(d for deps in self.reads.values() for d in deps))


@dataclass
class SkippedPart:
    name: str
    reason: str  # one of SKIP_REASONS
    paths: list[str]
    estimated_tokens: int


@dataclass
class BudgetDecision:
    """Which documents a repository becomes; serialised per repository beside the artifacts."""

    repo: str
    budget_tokens: int
    estimated_tokens: int  # the whole repository as one document (0 when no budget is set)
    parts: list[Part]
    skipped: list[SkippedPart] = field(default_factory=list)

    @property
    def split(self) -> bool:
        return len(self.parts) != 1 or self.parts[0].name != self.repo or bool(self.skipped)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> BudgetDecision:
        return cls(repo=d["repo"], budget_tokens=d["budget_tokens"], estimated_tokens=d["estimated_tokens"],
                   parts=[Part(**p) for p in d["parts"]], skipped=[SkippedPart(**s) for s in d["skipped"]])


class TrajectoryEstimate:
    """Estimated tokens of the trajectory document over any subset of one repository's files.

    Each file costs its payload plus the per-file allowance, plus every Read it makes: its in-repo
    imports that are in the same subset and precede it in the development order (what the simulation
    reads), each the dependency's text cut at `read_budget_chars`, with the Read's markup. Reads of files
    outside the subset are added afterwards where they fit (`_Splitter.keep`); a file is `readable` from
    another document unless its payload alone would not fit the budget.
    """

    def __init__(self, snapshot: RepoSnapshot, graph: RepoGraph, args: DocumentBudgetArguments,
                 count_tokens: TokenCounter, read_budget_chars: int = 0) -> None:
        texts = {f.path: f.text for f in snapshot.files}
        paths = list(graph.dev_order)
        self.position = {path: i for i, path in enumerate(paths)}
        self.deps = {path: [d for d in graph.files[path].deps if d in self.position] for path in paths}
        self.per_file = args.document_agent_tokens_per_file
        self.per_document = args.document_agent_tokens_per_document
        cut = [p for p in paths if 0 < read_budget_chars < len(texts[p])]  # a Read of these is truncated
        counts = count_tokens([texts[p] for p in paths] + [_READ_MARKUP.format(path=p) for p in paths] + [
            texts[p][:read_budget_chars] + _TRUNCATION_NOTE.format(n=len(texts[p]) - read_budget_chars) for p in cut])
        n = len(paths)
        self.write = dict(zip(paths, counts[:n]))
        observed = {**self.write, **dict(zip(cut, counts[2 * n:]))}
        self.read = {p: observed[p] + markup for p, markup in zip(paths, counts[n:2 * n])}
        budget = args.document_budget_tokens or math.inf
        self.readable = {p for p in paths if self.per_document + self.write[p] + self.per_file <= budget}

    def file_tokens(self, path: str, members: Collection[str]) -> int:
        """What `path` adds to a document whose other files are `members`."""
        here = self.position[path]
        reads = sum(self.read[d] for d in self.deps[path] if d in members and self.position[d] < here)
        return self.write[path] + self.per_file + reads

    def outside_reads(self, paths: Sequence[str], tokens: int, budget: int) -> tuple[dict[str, list[str]], int]:
        """Reads of other parts' files that a part of `paths` (estimated at `tokens`) takes, in development
        order, while they fit `budget`; and the part's estimate with them."""
        members, reads = set(paths), {}
        for path in self.in_order(paths):
            for dep in self.deps[path]:
                if dep not in members and dep in self.readable and tokens + self.read[dep] <= budget:
                    reads.setdefault(path, []).append(dep)
                    tokens += self.read[dep]
        return reads, tokens

    def tokens(self, paths: Sequence[str]) -> int:
        members = set(paths)
        return self.per_document + sum(self.file_tokens(p, members) for p in paths)

    def in_order(self, paths: Sequence[str]) -> list[str]:
        return sorted(paths, key=self.position.__getitem__)


def _child(path: str, root: str) -> str | None:
    """The subdirectory of `root` that holds `path`, or None when `path` is directly in `root`."""
    rest = path[len(root) + 1:] if root else path
    return rest.split("/", 1)[0] if "/" in rest else None


class _Splitter:
    def __init__(self, repo: str, estimate: TrajectoryEstimate, budget: int) -> None:
        self.repo, self.estimate, self.budget = repo, estimate, budget
        self.parts: list[Part] = []
        self.skipped: list[SkippedPart] = []

    def name(self, root: str) -> str:
        return f"{self.repo}/{root}" if root else self.repo

    def keep(self, name: str, root: str, paths: list[str], tokens: int) -> None:
        reads, tokens = self.estimate.outside_reads(paths, tokens, self.budget)
        self.parts.append(Part(name, root, self.estimate.in_order(paths), tokens, reads))

    def split(self, root: str, paths: list[str]) -> None:
        tokens = self.estimate.tokens(paths)
        if tokens <= self.budget:
            self.keep(self.name(root), root, paths, tokens)
            return
        own = [p for p in paths if _child(p, root) is None]
        subdirs: dict[str, list[str]] = {}
        for p in paths:
            if (child := _child(p, root)) is not None:
                subdirs.setdefault(child, []).append(p)
        if not own and len(subdirs) == 1:
            [(child, files)] = subdirs.items()
            self.split(f"{root}/{child}" if root else child, files)
            return
        groups: list[tuple[str | None, list[str]]] = ([(None, own)] if own else []) + sorted(subdirs.items())
        pack: list[tuple[str | None, list[str]]] = []

        def close() -> None:
            if not pack:
                return
            files = [p for _, group in pack for p in group]
            keys = [key for key, _ in pack]
            if keys[0] is None:
                name = self.name(root)
            elif len(keys) == 1:
                name = self.name(f"{root}/{keys[0]}" if root else keys[0])
            else:
                name = self.name(f"{root}/{keys[0]}..{keys[-1]}" if root else f"{keys[0]}..{keys[-1]}")
            self.keep(name, root if keys[0] is None or len(keys) > 1 else
                      (f"{root}/{keys[0]}" if root else keys[0]), files, self.estimate.tokens(files))
            pack.clear()

        for key, files in groups:
            if self.estimate.tokens(files) > self.budget:  # split alone; the open pack may take later groups
                if key is None:
                    self.runs(root, files)
                else:
                    self.split(f"{root}/{key}" if root else key, files)
                continue
            if pack and self.estimate.tokens([p for _, g in pack for p in g] + files) > self.budget:
                close()
            pack.append((key, files))
        close()

    def runs(self, root: str, paths: list[str]) -> None:
        """A directory's own files in consecutive runs of the development order, each within the budget."""
        base, runs, run, tokens = self.name(root), [], [], self.estimate.per_document
        for path in self.estimate.in_order(paths):
            alone = self.estimate.per_document + self.estimate.file_tokens(path, ())
            if alone > self.budget:
                self.skipped.append(SkippedPart(f"{self.repo}/{path}", "file_over_budget", [path], alone))
                continue
            added = self.estimate.file_tokens(path, set(run))
            if run and tokens + added > self.budget:
                runs.append((run, tokens))
                run, tokens = [], self.estimate.per_document
                added = self.estimate.file_tokens(path, ())
            run.append(path)
            tokens += added
        if run:
            runs.append((run, tokens))
        for k, (files, total) in enumerate(runs, 1):
            self.keep(f"{base}#{k}" if len(runs) > 1 else base, root, files, total)


def fit_to_budget(snapshot: RepoSnapshot, graph: RepoGraph, args: DocumentBudgetArguments,
                  count_tokens: TokenCounter | None = None, read_budget_chars: int = 0) -> BudgetDecision:
    """The documents one repository becomes under the recipe's budget (module docstring: the rule).

    `count_tokens` maps texts to token counts (a tokenizer); without it, `document_chars_per_token`.
    Every file of the graph is in exactly one part or one skipped part.
    """
    if args.document_budget_tokens <= 0:
        return BudgetDecision(snapshot.name, 0, 0, [Part(snapshot.name, "", list(graph.dev_order), 0)])
    estimate = TrajectoryEstimate(snapshot, graph, args, count_tokens or ratio_counter(args.document_chars_per_token),
                                  read_budget_chars)
    splitter = _Splitter(snapshot.name, estimate, args.document_budget_tokens)
    whole = estimate.tokens(graph.dev_order)
    splitter.split("", list(graph.dev_order))
    decision = BudgetDecision(snapshot.name, args.document_budget_tokens, whole, splitter.parts, splitter.skipped)
    if args.document_max_parts and len(decision.parts) > args.document_max_parts:
        decision.parts, decision.skipped = [], [
            SkippedPart(snapshot.name, "too_many_parts", list(graph.dev_order), whole)]
    if decision.split:
        logger.info("%s: ~%d tokens as one document, over the budget of %d: %d sub-projects, %d parts skipped",
                    snapshot.name, whole, args.document_budget_tokens, len(decision.parts), len(decision.skipped))
    for skipped in decision.skipped:
        logger.info("%s: skipped (%s, ~%d tokens, %d files)", skipped.name, skipped.reason,
                    skipped.estimated_tokens, len(skipped.paths))
    return decision


def part_snapshot(snapshot: RepoSnapshot, part: Part) -> RepoSnapshot:
    """The sub-project as a repository: its files (paths unchanged) and, as `readable`, the files of other
    parts it reads; its description is the README of the directory it stands for (wherever that README
    was placed), else the repository's."""
    if part.name == snapshot.name and len(part.paths) == len(snapshot.files):
        return snapshot
    members, texts = set(part.paths), {f.path: f for f in snapshot.files}
    files = [f for f in snapshot.files if f.path in members]
    readable = [texts[path] for path in part.readable]
    prefix = f"{part.root}/" if part.root else ""
    readmes = [f for f in snapshot.files if f.path.startswith(prefix) and "/" not in f.path[len(prefix):]
               and f.path[len(prefix):].upper().startswith("README")]
    description = readmes[0].text if readmes else snapshot.description
    return dataclasses.replace(snapshot, name=part.name, files=files, description=description, readable=readable,
                               part_of=snapshot.name)


def part_graph(graph: RepoGraph, part: Part) -> RepoGraph:
    """The graph restricted to the sub-project: imports of files outside it are no longer edges.

    The development order is the repository's, filtered (a subsequence of a topological order is one);
    cycles keep their members inside the sub-project, broken edges those with both ends inside. The files
    of other parts that a file reads (`part.reads`) stay its dependencies, and their summaries stay in
    `files`, but they are not in the development order: they are read, never written.
    """
    members = set(part.paths)
    if members == set(graph.files) and part.name == graph.repo:
        return graph
    files = {p: dataclasses.replace(s, deps=[d for d in s.deps if d in members or d in part.reads.get(p, ())])
             for p, s in graph.files.items() if p in members}
    files.update({p: dataclasses.replace(graph.files[p], deps=[]) for p in part.readable})
    cycles = [kept for cycle in graph.cycles if len(kept := [p for p in cycle if p in members]) > 1]
    return RepoGraph(
        repo=part.name, files=files, edges=[e for e in graph.edges if e[0] in members and e[1] in members],
        dev_order=[p for p in graph.dev_order if p in members], cycles=cycles,
        broken_edges=[e for e in graph.broken_edges if e[0] in members and e[1] in members])


def budget_parts(snapshot: RepoSnapshot, graph: RepoGraph,
                 decision: BudgetDecision) -> list[tuple[RepoSnapshot, RepoGraph]]:
    """(snapshot, graph) of every part, in the decision's order: what the simulation runs on."""
    return [(part_snapshot(snapshot, part), part_graph(graph, part)) for part in decision.parts]
