"""BFCL's AST checker for Python calls, restated: does a decoded reply match one of the accepted answers?

Written from a reading of `bfcl_eval/eval_checker/ast_eval/ast_checker.py` (bfcl-eval 2026.3.23), rule
for rule, including its quirks, so our accuracy is the number BFCL would report:

- Names: a call must use the function's exact name, dots included (prompting models have no
  underscore-for-dot renaming). simple: exactly one call, checked against the first function;
  multiple: exactly as many calls as expected (one), checked against the expected function;
  parallel and parallel_multiple: as many calls as expected, matched in any order, greedily (each
  expected call, in answer order, takes the first unmatched reply call that passes).
- Parameters: every required one present; none outside both the schema and the answer; every
  answer parameter whose accepted values lack `""` present (`""` means "may be omitted").
- Types (schema type -> Python): string/any -> str, integer -> int, float -> float, boolean -> bool,
  array/tuple -> list, dict -> dict; exact types (True is no integer), an int accepted for a float
  (converted), a tuple accepted for a tuple parameter (as a list). Items of arrays and tuples are
  checked one level deep against the item type, without the int-for-float allowance. When the
  accepted values have another type than the schema's (BFCL's "variable" answers, e.g. a name
  string for an integer), a value of the accepted values' type passes and is compared exactly.
- Values: strings compared after standardisation (spaces and `,./-_*^` removed, lowercased, `'` as
  `"`); lists element-wise with their string elements standardised, in order; dicts key by key
  (values standardised, keys not), keys whose accepted values hold `""` optional; lists of dicts
  dict by dict, same length; everything else (numbers, booleans) by Python equality with an
  accepted value (so 5 == 5.0).
- Irrelevance: correct when the reply decodes to no call at all (no list of calls, or an empty one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from retrace.evaluation.bfcl.decoding import Call

PYTHON_TYPES: dict[str, type] = {"string": str, "integer": int, "float": float, "boolean": bool,
                                 "array": list, "tuple": list, "dict": dict, "any": str}
ITEM_CHECKED_TYPES = ("array", "tuple")  # schema types whose items are type-checked (one level)
_STANDARDISED_AWAY = re.compile(r"[ ,./\-_*^]")


@dataclass(frozen=True)
class Verdict:
    """The checker's answer; `error_type` uses BFCL's own names (e.g. `value_error:string`) when invalid."""

    valid: bool
    error_type: str = ""
    error: str = ""


ACCEPTED = Verdict(True)


def _reject(error_type: str, error: str) -> Verdict:
    return Verdict(False, error_type, error)


def standardize_string(text: str) -> str:
    """BFCL's string normal form: "April 1, 2024" and "april 1 2024" compare equal."""
    return _STANDARDISED_AWAY.sub("", text).lower().replace("'", '"')


def _standardized(value: Any) -> Any:
    return standardize_string(value) if type(value) is str else value


def _answer_type(accepted: list[Any]) -> type | None:
    """The type of the first accepted value that is not `""` (None when only `""` is accepted)."""
    return next((type(a) for a in accepted if a != ""), None)


def _item_type_ok(item: Any, candidate: list[Any], item_type: type) -> bool:
    answer_type = _answer_type(candidate)
    return type(item) is item_type or (answer_type is not None and type(item) is answer_type)


def _type_check(param: str, value: Any, accepted: list[Any], declared: str, expected: type,
                item_type: type | None) -> tuple[Verdict, bool]:
    """(verdict, is_variable): is the value's type the schema's, or the accepted values' own type?"""
    answer_type = _answer_type(accepted)
    is_variable = answer_type is not None and answer_type is not expected
    if type(value) is expected:
        if item_type is None:
            return ACCEPTED, is_variable
        for candidate in accepted:
            if type(candidate) is not list or all(_item_type_ok(item, candidate, item_type) for item in value):
                return ACCEPTED, is_variable
        return _reject("type_error:nested", f"parameter {param!r}: expected {declared} of "
                       f"{item_type.__name__}, got {value!r}"), is_variable
    if answer_type is not None and type(value) is answer_type:
        return ACCEPTED, True
    return _reject("type_error:simple", f"parameter {param!r}: expected type {declared}, "
                   f"got {type(value).__name__} ({value!r})"), is_variable


