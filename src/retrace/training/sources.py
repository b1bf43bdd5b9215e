"""Training sources: exported documents, local parquet/JSONL tables, and hub datasets, as one row schema.

A source yields rows of `texts` (list of strings) and `train` (one flag per string), which is what an
exported document is: segments flagged trained or not. A plain text column (general text, raw code) is
one trained segment per row. A table of pre-tokenised ids (`input_ids_field`, e.g. ProLong's data
converted from MDS) skips tokenisation: every id is trained, BOS/EOS are added like for text.

Which reader is used:
- `path` with no `text_field` / `input_ids_field`: exported documents (`*.jsonl` written by
  synthesize.py, flat or under the export's hashed subfolders), read through `retrace.data` so the artifact format is checked row by row; a
  `*.parquet` table with a `segments` column (the finish step's `data/documents/`) is read the same way
  through `datasets`.
- `path` with a field: `datasets.load_dataset("json" | "parquet", data_files=...)`.
- `dataset`: `datasets.load_dataset(dataset, subset, split=..., revision=...)`, only on a machine that is
  online (or has the dataset in its hub cache); tests never use it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from datasets import Dataset, load_dataset

from retrace.data import Document
from retrace.data.layout import artifact_files

logger = logging.getLogger(__name__)

TABLE_SUFFIXES = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}


@dataclass
class SourceSpec:
    """One entry of a recipe's `mixture` (see docs/training.md for the syntax)."""

    name: str
    path: str | list[str] | None = None  # local file(s) or directory(ies)
    dataset: str | None = None         # hub id for datasets.load_dataset
    subset: str | None = None          # the hub dataset's configuration name
    data_dir: str | None = None
    data_files: list[str] | str | None = None
    split: str = "train"
    revision: str | None = None
    text_field: str | None = None      # plain-text column: one trained segment per row
    input_ids_field: str | None = None  # pre-tokenised column (the training tokenizer's ids, no BOS/EOS)
    train: bool = True                 # for text/ids sources: put them in the loss or only in the context
    weight: float | None = None        # share of the mixture's tokens
    tokens: int | None = None          # absolute token budget
    max_documents: int | None = None   # use at most this many rows, after the seeded shuffle (smoke runs)

    @property
    def is_documents(self) -> bool:
        return self.text_field is None and self.input_ids_field is None

    def describe(self) -> str:
        where = self.path or f"hub:{self.dataset}" + (f"/{self.subset}" if self.subset else "")
        return f"{self.name} ({where})"


def parse_mixture(raw: str | dict | None) -> list[SourceSpec]:
    """The `mixture` recipe value (a mapping name -> spec, or its JSON) as specs; errors name the key."""
    if raw in (None, "", {}):
        return []
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"key 'mixture' is not a mapping of source names to specs: {exc}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"key 'mixture' must map source names to specs, got {type(raw).__name__}")
    known = {f.name for f in fields(SourceSpec)} - {"name"}
    specs = []
    for name, entry in raw.items():
        if not isinstance(entry, dict):
            raise ValueError(f"mixture source '{name}' must be a mapping with path or dataset, got {entry!r}")
        unknown = set(entry) - known
        if unknown:
            raise ValueError(f"mixture source '{name}': unknown key(s) {sorted(unknown)}; known: {sorted(known)}")
        spec = SourceSpec(name=str(name), **entry)
        if spec.path is not None and spec.dataset is not None:
            raise ValueError(f"mixture source '{name}' gives both 'path' (local) and 'dataset' (hub id); give one")
        if spec.text_field and spec.input_ids_field:
            raise ValueError(f"mixture source '{name}': give text_field or input_ids_field, not both")
        if spec.weight is not None and spec.weight <= 0 or spec.tokens is not None and spec.tokens <= 0:
            raise ValueError(f"mixture source '{name}': weight and tokens must be positive")
        if spec.weight is not None and spec.tokens is not None:
            raise ValueError(f"mixture source '{name}': give weight or tokens, not both")
        specs.append(spec)
    pathless = [s.name for s in specs if s.path is None and s.dataset is None]
    if len(pathless) > 1:
        raise ValueError(f"mixture sources {pathless} have no 'path' or 'dataset'; only one source may stand for "
                         "the 'documents' key")
    budgeted = [s.weight is not None or s.tokens is not None for s in specs]
    if len(specs) > 1 and not all(budgeted):
        missing = [s.name for s, b in zip(specs, budgeted) if not b]
        raise ValueError(f"mixture sources {missing} need a weight or a tokens budget")
    if any(s.weight is not None for s in specs) and any(s.tokens is not None for s in specs):
        raise ValueError("a mixture is sized either by weight (shares) or by tokens (budgets), not both")
    return specs


def documents_source(paths: list[str], max_documents: int | None) -> SourceSpec:
    """The `documents` key as one unbudgeted source (the whole export, as before mixtures existed)."""
    return SourceSpec(name="documents", path=list(paths), max_documents=max_documents)


