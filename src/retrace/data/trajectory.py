"""The trajectory artifact: what the simulated agents did, step by step, for one repository.

`<output_dir>/trajectories/<xx>/<name>.jsonl` holds one JSON object per repository (see docs/formats.md).
Steps are flat; `agent` is "main" or the path of the file the sub-agent owns, which is enough to
recover the nesting (main agent delegates, sub-agent works, sub-agent reports back).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retrace.data.layout import artifact_files, iter_jsonl
from retrace.data.records import Grounding, Plan, SearchLog

MAIN_AGENT = "main"

# Step kinds, in the order they typically appear. `read` carries the observation (the real file) and
# `write` the payload (the real file); everything else is text written by a policy.
STEP_KINDS = ("requirements", "plan", "delegate", "think", "read", "write", "report")


@dataclass
class Step:
    agent: str                 # "main" or the path of the file this sub-agent implements
    kind: str                  # one of STEP_KINDS
    path: str | None           # the file read or written (or delegated), relative, '/' separators
    content: str               # text (think/plan/...), observation (read) or payload (write)
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. {"truncated": true}, {"source": "structural"}
    grounding: Grounding | None = None  # the Think before a Write: the facts it may rely on
    plan: Plan | None = None            # the plan step: its skeleton and descriptions (content is its render)
    search: SearchLog | None = None     # a searched Think or plan: refinement's record

    def __post_init__(self) -> None:
        if self.kind not in STEP_KINDS:
            raise ValueError(f"unknown step kind {self.kind!r}; expected one of {STEP_KINDS}")

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of docs/formats.md; the typed records appear only on the steps that have them."""
        data = {"agent": self.agent, "kind": self.kind, "path": self.path, "content": self.content,
                "meta": self.meta}
        for key in ("grounding", "plan", "search"):
            record = getattr(self, key)
            if record is not None:
                data[key] = record.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Step:
        readers = {"grounding": Grounding.from_dict, "plan": Plan.from_dict, "search": SearchLog.from_dict}
        records = {key: read(data[key]) for key, read in readers.items() if data.get(key) is not None}
        return cls(data["agent"], data["kind"], data.get("path"), data["content"], dict(data.get("meta") or {}),
                   **records)


@dataclass
class Trajectory:
    repo: str
    source: str
    order: list[str]                        # file paths in development order
    steps: list[Step]
    meta: dict[str, Any] = field(default_factory=dict)  # cycles, broken edges, policy counts, ...

    def to_dict(self) -> dict[str, Any]:
        return {"repo": self.repo, "source": self.source, "order": self.order,
                "steps": [s.to_dict() for s in self.steps], "meta": self.meta}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trajectory:
        steps = [Step.from_dict(step) for step in data["steps"]]
        return cls(repo=data["repo"], source=data["source"], order=list(data["order"]), steps=steps,
                   meta=dict(data.get("meta", {})))


def read_trajectories(directory: str | Path) -> list[Trajectory]:
    """All trajectories of an artifact folder (retrace.data.layout's files, one object per line), sorted by
    repository name."""
    found = [Trajectory.from_dict(record) for _, _, record in iter_jsonl(artifact_files(directory))]
    return sorted(found, key=lambda t: t.repo)


def iter_trajectories(directory: str | Path) -> Iterator[Trajectory]:
    """The trajectories of an artifact folder one at a time, in file-name order: for passes over a large run."""
    for _, _, record in iter_jsonl(artifact_files(directory)):
        yield Trajectory.from_dict(record)
