"""Write the synthesis artifacts: one trajectory file and one document file per repository.

Layout under an output directory (docs/formats.md; `<xx>/<name>` is retrace.data.layout's hashed path):
  trajectories/<xx>/<name>.jsonl         the trajectory (one JSON object)
  documents/<xx>/<name>.jsonl            the flattened training document, observations not trained
  baselines/raw_repos/<xx>/<name>.jsonl  the Raw-Repos baseline from the same files and order
  baselines/no_search/<xx>/<name>.jsonl  the trajectory document before reasoning search (when refine ran)
  data/<config>/<split>-00000-of-0000N.parquet  the finish step's Parquet shards (parquet_shard_mb > 0)
Held-out repositories get the same tree under `heldout/`. Every file is written atomically, so a
killed run leaves whole files only and a re-run can skip repositories already written.

Decontamination (`decontaminate: flag | drop`, docs/evaluation.md) runs after a split is exported:
`flag` marks every training document's meta, `drop` moves a contaminated repository's artifacts to
`contaminated/` (no dataset config reads it; a resumed run counts it as done).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retrace.atomic import write_json, write_jsonl
from retrace.data.document import raw_repository_document, trajectory_to_document
from retrace.data.layout import (  # noqa: F401  (re-exported: the folder names callers know from here)
    CONTAMINATED,
    DOCUMENTS,
    HELDOUT,
    NO_SEARCH_BASELINE,
    RAW_BASELINE,
    TRAINING_FOLDERS,
    TRAJECTORIES,
    artifact_name,
    artifact_path,
    live_or_quarantined,
    split_dir,
)
from retrace.data.trajectory import Trajectory

DECONTAMINATION_MODES = ("off", "flag", "drop")


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
    viewer_max_repositories: int = field(default=1000, metadata={
        "help": "The viewer shows at most this many repositories, a sample stable across runs (by a hash of "
                "each name); 0: all of them."})
    parquet_shard_mb: float = field(default=0.0, metadata={
        "help": "Pack each artifact into Parquet shards of about this many MB of JSON under <output_dir>/data/ "
                "(the dataset card then points at them; 500 suits the Hub); 0: don't pack."})
    push_to_hub: str | None = field(default=None, metadata={
        "help": "After packing, upload the Parquet shards and the card to this Hub dataset (user/name); "
                "needs parquet_shard_mb > 0 and a Hub token."})
    hub_private: bool = field(default=True, metadata={
        "help": "Create the push_to_hub dataset private (an existing repository keeps its visibility)."})
    decontaminate: str = field(default="off", metadata={
        "help": "n-gram overlap with the evaluation sets: off, flag (mark documents' meta) or drop (move "
                "contaminated repositories to contaminated/)", "choices": list(DECONTAMINATION_MODES)})
    decontamination_ngram: int = field(default=13, metadata={"help": "n-gram size in normalised word tokens"})
    decontamination_min_tokens: int = field(default=8, metadata={
        "help": "evaluation items shorter than the n-gram but at least this long are matched whole"})
    decontamination_sets: list[str] = field(default_factory=list, metadata={
        "help": "evaluation sets to check (retrace.evaluation.decontamination.EVALUATION_SETS; empty: all)"})

    def __post_init__(self) -> None:
        if self.viewer_max_repositories < 0:
            raise ValueError(f"key 'viewer_max_repositories' must be 0 (all) or more, got {self.viewer_max_repositories}")
        if self.parquet_shard_mb < 0:
            raise ValueError(f"key 'parquet_shard_mb' must be 0 (don't pack) or more, got {self.parquet_shard_mb}")
        if self.push_to_hub and not self.parquet_shard_mb:
            raise ValueError("key 'push_to_hub' uploads the packed dataset: set parquet_shard_mb (e.g. 500) too")
        if self.decontaminate not in DECONTAMINATION_MODES:
            raise ValueError(f"key 'decontaminate': expected one of {list(DECONTAMINATION_MODES)}, "
                             f"got {self.decontaminate!r}")
        if self.decontamination_ngram < 1:
            raise ValueError(f"key 'decontamination_ngram' must be at least 1, got {self.decontamination_ngram}")
        if not 1 <= self.decontamination_min_tokens <= self.decontamination_ngram:
            raise ValueError("key 'decontamination_min_tokens' must be between 1 and decontamination_ngram, "
                             f"got {self.decontamination_min_tokens}")


def is_done(output_dir: str | Path, split: str, repo: str) -> bool:
    """True when this repository's last artifact (its document) exists: earlier ones were written first.

    A repository that decontamination dropped (its document under `contaminated/`) is done too.
    """
    return live_or_quarantined(split_dir(output_dir, split), DOCUMENTS, repo) is not None


def export_repository(output_dir: str | Path, split: str, traj: Trajectory, files: dict[str, str],
                      raw_baseline: bool = True, no_search: Trajectory | None = None) -> dict[str, int]:
    """Write trajectory, document and baselines for one repository; return token-free sizes.

    `no_search` is the same trajectory before reasoning search (the paper's ablation): when given, its
    document goes to `baselines/no_search/`. The document is written last: its presence marks the
    repository done.
    """
    base = split_dir(output_dir, split)
    write_jsonl(artifact_path(base, TRAJECTORIES, traj.repo), [traj.to_dict()])
    sizes = {}
    if no_search is not None:
        write_jsonl(artifact_path(base, NO_SEARCH_BASELINE, traj.repo), [trajectory_to_document(no_search).to_dict()])
    if raw_baseline:
        raw = raw_repository_document(traj, files)
        write_jsonl(artifact_path(base, RAW_BASELINE, traj.repo), [raw.to_dict()])
        sizes["raw_chars"] = len(raw.text)
    doc = trajectory_to_document(traj)
    write_jsonl(artifact_path(base, DOCUMENTS, traj.repo), [doc.to_dict()])
    sizes["document_chars"] = len(doc.text)
    sizes["trained_chars"] = sum(len(s.text) for s in doc.segments if s.train)
    return sizes


def finish_export(output_dir: str | Path, tokenizer: str | None = None, viewer: bool = False, *,
                  viewer_max_repositories: int = 1000, parquet_shard_mb: float = 0.0,
                  push_to_hub: str | None = None, hub_private: bool = True) -> Path:
    """Once every repository is written: Parquet shards (if asked), the dataset card, the viewer, the upload.

    All are computed from the artifacts on disk, so calling this again after more shards finish (or
    after a resumed run) brings them up to date; run it once per output directory, not once per
    worker. `parquet_shard_mb` 0 leaves the per-repository JSONL files as the card's data; `push_to_hub`
    (a Hub dataset id) needs packing. Returns the card's path.
    """
    from retrace.data.card import write_dataset_card  # card reads this module's layout: import late

    packed = None
    if parquet_shard_mb:
        from retrace.data.pack import pack_artifacts
        packed = pack_artifacts(output_dir, parquet_shard_mb)
    elif push_to_hub:
        raise ValueError("push_to_hub uploads the packed dataset: set parquet_shard_mb (e.g. 500) too")
    card = write_dataset_card(output_dir, tokenizer, packed=packed)
    if viewer:
        from retrace.data.viewer import write_viewer
        write_viewer(output_dir, max_repositories=viewer_max_repositories)
    if push_to_hub:
        from retrace.data.hub import push_dataset_to_hub
        push_dataset_to_hub(output_dir, push_to_hub, private=hub_private)
    return card


def _move(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)


def _contamination_fields(matches: Mapping[str, Mapping[str, int]]) -> dict[str, Any]:
    """The meta fields `flag` writes: the same three scalar types in every document, so `datasets` loads them."""
    return {"contaminated": bool(matches),
            "contamination_ngrams": sum(sum(per_item.values()) for per_item in matches.values()),
            "contamination_sets": ",".join(sorted(matches))}


def decontaminate_export(output_dir: str | Path, repos: Sequence[str], args: ExportArguments,
                         evaluation_texts: Mapping[str, Sequence[str] | Mapping[str, str]],
                         shard: tuple[int, int] = (0, 1)) -> dict[str, Any]:
    """Check this run's training repositories against the evaluation sets, flag or drop them; the stats.

    Computed from the artifacts on disk (live and already dropped ones), so a resumed run reports what
    a straight one does, and a changed setting re-decides every repository (dropped ones are moved
    back when they no longer match, or when the mode is `flag`). A repository's verdict is the union
    over its training documents (trajectory document, Raw-Repos, no-search baseline): `drop` removes it
    from every training config at once, so the arms still compare on the same repositories. `flag` adds
    `contaminated`, `contamination_ngrams` and `contamination_sets` to every scanned document's meta.
    The full overlap report goes to `decontamination.json` (`decontamination-<i>-of-<n>.json` when sharded).
    """
    from tqdm.auto import tqdm

    from retrace.data.decontamination import NgramIndex, OverlapReport

    if args.decontaminate not in ("flag", "drop"):
        raise ValueError(f"key 'decontaminate': decontaminate_export needs flag or drop, got {args.decontaminate!r}")
    index = NgramIndex(evaluation_texts, args.decontamination_ngram, args.decontamination_min_tokens)
    report = OverlapReport(index)
    base = split_dir(output_dir, "train")
    quarantine = base / CONTAMINATED
    repositories: dict[str, dict[str, Any]] = {}
    by_set: Counter[str] = Counter()
    scanned = flagged = 0
    for repo in tqdm(repos, desc="decontamination", unit="repo"):
        found = {folder: path for folder in (*TRAINING_FOLDERS, TRAJECTORIES)
                 if (path := live_or_quarantined(base, folder, repo)) is not None}
        documents = {folder: path for folder, path in found.items() if folder != TRAJECTORIES}
        if not documents:
            continue
        scanned += 1
        windows: set[tuple[int, int]] = set()  # distinct evaluation n-grams over the repository's documents
        for folder, path in documents.items():
            with open(path, encoding="utf-8") as handle:
                record = json.loads(handle.readline())
            overlap = index.match(f"{folder}/{repo}", "".join(s["text"] for s in record["segments"]))
            report.add(overlap)
            windows.update(overlap.windows)
            if args.decontaminate == "flag":
                fields = _contamination_fields(overlap.matches)
                flagged += fields["contaminated"]
                if any(record.get("meta", {}).get(k) != v for k, v in fields.items()):
                    record.setdefault("meta", {}).update(fields)
                    write_jsonl(path, [record])
        union: dict[str, Counter[str]] = {}
        for item_index, _ in windows:
            item = index.items[item_index]
            union.setdefault(item.set_name, Counter())[item.item_id] += 1
        drop = args.decontaminate == "drop" and bool(union)
        for folder, path in found.items():  # move to where the verdict says the repository belongs
            target = artifact_path(quarantine if drop else base, folder, repo)
            if path != target:
                _move(path, target)
        if union:
            by_set.update(union.keys())
            reason = "contaminated: " + ", ".join(f"{s} ({sum(c.values())} n-grams)" for s, c in sorted(union.items()))
            repositories[repo] = {"reason": reason, "dropped": drop,
                                  "matches": {s: dict(sorted(c.items())) for s, c in sorted(union.items())}}
    overlap_summary = report.to_dict()
    index_of, count = shard
    report_path = Path(output_dir) / ("decontamination.json" if count == 1 else
                                      f"decontamination-{index_of:05d}-of-{count:05d}.json")
    write_json(report_path, {"mode": args.decontaminate, "overlap": overlap_summary, "repositories": repositories})
    stats: dict[str, Any] = {
        "mode": args.decontaminate, "ngram": index.n, "min_tokens": index.min_tokens, "sets": index.set_names,
        "repos_scanned": scanned, "documents_scanned": overlap_summary["documents_scanned"],
        "documents_contaminated": overlap_summary["documents_contaminated"],
        "repos_contaminated": len(repositories), "contaminated_repos_by_set": dict(sorted(by_set.items())),
        "report": report_path.name}
    if args.decontaminate == "flag":
        stats["documents_flagged"] = flagged
    else:
        stats["repos_dropped"] = sum(r["dropped"] for r in repositories.values())
        stats["dropped"] = {repo: r["reason"] for repo, r in repositories.items() if r["dropped"]}
    return stats
