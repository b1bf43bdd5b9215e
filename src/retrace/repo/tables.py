"""Tables of repositories as sources: local parquet/JSONL files (or a hub dataset) read with `datasets`.

Two layouts are understood, so both repository dumps and The Stack-style file dumps work: one row per
repository with a list column of {path, content} files, or one row per file with repository, path
and content columns (rows grouped by repository, in first-appearance order). Files stay in memory;
a path that could name something outside the repository (absolute, '..', backslashes) is refused
and counted, so nothing is ever written or read from the file system on a table's word.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from retrace.repo.localfs import FileEntry, is_pruned_path, safe_relpath

TABLE_FORMATS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".jsonl.gz": "json", ".json.gz": "json"}


@dataclass(frozen=True)
class TableColumns:
    """Which columns (and struct fields) hold what; the recipe's `table_*` keys."""

    repo: str = "repo_name"
    files: str = "files"
    path: str = "path"
    content: str = "content"
    license: str = "license"


@dataclass
class TableRepository:
    name: str
    license: str | None
    entries: list[FileEntry]
    skipped: collections.Counter = field(default_factory=collections.Counter)


def table_format(location: str) -> str | None:
    lower = location.lower()
    for suffix, builder in sorted(TABLE_FORMATS.items(), key=lambda kv: -len(kv[0])):
        if lower.endswith(suffix):
            return builder
    return None


def load_table(location: str, split: str, cache_root: Path):
    """The `datasets.Dataset` behind a spec: a local parquet/JSON(L) file, else a hub dataset name."""
    import datasets  # heavy: imported only when a table is named

    builder = table_format(location)
    cache = str(cache_root / "datasets")
    if builder is not None and os.path.exists(location):
        return datasets.load_dataset(builder, data_files=location, split=split, cache_dir=cache)
    return datasets.load_dataset(location, split=split, cache_dir=cache)


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


def _files_of(value, columns: TableColumns) -> list[tuple[object, object]]:
    """(path, content) pairs from a list of structs or a struct of lists (both occur in `datasets`)."""
    if isinstance(value, dict):
        return list(zip(value.get(columns.path) or [], value.get(columns.content) or []))
    return [(f.get(columns.path), f.get(columns.content)) for f in value or [] if isinstance(f, dict)]


def _repository(name: str, license_id, pairs) -> TableRepository:
    repo = TableRepository(name=name, license=str(license_id) if license_id else None, entries=[])
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


def _license_value(row: dict, columns: TableColumns):
    value = row.get(columns.license)
    if isinstance(value, list):  # The Stack keeps a list of licence ids
        value = " OR ".join(str(v) for v in value) if value else None
    return value


def table_repositories(table, columns: TableColumns, stem: str) -> Iterator[TableRepository]:
    """The repositories of a loaded table, in row order; unnamed rows are named `<stem>-<row>`."""
    names = set(table.column_names)
    if columns.files in names:
        for i, row in enumerate(table):
            name = str(row.get(columns.repo) or f"{stem}-{i}")
            yield _repository(name, _license_value(row, columns), _files_of(row[columns.files], columns))
        return
    needed = {columns.repo, columns.path, columns.content}
    if not needed <= names:
        raise ValueError(f"table has neither a '{columns.files}' column nor all of {sorted(needed)} "
                         f"(columns: {sorted(names)}); set the table_* keys")
    grouped: dict[str, list] = {}
    licenses: dict[str, object] = {}
    for row in table:
        name = str(row[columns.repo])
        grouped.setdefault(name, []).append((row[columns.path], row[columns.content]))
        licenses.setdefault(name, _license_value(row, columns))
    for name, pairs in grouped.items():
        yield _repository(name, licenses[name], pairs)
