"""Language-neutral checks of model-written prose, shared by the policy's validation and the proposer's.

Both the agents (policy replies) and refinement (proposals) refuse text that loops; the rule lives here
once because `refine` may not import `agents`.
"""

from __future__ import annotations

REPEAT_NGRAM = 4            # word n-grams compared
REPEAT_COVERAGE = 0.5       # share of the words inside a repeated n-gram that makes a loop
REPEAT_MIN_REPLY_WORDS = 16  # shorter texts are never judged by coverage


def loops_by_coverage(words: list[str]) -> bool:
    """Whether at least half of `words` lie inside word 4-grams that occur more than once."""
    if len(words) < REPEAT_MIN_REPLY_WORDS:
        return False
    grams = [tuple(words[i:i + REPEAT_NGRAM]) for i in range(len(words) - REPEAT_NGRAM + 1)]
    counts: dict[tuple[str, ...], int] = {}
    for gram in grams:
        counts[gram] = counts.get(gram, 0) + 1
    covered: set[int] = set()
    for i, gram in enumerate(grams):
        if counts[gram] > 1:
            covered.update(range(i, i + REPEAT_NGRAM))
    return len(covered) >= REPEAT_COVERAGE * len(words)
