"""Reading a split's sources once, in input order, with the per-repository work in worker processes.

Sources are cut into units (a single-repository spec, or one piece of a table); workers read a unit and
apply each repository's own rules (filters, content keys, MinHash signature), and hand back only that
unless texts are asked for. The main process takes the results in input order, joins a table's
repository that runs across pieces (it is read again whole, from the pieces that hold it), and takes
the run's duplicate decision (`RunDedup`) one repository at a time: the same rule for `ingest_sources`
and the planning pass, and the same result for any number of workers.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

from tqdm.auto import tqdm

from retrace.repo.dedup import RunDedup
from retrace.repo.snapshot import FilteredRepository, IngestStats, decide_in_run, filter_repository
from retrace.repo.sources import IngestArguments, SourceError, cache_root, parse_source, read_repository
from retrace.repo.tables import (
    PieceRows,
    RepositoryRows,
    TablePiece,
    group_piece,
    read_piece_rows,
    table_pieces,
    table_repository,
)

logger = logging.getLogger(__name__)

READ_ERRORS = (SourceError, ValueError, OSError)
"""What a source that cannot be read raises (a bad source); anything else is a bug and propagates."""


@dataclass
class UnitResult:
    """A read unit's repositories after their own rules; for a table piece, how its rows were grouped."""

    repositories: list[FilteredRepository]
    piece: PieceRows | None = None


def _strip(filtered: FilteredRepository, keep_texts: bool) -> FilteredRepository:
    return filtered if keep_texts else filtered.without_texts()


def _table_filtered(spec: str, name: str, rows: RepositoryRows | list[RepositoryRows], args: IngestArguments,
                    signature: bool) -> FilteredRepository:
    parts = rows if isinstance(rows, list) else [rows]
    repo = table_repository(name, parts[0].license, [pair for part in parts for pair in part.pairs])
    return filter_repository(repo.entries, name=name, source=f"{spec}#{name}", license=repo.license, filters=args,
                             skipped=repo.skipped, signature=signature)


def _read_piece(spec: str, piece: TablePiece, args: IngestArguments) -> PieceRows:
    try:
        rows, names = read_piece_rows(piece, args.table_columns(), args.table_split, cache_root())
        return group_piece(rows, names, args.table_columns())
    except (OSError, ValueError) as exc:
        raise SourceError(f"source '{spec}': {piece.location}: {exc}") from None


def read_unit(spec: str, piece: TablePiece | None, args: IngestArguments, keep_texts: bool,
              signature: bool) -> UnitResult:
    """One unit (runs in a worker): a single-repository spec, or a table piece grouped per repository.

    An unnamed row of a one-row-per-repository table is named `?` here; the caller, which knows the
    row offsets of the pieces before, names it.
    """
    if piece is None:
        return UnitResult([_strip(read_repository(spec, args, signature=signature), keep_texts)])
    grouped = _read_piece(spec, piece, args)
    repositories = [_strip(_table_filtered(spec, rows.name or "?", rows, args, signature), keep_texts)
                    for rows in grouped.repositories]
    for rows in grouped.repositories:
        rows.pairs = []  # texts stay in the worker
    return UnitResult(repositories, grouped)


def table_locator(pieces: list[TablePiece], *, key: str | None = None, row: int | None = None) -> str:
    """How to find one table repository again: the pieces that hold it and its name (one-row-per-file
    layout) or its row within the single piece (one-row-per-repository layout)."""
    found = {"pieces": [p.to_list() for p in pieces]}
    found.update({"key": key} if row is None else {"row": row})
    return json.dumps(found, ensure_ascii=False)


class PieceCache:
    """The last few pieces read, grouped, so that reading many repositories of one piece reads it once."""

    def __init__(self, size: int = 2):
        self.size = size
        self._pieces: collections.OrderedDict[TablePiece, PieceRows] = collections.OrderedDict()

    def get(self, spec: str, piece: TablePiece, args: IngestArguments) -> PieceRows:
        if piece not in self._pieces:
            self._pieces[piece] = _read_piece(spec, piece, args)
            while len(self._pieces) > self.size:
                self._pieces.popitem(last=False)
        self._pieces.move_to_end(piece)
        return self._pieces[piece]


