"""RULER's scoring: case-insensitive substring match of each reference in the model's answer.

string_match_all (every synthetic task): the share of references found in the prediction.
string_match_part (RULER's QA tasks): 1 when any reference is found. A task's score is the mean over
its samples, reported in percent as RULER does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_CONTROL = re.compile(r"[\x00-\x1f]")


def clean_prediction(text: str) -> str:
    """Control characters become newlines and the ends are stripped (RULER's post-processing)."""
    return _CONTROL.sub("\n", text).strip()


def string_match_all(prediction: str, references: Sequence[str]) -> float:
    """Share of `references` found in `prediction` (case-insensitive), in [0, 1]."""
    if not references:
        raise ValueError("string_match_all needs at least one reference")
    lowered = prediction.lower()
    return sum(ref.lower() in lowered for ref in references) / len(references)


def string_match_part(prediction: str, references: Sequence[str]) -> float:
    """1.0 when any of `references` is in `prediction` (case-insensitive), else 0.0."""
    if not references:
        raise ValueError("string_match_part needs at least one reference")
    lowered = prediction.lower()
    return float(any(ref.lower() in lowered for ref in references))


SCORERS = {"string_match_all": string_match_all, "string_match_part": string_match_part}
