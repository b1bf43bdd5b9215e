"""One reply scored as BFCL scores it, and the per-category accuracies averaged as BFCL averages them.

A reply that does not decode is a counted error (`ast_decoder:decoder_failed` in the AST categories,
a correct abstention in irrelevance), never a crash. Averages: BFCL's non-live summary is the
*unweighted* mean of the simple, multiple, parallel and parallel_multiple accuracies (our simple is
its Python part; BFCL also averages Java and JavaScript into simple), with irrelevance reported
apart; `overall` here is the unweighted mean over every category run, irrelevance included.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from retrace.evaluation.bfcl.checker import Verdict, check_calls, check_irrelevance
from retrace.evaluation.bfcl.data import AST_CATEGORIES, BFCLQuestion
from retrace.evaluation.bfcl.decoding import DecodeError, decode_calls, jsonable


def score_reply(question: BFCLQuestion, reply: str) -> dict[str, Any]:
    """The record of one question: the raw reply, the decoded calls, the verdict and its reason."""
    decode_error = None
    try:
        calls = decode_calls(reply)
    except DecodeError as exc:
        calls, decode_error = None, str(exc)
    if question.category == "irrelevance":
        verdict = check_irrelevance(calls)
    elif calls is None:
        verdict = Verdict(False, "ast_decoder:decoder_failed", f"reply did not decode: {decode_error}")
    else:
        verdict = check_calls(question.functions, calls, question.possible_answer or [], question.category)
    return {"id": question.id, "category": question.category, "output": reply,
            "decoded_calls": jsonable(calls) if calls is not None else None, "decode_error": decode_error,
            "correct": verdict.valid, "error_type": verdict.error_type, "error": verdict.error,
            "possible_answer": question.possible_answer}


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def aggregate(records: list[dict[str, Any]], categories: list[str]) -> tuple[dict[str, float], dict[str, Any]]:
    """Percent accuracies: per category, `non_live_ast` (BFCL's summary), `overall`, `pooled`; and counts."""
    metrics: dict[str, float] = {}
    per_category: dict[str, Any] = {}
    for category in categories:
        rows = [r for r in records if r["category"] == category]
        if not rows:
            continue
        correct = sum(r["correct"] for r in rows)
        metrics[category] = 100 * correct / len(rows)
        per_category[category] = {
            "accuracy": metrics[category], "questions": len(rows), "correct": correct,
            "decode_failures": sum(r["decode_error"] is not None for r in rows),
            "error_types": dict(Counter(r["error_type"] for r in rows if not r["correct"]).most_common())}
    metrics["non_live_ast"] = _mean([metrics[c] for c in AST_CATEGORIES if c in per_category])
    metrics["overall"] = _mean([metrics[c] for c in per_category])
    metrics["pooled"] = 100 * _mean([float(r["correct"]) for r in records])
    return metrics, per_category
