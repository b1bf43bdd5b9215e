"""N-gram overlap between training documents and evaluation texts: the decontamination check.

Knows no benchmark: it takes `{set_name: texts}` (a list, or a mapping of item id to text) and a stream of
`(document_id, text)` pairs, and says which evaluation items occur in which documents.

Normalisation (both sides alike): Unicode NFKC, lower case, then the word tokens `\\w+` (letters, digits
and underscore runs); punctuation, operators and whitespace only separate tokens. This is the GPT-3
recipe (Brown et al. 2020, appendix C; lm-eval's janitor): case, punctuation and layout changes do not
hide a copy, and `return sorted(set(l))` becomes `return sorted set l`.

Why 13: long enough that a shared 13-word run is a copy rather than a common phrase (GPT-3 found
shorter n-grams flag idioms), short enough to catch a pasted docstring or function body. An item with
fewer than `n` tokens cannot hold an n-gram; it is tested as one whole-item n-gram when it has at least
`min_tokens` (default 8, GPT-3's lower bound for short examples) and counted as untestable otherwise
(`return x + y` occurs in countless files: matching it would say nothing). An n-gram counts only when
at least half of its tokens are informative (two characters or more, not all digits): runs of numbers
or single letters (`0 1 2 3 4 5 6 7 8 9 a b c`, `while b a b b a b return a`) match tables and
idioms, not copies. An item with no informative n-gram is untestable too.

Speed: each token gets a random 64-bit value (tokens no evaluation item uses share the value 0), each
window of a document a polynomial hash over those values (vectorised, wrapping uint64 arithmetic), and a
window is looked up by binary search in the sorted hashes of the evaluation n-grams. Every hash hit is
confirmed token by token, so a collision never counts.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from retrace.data.layout import artifact_files

DEFAULT_NGRAM = 13
DEFAULT_MIN_TOKENS = 8
NORMALISATION = "NFKC, lower case, word tokens \\w+ (punctuation and whitespace separate tokens)"
_WORD = re.compile(r"\w+")
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # odd: multiplication by it is invertible mod 2**64
_SEED = 20260213

EvaluationTexts = Mapping[str, Sequence[str] | Mapping[str, str]]


def normalize_tokens(text: str) -> list[str]:
    """The word tokens n-grams are made of (see the module docstring)."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower())


def _informative(tokens: Sequence[str]) -> bool:
    return 2 * sum(len(t) > 1 and not t.isdigit() for t in tokens) >= len(tokens)


def _window_hashes(values: np.ndarray, length: int) -> np.ndarray:
    """Hash of every window of `length` consecutive token values (uint64, wrapping)."""
    count = len(values) - length + 1
    hashes = values[:count].copy()
    for offset in range(1, length):
        np.multiply(hashes, _MULTIPLIER, out=hashes)
        np.add(hashes, values[offset:offset + count], out=hashes)
    return hashes


@dataclass
class _Item:
    set_name: str
    item_id: str
    tokens: list[str]
    ids: np.ndarray
    ngram_length: int       # n, or the item's own length when shorter (0: untestable)
    starts: list[int]       # where its informative n-grams start

    @property
    def ngram_count(self) -> int:
        return len(self.starts)


@dataclass
class DocumentOverlap:
    """What one document shares with the evaluation sets: `{set: {item_id: distinct n-grams matched}}`."""

    document: str
    tokens: int
    matches: dict[str, dict[str, int]] = field(default_factory=dict)
    windows: list[tuple[int, int]] = field(default_factory=list)  # (item index, start) of each distinct match

    @property
    def contaminated(self) -> bool:
        return bool(self.matches)

    @property
    def ngrams(self) -> int:
        return len(self.windows)


