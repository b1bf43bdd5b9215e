"""Write the synthesis artifacts: one trajectory file and one document file per repository.

Layout under an output directory (docs/formats.md):
  trajectories/<repo>.jsonl      the trajectory (one JSON object)
  documents/<repo>.jsonl         the flattened training document, observations not trained
  baselines/raw_repos/<repo>.jsonl  the Raw-Repos baseline from the same files and order
  baselines/no_search/<repo>.jsonl  the trajectory document before reasoning search (when refine ran)
Held-out repositories get the same tree under `heldout/`. Every file is written atomically, so a
killed run leaves whole files only and a re-run can skip repositories already written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from retrace.atomic import write_jsonl
from retrace.data.document import raw_repository_document, trajectory_to_document
from retrace.data.trajectory import Trajectory

TRAJECTORIES = "trajectories"
DOCUMENTS = "documents"
RAW_BASELINE = "baselines/raw_repos"
NO_SEARCH_BASELINE = "baselines/no_search"
HELDOUT = "heldout"


@dataclass
class ExportArguments:
    """Where synthesis writes, and what it writes besides the trajectory documents."""

    output_dir: str = field(default="runs/synth", metadata={"help": "Directory for all synthesis artifacts."})
    raw_baseline: bool = field(default=True, metadata={
        "help": "Also write the Raw-Repos baseline (files concatenated in development order)."})
    overwrite: bool = field(default=False, metadata={
        "help": "Redo repositories whose trajectory already exists (default: skip them, i.e. resume)."})
    dataset_card_tokenizer: str | None = field(default=None, metadata={
        "help": "Tokenizer (path or hub id) for token counts per segment kind in the dataset card; none: chars only."})
    viewer: bool = field(default=True, metadata={
        "help": "Also write the static HTML trajectory viewer under <output_dir>/viewer/."})


def artifact_name(repo: str) -> str:
    """A file name for a repository: safe characters only, stable."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", repo).strip("._") or "repo"


def split_dir(output_dir: str | Path, split: str) -> Path:
    return Path(output_dir) / HELDOUT if split == HELDOUT else Path(output_dir)


def is_done(output_dir: str | Path, split: str, repo: str) -> bool:
    """True when this repository's last artifact (its document) exists: earlier ones were written first."""
    return (split_dir(output_dir, split) / DOCUMENTS / f"{artifact_name(repo)}.jsonl").is_file()


def export_repository(output_dir: str | Path, split: str, traj: Trajectory, files: dict[str, str],
                      raw_baseline: bool = True, no_search: Trajectory | None = None) -> dict[str, int]:
    """Write trajectory, document and baselines for one repository; return token-free sizes.

    `no_search` is the same trajectory before reasoning search (the paper's ablation): when given, its
    document goes to `baselines/no_search/`. The document is written last: its presence marks the
    repository done.
    """
    base = split_dir(output_dir, split)
    name = artifact_name(traj.repo)
    write_jsonl(base / TRAJECTORIES / f"{name}.jsonl", [traj.to_dict()])
    sizes = {}
    if no_search is not None:
        write_jsonl(base / NO_SEARCH_BASELINE / f"{name}.jsonl", [trajectory_to_document(no_search).to_dict()])
    if raw_baseline:
        raw = raw_repository_document(traj, files)
        write_jsonl(base / RAW_BASELINE / f"{name}.jsonl", [raw.to_dict()])
        sizes["raw_chars"] = len(raw.text)
    doc = trajectory_to_document(traj)
    write_jsonl(base / DOCUMENTS / f"{name}.jsonl", [doc.to_dict()])
    sizes["document_chars"] = len(doc.text)
    sizes["trained_chars"] = sum(len(s.text) for s in doc.segments if s.train)
    return sizes


def finish_export(output_dir: str | Path, tokenizer: str | None = None, viewer: bool = False) -> Path:
    """After a run's repositories are written: the dataset card (and, if asked, the HTML viewer).

    Both are computed from the artifacts on disk, so calling this again after more shards finish
    (or after a resumed run) brings them up to date. Returns the card's path.
    """
    from retrace.data.card import write_dataset_card  # card reads this module's layout: import late
    card = write_dataset_card(output_dir, tokenizer)
    if viewer:
        from retrace.data.viewer import write_viewer
        write_viewer(output_dir)
    return card
