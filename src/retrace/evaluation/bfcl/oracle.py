"""The reply a correct model would write for a BFCL question, built from its possible answer.

The checker is only trustworthy if every shipped answer, written out the way a model would write it,
is accepted; this module writes those replies (for the faithfulness tests and for scripted model
doubles). A `choice` says which accepted value to write: the first, the last, or the first with
every omittable parameter left out. Parameters the answer lists but the schema does not offer (a
few BFCL entries do, always marked omittable) are left out, as a model that follows the schema would.
"""

from __future__ import annotations

from typing import Any

from retrace.evaluation.bfcl.checker import PYTHON_TYPES
from retrace.evaluation.bfcl.data import BFCLQuestion
from retrace.evaluation.bfcl.decoding import Call, render_calls

CHOICES = ("first", "last", "omit_optional")


class NoOracleAnswer(ValueError):
    """A possible answer no reply can satisfy (e.g. it requires a parameter the schema lacks)."""


def _pick(accepted: list[Any], choice: str) -> Any:
    values = [a for a in accepted if a != ""]
    if not values:
        raise NoOracleAnswer(f"only '' is accepted in {accepted}")
    return values[-1] if choice == "last" else values[0]


def _nested_dict(candidate: dict[str, list[Any]], choice: str) -> dict[str, Any]:
    """A dict answer is itself `{key: [accepted values]}`: write one accepted value per key."""
    written = {}
    for key, accepted in candidate.items():
        accepted = accepted if isinstance(accepted, list) else [accepted]
        if "" in accepted and (choice == "omit_optional" or all(a == "" for a in accepted)):
            continue
        written[key] = _pick(accepted, choice)
    return written


def _value(spec: dict[str, Any], accepted: list[Any], choice: str) -> Any:
    value = _pick(accepted, choice)
    declared = PYTHON_TYPES.get(spec.get("type", ""))
    item = PYTHON_TYPES.get(spec.get("items", {}).get("type", ""))
    if declared is dict and isinstance(value, dict):
        return _nested_dict(value, choice)
    if declared is list and item is dict and isinstance(value, list):
        return [_nested_dict(v, choice) if isinstance(v, dict) else v for v in value]
    return value


def oracle_calls(question: BFCLQuestion, choice: str = "first") -> list[Call]:
    """Calls that satisfy `question`'s possible answer (none for irrelevance), in answer order."""
    if choice not in CHOICES:
        raise ValueError(f"choice must be one of {CHOICES}, got {choice!r}")
    calls = []
    for expected in question.possible_answer or []:
        ((name, params),) = expected.items()
        function = next((f for f in question.functions if f["name"] == name), None)
        if function is None:
            raise NoOracleAnswer(f"{question.id}: the answer calls {name!r}, which is not offered")
        schema = function["parameters"]["properties"]
        required = function["parameters"].get("required", [])
        arguments = {}
        for param, accepted in params.items():
            omittable = "" in accepted
            if param not in schema:
                if not omittable:
                    raise NoOracleAnswer(f"{question.id}: {param!r} is required by the answer, absent from the schema")
                continue
            if omittable and param not in required and (choice == "omit_optional" or accepted == [""]):
                continue
            arguments[param] = _value(schema[param], accepted, choice)
        calls.append({name: arguments})
    return calls


def oracle_reply(question: BFCLQuestion, choice: str = "first", reverse: bool = False) -> str:
    """`oracle_calls` written as a model's reply text (`reverse`: the calls in the opposite order)."""
    calls = oracle_calls(question, choice)
    return render_calls(calls[::-1] if reverse else calls)
