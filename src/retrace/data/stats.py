"""stats.json, computed from the artifacts on disk rather than from one run's memory.

A run that was killed and resumed and a run that went straight through leave the same artifacts, so
they must report the same statistics: the per-repository figures are read back from the trajectory
and document files, and only ingest counts (recomputed by every run, deterministically) come from
memory. What depends on the run itself (tokens generated, repositories resumed) goes to the log.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from retrace.data.document import Document
from retrace.data.layout import (
    CONTAMINATED,
    DOCUMENTS,
    RAW_BASELINE,
    TRAJECTORIES,
    artifact_path,
    read_first_record,
    split_dir,
)


def split_artifact_stats(output_dir: str | Path, split: str, repos: list[str]) -> dict[str, Any]:
    """Sizes and counts over the artifacts of `repos` (those this run is responsible for)."""
    base = split_dir(output_dir, split)
    totals: Counter[str] = Counter()
    text_sources: Counter[str] = Counter()
    for repo in repos:
        traj = read_first_record(artifact_path(base, TRAJECTORIES, repo))
        doc = read_first_record(artifact_path(base, DOCUMENTS, repo))
        if traj is None or doc is None:
            dropped = artifact_path(base / CONTAMINATED, DOCUMENTS, repo).is_file()
            totals["repos_dropped_contaminated" if dropped else "repos_missing"] += 1
            continue
        totals["repos_written"] += 1
        totals["files_written"] += len(traj["order"])
        totals["cycles"] += len(traj["meta"].get("cycles", []))
        totals["parse_failures"] += len(traj["meta"].get("parse_failures", []))
        text_sources.update(traj["meta"].get("text_sources", {}))
        document = Document.from_dict(doc)
        totals["document_chars"] += len(document.text)
        totals["trained_chars"] += sum(len(s.text) for s in document.segments if s.train)
        raw = read_first_record(artifact_path(base, RAW_BASELINE, repo))
        if raw is not None:
            totals["raw_chars"] += len(Document.from_dict(raw).text)
    return {**dict(sorted(totals.items())), "text_sources": dict(sorted(text_sources.items()))}
