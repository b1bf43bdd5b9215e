"""Flatten a trajectory into one training document: text segments flagged trained or not.

The markup (docs/formats.md) is plain text, so any tokenizer sees it. Trained: Think, requirements,
plan, delegation, reports, the Read and Write actions and the Write payload. Not trained: the Read
observations (real files the agent did not write at that point) and tool acknowledgements.
Each segment also names its `kind`, so evaluation can find the written code (`kind == "payload"`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from retrace.data.layout import artifact_files, iter_jsonl
from retrace.data.trajectory import MAIN_AGENT, Trajectory


@dataclass
class Segment:
    text: str
    train: bool
    kind: str = "text"          # think | plan | action | observation | payload | ...
    path: str | None = None     # file the segment is about, when there is one


@dataclass
class Document:
    repo: str
    segments: list[Segment]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.segments)

    def to_dict(self) -> dict[str, Any]:
        return {"repo": self.repo, "segments": [asdict(s) for s in self.segments], "meta": self.meta}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Document:
        return cls(repo=data["repo"], segments=[Segment(**s) for s in data["segments"]],
                   meta=dict(data.get("meta", {})))


def _block(tag: str, body: str, attrs: str = "") -> str:
    body = body if body.endswith("\n") or not body else body + "\n"
    return f"<{tag}{attrs}>\n{body}</{tag}>\n"


def trajectory_to_document(traj: Trajectory) -> Document:
    """The multi-agent trajectory as one document, nesting shown by agent headers."""
    segments: list[Segment] = [Segment(f"<repository name=\"{traj.repo}\">\n", True, "header")]
    current_agent = None

    def add(text: str, train: bool, kind: str, path: str | None = None) -> None:
        segments.append(Segment(text, train, kind, path))

    for step in traj.steps:
        if step.agent != current_agent:
            if current_agent not in (None, MAIN_AGENT):
                add("</subagent>\n", True, "header")
            if step.agent != MAIN_AGENT:
                add(f"<subagent file=\"{step.agent}\">\n", True, "header", step.agent)
            current_agent = step.agent
        path_attr = f" path=\"{step.path}\"" if step.path else ""
        if step.kind == "read":
            truncated = " truncated=\"true\"" if step.meta.get("truncated") else ""
            add(f"<read{path_attr}/>\n", True, "action", step.path)
            add(_block("observation", step.content, truncated), False, "observation", step.path)
        elif step.kind == "write":
            # The payload is the real file byte for byte: header and footer are separate segments.
            add(f"<write{path_attr}>\n", True, "action", step.path)
            add(step.content, True, "payload", step.path)
            add(("" if step.content.endswith("\n") or not step.content else "\n") + "</write>\n",
                True, "action", step.path)
            add(_block("observation", f"wrote {step.path}"), False, "observation", step.path)
        else:
            add(_block(step.kind, step.content, path_attr), True, step.kind, step.path)
    if current_agent not in (None, MAIN_AGENT):
        add("</subagent>\n", True, "header")
    add("</repository>\n", True, "header")
    return Document(repo=traj.repo, segments=[s for s in segments if s.text],
                    meta={"source": traj.source, "kind": "trajectory"})


def raw_repository_document(traj: Trajectory, files: dict[str, str]) -> Document:
    """The Raw-Repos baseline: the same files concatenated in development order, all trained."""
    segments = [Segment(f"<repository name=\"{traj.repo}\">\n", True, "header")]
    for path in traj.order:
        segments.append(Segment(f"<file path=\"{path}\">\n", True, "action", path))
        text = files[path]
        segments.append(Segment(text, True, "payload", path))
        segments.append(Segment(("" if text.endswith("\n") or not text else "\n") + "</file>\n", True, "action", path))
    segments.append(Segment("</repository>\n", True, "header"))
    return Document(repo=traj.repo, segments=[s for s in segments if s.text],
                    meta={"source": traj.source, "kind": "raw_repository"})


def read_documents(path: str | Path) -> list[Document]:
    """Documents from a `.jsonl` file or every `*.jsonl` of an artifact folder (retrace.data.layout), in file order."""
    path = Path(path)
    files = artifact_files(path) if path.is_dir() else [path]
    return [Document.from_dict(record) for _, _, record in iter_jsonl(files)]