def read_table_repository(spec: str, locator: str, name: str, args: IngestArguments, *, keep_texts: bool = True,
                          signature: bool = False, cache: PieceCache | None = None) -> FilteredRepository:
    """One table repository read again from its locator (only the pieces that hold it)."""
    found = json.loads(locator)
    pieces = [TablePiece.from_list(p) for p in found["pieces"]]
    cache = cache or PieceCache()
    if "row" in found:
        parts = [cache.get(spec, pieces[0], args).repositories[found["row"]]]
    else:
        parts = [rows for piece in pieces for rows in cache.get(spec, piece, args).repositories
                 if rows.name == found["key"]]
    if not parts:
        raise ValueError(f"source '{spec}': repository {name!r} is no longer where the plan found it")
    return _strip(_table_filtered(spec, name, parts, args, signature), keep_texts)


# --- ordered work -------------------------------------------------------------------------------------


@dataclass
class _Job:
    meta: object
    fn: Callable
    args: tuple


@dataclass
class _Ready:
    meta: object
    value: object


@dataclass
class _Failed:
    error: Exception


class _Lazy:
    """The in-process stand-in for a future: the work runs when its result is asked for."""

    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def result(self):
        return self.fn(*self.args)


def _ordered(pool: ProcessPoolExecutor | None, items, window: int) -> Iterator[tuple[object, object]]:
    """(meta, result or _Failed) for each item, in order; jobs run in `pool` up to `window` ahead."""
    queue: deque = deque()

    def settle(entry):
        meta, work = entry
        if isinstance(work, _Ready):
            return meta, work.value
        try:
            return meta, work.result()
        except READ_ERRORS as exc:
            return meta, _Failed(exc)

    for item in items:
        if isinstance(item, _Job):
            work = pool.submit(item.fn, *item.args) if pool is not None else _Lazy(item.fn, item.args)
        else:
            work = item
        queue.append((item.meta, work))
        while len(queue) > window:
            yield settle(queue.popleft())
    while queue:
        yield settle(queue.popleft())


# --- the split, in input order ------------------------------------------------------------------------


@dataclass
class _Pending:
    name: str
    filtered: FilteredRepository
    pieces: list[TablePiece]
    joined: bool = False


@dataclass
class _TableState:
    """One table spec's grouping across pieces (see retrace.repo.tables for the assumption it checks)."""

    spec: str
    stem: str
    rows_before: int = 0
    pending: list[_Pending] = field(default_factory=list)
    open_name: str | None = None
    closed: set[str] = field(default_factory=set)


