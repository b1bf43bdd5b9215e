"""Aggregation tasks: name the most frequent words of a long list (cwe) or a coded text (fwe).

cwe: a numbered list where 10 common words appear 30 times each and the others 3 times (RULER's
counts from 4,096 tokens up; below that 6 and 1, with a smaller worked example, as RULER does). The
filler amount is the number of uncommon words.

fwe: coded words (6 random letters) with Zipf(2) counts: the word of rank k appears
floor(n * k^-2 / zeta(2)) times for n words; rank 1 is the noise token '...', the answer ranks 2-4.
The vocabulary has (length - generation budget) // 50 words, RULER's size, at least 4. The filler
amount is n.
"""

from __future__ import annotations

import math
import random
import string

from retrace.evaluation.ruler.prompts import TaskText
from retrace.evaluation.ruler.sources import Sources, template

CWE_COMMON = 10
CWE_LONG_FROM = 4096  # RULER's switch between its two cwe settings
# (common repeats, uncommon repeats, example words, example common repeats, example uncommon repeats)
CWE_LONG, CWE_SHORT = (30, 3, 40, 10, 3), (6, 1, 20, 3, 1)
FWE_ALPHA = 2.0
FWE_ZETA = math.pi ** 2 / 6   # zeta(2)
FWE_WORD_LETTERS = 6
FWE_NOISE = "..."
FWE_ANSWERS = 3


def _numbered(words: list[str]) -> str:
    return " ".join(f"{i + 1}. {word}" for i, word in enumerate(words))


def _word_list(common: list[str], uncommon: list[str], common_repeats: int, uncommon_repeats: int,
               shuffle_seed: str) -> list[str]:
    words = common * common_repeats + uncommon * uncommon_repeats
    random.Random(shuffle_seed).shuffle(words)
    return words


def draft_cwe(rng: random.Random, sample_seed: str, sources: Sources, length: int):
    """`(render, limit)`: `render(uncommon_words)` -> TaskText; limit: the words the lists hold."""
    common_repeats, uncommon_repeats, example_words, example_common, example_uncommon = (
        CWE_LONG if length >= CWE_LONG_FROM else CWE_SHORT)
    pool = sources.common_word_pool
    order = rng.sample(pool, len(pool))
    common = order[:CWE_COMMON]
    example_rng = random.Random(f"{sample_seed}:example")
    example_pool = example_rng.sample(order[CWE_COMMON:], example_words)
    example_list = _word_list(example_pool[:CWE_COMMON], example_pool[CWE_COMMON:], example_common,
                              example_uncommon, f"{sample_seed}:example-shuffle")
    question, prefix = template("cwe"), template("cwe_answer").format(count=CWE_COMMON)
    example = (question.format(context=_numbered(example_list), count=CWE_COMMON), prefix,
               _numbered(example_pool[:CWE_COMMON]))

    def render(uncommon_words: int) -> TaskText:
        words = _word_list(common, order[CWE_COMMON:CWE_COMMON + uncommon_words], common_repeats,
                           uncommon_repeats, f"{sample_seed}:shuffle:{uncommon_words}")
        return TaskText(question=question.format(context=_numbered(words), count=CWE_COMMON), answer_prefix=prefix,
                        answers=tuple(common), example=example,
                        meta={"repeats": [common_repeats, uncommon_repeats]})

    return render, len(pool) - CWE_COMMON


def fwe_counts(words: int, vocabulary: int) -> list[int]:
    """Occurrences of the words of rank 1..vocabulary among `words` Zipf-distributed words."""
    return [int(words * k ** -FWE_ALPHA / FWE_ZETA) for k in range(1, vocabulary + 1)]


def draft_fwe(rng: random.Random, sample_seed: str, sources: Sources, length: int, max_new_tokens: int):
    """`(render, limit)`: `render(words)` -> TaskText, with `meta["separated"]` saying whether the top 3
    strictly outnumber every other coded word (checked by the caller); unbounded filler."""
    size = max(FWE_ANSWERS + 1, (length - max_new_tokens) // 50)
    vocabulary: list[str] = []
    seen = set()
    while len(vocabulary) < size:
        word = "".join(rng.choices(string.ascii_lowercase, k=FWE_WORD_LETTERS))
        if word not in seen:
            seen.add(word)
            vocabulary.append(word)
    vocabulary[0] = FWE_NOISE
    answers = tuple(vocabulary[1:FWE_ANSWERS + 1])
    question, prefix = template("fwe"), template("fwe_answer")

    def render(words: int) -> TaskText:
        counts = fwe_counts(words, size)
        text = [w for w, c in zip(vocabulary, counts) for _ in range(c)]
        random.Random(f"{sample_seed}:shuffle:{words}").shuffle(text)
        rest = counts[FWE_ANSWERS + 1:]
        separated = counts[FWE_ANSWERS] > max(rest, default=0)  # counts fall with rank: rank 4 vs rank 5
        return TaskText(question=question.format(context=" ".join(text)), answer_prefix=prefix, answers=answers,
                        meta={"separated": separated, "vocabulary": size})

    return render, None
