"""Tables of repositories as sources: local parquet/JSON(L) files, read piece by piece (or a hub dataset).

Two layouts are understood, so both repository dumps and The Stack-style file dumps work: one row per
repository with a list column of {path, content} files, or one row per file with repository, path
and content columns. Files stay in memory; a path that could name something outside the repository
(absolute, '..', backslashes) is refused and counted, so nothing is ever written or read from the
file system on a table's word.

A table is read in pieces so no reader ever holds more than one piece (plus a repository that runs
across pieces): a parquet row group, a block of about `JSON_BLOCK_BYTES` of JSON lines, or
`HUB_PIECE_ROWS` rows of a hub dataset. A spec names one file, a directory of table files (read in
sorted path order) or a glob. In the one-row-per-file layout, rows are grouped per repository within a
piece (first-appearance order); a repository may run on from the end of one piece into the start of
the next (files sorted by repository: the usual dump). Rows of a repository that come back after
another repository started across a piece boundary break that assumption: they are refused and
counted as `table_rows_apart` (the repository keeps the rows read first).
"""

from __future__ import annotations

import collections
import functools
import glob
import gzip
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from retrace.repo.localfs import FileEntry, is_pruned_path, safe_relpath

TABLE_FORMATS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".jsonl.gz": "json", ".json.gz": "json"}
JSON_BLOCK_BYTES = 32 * 1024 * 1024
"""Uncompressed JSON-lines files are cut into blocks of about this size, at line boundaries."""
HUB_PIECE_ROWS = 10_000


@dataclass(frozen=True)
class TableColumns:
    """Which columns (and struct fields) hold what; the recipe's `table_*` keys."""

    repo: str = "repo_name"
    files: str = "files"
    path: str = "path"
    content: str = "content"
    license: str = "license"


@dataclass(frozen=True)
class TablePiece:
    """The unit a table is read in: `kind` parquet (row groups [start, stop) of a file), json (bytes
    [start, stop) of a file; stop -1: to the end) or hub (rows [start, stop) of a dataset split)."""

    kind: str
    location: str
    start: int
    stop: int

    def to_list(self) -> list:
        return [self.kind, self.location, self.start, self.stop]

    @classmethod
    def from_list(cls, value: list) -> TablePiece:
        kind, location, start, stop = value
        return cls(str(kind), str(location), int(start), int(stop))


@dataclass
class TableRepository:
    name: str
    license: str | None
    entries: list[FileEntry]
    skipped: collections.Counter = field(default_factory=collections.Counter)


@dataclass
class RepositoryRows:
    """The rows of one repository within one piece: its name (None: an unnamed row of the
    one-row-per-repository layout), the first row's licence value, (path, content) pairs, the first
    row's position in the piece and how many rows it spans."""

    name: str | None
    license: object
    pairs: list[tuple[object, object]]
    row: int
    num_rows: int = 1


@dataclass
class PieceRows:
    """A piece grouped per repository; `first_name`/`last_name` are the repositories of its first and
    last row (what decides whether a repository runs on into the next piece)."""

    per_file: bool
    repositories: list[RepositoryRows]
    num_rows: int
    first_name: str | None = None
    last_name: str | None = None


def table_format(location: str) -> str | None:
    lower = location.lower()
    for suffix, builder in sorted(TABLE_FORMATS.items(), key=lambda kv: -len(kv[0])):
        if lower.endswith(suffix):
            return builder
    return None


def table_files(location: str) -> list[str] | None:
    """The local table files a spec names, in reading order, or None when it names no local path (a hub
    dataset). A directory or glob that matches no table file is a ValueError."""
    expanded = os.path.expanduser(location)
    if os.path.isfile(expanded):
        return [expanded]
    if os.path.isdir(expanded):
        found = sorted(str(p) for p in Path(expanded).rglob("*") if p.is_file() and table_format(p.name)
                       and not is_pruned_path(str(p.relative_to(expanded))))
    elif glob.has_magic(expanded):
        found = sorted(p for p in glob.glob(expanded, recursive=True) if os.path.isfile(p) and table_format(p))
    else:
        return None
    if not found:
        raise ValueError(f"no parquet or JSON(L) files under {location!r}")
    return found


def _json_blocks(path: str) -> list[tuple[int, int]]:
    size = os.path.getsize(path)
    if path.lower().endswith(".gz") or size <= JSON_BLOCK_BYTES:
        return [(0, -1)]
    with open(path, "rb") as handle:
        if handle.read(4096).lstrip()[:1] == b"[":  # one JSON array: read whole
            return [(0, -1)]
        starts = [0]
        while starts[-1] + JSON_BLOCK_BYTES < size:
            handle.seek(starts[-1] + JSON_BLOCK_BYTES)
            handle.readline()
            if handle.tell() >= size:
                break
            starts.append(handle.tell())
    return list(zip(starts, [*starts[1:], -1]))


def table_pieces(location: str, split: str, cache_root: Path) -> list[TablePiece]:
    """The pieces of a table spec, in reading order; only metadata is read (parquet footers, a few
    bytes at JSON block boundaries), except for a hub dataset, which `datasets` loads (memory-mapped)."""
    files = table_files(location)
    if files is None:
        return [TablePiece("hub", location, start, min(start + HUB_PIECE_ROWS, total))
                for total in [len(_hub_dataset(location, split, cache_root))]
                for start in range(0, total, HUB_PIECE_ROWS)]
    pieces = []
    for path in files:
        if table_format(path) == "parquet":
            import pyarrow.parquet as pq

            row_groups = pq.ParquetFile(path).metadata.num_row_groups
            pieces.extend(TablePiece("parquet", path, i, i + 1) for i in range(row_groups))
        else:
            pieces.extend(TablePiece("json", path, start, stop) for start, stop in _json_blocks(path))
    return pieces


