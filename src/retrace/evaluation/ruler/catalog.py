"""The RULER tasks by name, and one fitted sample of a task at a length.

A length counts what the model must hold: prompt tokens (with the chat or base wrapping and the
answer prefix) plus the task's generation budget, as RULER's `max_seq_length` does. A sample lands
within `LENGTH_TOLERANCE` of it and never over. Each sample's random choices come from a
`random.Random` seeded by the string "seed:task:length:index", so samples do not depend on which
other tasks or lengths a run asks for, and every model with the same tokenizer reads the same text.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, field
from typing import Any

from retrace.evaluation.ruler.aggregation import draft_cwe, draft_fwe
from retrace.evaluation.ruler.fitting import LengthError, fit_amount
from retrace.evaluation.ruler.niah import NIAH_VARIANTS, draft_niah
from retrace.evaluation.ruler.prompts import PromptFormat
from retrace.evaluation.ruler.sources import Sources
from retrace.evaluation.ruler.tracing import draft_vt

LENGTH_TOLERANCE = 0.02


@dataclass(frozen=True)
class TaskSpec:
    name: str
    family: str            # niah, vt, cwe, fwe
    max_new_tokens: int    # RULER's generation budget for the family
    scorer: str            # a key of scoring.SCORERS
    filler_unit: str       # what a filler amount counts


_NIAH_UNITS = {"essay": "essay words", "noise": "noise words", "needles": "distractor characters"}
TASK_SPECS: dict[str, TaskSpec] = {
    **{name: TaskSpec(name, "niah", 128, "string_match_all", _NIAH_UNITS[variant.haystack])
       for name, variant in NIAH_VARIANTS.items()},
    "vt": TaskSpec("vt", "vt", 30, "string_match_all", "noise words"),
    "cwe": TaskSpec("cwe", "cwe", 120, "string_match_all", "uncommon words"),
    "fwe": TaskSpec("fwe", "fwe", 50, "string_match_all", "coded words"),
}
TASK_NAMES = tuple(TASK_SPECS)


@dataclass(frozen=True)
class RulerSample:
    task: str
    length: int            # requested: prompt tokens + max_new_tokens
    index: int
    prompt: str            # exactly what `TextGenerator.complete` is given
    answers: tuple[str, ...]
    prompt_tokens: int
    max_new_tokens: int
    filler_amount: int
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.max_new_tokens

    def record(self) -> dict[str, Any]:
        """What a results record keeps of the sample (the prompt itself only as a digest)."""
        return {"task": self.task, "length": self.length, "index": self.index, "prompt_tokens": self.prompt_tokens,
                "max_new_tokens": self.max_new_tokens, "total_tokens": self.total_tokens,
                "filler_amount": self.filler_amount, "answers": list(self.answers),
                "prompt_sha256": hashlib.sha256(self.prompt.encode()).hexdigest()[:16],
                "prompt_tail": self.prompt[-300:], **self.meta}


def sample_seed(seed: int, task: str, length: int, index: int) -> str:
    return f"{seed}:{task}:{length}:{index}"


def _draft(spec: TaskSpec, rng: random.Random, seed_text: str, sources: Sources, length: int, budget: int):
    if spec.family == "niah":
        return draft_niah(NIAH_VARIANTS[spec.name], rng, seed_text, sources)
    if spec.family == "vt":
        return draft_vt(rng, seed_text, sources)
    if spec.family == "cwe":
        return draft_cwe(rng, seed_text, sources, length)
    return draft_fwe(rng, seed_text, sources, length, budget)


def build_sample(task: str, length: int, index: int, seed: int, sources: Sources, prompt_format: PromptFormat,
                 max_new_tokens: int = 0) -> RulerSample:
    """Sample `index` of `task` fitted to `length` tokens; LengthError when that length cannot be hit.

    `max_new_tokens` 0 means the task's own RULER budget.
    """
    spec = TASK_SPECS[task]
    budget = max_new_tokens or spec.max_new_tokens
    target = length - budget
    min_tokens = math.ceil(length * (1 - LENGTH_TOLERANCE)) - budget
    if target < 1:
        raise LengthError(f"{length} tokens leave no room for a prompt beside the {budget}-token budget")
    seed_text = sample_seed(seed, task, length, index)
    render_text, limit = _draft(spec, random.Random(seed_text), seed_text, sources, length, budget)
    fit = fit_amount(lambda amount: prompt_format.render(render_text(amount)), prompt_format.count, target,
                     min_tokens, start=max(1, target // 4), limit=limit)
    text = render_text(fit.amount)
    if text.meta.get("separated") is False:
        raise LengthError(f"too few words at {length} tokens for the top {len(text.answers)} to stand out")
    meta = {k: v for k, v in text.meta.items() if k != "separated"}
    return RulerSample(task=task, length=length, index=index, prompt=fit.prompt, answers=text.answers,
                       prompt_tokens=fit.tokens, max_new_tokens=budget, filler_amount=fit.amount, meta=meta)
