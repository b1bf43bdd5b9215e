"""Duplicates across one ingest run: exact files by content hash, near-duplicate repositories by MinHash.

Forks and copies of a repository would otherwise be trained on twice, and the same vendored file in
many repositories many times. Both indexes see repositories in input order and remember only the
ones that were kept, so "keep the first" is deterministic for a given input and the same on a re-run.
Tiny texts (empty `__init__.py`, one-line stubs) are structure rather than content and never count
as duplicates.
"""

from __future__ import annotations

import hashlib
import heapq
import re
import zlib
from collections.abc import Iterable

DEDUP_MIN_CHARS = 64
"""Texts with fewer non-blank characters are never treated as duplicates."""
SHINGLE_WORDS = 5
SHINGLE_HEAD_CHARS = 20_000
"""Only each file's head is shingled, which bounds the cost on huge repositories."""
MAX_SHINGLES = 50_000
"""Past this, a repository keeps only its smallest shingle hashes (a consistent sample: the same
shingle is kept or dropped in every repository, so similarities stay comparable)."""
NUM_PERM = 128

_WORD = re.compile(r"\w+")


def content_key(text: str) -> str | None:
    """The hash that exact deduplication compares, or None for a text too small to count."""
    if len(text) < DEDUP_MIN_CHARS or len("".join(text.split())) < DEDUP_MIN_CHARS:
        return None
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def shingles(texts: Iterable[str]) -> set[int]:
    """CRC-32s of the word 5-grams of each text's head (a file under 5 words is one shingle)."""
    found: set[int] = set()
    for text in texts:
        words = _WORD.findall(text[:SHINGLE_HEAD_CHARS])
        if not words:
            continue
        span = min(SHINGLE_WORDS, len(words))
        for i in range(len(words) - span + 1):
            found.add(zlib.crc32(" ".join(words[i:i + span]).encode("utf-8", "surrogatepass")))
    return found


class RunDedup:
    """The state one ingest run shares across its repositories (create one per run, in input order)."""

    def __init__(self, files: str = "run", near_threshold: float = 0.0):
        self.files_across_repos = files == "run"
        self.near_threshold = near_threshold
        self._file_keys: set[str] = set()
        self._lsh = None
        self._minhashes: dict[str, object] = {}
        self._pending = None

    def is_known_file(self, key: str | None) -> bool:
        return self.files_across_repos and key is not None and key in self._file_keys

    def near_duplicate_of(self, name: str, texts: list[str]) -> str | None:
        """The name of an earlier kept repository this one nearly duplicates, or None.

        LSH proposes candidates; each is confirmed by the estimated Jaccard similarity itself, and the
        earliest confirmed one (input order) is returned.
        """
        self._pending = None
        if self.near_threshold <= 0:
            return None
        from datasketch import MinHash, MinHashLSH  # imported on first use: it pulls in scipy

        grams = shingles(texts)
        if not grams:
            return None
        sample = heapq.nsmallest(MAX_SHINGLES, grams) if len(grams) > MAX_SHINGLES else sorted(grams)
        minhash = MinHash(num_perm=NUM_PERM, hashfunc=int)  # shingles are already 32-bit hashes
        minhash.update_batch(sample)
        if self._lsh is None:
            self._lsh = MinHashLSH(threshold=self.near_threshold, num_perm=NUM_PERM)
        order = {key: i for i, key in enumerate(self._minhashes)}
        candidates = sorted(self._lsh.query(minhash), key=order.__getitem__)
        for candidate in candidates:
            if minhash.jaccard(self._minhashes[candidate]) >= self.near_threshold:
                return candidate
        self._pending = (name, minhash)
        return None

    def remember(self, name: str, texts: list[str]) -> None:
        """Record a kept repository: its file hashes and (when just checked) its MinHash."""
        if self.files_across_repos:
            self._file_keys.update(k for k in map(content_key, texts) if k is not None)
        if self._pending is not None and self._pending[0] == name and name not in self._minhashes:
            self._lsh.insert(name, self._pending[1])
            self._minhashes[name] = self._pending[1]
        self._pending = None
