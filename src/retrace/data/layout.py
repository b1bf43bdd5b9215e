"""Where a repository's artifacts live: the one module that maps (folder, repository) to a path.

Every per-repository file sits under a hashed subfolder: `<folder>/<xx>/<name>.jsonl`, `xx` being the
first two hex digits of the SHA-256 of the repository name. 256 subfolders keep each under 10k entries
(the Hugging Face Hub's limit) up to about 2.5M repositories, and the paper's 300k put ~1.2k in each.

The file name is the repository's safe name (characters outside `[A-Za-z0-9._-]` become `_`, cut to
80 characters) plus `-` and 12 hex digits of the same hash, always, not only when the safe name differs
from the repository name: `Foo` and `foo` are both verbatim safe names, yet one file on a case-insensitive
filesystem (macOS, Windows) or when a Hub repository is cloned there. With the hash always there, two
repositories share a file only if their 48-bit hashes and safe names both coincide, and the name alone
says where it lives (the suffix starts with the subfolder's digits). The safe name keeps it readable and
sortable: a folder listed by file name is in near repository-name order.

Readers go through `artifact_files`, which also finds flat `<folder>/*.jsonl` files, so outputs written
before this layout (and hand-made folders of documents) are still read.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

TRAJECTORIES = "trajectories"
DOCUMENTS = "documents"
RAW_BASELINE = "baselines/raw_repos"
NO_SEARCH_BASELINE = "baselines/no_search"
BUDGET_RECORDS = "budget"
HELDOUT = "heldout"
CONTAMINATED = "contaminated"
TRAINING_FOLDERS = (DOCUMENTS, RAW_BASELINE, NO_SEARCH_BASELINE)  # what decontamination scans

SAFE_NAME_CHARS = 80
HASH_CHARS = 12
_SUBFOLDER = re.compile(r"[0-9a-f]{2}")

# Dataset configs: name -> (artifact folder relative to the output directory, split name). Heldout
# repositories are their own configs (split `test`), so `load_dataset(out, "documents")` is training data only.
CONFIGS = {
    "documents": (DOCUMENTS, "train"),
    "raw_repos": (RAW_BASELINE, "train"),
    "no_search": (NO_SEARCH_BASELINE, "train"),
    "trajectories": (TRAJECTORIES, "train"),
    "heldout": (f"{HELDOUT}/{DOCUMENTS}", "test"),
    "heldout_raw_repos": (f"{HELDOUT}/{RAW_BASELINE}", "test"),
    "heldout_no_search": (f"{HELDOUT}/{NO_SEARCH_BASELINE}", "test"),
    "heldout_trajectories": (f"{HELDOUT}/{TRAJECTORIES}", "test"),
}
TRAJECTORY_CONFIGS = ("trajectories", "heldout_trajectories")


def repository_hash(repo: str) -> str:
    """SHA-256 of the repository name (UTF-8), hex: stable across runs, machines and Python versions."""
    return hashlib.sha256(repo.encode("utf-8")).hexdigest()


def safe_name(repo: str) -> str:
    """The readable part of a file name: safe characters only, at most SAFE_NAME_CHARS."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", repo).strip("._")[:SAFE_NAME_CHARS].rstrip("._") or "repo"


def artifact_name(repo: str) -> str:
    """The file stem of a repository's artifacts: `<safe name>-<12 hex digits>` (see the module docstring)."""
    return f"{safe_name(repo)}-{repository_hash(repo)[:HASH_CHARS]}"


def subfolder(repo: str) -> str:
    return repository_hash(repo)[:2]


def split_dir(output_dir: str | Path, split: str) -> Path:
    """The root of a split's artifacts: the output directory, or its `heldout/`."""
    return Path(output_dir) / HELDOUT if split == HELDOUT else Path(output_dir)


def artifact_path(base: str | Path, folder: str, repo: str, suffix: str = ".jsonl") -> Path:
    """`<base>/<folder>/<xx>/<name><suffix>`: where this repository's artifact of `folder` lives."""
    return Path(base) / folder / subfolder(repo) / f"{artifact_name(repo)}{suffix}"


def artifact_files(directory: str | Path, suffixes: str | Iterable[str] = ".jsonl") -> list[Path]:
    """The per-repository files of one artifact folder, sorted by file name (near repository-name order).

    Finds the hashed layout (`<xx>/<name>`) and flat files directly in `directory`; a missing directory
    has none. Hidden files (a writer's temporary files) are not artifacts.
    """
    wanted = (suffixes,) if isinstance(suffixes, str) else tuple(suffixes)
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found: list[Path] = []
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir() and _SUBFOLDER.fullmatch(entry.name):
                with os.scandir(entry.path) as inner:
                    found += [Path(e.path) for e in inner
                              if e.is_file() and not e.name.startswith(".") and e.name.endswith(wanted)]
            elif entry.is_file() and entry.name.endswith(wanted):
                found.append(Path(entry.path))
    return sorted(found, key=lambda p: (p.name, str(p)))


def iter_jsonl(paths: Iterable[Path]) -> Iterator[tuple[Path, int, Any]]:
    """`(file, line number, record)` for every non-blank line of the files, one line in memory at a time."""
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    yield path, number, json.loads(line)


def read_first_record(path: Path) -> dict[str, Any] | None:
    """The one record of a per-repository file, or None when the file is missing or empty."""
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as handle:
        line = handle.readline()
    return json.loads(line) if line.strip() else None


def live_or_quarantined(base: Path, folder: str, repo: str) -> Path | None:
    """The repository's artifact of `folder` under `base`, or its copy under `contaminated/`; None if neither."""
    for root in (base, base / CONTAMINATED):
        path = artifact_path(root, folder, repo)
        if path.is_file():
            return path
    return None
