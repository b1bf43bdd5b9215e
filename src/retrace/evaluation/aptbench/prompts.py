"""APTBench's few-shot prompts: the published templates split into shots, filled from an item, fitted to a window.

A template is three worked examples and a query, each block starting with a line `Request: ...`; the
query holds `$PLACEHOLDER$` fields, filled as the published harness fills them (each field stripped,
placeholders replaced in the harness's order). Two ways to fit a prompt that is longer than a context:

- `cut_middle` is the published harness's own truncation (its `truncate_prompt`, at 120k tokens there):
  the prompt's tokens are cut in the middle, its first and last halves kept. Generation uses it.
- `fit_shots` serves log-likelihood scoring: it keeps the whole item and drops whole shots, the earliest
  first, until the prompt fits; only when the item alone is too long is the item cut in the middle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from retrace.evaluation.aptbench.data import Subtask

BLOCK_START = re.compile(r"(?m)^(?=Request: )")


@dataclass(frozen=True)
class Template:
    """A published 3-shot template: the worked examples (each with its trailing blank lines) and the query."""

    shots: tuple[str, ...]
    query: str

    @classmethod
    def parse(cls, text: str, subtask: Subtask) -> Template:
        """Split at each `Request: ` line; ValueError when the blocks or placeholders are not as published."""
        blocks = [block for block in BLOCK_START.split(text) if block]
        if len(blocks) < 2 or "".join(blocks) != text:
            raise ValueError(f"aptbench {subtask.name}: template {subtask.template} does not split into "
                             f"'Request:' blocks (found {len(blocks)})")
        shots, query = tuple(blocks[:-1]), blocks[-1]
        placeholders = [p for p, _ in subtask.fields]
        misplaced = [p for p in placeholders if p not in query or any(p in shot for shot in shots)]
        if misplaced:
            raise ValueError(f"aptbench {subtask.name}: placeholders {misplaced} are not in the template's last "
                             f"block only ({subtask.template})")
        return cls(shots=shots, query=query)

    def fill(self, item: dict[str, Any], subtask: Subtask) -> str:
        """The query with the item's fields in, as the harness fills it; ValueError naming a missing field."""
        query = self.query
        for placeholder, key in subtask.fields:
            if key not in item:
                raise ValueError(f"aptbench {subtask.name}: item {item.get('uuid', item.get('index'))} has no "
                                 f"field '{key}'")
            query = query.replace(placeholder, str(item[key]).strip())
        return query

    def prompt(self, filled_query: str, shots: int | None = None) -> str:
        """The last `shots` worked examples (all when None) followed by the filled query."""
        count = len(self.shots) if shots is None else shots
        return "".join(self.shots[len(self.shots) - count:] if count else ()) + filled_query


@dataclass(frozen=True)
class FittedPrompt:
    """A prompt as the model reads it, and what was removed to fit its context."""

    text: str
    ids: list[int]      # without special tokens
    shots: int          # worked examples kept
    cut_tokens: int     # tokens removed from the middle (0: none)


def encode(tokenizer: Any, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]


def special_token_count(tokenizer: Any) -> int:
    """Tokens the tokenizer adds to a text (a BOS), which count against the context like the prompt's."""
    return len(tokenizer("x", verbose=False)["input_ids"]) - len(encode(tokenizer, "x"))


def middle_cut(ids: list[int], room: int) -> list[int]:
    """The first `room // 2` and the last `room - room // 2` ids (the published truncation's halves)."""
    if len(ids) <= room:
        return list(ids)
    head = room // 2
    return list(ids[:head]) + list(ids[len(ids) - (room - head):])


def cut_middle(tokenizer: Any, text: str, room: int, shots: int) -> FittedPrompt:
    """`text` whose tokens (without special tokens) fit `room`, cut in the middle as the published harness
    cuts; decoded back to text for generation, re-measured (and cut again) until the text itself fits."""
    ids = encode(tokenizer, text)
    if len(ids) <= room:
        return FittedPrompt(text, ids, shots, 0)
    if room < 2:
        raise ValueError(f"a context of {room} prompt tokens is too small for an APTBench prompt")
    target = room
    while True:
        fitted_text = tokenizer.decode(middle_cut(ids, target), skip_special_tokens=True)
        fitted = encode(tokenizer, fitted_text)
        if len(fitted) <= room or target <= 2:
            return FittedPrompt(fitted_text, fitted, shots, len(ids) - len(fitted))
        target -= len(fitted) - room


def fit_shots(tokenizer: Any, template: Template, filled_query: str, room: int) -> FittedPrompt:
    """The item with as many worked examples as fit in `room` tokens (earliest dropped first); when the item
    alone is longer, the item cut in the middle at the token level."""
    for shots in range(len(template.shots), -1, -1):
        text = template.prompt(filled_query, shots)
        ids = encode(tokenizer, text)
        if len(ids) <= room:
            return FittedPrompt(text, ids, shots, 0)
    if room < 2:
        raise ValueError(f"a context of {room} prompt tokens is too small for an APTBench prompt")
    kept = middle_cut(ids, room)
    return FittedPrompt(tokenizer.decode(kept, skip_special_tokens=True), kept, 0, len(ids) - len(kept))