class _SplitReader:
    """Turns unit results (in input order) into repositories (ready, or a job reading a joined one)."""

    def __init__(self, args: IngestArguments, stats: IngestStats, keep_texts: bool, signature: bool):
        self.args, self.stats, self.keep_texts, self.signature = args, stats, keep_texts, signature
        self.bad: set[int] = set()
        self.table: _TableState | None = None
        self.table_position = -1

    def fail(self, position: int, spec: str, error: Exception) -> None:
        if not self.args.skip_bad_sources:
            raise ValueError(str(error)) from None
        if position not in self.bad:
            self.bad.add(position)
            logger.warning("skipping %s", error)
            self.stats.merge(IngestStats(repos_seen=1, skipped=collections.Counter({"bad_source": 1})))

    def units(self, specs: list[str]):
        for position, spec in enumerate(specs):
            try:
                source = parse_source(spec)
                pieces = [None] if source.kind != "table" else table_pieces(
                    source.location, self.args.table_split, cache_root())
            except READ_ERRORS as exc:
                named = exc if str(exc).startswith(f"source '{spec}'") else SourceError(f"source '{spec}': {exc}")
                yield _Ready((position, spec, None), _Failed(named))
                continue
            for piece in pieces:
                yield _Job((position, spec, piece), read_unit,
                           (spec, piece, self.args, self.keep_texts, self.signature))

    def repositories(self, results) -> Iterator[_Job | _Ready]:
        for (position, spec, piece), result in results:
            if self.table is not None and position != self.table_position:
                yield from self._flush()
                self.table = None
            if position in self.bad:
                continue
            if isinstance(result, _Failed):
                self.table = None
                self.fail(position, spec, result.error)
                continue
            if piece is None:
                yield _Ready((position, spec), result.repositories[0])
                continue
            if self.table is None:
                stem = Path(parse_source(spec).location).name.split(".")[0]  # names unnamed rows
                self.table, self.table_position = _TableState(spec, stem), position
            yield from self._take(position, piece, result)
        if self.table is not None:
            yield from self._flush()

    def _take(self, position: int, piece: TablePiece, result: UnitResult):
        table, grouped = self.table, result.piece
        if grouped.num_rows == 0:
            return
        if not grouped.per_file:
            yield from self._flush()
            for rows, filtered in zip(grouped.repositories, result.repositories):
                name = rows.name or f"{table.stem}-{table.rows_before + rows.row}"
                named = dataclasses.replace(filtered, name=name, source=f"{table.spec}#{name}",
                                            locator=table_locator([piece], row=rows.row))
                yield _Ready((position, table.spec), named)
            table.rows_before += grouped.num_rows
            return
        groups = list(zip(grouped.repositories, result.repositories))
        continuing = next((p for p in table.pending if p.name == table.open_name), None)
        if continuing is not None and grouped.first_name == table.open_name:
            continuing.pieces.append(piece)
            continuing.joined = True
            groups = [(rows, filtered) for rows, filtered in groups if rows.name != table.open_name]
        else:
            yield from self._flush()
        pending_names = {p.name for p in table.pending}
        for rows, filtered in groups:
            if rows.name in table.closed or rows.name in pending_names:
                logger.warning("source '%s': %d rows of %s come after other repositories' rows; refused "
                               "(a repository's rows must lie together)", table.spec, rows.num_rows, rows.name)
                self.stats.merge(IngestStats(skipped=collections.Counter({"table_rows_apart": rows.num_rows})))
                continue
            table.pending.append(_Pending(rows.name, filtered, [piece]))
            pending_names.add(rows.name)
        table.open_name = grouped.last_name if grouped.last_name in pending_names else None
        table.rows_before += grouped.num_rows

    def _flush(self):
        table = self.table
        for pending in table.pending:
            table.closed.add(pending.name)
            locator = table_locator(pending.pieces, key=pending.name)
            if pending.joined:
                yield _Job((self.table_position, table.spec), _read_joined,
                           (table.spec, locator, pending.name, self.args, self.keep_texts, self.signature))
            else:
                yield _Ready((self.table_position, table.spec),
                             dataclasses.replace(pending.filtered, locator=locator))
        table.pending, table.open_name = [], None


def _read_joined(spec, locator, name, args, keep_texts, signature) -> FilteredRepository:
    repository = read_table_repository(spec, locator, name, args, keep_texts=keep_texts, signature=signature)
    repository.locator = locator
    return repository


def filtered_in_order(specs: list[str], args: IngestArguments, stats: IngestStats, *, num_workers: int = 1,
                      keep_texts: bool = False) -> Iterator[tuple[str, FilteredRepository]]:
    """(spec, repository after its own rules) for every repository of `specs`, in input order; bad
    sources raise or are counted."""
    reader = _SplitReader(args, stats, keep_texts, signature=args.near_duplicate_threshold > 0)
    pool = ProcessPoolExecutor(num_workers, mp_context=get_context("spawn")) if num_workers > 1 else None
    window = 4 * num_workers if pool is not None else 1
    try:
        units = _ordered(pool, reader.units(specs), window)
        for (position, spec), result in _ordered(pool, reader.repositories(units), window):
            if isinstance(result, _Failed):
                reader.fail(position, spec, result.error)
            else:
                yield spec, result
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def kept_in_order(specs: list[str], args: IngestArguments, stats: IngestStats, *, num_workers: int = 1,
                  keep_texts: bool = False) -> Iterator[tuple[str, FilteredRepository, list[str]]]:
    """(spec, repository, kept paths) for every repository the run keeps, in input order, decided once by the
    run's duplicate rule; `stats` gets every count. Two kept repositories with one name are an error."""
    run = RunDedup(args.dedup_files, args.near_duplicate_threshold)
    names: collections.Counter = collections.Counter()
    repositories = filtered_in_order(specs, args, stats, num_workers=num_workers, keep_texts=keep_texts)
    for spec, filtered in tqdm(repositories, desc="ingest", unit="repo", disable=len(specs) < 2, mininterval=5):
        kept = decide_in_run(filtered, run, stats)
        if kept is not None:
            names[filtered.name] += 1
            yield spec, filtered, kept
    duplicates = sorted(name for name, count in names.items() if count > 1)
    if duplicates:
        raise ValueError(f"two sources give the same repository name(s) {duplicates}; rename one")
