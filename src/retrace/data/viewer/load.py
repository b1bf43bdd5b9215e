"""Read one synthesis split from disk and pair every trajectory step with its document segments.

The viewer shows trained and masked spans as the *document on disk* flags them, not as the current
code would flatten the trajectory: a page must tell the truth about what a trainer will see. Each
step is flattened alone (`trajectory_to_document` on a one-step trajectory) only to learn how many
segments it owns and what they say; the segments shown, with their `train` flags, are the disk ones.
Where the disk document disagrees with the trajectory, the page says so and falls back to the
flattening, so a stale or hand-edited document is visible rather than silently misrendered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from retrace.data.document import Document, Segment, trajectory_to_document
from retrace.data.layout import (
    DOCUMENTS,
    RAW_BASELINE,
    TRAJECTORIES,
    artifact_files,
    artifact_path,
    read_first_record,
    split_dir,
)
from retrace.data.trajectory import Step, Trajectory

SPLITS = ("train", "heldout")


@dataclass
class StepView:
    """One trajectory step and the document segments that carry it."""

    step: Step
    segments: list[Segment]
    dropped: bool = False  # a Think the search removed: kept in the trajectory's meta, not in the document


@dataclass
class RepoView:
    """Everything a repository page needs, read from one split of an output directory."""

    split: str
    name: str                     # the artifact file stem, also the page's file name
    page: str                     # the page's path under the viewer folder, `<split>/<xx>/<name>.html`
    trajectory: Trajectory
    steps: list[StepView]
    document_chars: int
    trained_chars: int
    raw_chars: int | None
    mismatch: str | None = None   # why the disk document could not be aligned, when it could not
    kind_chars: dict[str, list[int]] = field(default_factory=dict)  # kind -> [trained, masked]

    @property
    def trained_share(self) -> float:
        return self.trained_chars / self.document_chars if self.document_chars else 0.0


def _step_segments(traj: Trajectory, step: Step) -> list[Segment]:
    """The segments this step flattens to, without the repository and sub-agent wrappers."""
    alone = Trajectory(traj.repo, traj.source, [], [step])
    return [s for s in trajectory_to_document(alone).segments if s.kind != "header"]


def align_steps(traj: Trajectory, document: Document | None) -> tuple[list[StepView], str | None]:
    """Pair each step with its disk segments; on any disagreement, the flattening and the reason."""
    expected = [_step_segments(traj, step) for step in traj.steps]
    fallback = [StepView(step, segs) for step, segs in zip(traj.steps, expected)]
    if document is None:
        return fallback, "no document on disk for this trajectory"
    body = [s for s in document.segments if s.kind != "header"]
    views: list[StepView] = []
    cursor = 0
    for step, want in zip(traj.steps, expected):
        got = body[cursor:cursor + len(want)]
        if [(s.text, s.kind) for s in got] != [(s.text, s.kind) for s in want]:
            where = f"{step.agent} {step.kind} {step.path or ''}".strip()
            return fallback, f"document on disk differs from the trajectory at step {len(views) + 1} ({where})"
        views.append(StepView(step, got))
        cursor += len(want)
    if cursor != len(body):
        return fallback, f"document on disk has {len(body) - cursor} segments the trajectory does not explain"
    return views, None


def load_repo(output_dir: str | Path, split: str, traj_path: Path) -> RepoView:
    """One repository of one split: trajectory, aligned segments and sizes."""
    base = split_dir(output_dir, split)
    traj_data = read_first_record(traj_path)
    if traj_data is None:
        raise ValueError(f"{traj_path}: empty trajectory file")
    traj = Trajectory.from_dict(traj_data)
    doc_data = read_first_record(_beside(traj_path, base, DOCUMENTS, traj.repo))
    document = Document.from_dict(doc_data) if doc_data else None
    steps, mismatch = align_steps(traj, document)
    segments = document.segments if document and not mismatch else [s for v in steps for s in v.segments]
    kind_chars: dict[str, list[int]] = {}
    for seg in segments:
        kind_chars.setdefault(seg.kind, [0, 0])[0 if seg.train else 1] += len(seg.text)
    raw = read_first_record(_beside(traj_path, base, RAW_BASELINE, traj.repo))
    page = artifact_path(split, "", traj.repo, ".html").as_posix()
    return RepoView(
        split=split, name=traj_path.stem, page=page, trajectory=traj, steps=steps,
        document_chars=sum(len(s.text) for s in segments),
        trained_chars=sum(len(s.text) for s in segments if s.train),
        raw_chars=len(Document.from_dict(raw).text) if raw else None,
        mismatch=mismatch, kind_chars=dict(sorted(kind_chars.items())))


def _beside(traj_path: Path, base: Path, folder: str, repo: str) -> Path:
    """The repository's artifact of `folder`: at the layout's path, or flat beside a flat trajectory (older runs)."""
    path = artifact_path(base, folder, repo)
    flat = base / folder / traj_path.name
    return flat if traj_path.parent == base / TRAJECTORIES and not path.is_file() else path


def trajectory_files(output_dir: str | Path, split: str) -> list[Path]:
    """The trajectory files of a split, sorted by name (a missing split has none)."""
    return artifact_files(split_dir(output_dir, split) / TRAJECTORIES)