class NgramIndex:
    """The n-grams of every evaluation item, hashed, ready to be matched against documents."""

    def __init__(self, evaluation_texts: EvaluationTexts, n: int = DEFAULT_NGRAM,
                 min_tokens: int = DEFAULT_MIN_TOKENS):
        if n < 1 or not 1 <= min_tokens <= n:
            raise ValueError(f"n-gram size must be >= 1 and min_tokens in [1, n]; got n={n}, min_tokens={min_tokens}")
        self.n, self.min_tokens = n, min_tokens
        self.vocab: dict[str, int] = {}
        self.items: list[_Item] = []
        self.set_names = list(evaluation_texts)
        for set_name, texts in evaluation_texts.items():
            pairs = texts.items() if isinstance(texts, Mapping) else ((str(i), t) for i, t in enumerate(texts))
            for item_id, text in pairs:
                tokens = normalize_tokens(text)
                ids = np.fromiter((self.vocab.setdefault(t, len(self.vocab) + 1) for t in tokens),
                                  dtype=np.int64, count=len(tokens))
                length = n if len(tokens) >= n else (len(tokens) if len(tokens) >= min_tokens else 0)
                starts = [s for s in range(len(tokens) - length + 1) if _informative(tokens[s:s + length])] \
                    if length else []
                self.items.append(_Item(set_name, str(item_id), tokens, ids, length if starts else 0, starts))
        rng = np.random.default_rng(_SEED)
        self.token_values = rng.integers(1, np.iinfo(np.int64).max, size=len(self.vocab) + 1,
                                         dtype=np.int64).astype(np.uint64)
        self.token_values[0] = 0
        owners: dict[int, dict[int, list[tuple[int, int]]]] = defaultdict(lambda: defaultdict(list))
        for index, item in enumerate(self.items):
            if item.ngram_length:
                hashes = _window_hashes(self.token_values[item.ids], item.ngram_length).tolist()
                for start in item.starts:
                    owners[item.ngram_length][hashes[start]].append((index, start))
        self._owners = {length: dict(table) for length, table in owners.items()}
        self._sorted = {length: np.array(sorted(table), dtype=np.uint64) for length, table in self._owners.items()}

    def match(self, document: str, text: str) -> DocumentOverlap:
        """Every evaluation n-gram that occurs in `text`, confirmed token by token."""
        tokens = normalize_tokens(text)
        overlap = DocumentOverlap(document, len(tokens))
        vocab = self.vocab
        ids = np.fromiter((vocab.get(t, 0) for t in tokens), dtype=np.int64, count=len(tokens))
        if not ids.any():
            return overlap
        values = self.token_values[ids]
        found: set[tuple[int, int]] = set()
        for length, keys in self._sorted.items():
            if len(ids) < length:
                continue
            hashes = _window_hashes(values, length)
            slots = np.minimum(np.searchsorted(keys, hashes), len(keys) - 1)
            for position in np.flatnonzero(keys[slots] == hashes).tolist():
                window = ids[position:position + length]
                for index, start in self._owners[length][int(hashes[position])]:
                    if np.array_equal(window, self.items[index].ids[start:start + length]):
                        found.add((index, start))
        overlap.windows = sorted(found)
        for index, _ in overlap.windows:
            item = self.items[index]
            per_set = overlap.matches.setdefault(item.set_name, {})
            per_set[item.item_id] = per_set.get(item.item_id, 0) + 1
        return overlap

    def ngram_text(self, index: int, start: int) -> str:
        item = self.items[index]
        return " ".join(item.tokens[start:start + item.ngram_length])