def _paths(spec: SourceSpec) -> list[Path]:
    items = spec.path if isinstance(spec.path, list) else [spec.path or ""]
    return [Path(os.path.expanduser(str(item))) for item in items]


def source_files(spec: SourceSpec) -> list[Path]:
    """Every local file a source reads, sorted within each directory; [] for hub sources."""
    if spec.dataset is not None:
        return []
    suffixes = {".jsonl"} if spec.is_documents else set(TABLE_SUFFIXES)
    if spec.is_documents:
        suffixes.add(".parquet")
    files: list[Path] = []
    for path in _paths(spec):
        if path.is_dir():  # flat, or an export's hashed subfolders (retrace.data.layout)
            files.extend(artifact_files(path, sorted(suffixes)))
        else:
            files.append(path)
    return files


def check_source(spec: SourceSpec) -> str | None:
    """Why a local source cannot be read (missing path, no files), or None; hub sources are checked on load."""
    if spec.dataset is not None:
        return None
    for path in _paths(spec):
        if not path.exists():
            return f"path does not exist: {path}"
    files = source_files(spec)
    if not files:
        kinds = "*.jsonl documents" if spec.is_documents else "*.jsonl/*.json/*.parquet tables"
        return f"no {kinds} in {spec.path}"
    bad = [f for f in files if f.suffix not in TABLE_SUFFIXES]
    if bad:
        return f"cannot read {bad[0]}: expected .jsonl, .json or .parquet"
    return None


def source_fingerprint(spec: SourceSpec, loaded: Dataset | None = None) -> str:
    """A digest of the spec and its data: local files by (path, size, mtime), hub data by fingerprint."""
    digest = hashlib.sha256(json.dumps(asdict(spec), sort_keys=True).encode())
    for file in source_files(spec):
        stat = file.stat()
        digest.update(f"{file.resolve()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    if loaded is not None:
        digest.update(str(loaded._fingerprint).encode())
    return digest.hexdigest()


def load_hub_source(spec: SourceSpec) -> Dataset:
    """The hub dataset a source names (needs the network or a warm hub cache)."""
    logger.info("loading hub dataset %s", spec.describe())
    return load_dataset(spec.dataset, spec.subset, split=spec.split, revision=spec.revision,
                        data_dir=spec.data_dir, data_files=spec.data_files)


def load_source_rows(spec: SourceSpec, scratch: Path, hub_dataset: Dataset | None = None) -> Dataset:
    """The source as a Dataset with `texts`/`train` columns (or `ids` when pre-tokenised)."""
    if spec.dataset is not None:
        table = hub_dataset if hub_dataset is not None else load_hub_source(spec)
    else:
        files = source_files(spec)
        if spec.is_documents and all(f.suffix == ".jsonl" for f in files):
            return Dataset.from_generator(_exported_documents, cache_dir=str(scratch / spec.name),
                                          gen_kwargs={"files": [str(f) for f in files]})
        builder = TABLE_SUFFIXES[files[0].suffix]
        if any(TABLE_SUFFIXES[f.suffix] != builder for f in files):
            raise ValueError(f"mixture source '{spec.name}' mixes JSON and parquet files; use one format")
        table = load_dataset(builder, data_files=[str(f) for f in files], split="train",
                             cache_dir=str(scratch / spec.name))
    return _normalise(table, spec, scratch)


def _exported_documents(files: list[str]):
    for file in files:
        with open(file, encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    doc = Document.from_dict(json.loads(line))
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise ValueError(f"{file}:{line_no} is not an exported document: {exc}") from None
                yield {"texts": [s.text for s in doc.segments], "train": [s.train for s in doc.segments]}


def _normalise(table: Dataset, spec: SourceSpec, scratch: Path) -> Dataset:
    # Written under the run's scratch directory, not the hub cache: the copy is needed only until packing.
    columns = table.column_names
    cache = {"cache_file_name": str(scratch / f"{spec.name}-rows.arrow")}
    if spec.input_ids_field:
        _require(spec, spec.input_ids_field, columns)
        return table.select_columns([spec.input_ids_field]).rename_column(spec.input_ids_field, "ids")
    if spec.text_field:
        _require(spec, spec.text_field, columns)
        train = spec.train
        return table.map(lambda batch: {"texts": [[t] for t in batch[spec.text_field]],
                                        "train": [[train] for _ in batch[spec.text_field]]},
                         batched=True, remove_columns=columns, desc=f"reading {spec.name}", **cache)
    _require(spec, "segments", columns)
    return table.map(lambda batch: {"texts": [[s["text"] for s in segs] for segs in batch["segments"]],
                                    "train": [[bool(s["train"]) for s in segs] for segs in batch["segments"]]},
                     batched=True, remove_columns=columns, desc=f"reading {spec.name}", **cache)


def _require(spec: SourceSpec, column: str, columns: list[str]) -> None:
    if column not in columns:
        hint = "" if column != "segments" else " (a plain-text table needs text_field)"
        raise ValueError(f"mixture source {spec.describe()} has no column '{column}'{hint}; columns: {columns}")
