"""Needle-in-a-haystack variants: retrieve every value hidden for the asked key(s).

Needles read "One of the special magic {kind} for {key} is: {value}." and sit at RULER's 40 depths.
Filler is noise (the repeated "grass is green" passage), Paul Graham essays, or distractor needles
with other keys (the multikey_2/3 variants, where everything in the context looks like a needle).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from retrace.evaluation.ruler.haystack import (
    DEPTHS,
    essay_sentences,
    insert_at,
    noise_lines,
    positions_at_depths,
    stream_lines,
)
from retrace.evaluation.ruler.prompts import TaskText
from retrace.evaluation.ruler.sources import Sources, distinct_values, random_value, template

HAYSTACKS = ("noise", "essay", "needles")


@dataclass(frozen=True)
class NiahVariant:
    haystack: str        # one of HAYSTACKS
    key_kind: str        # "words" | "numbers" | "uuids"
    value_kind: str
    keys: int = 1        # keys with needles in the context
    values: int = 1      # values (needles) per key
    queries: int = 1     # keys asked for (at most `keys`)


# RULER's synthetic.yaml, task by task.
NIAH_VARIANTS = {
    "niah_single_1": NiahVariant("noise", "words", "numbers"),
    "niah_single_2": NiahVariant("essay", "words", "numbers"),
    "niah_single_3": NiahVariant("essay", "words", "uuids"),
    "niah_multikey_1": NiahVariant("essay", "words", "numbers", keys=4),
    "niah_multikey_2": NiahVariant("needles", "words", "numbers"),
    "niah_multikey_3": NiahVariant("needles", "uuids", "uuids"),
    "niah_multivalue": NiahVariant("essay", "words", "numbers", values=4),
    "niah_multiquery": NiahVariant("essay", "words", "numbers", keys=4, queries=4),
}


def _joined(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + ", and " + items[-1]


def draft_niah(variant: NiahVariant, rng: random.Random, sample_seed: str, sources: Sources):
    """`(render, limit)`: `render(amount)` -> TaskText with `amount` filler units; `limit` None (unbounded)."""
    needle = template("needle")
    n_keys = max(variant.keys, variant.queries)
    keys = distinct_values(variant.key_kind, n_keys, rng, sources)
    all_values = distinct_values(variant.value_kind, n_keys * variant.values, rng, sources, exclude=set(keys))
    values = [all_values[i * variant.values:(i + 1) * variant.values] for i in range(n_keys)]
    needles = [needle.format(kind=variant.value_kind, key=k, value=v) for k, vs in zip(keys, values) for v in vs]
    rng.shuffle(needles)
    depths = rng.sample(DEPTHS, len(needles))
    asked = rng.sample(range(n_keys), variant.queries)
    answers = tuple(v for i in asked for v in values[i])
    query = _joined([keys[i] for i in asked])
    form = "one" if len(answers) == 1 else "many"
    kinds = {"kind": variant.value_kind, "kind_one": variant.value_kind[:-1], "query": query}
    question_template, prefix = template(f"niah_{form}"), template(f"niah_{form}_answer").format(**kinds)

    distractor_rng = random.Random(f"{sample_seed}:distractors")
    taken = set(keys) | set(all_values)
    distractors: list[str] = []

    def next_distractor() -> str:
        key, value = distinct_values(variant.key_kind, 1, distractor_rng, sources, exclude=taken)[0], \
            random_value(variant.value_kind, distractor_rng, sources)
        return needle.format(kind=variant.value_kind, key=key, value=value)

    def render(amount: int) -> TaskText:
        if variant.haystack == "essay":
            pieces, joiner = essay_sentences(sources, amount), " "
        elif variant.haystack == "noise":
            pieces, joiner = noise_lines(sources.noise, amount), "\n"
        else:
            pieces, joiner = stream_lines(next_distractor, distractors, amount), "\n"
        context = joiner.join(insert_at(pieces, needles, positions_at_depths(len(pieces), depths)))
        return TaskText(question=question_template.format(context=context, **kinds), answer_prefix=prefix,
                        answers=answers, meta={"depths": sorted(depths)})

    return render, None
