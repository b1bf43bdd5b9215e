"""The finish step's Parquet shards: every artifact folder packed into `<output_dir>/data/<config>/`.

Per-repository JSONL files are right for writing (any worker can retry any repository) and wrong for
sharing: the Hub asks for under 100k files per repository, and 300k repositories make 1.2M. Packing
streams each config's files in file-name order (retrace.data.layout: near repository-name order, the same
on every run) into shards named as the Hub's own uploads are, `<split>-00000-of-00003.parquet`, each
holding about `shard_mb` MB of JSON, so `datasets.load_dataset(output_dir, "documents")` reads them through
the dataset card's configs. Memory holds one batch of rows, never a whole artifact.

Columns: documents `repo`, `segments` (list of `{text, train, kind, path}`), `meta`; trajectories `repo`,
`source`, `order`, `steps`, `meta`. `meta` and a trajectory's `steps` are JSON strings: their keys vary
between repositories and runs (contamination flags, sub-project fields, search logs), and one Parquet
schema must hold every row of every shard; a JSON string holds them all losslessly without a second pass
over the data to learn a common schema. `json.loads(row["meta"])` gives the dict back.

Atomic: a config's shards are written into `data/.<config>.partial/`, named once their count is known,
and the folder is swapped in for the old one; a killed pack leaves the previous shards (or none) whole.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from retrace.data.layout import CONFIGS, TRAJECTORY_CONFIGS, artifact_files

PACKED = "data"
MB = 1 << 20
BATCH_ROWS = 256        # rows per Parquet row group at most (and per batch held in memory)
BATCH_BYTES = 16 * MB   # JSON bytes per row group at most

SEGMENT = pa.struct([("text", pa.string()), ("train", pa.bool_()), ("kind", pa.string()), ("path", pa.string())])
DOCUMENT_SCHEMA = pa.schema([("repo", pa.string()), ("segments", pa.list_(SEGMENT)), ("meta", pa.string())])
TRAJECTORY_SCHEMA = pa.schema([("repo", pa.string()), ("source", pa.string()), ("order", pa.list_(pa.string())),
                               ("steps", pa.string()), ("meta", pa.string())])


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def document_row(record: dict[str, Any]) -> dict[str, Any]:
    segments = [{"text": s["text"], "train": bool(s["train"]), "kind": s.get("kind"), "path": s.get("path")}
                for s in record["segments"]]
    return {"repo": record["repo"], "segments": segments, "meta": _json(record.get("meta", {}))}


def trajectory_row(record: dict[str, Any]) -> dict[str, Any]:
    return {"repo": record["repo"], "source": record["source"], "order": list(record["order"]),
            "steps": _json(record["steps"]), "meta": _json(record.get("meta", {}))}


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:05d}-of-{count:05d}.parquet"


def shard_pattern(config: str, split: str, count: int) -> str:
    """The glob of one config's shards as the card and the upload name them. The count is in it, so shards
    of an earlier push with another count, left in a Hub repository, are never read with these."""
    return f"{PACKED}/{config}/{split}-*-of-{count:05d}.parquet"


class _ShardWriter:
    """Rows in, `part-NNNNN.parquet` files out, each closed once it holds `shard_bytes` of JSON."""

    def __init__(self, directory: Path, schema: pa.Schema, shard_bytes: int):
        self.directory, self.schema, self.shard_bytes = directory, schema, shard_bytes
        self.parts: list[Path] = []
        self.rows: list[dict[str, Any]] = []
        self.pending = self.in_shard = 0
        self.writer: pq.ParquetWriter | None = None

    def add(self, row: dict[str, Any], size: int) -> None:
        self.rows.append(row)
        self.pending += size
        if (len(self.rows) >= BATCH_ROWS or self.pending >= BATCH_BYTES
                or self.in_shard + self.pending >= self.shard_bytes):
            self._flush()

    def _flush(self) -> None:
        if not self.rows:
            return
        if self.writer is None:
            path = self.directory / f"part-{len(self.parts):05d}.parquet"
            self.parts.append(path)
            self.writer = pq.ParquetWriter(path, self.schema, compression="zstd", write_page_index=True,
                                           use_content_defined_chunking=True)
        self.writer.write_table(pa.Table.from_pylist(self.rows, schema=self.schema))
        self.in_shard += self.pending
        self.rows, self.pending = [], 0
        if self.in_shard >= self.shard_bytes:
            self._close_shard()

    def _close_shard(self) -> None:
        if self.writer is None:
            return
        self.writer.close()
        descriptor = os.open(self.parts[-1], os.O_RDONLY)  # on disk before the folder is swapped in
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        self.writer, self.in_shard = None, 0

    def close(self) -> list[Path]:
        self._flush()
        self._close_shard()
        return self.parts


def pack_config(output_dir: str | Path, config: str, shard_mb: float) -> list[str]:
    """Pack one config's per-repository files into shards; their paths relative to `output_dir` ([] if none)."""
    output_dir = Path(output_dir)
    folder, split = CONFIGS[config]
    files = artifact_files(output_dir / folder)
    target = output_dir / PACKED / config
    staging, old = output_dir / PACKED / f".{config}.partial", output_dir / PACKED / f".{config}.old"
    shutil.rmtree(staging, ignore_errors=True)
    if not files:
        shutil.rmtree(target, ignore_errors=True)  # nothing to pack now: no stale shards left to load
        return []
    staging.mkdir(parents=True)
    to_row, schema = ((trajectory_row, TRAJECTORY_SCHEMA) if config in TRAJECTORY_CONFIGS
                      else (document_row, DOCUMENT_SCHEMA))
    writer = _ShardWriter(staging, schema, max(1, int(shard_mb * MB)))
    for path in files:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    writer.add(to_row(json.loads(line)), len(line))
    parts = writer.close()
    for index, part in enumerate(parts):
        os.replace(part, staging / shard_name(split, index, len(parts)))
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)
    return [f"{PACKED}/{config}/{shard_name(split, i, len(parts))}" for i in range(len(parts))]


def pack_artifacts(output_dir: str | Path, shard_mb: float) -> dict[str, list[str]]:
    """Every config with data packed into shards of about `shard_mb` MB: `{config: [shard paths]}`.

    Configs with no files now are left out (and their old shards removed).
    """
    if shard_mb <= 0:
        raise ValueError(f"key 'parquet_shard_mb' must be above 0 to pack, got {shard_mb}")
    packed = {config: pack_config(output_dir, config, shard_mb) for config in CONFIGS}
    return {config: shards for config, shards in packed.items() if shards}