@functools.lru_cache(maxsize=2)
def _hub_dataset(location: str, split: str, cache_root: Path):
    """A hub dataset, loaded once per process (memory-mapped by `datasets`)."""
    import datasets  # heavy: imported only when a hub table is named

    return datasets.load_dataset(location, split=split, cache_dir=str(cache_root / "datasets"))


def _json_rows(piece: TablePiece) -> list[dict]:
    opener = gzip.open if piece.location.lower().endswith(".gz") else open
    with opener(piece.location, "rb") as handle:
        handle.seek(piece.start)
        data = handle.read() if piece.stop < 0 else handle.read(piece.stop - piece.start)
    if data.lstrip()[:1] == b"[":
        rows = json.loads(data)
    else:  # not splitlines(): U+2028 may stand unescaped inside a JSON string
        rows = [json.loads(line) for line in data.split(b"\n") if line.strip()]
    if not all(isinstance(row, dict) for row in rows):
        raise ValueError(f"{piece.location}: every JSON row must be an object")
    return rows


def read_piece_rows(piece: TablePiece, columns: TableColumns, split: str,
                    cache_root: Path) -> tuple[list[dict], set[str]]:
    """The rows of one piece (only the columns `columns` names) and the table's column names."""
    wanted = [columns.repo, columns.files, columns.path, columns.content, columns.license]
    if piece.kind == "parquet":
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(piece.location)
        names = set(parquet.schema_arrow.names)
        table = parquet.read_row_groups(range(piece.start, piece.stop),
                                        columns=[c for c in dict.fromkeys(wanted) if c in names])
        return table.to_pylist(), names
    if piece.kind == "json":
        rows = _json_rows(piece)
        return rows, set().union(*(row.keys() for row in rows))
    if piece.kind == "hub":
        dataset = _hub_dataset(piece.location, split, cache_root)
        names = set(dataset.column_names)
        subset = dataset.select_columns([c for c in dict.fromkeys(wanted) if c in names])
        return subset.select(range(piece.start, piece.stop)).to_list(), names
    raise ValueError(f"unknown table piece kind {piece.kind!r}")


def _license_value(row: dict, columns: TableColumns):
    value = row.get(columns.license)
    if isinstance(value, list):  # The Stack keeps a list of licence ids
        value = " OR ".join(str(v) for v in value) if value else None
    return value


def _files_of(value, columns: TableColumns) -> list[tuple[object, object]]:
    """(path, content) pairs from a list of structs or a struct of lists (both occur in `datasets`)."""
    if isinstance(value, dict):
        return list(zip(value.get(columns.path) or [], value.get(columns.content) or []))
    return [(f.get(columns.path), f.get(columns.content)) for f in value or [] if isinstance(f, dict)]


def group_piece(rows: list[dict], names: set[str], columns: TableColumns) -> PieceRows:
    """One piece's rows per repository: each row its own repository when the table has a files column,
    else rows grouped by the repository column in first-appearance order."""
    if columns.files in names:
        repositories = [RepositoryRows(str(row.get(columns.repo) or "") or None, _license_value(row, columns),
                                       _files_of(row.get(columns.files), columns), i) for i, row in enumerate(rows)]
        return PieceRows(False, repositories, len(rows))
    needed = {columns.repo, columns.path, columns.content}
    if rows and not needed <= names:
        raise ValueError(f"table has neither a '{columns.files}' column nor all of {sorted(needed)} "
                         f"(columns: {sorted(names)}); set the table_* keys")
    grouped: dict[str, RepositoryRows] = {}
    for i, row in enumerate(rows):
        name = str(row.get(columns.repo))
        group = grouped.get(name)
        if group is None:
            grouped[name] = RepositoryRows(name, _license_value(row, columns), [], i, 0)
            group = grouped[name]
        group.pairs.append((row.get(columns.path), row.get(columns.content)))
        group.num_rows += 1
    first, last = (str(rows[0].get(columns.repo)), str(rows[-1].get(columns.repo))) if rows else (None, None)
    return PieceRows(True, list(grouped.values()), len(rows), first, last)


def _as_bytes(content) -> tuple[bytes | None, str | None]:
    if isinstance(content, bytes):
        return content, None
    if isinstance(content, str):
        try:
            return content.encode("utf-8"), None
        except UnicodeEncodeError:  # lone surrogates from JSON escapes
            return None, "undecodable"
    return None, "unreadable"


def _entry(path: str, content) -> FileEntry:
    size = len(content) if isinstance(content, bytes) else None

    def load(max_bytes: int) -> tuple[bytes | None, str | None]:
        data, reason = _as_bytes(content)
        if data is not None and len(data) > max_bytes:
            return None, "too_large"
        return data, reason

    return FileEntry(path, size, load)


def table_repository(name: str, license_value, pairs: Iterable[tuple[object, object]]) -> TableRepository:
    """A repository's file entries from its (path, content) pairs; unsafe and repeated paths counted."""
    repo = TableRepository(name=name, license=str(license_value) if license_value else None, entries=[])
    seen: set[str] = set()
    for raw_path, content in pairs:
        path = safe_relpath(raw_path) if isinstance(raw_path, str) else None
        if path is None:
            repo.skipped["bad_path"] += 1
        elif path in seen:
            repo.skipped["duplicate_path"] += 1
        elif not is_pruned_path(path):
            seen.add(path)
            repo.entries.append(_entry(path, content))
    return repo
