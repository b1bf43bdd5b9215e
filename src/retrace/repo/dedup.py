"""Duplicates across one ingest run: exact files by content hash, near-duplicate repositories by MinHash.

Forks and copies of a repository would otherwise be trained on twice, and the same vendored file in
many repositories many times. Both indexes see repositories in input order and remember only the
ones that were kept, so "keep the first" is deterministic for a given input and the same on a re-run.
The decision needs no text: signatures and content keys are computed where a repository is read
(possibly in another process), and `RunDedup.admit` decides from them alone.
Tiny texts (empty `__init__.py`, one-line stubs) are structure rather than content and never count
as duplicates.
"""

from __future__ import annotations

import hashlib
import heapq
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

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


def repository_signature(texts: Iterable[str]):
    """The MinHash (a datasketch `LeanMinHash`: small, picklable) of a repository's shingles, or None
    when it has no words. Computed where the texts are, so only the signature travels to the decision."""
    from datasketch import LeanMinHash, MinHash  # imported on first use: it pulls in scipy

    grams = shingles(texts)
    if not grams:
        return None
    sample = heapq.nsmallest(MAX_SHINGLES, grams) if len(grams) > MAX_SHINGLES else sorted(grams)
    minhash = MinHash(num_perm=NUM_PERM, hashfunc=int)  # shingles are already 32-bit hashes
    minhash.update_batch(sample)
    return LeanMinHash(minhash)


@dataclass(frozen=True)
class RunDecision:
    """What the run's indexes decide for one repository that passed its own rules."""

    reason: str | None
    """`near_duplicate_repo`, or None: the repository stays if any of its files does."""
    kept: tuple[int, ...] = ()
    """Positions of the repository's files that stay (not exact duplicates of an earlier kept file);
    empty when every file was kept elsewhere already (the repository is then skipped as `empty_repo`)."""
    original: str | None = None
    """The earlier kept repository this one nearly duplicates."""


class RunDedup:
    """The state one ingest run shares across its repositories, fed in input order.

    It holds no text: only the content keys of kept files and the MinHash signatures of kept
    repositories, so a run over many repositories can decide without keeping them.
    """

    def __init__(self, files: str = "run", near_threshold: float = 0.0):
        self.files_across_repos = files == "run"
        self.near_threshold = near_threshold
        self._file_keys: set[str] = set()
        self._lsh = None
        self._minhashes: dict[str, object] = {}

    @property
    def wants_signatures(self) -> bool:
        return self.near_threshold > 0

    def is_known_file(self, key: str | None) -> bool:
        return self.files_across_repos and key is not None and key in self._file_keys

    def near_duplicate_of(self, signature) -> str | None:
        """The name of an earlier kept repository this signature nearly duplicates, or None.

        LSH proposes candidates; each is confirmed by the estimated Jaccard similarity itself, and the
        earliest confirmed one (input order) is returned.
        """
        if not self.wants_signatures or signature is None or self._lsh is None:
            return None
        order = {key: i for i, key in enumerate(self._minhashes)}
        for candidate in sorted(self._lsh.query(signature), key=order.__getitem__):
            if signature.jaccard(self._minhashes[candidate]) >= self.near_threshold:
                return candidate
        return None

    def admit(self, name: str, file_keys: Sequence[str | None], signature) -> RunDecision:
        """Decide one repository against the earlier kept ones (near-duplicate first, then exact files)
        and, when it is kept, remember its file keys and signature."""
        original = self.near_duplicate_of(signature)
        if original is not None:
            return RunDecision("near_duplicate_repo", original=original)
        kept = tuple(i for i, key in enumerate(file_keys) if not self.is_known_file(key))
        if not kept:
            return RunDecision(None, kept)
        if self.files_across_repos:
            self._file_keys.update(k for k in file_keys if k is not None)
        if self.wants_signatures and signature is not None and name not in self._minhashes:
            if self._lsh is None:
                from datasketch import MinHashLSH

                self._lsh = MinHashLSH(threshold=self.near_threshold, num_perm=NUM_PERM)
            self._lsh.insert(name, signature)
            self._minhashes[name] = signature
        return RunDecision(None, kept)
