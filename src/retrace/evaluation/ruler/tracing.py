"""Variable tracking (vt): follow a chain of assignments through noise and name every variable in it.

One chain of four hops, as RULER's default: `VAR A = 12345`, `VAR B = VAR A`, ... `VAR E = VAR D`,
the statements in chain order at random places among noise lines; the answer is all five names. One
worked example with its own short chain comes first (RULER shows one too; ours has less noise so
that short lengths still fit).
"""

from __future__ import annotations

import random
import string

from retrace.evaluation.ruler.haystack import insert_at, noise_lines
from retrace.evaluation.ruler.prompts import TaskText
from retrace.evaluation.ruler.sources import Sources, template

CHAIN_HOPS = 4
NAME_LETTERS = 5
EXAMPLE_NOISE_LINES = 2
ASSIGN_VALUE, ASSIGN_VARIABLE = "VAR {name} = {value}", "VAR {name} = VAR {source}"


def _chain(rng: random.Random, exclude: set[str]) -> tuple[list[str], str, list[str], list[float]]:
    """Names, value, statements in chain order, and their sorted relative positions in [0, 1)."""
    names: list[str] = []
    while len(names) < CHAIN_HOPS + 1:
        name = "".join(rng.choices(string.ascii_uppercase, k=NAME_LETTERS))
        if name not in names and name not in exclude:
            names.append(name)
    value = str(rng.randint(10000, 99999))
    statements = [ASSIGN_VALUE.format(name=names[0], value=value)]
    statements += [ASSIGN_VARIABLE.format(name=names[i + 1], source=names[i]) for i in range(CHAIN_HOPS)]
    return names, value, statements, sorted(rng.random() for _ in statements)


def _context(passage: str, noise_words: int, statements: list[str], places: list[float]) -> str:
    lines = noise_lines(passage, noise_words)
    positions = [min(len(lines), int(place * (len(lines) + 1))) for place in places]
    return "\n".join(insert_at(lines, statements, positions))


def draft_vt(rng: random.Random, sample_seed: str, sources: Sources):
    """`(render, limit)`: `render(noise_words)` -> TaskText; unbounded filler."""
    names, value, statements, places = _chain(rng, set())
    example_rng = random.Random(f"{sample_seed}:example")
    example_names, example_value, example_statements, example_places = _chain(example_rng, set(names))
    while example_value == value:
        example_value = str(example_rng.randint(10000, 99999))
        example_statements[0] = ASSIGN_VALUE.format(name=example_names[0], value=example_value)
    question, prefix = template("vt"), template("vt_answer")
    example = (question.format(context=_context(sources.noise, EXAMPLE_NOISE_LINES * len(sources.noise.split()), example_statements,
                                                 example_places), value=example_value),
               prefix.format(count=len(example_names), value=example_value), " ".join(example_names))

    def render(noise_words: int) -> TaskText:
        return TaskText(question=question.format(context=_context(sources.noise, noise_words, statements, places),
                                                 value=value),
                        answer_prefix=prefix.format(count=len(names), value=value), answers=tuple(names),
                        example=example, meta={"value": value})

    return render, None