def _check_string(param: str, value: str, accepted: list[Any]) -> Verdict:
    if standardize_string(value) in [standardize_string(a) for a in accepted if type(a) is str]:
        return ACCEPTED
    return _reject("value_error:string", f"parameter {param!r}: {value!r} is none of {accepted} (standardised)")


def _check_list(param: str, value: list, accepted: list[Any]) -> Verdict:
    # A `""` candidate becomes an empty list, as in BFCL (so `[]` passes where the parameter is optional).
    candidates = [[_standardized(item) for item in candidate] for candidate in accepted
                  if isinstance(candidate, (list, str))]
    if [_standardized(item) for item in value] in candidates:
        return ACCEPTED
    return _reject("value_error:list/tuple", f"parameter {param!r}: {value!r} is none of {accepted}")


def _dict_against(value: dict, candidate: dict) -> Verdict:
    for key, item in value.items():
        if key not in candidate:
            return _reject("value_error:dict_key", f"unexpected dict key {key!r}")
        options = candidate[key] if isinstance(candidate[key], list) else [candidate[key]]
        if _standardized(item) not in [_standardized(o) for o in options]:
            return _reject("value_error:dict_value", f"dict key {key!r}: {item!r} is none of {options}")
    for key, options in candidate.items():
        if key not in value and "" not in (options if isinstance(options, list) else [options]):
            return _reject("value_error:dict_key", f"missing dict key {key!r}")
    return ACCEPTED


def _check_dict(param: str, value: Any, accepted: list[Any]) -> Verdict:
    verdict = _reject("dict_checker:unclear", f"parameter {param!r}: no accepted dict to compare with")
    if not isinstance(value, dict):
        return _reject("type_error:nested", f"parameter {param!r}: {value!r} is not a dict")
    for candidate in accepted:
        if isinstance(candidate, dict):
            verdict = _dict_against(value, candidate)
            if verdict.valid:
                return ACCEPTED
    return verdict


def _check_list_of_dicts(param: str, value: list, accepted: list[Any]) -> Verdict:
    verdict = _reject("list_dict_checker:unclear", f"parameter {param!r}: no accepted list of dicts")
    for candidate in accepted:
        if not isinstance(candidate, (list, str)) or len(value) != len(candidate):
            verdict = _reject("value_error:list_dict_count", f"parameter {param!r}: wrong number of dicts")
            continue
        for item, expected in zip(value, candidate):
            verdict = _check_dict(param, item, [expected])
            if not verdict.valid:
                break
        else:
            return ACCEPTED
    return verdict


def _check_value(param: str, value: Any, accepted: list[Any], expected: type, item_type: type | None,
                 is_variable: bool) -> Verdict:
    if not is_variable:
        if expected is dict:
            return _check_dict(param, value, accepted)
        if expected is list and item_type is dict:
            return _check_list_of_dicts(param, value, accepted)
        if expected is str:
            return _check_string(param, value, accepted)
        if expected is list:
            return _check_list(param, value, accepted)
    if value in accepted:
        return ACCEPTED
    return _reject("value_error:others", f"parameter {param!r}: {value!r} is none of {accepted}")


def _schema_types(function: dict[str, Any], param: str) -> tuple[str, type, type | None]:
    spec = function["parameters"]["properties"][param]
    declared = spec.get("type")
    if declared not in PYTHON_TYPES:
        raise ValueError(f"function {function['name']!r}, parameter {param!r}: unknown schema type {declared!r}")
    item_type = None
    if declared in ITEM_CHECKED_TYPES:
        item_declared = spec.get("items", {}).get("type")
        if item_declared not in PYTHON_TYPES:
            raise ValueError(f"function {function['name']!r}, parameter {param!r}: unknown item type "
                             f"{item_declared!r}")
        item_type = PYTHON_TYPES[item_declared]
    return declared, PYTHON_TYPES[declared], item_type