class OverlapReport:
    """Per evaluation set: documents contaminated, n-grams matched, share of items hit, and examples."""

    def __init__(self, index: NgramIndex, max_examples: int = 5):
        self.index = index
        self.max_examples = max_examples
        self.documents = self.tokens = self.contaminated = 0
        self.set_documents: dict[str, int] = defaultdict(int)
        self.set_occurrences: dict[str, int] = defaultdict(int)
        self.windows_seen: set[tuple[int, int]] = set()
        self.examples: dict[str, list[dict[str, str]]] = defaultdict(list)
        self.example_items: dict[str, set[str]] = defaultdict(set)

    def add(self, overlap: DocumentOverlap) -> None:
        self.documents += 1
        self.tokens += overlap.tokens
        self.contaminated += overlap.contaminated
        for set_name in overlap.matches:
            self.set_documents[set_name] += 1
        for index, start in overlap.windows:
            item = self.index.items[index]
            self.windows_seen.add((index, start))
            self.set_occurrences[item.set_name] += 1
            # One example per (set, item), so the few shown are spread over items.
            if len(self.examples[item.set_name]) < self.max_examples and item.item_id not in \
                    self.example_items[item.set_name]:
                self.example_items[item.set_name].add(item.item_id)
                self.examples[item.set_name].append({"document": overlap.document, "item": item.item_id,
                                                     "ngram": self.index.ngram_text(index, start)})

    def to_dict(self) -> dict[str, Any]:
        items_by_set: dict[str, list[int]] = defaultdict(list)
        for index, item in enumerate(self.index.items):
            items_by_set[item.set_name].append(index)
        hit_items = {index for index, _ in self.windows_seen}
        sets = {}
        for set_name in self.index.set_names:
            members = [self.index.items[i] for i in items_by_set[set_name]]
            testable = [i for i in items_by_set[set_name] if self.index.items[i].ngram_length]
            hit = [self.index.items[i].item_id for i in testable if i in hit_items]
            sets[set_name] = {
                "items": len(members), "items_testable": len(testable), "items_untestable": len(members) - len(testable),
                "items_hit": len(hit),
                "items_hit_share": len(hit) / len(testable) if testable else float("nan"),
                "ngrams": sum(item.ngram_count for item in members),
                "ngrams_matched": sum(1 for index, _ in self.windows_seen if self.index.items[index].set_name == set_name),
                "ngram_occurrences": self.set_occurrences[set_name],
                "documents_contaminated": self.set_documents[set_name],
                "hit_items": hit, "examples": self.examples[set_name],
            }
        return {"ngram": self.index.n, "min_tokens": self.index.min_tokens, "normalisation": NORMALISATION,
                "documents_scanned": self.documents, "tokens_scanned": self.tokens,
                "documents_contaminated": self.contaminated, "sets": sets}


def overlap_report(evaluation_texts: EvaluationTexts, documents: Iterable[tuple[str, str]], n: int = DEFAULT_NGRAM,
                   min_tokens: int = DEFAULT_MIN_TOKENS, max_examples: int = 5, progress: bool = True) -> dict[str, Any]:
    """Scan a stream of `(document_id, text)` against the evaluation sets; the report as a dict."""
    from tqdm.auto import tqdm

    index = NgramIndex(evaluation_texts, n, min_tokens)
    report = OverlapReport(index, max_examples)
    for document, text in tqdm(documents, desc=f"decontamination {n}-grams", unit="doc", disable=not progress):
        report.add(index.match(document, text))
    return report.to_dict()


def iter_training_texts(path: str | Path) -> Iterator[tuple[str, str]]:
    """`(document_id, text)` from a `.jsonl` file or every `*.jsonl` of an artifact folder (retrace.data.layout's
    hashed subfolders or flat), one line at a time.

    A line is a retrace document (`{repo, segments}`: all segments, trained or not, since the model reads
    them all) or any record with a `text` field (raw-text mixtures). Other lines are a ValueError naming
    the file and line.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"training documents not found: {path}")
    files = artifact_files(path) if path.is_dir() else [path]
    for file in files:
        with open(file, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                record = json.loads(line)
                if isinstance(record, dict) and isinstance(record.get("segments"), list):
                    yield record.get("repo") or f"{file.stem}:{number}", "".join(s["text"] for s in record["segments"])
                elif isinstance(record, dict) and isinstance(record.get("text"), str):
                    yield str(record.get("id") or f"{file.stem}:{number}"), record["text"]
                else:
                    raise ValueError(f"{file}:{number}: neither a retrace document (segments) nor a text record")
