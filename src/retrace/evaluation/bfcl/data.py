"""BFCL's non-live Python categories read from the pinned `bfcl-eval` wheel, questions joined to answers.

The wheel ships each category as JSON lines under `bfcl_eval/data/` (`BFCL_v4_<file>.json`) and the
accepted answers under `bfcl_eval/data/possible_answer/` with the same ids; irrelevance has no answer
file, since its only correct reply is no call at all. A file that is missing, malformed or whose ids
do not line up with its answers is a `BFCLDataError`, never a silently shorter benchmark.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from retrace.evaluation.wheel_data import read_wheel_text

PACKAGE = "bfcl-eval"
DATA_DIR = "bfcl_eval/data"
VERSION_PREFIX = "BFCL_v4"

# Our category name -> the wheel's file stem (BFCL v4 calls the Python simple set `simple_python`).
CATEGORY_FILES = {
    "simple": "simple_python",
    "multiple": "multiple",
    "parallel": "parallel",
    "parallel_multiple": "parallel_multiple",
    "irrelevance": "irrelevance",
}
CATEGORIES = tuple(CATEGORY_FILES)
AST_CATEGORIES = ("simple", "multiple", "parallel", "parallel_multiple")  # scored by the AST checker


class BFCLDataError(RuntimeError):
    """A BFCL data file that is missing, malformed, or out of step with its possible answers."""


@dataclass(frozen=True)
class BFCLQuestion:
    """One test entry: the user turn(s), the functions offered, and (except irrelevance) accepted answers.

    `possible_answer` is BFCL's ground truth: a list of `{function_name: {param: [accepted values]}}`,
    one per expected call, where `""` among the accepted values means the parameter may be left out.
    """

    id: str
    category: str
    question: list[list[dict[str, str]]]
    functions: list[dict[str, Any]]
    possible_answer: list[dict[str, dict[str, list[Any]]]] | None

    @property
    def index(self) -> int:
        return int(self.id.rsplit("_", 1)[1])


def _member(category: str, answers: bool = False) -> str:
    if category not in CATEGORY_FILES:
        raise ValueError(f"unknown BFCL category {category!r}; known: {', '.join(CATEGORIES)}")
    folder = f"{DATA_DIR}/possible_answer" if answers else DATA_DIR
    return f"{folder}/{VERSION_PREFIX}_{CATEGORY_FILES[category]}.json"


def _json_lines(member: str) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(read_wheel_text(PACKAGE, member).splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BFCLDataError(f"{member} line {number}: not JSON ({exc})") from exc
        if not isinstance(row, dict) or "id" not in row:
            raise BFCLDataError(f"{member} line {number}: expected an object with an 'id'")
        rows.append(row)
    if not rows:
        raise BFCLDataError(f"{member} holds no entries")
    return rows


def load_questions(category: str) -> list[dict[str, Any]]:
    """The wheel's entries of `category` as stored: `{id, question, function}` dicts, in file order.

    Public for the decontamination sets, which read the user turns of every question.
    """
    rows = _json_lines(_member(category))
    for row in rows:
        if not isinstance(row.get("question"), list) or not isinstance(row.get("function"), list):
            raise BFCLDataError(f"{_member(category)}: entry {row['id']} lacks a question or function list")
    return rows


def load_possible_answers(category: str) -> dict[str, list[dict[str, Any]]]:
    """`{id: ground_truth}` for an AST category (irrelevance has none: a ValueError)."""
    if category not in AST_CATEGORIES:
        raise ValueError(f"BFCL category {category!r} has no possible answers; those that do: {AST_CATEGORIES}")
    answers = {}
    for row in _json_lines(_member(category, answers=True)):
        truth = row.get("ground_truth")
        if not isinstance(truth, list) or not all(isinstance(c, dict) and len(c) == 1 for c in truth):
            raise BFCLDataError(f"possible answer {row['id']}: ground_truth is not a list of one-call dicts")
        answers[row["id"]] = truth
    return answers


def load_category(category: str) -> list[BFCLQuestion]:
    """Every question of `category` with its possible answer (None for irrelevance), in file order."""
    rows = load_questions(category)
    answers = load_possible_answers(category) if category in AST_CATEGORIES else None
    if answers is not None:
        ids = [row["id"] for row in rows]
        if sorted(ids) != sorted(answers):
            missing, extra = sorted(set(ids) - set(answers)), sorted(set(answers) - set(ids))
            raise BFCLDataError(f"BFCL {category}: questions and possible answers differ "
                                f"(no answer for {missing[:5]}, answers without question {extra[:5]})")
    return [BFCLQuestion(id=row["id"], category=category, question=row["question"], functions=row["function"],
                         possible_answer=answers[row["id"]] if answers is not None else None) for row in rows]
