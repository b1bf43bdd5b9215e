"""Atomic file writes: a reader (or a resumed run) never sees half a file.

Write to a temporary file in the same directory, fsync, then `os.replace`; a kill at any point leaves
either the old file or the new one.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

TEMP_SUFFIX = ".tmp"


def remove_partial_writes(directory: str | Path) -> int:
    """Delete temporary files a killed writer left under `directory`; returns how many."""
    removed = 0
    for path in Path(directory).rglob(f".*{TEMP_SUFFIX}"):
        if path.is_file():
            path.unlink()
            removed += 1
    return removed


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the mode open() would
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def json_safe(value: Any) -> Any:
    """A copy with NaN and infinities as None, so what is written is strict JSON (jq, browsers, other languages)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_json(path: str | Path, obj: Any) -> None:
    """`obj` as indented strict JSON (non-finite floats become null), written atomically."""
    write_text(path, json.dumps(json_safe(obj), indent=2, ensure_ascii=False, sort_keys=False,
                                allow_nan=False) + "\n")


def write_jsonl(path: str | Path, records: Iterable[Any]) -> None:
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    write_text(path, "".join(line + "\n" for line in lines))
