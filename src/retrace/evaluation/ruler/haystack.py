"""Filler of a given amount, and statements placed into it at fixed relative depths.

Each function is pure in its amount: the same amount gives the same text, which the length fitter
relies on. Amounts are in small units (words, characters) so lengths can be hit within a few tokens.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from retrace.evaluation.ruler.sources import Sources

# RULER places needles at one of 40 evenly spaced depths, 0% (start) to 100% (end) of the filler.
DEPTHS = tuple(round(i * 100 / 39) for i in range(40))
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def essay_sentences(sources: Sources, words: int) -> list[str]:
    """The first `words` words of the essays (cycled when more are asked for), split into sentences."""
    stream = sources.essay_words
    if words <= len(stream):
        chosen = stream[:words]
    else:
        chosen = [stream[i % len(stream)] for i in range(words)]
    text = " ".join(chosen)
    return [s for s in _SENTENCE_END.split(text) if s] if text else []


def noise_lines(passage: str, words: int) -> list[str]:
    """`words` words of `passage` repeated, one passage per line (the last one possibly cut short)."""
    passage_words = passage.split()
    full, rest = divmod(words, len(passage_words))
    lines = [passage] * full
    if rest:
        lines.append(" ".join(passage_words[:rest]))
    return lines


def stream_lines(next_line: Callable[[], str], cache: list[str], chars: int) -> list[str]:
    """Lines from `next_line` (memoised in `cache`) up to exactly `chars` characters, the last line cut.

    Characters count the lines' text only; the newlines that will join them are not counted.
    """
    lines, total = [], 0
    i = 0
    while total < chars:
        if i == len(cache):
            cache.append(next_line())
        line = cache[i]
        take = min(len(line), chars - total)
        lines.append(line[:take])
        total += take
        i += 1
    return lines


def positions_at_depths(n_pieces: int, depths: list[float]) -> list[int]:
    """Gap indices (0..n_pieces) at the given percent depths, in ascending order."""
    return sorted(min(n_pieces, int(n_pieces * depth / 100)) for depth in depths)


def insert_at(pieces: list[str], statements: list[str], positions: list[int]) -> list[str]:
    """`pieces` with `statements[i]` placed before piece `positions[i]` (ascending; ties keep their order)."""
    out, previous = [], 0
    for position, statement in zip(positions, statements):
        out.extend(pieces[previous:position])
        out.append(statement)
        previous = position
    out.extend(pieces[previous:])
    return out