def check_call(function: dict[str, Any], call: Call, answer: Call) -> Verdict:
    """One reply call against one expected call (`answer`: `{name: {param: [accepted values]}}`)."""
    accepted_params = next(iter(answer.values()))
    name = function["name"]
    if name not in call:
        return _reject("simple_function_checker:wrong_func_name",
                       f"function {name!r} not called (called {next(iter(call), '')!r})")
    arguments = call[name]
    schema = function["parameters"]["properties"]
    for param in function["parameters"].get("required", []):
        if param not in arguments:
            return _reject("simple_function_checker:missing_required", f"missing required parameter {param!r}")
    for param, value in arguments.items():
        if param not in schema or param not in accepted_params:
            return _reject("simple_function_checker:unexpected_param", f"unexpected parameter {param!r}")
        declared, expected, item_type = _schema_types(function, param)
        if declared == "tuple" and type(value) is tuple:
            value = list(value)
        if declared == "float" and type(value) is int:
            value = float(value)
        accepted = accepted_params[param]
        verdict, is_variable = _type_check(param, value, accepted, declared, expected, item_type)
        if not verdict.valid:
            return verdict
        verdict = _check_value(param, value, accepted, expected, item_type, is_variable)
        if not verdict.valid:
            return verdict
    for param, accepted in accepted_params.items():
        if param not in arguments and "" not in accepted:
            return _reject("simple_function_checker:missing_optional",
                           f"parameter {param!r} not given and not optional")
    return ACCEPTED


def _function_named(functions: list[dict[str, Any]], name: str) -> dict[str, Any]:
    for function in functions:
        if function["name"] == name:
            return function
    raise ValueError(f"the possible answer calls {name!r}, which the question does not offer")


def check_calls(functions: list[dict[str, Any]], calls: list[Call], possible_answer: list[Call],
                category: str) -> Verdict:
    """The reply's decoded `calls` against the question's possible answer, by the category's rule."""
    if "parallel" in category:
        return _check_any_order(functions, calls, possible_answer)
    if "multiple" in category:
        if len(calls) != len(possible_answer):
            return _reject("multiple_function_checker:wrong_count",
                           f"{len(calls)} calls, expected {len(possible_answer)}")
        return check_call(_function_named(functions, next(iter(possible_answer[0]))), calls[0], possible_answer[0])
    if len(calls) != 1:
        return _reject("simple_function_checker:wrong_count", f"{len(calls)} calls, expected 1")
    return check_call(functions[0], calls[0], possible_answer[0])


def _check_any_order(functions: list[dict[str, Any]], calls: list[Call], possible_answer: list[Call]) -> Verdict:
    if len(calls) != len(possible_answer):
        return _reject("parallel_function_checker_no_order:wrong_count",
                       f"{len(calls)} calls, expected {len(possible_answer)}")
    matched: set[int] = set()
    for position, answer in enumerate(possible_answer):
        function = _function_named(functions, next(iter(answer)))
        refusals = []
        for index, call in enumerate(calls):
            if index in matched:
                continue
            verdict = check_call(function, call, answer)
            if verdict.valid:
                matched.add(index)
                break
            refusals.append(f"reply call {index}: {verdict.error_type}: {verdict.error}")
        else:
            return _reject("parallel_function_checker_no_order:cannot_find_match",
                           f"no reply call matches expected call {position} ({function['name']}): "
                           + "; ".join(refusals or ["every reply call is already matched"]))
    return ACCEPTED


def check_irrelevance(calls: list[Call] | None) -> Verdict:
    """Correct when there is no call: `calls` None (the reply did not decode) or empty."""
    if calls:
        return _reject("irrelevance_error:decoder_success", f"the reply calls {[next(iter(c)) for c in calls]}")
    return ACCEPTED
