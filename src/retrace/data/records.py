"""Typed records that pass between stages inside a trajectory's steps.

The simulation grounds each Think before a Write in analysis facts (`Grounding`), the main agent's plan is
a fixed skeleton of files with model-written descriptions (`Plan`), and refinement logs each searched step
(`SearchLog`). They travel as typed fields of `Step` (`step.grounding`, `step.plan`, `step.search`), are
serialised as plain JSON objects under those keys (docs/formats.md) and read back by `Step.from_dict`, so
no stage reads them as loose dicts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

PLAN_HEADER = "Implementation plan (one sub-agent per file, in this order):"
NEEDS = " (needs "


@dataclass(frozen=True)
class Definition:
    """One class, method or top-level function of a file: its name and signature, never its body."""

    kind: str                 # "class", "method" or "function"
    name: str
    signature: str
    doc: str = ""             # the docstring's first sentence
    line: int = 0             # 1-based line of the definition
    parent: str | None = None  # the class of a method


@dataclass
class Grounding:
    """What the Think before a Write may rely on: the analysis facts of the file about to be written.

    Names, signatures, imports, calls and first docstring sentences: never code bodies, so a rewrite built
    from them cannot paste the implementation it precedes.
    """

    path: str
    language: str = ""
    purpose: str = ""
    deps: list[str] = field(default_factory=list)
    imported_names: dict[str, list[str]] = field(default_factory=dict)   # dep path -> names used from it
    external_imports: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    n_lines: int = 0
    definitions: list[Definition] = field(default_factory=list)

    @property
    def top_level(self) -> list[Definition]:
        return [d for d in self.definitions if d.parent is None]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Grounding:
        data = dict(data)
        data["definitions"] = [Definition(**d) for d in data.get("definitions") or []]
        return cls(**data)


@dataclass(frozen=True)
class PlanEntry:
    path: str
    description: str          # the part a model writes (and plan search rewrites)
    needs: tuple[str, ...] = ()  # in-repository files this one imports (from the graph)


@dataclass
class Plan:
    """The main agent's plan: files, order and dependencies from the graph; descriptions from the policy.

    `render()` is the plan step's text: a header line, then `N. path: description (needs a, b)` per file in
    development order. Only the descriptions ever change (`with_descriptions`).
    """

    entries: list[PlanEntry]
    header: str = PLAN_HEADER

    @property
    def paths(self) -> list[str]:
        return [e.path for e in self.entries]

    def descriptions(self) -> dict[str, str]:
        return {e.path: e.description for e in self.entries}

    def entry(self, path: str) -> PlanEntry:
        for entry in self.entries:
            if entry.path == path:
                return entry
        raise KeyError(f"{path!r} is not in the plan")

    @staticmethod
    def render_entry(number: int, entry: PlanEntry, description: str | None = None) -> str:
        needs = f"{NEEDS}{', '.join(entry.needs)})" if entry.needs else ""
        return f"{number}. {entry.path}: {entry.description if description is None else description}{needs}"

    def render(self, descriptions: dict[str, str] | None = None) -> str:
        """The plan text, with `descriptions` (path -> text) in place of the entries' own where given."""
        descriptions = descriptions or {}
        lines = [self.header]
        lines += [self.render_entry(n, e, descriptions.get(e.path)) for n, e in enumerate(self.entries, start=1)]
        return "\n".join(lines)

    def with_descriptions(self, descriptions: dict[str, str]) -> Plan:
        return Plan([PlanEntry(e.path, descriptions.get(e.path, e.description), e.needs) for e in self.entries],
                    self.header)

    def to_dict(self) -> dict[str, Any]:
        return {"header": self.header, "entries": [asdict(e) for e in self.entries]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        entries = [PlanEntry(e["path"], e["description"], tuple(e.get("needs") or ())) for e in data["entries"]]
        return cls(entries, data.get("header", PLAN_HEADER))


@dataclass
class Candidate:
    """One proposal scored (or refused) during a step's search."""

    iteration: int
    text: str
    chars: int
    nll: float | None = None          # mean payload NLL (nats/token); None when not scored
    n_tokens: int | None = None
    leak: str | None = None           # why the leakage guard refused it
    accepted: bool = False
    too_long: bool = False


THINK_KINDS = ("think", "think_read")  # a Think right before its sub-agent's Write; one before its Reads


@dataclass
class SearchLog:
    """The record of one searched step (a Think, or the plan): what was tried and how the NLL moved.

    `incumbent_nll`, `incumbent_chars` and `incumbent_tokens` hold one value per iteration, index 0 being
    before the search (the paper's Figure 3 is drawn from them). `kind` says what was searched: `think` (the
    Think right before a Write), `think_read` (a Think before the same sub-agent's Reads, scored on the
    same file through everything between) or `plan`.
    """

    original: str
    target_tokens: int
    kind: str = "think"               # one of THINK_KINDS, or "plan"
    baseline_nll: float | None = None  # the payload with no Think (no plan) before it
    incumbent_nll: list[float] = field(default_factory=list)
    incumbent_chars: list[int] = field(default_factory=list)
    incumbent_tokens: list[int] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    target_path: str = ""             # a Think's search: the file whose payload is scored
    target_files: list[str] = field(default_factory=list)  # plan search: the files scored
    context_tokens: int = 0           # tokens of the document prefix the scorer saw
    unhelpful: bool = False
    dropped: bool = False
    original_plan: Plan | None = None  # plan search: the plan record before search (the no-search variant's)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["original_plan"] = self.original_plan.to_dict() if self.original_plan is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchLog:
        data = dict(data)
        data["candidates"] = [Candidate(**c) for c in data.get("candidates") or []]
        if data.get("original_plan") is not None:
            data["original_plan"] = Plan.from_dict(data["original_plan"])
        return cls(**data)
