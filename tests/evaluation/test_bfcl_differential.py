"""Our decoder and checker against BFCL's own, run from the pinned wheel's source, on thousands of replies.

The wheel's `ast_checker.py` is imported from an extracted copy (its one heavy import, the model
registry, replaced by a stub that says no model renames dots), and its prompting decoder's four
functions are compiled from `model_handler/utils.py` alone (that module's other imports need
packages we do not install). Replies are every question's oracle answer plus seeded random mutations
(values retyped, re-cased, re-punctuated, dropped, added, calls renamed, shuffled, removed) and
garbage; every verdict must be BFCL's. Nothing of BFCL's is copied into retrace: it is only run here.
"""

from __future__ import annotations

import ast
import collections
import copy
import random
import re
import sys
import types

import pytest

from retrace.evaluation.bfcl import (
    AST_CATEGORIES,
    DecodeError,
    check_calls,
    decode_calls,
    load_category,
    oracle_calls,
    render_calls,
)
from retrace.evaluation.bfcl.oracle import CHOICES
from retrace.evaluation.wheel_data import wheel_file, wheel_members

CHECKER_MEMBERS = ("bfcl_eval/__init__.py", "bfcl_eval/constants/__init__.py", "bfcl_eval/constants/enums.py",
                   "bfcl_eval/constants/type_mappings.py", "bfcl_eval/eval_checker/__init__.py",
                   "bfcl_eval/eval_checker/ast_eval/__init__.py", "bfcl_eval/eval_checker/ast_eval/ast_checker.py")
DECODER_FUNCTIONS = ("ast_parse", "resolve_ast_call", "resolve_ast_by_type", "default_decode_ast_prompting")


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    root = tmp_path_factory.mktemp("bfcl_src")
    members = [*CHECKER_MEMBERS, *wheel_members("bfcl-eval", "bfcl_eval/eval_checker/ast_eval/type_convertor/")]
    for member in members:
        (root / member).parent.mkdir(parents=True, exist_ok=True)
        (root / member).write_bytes(wheel_file("bfcl-eval", member).read_bytes())
    registry = types.ModuleType("bfcl_eval.constants.model_config")
    registry.MODEL_CONFIG_MAPPING = collections.defaultdict(lambda: types.SimpleNamespace(underscore_to_dot=False))
    saved = {name: module for name, module in sys.modules.items() if name.startswith("bfcl_eval")}
    sys.path.insert(0, str(root))
    sys.modules["bfcl_eval.constants.model_config"] = registry
    try:
        from bfcl_eval.constants.enums import Language
        from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker

        source = wheel_file("bfcl-eval", "bfcl_eval/model_handler/utils.py").read_text(encoding="utf-8")
        functions = [n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name in DECODER_FUNCTIONS]
        assert len(functions) == len(DECODER_FUNCTIONS)
        namespace = {"ast": ast, "re": re, "ReturnFormat": types.SimpleNamespace(PYTHON="python")}
        exec(compile(ast.Module(body=functions, type_ignores=[]), "bfcl_eval/model_handler/utils.py", "exec"), namespace)
        yield ast_checker, Language.PYTHON, namespace["default_decode_ast_prompting"]
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n.startswith("bfcl_eval")]:
            del sys.modules[name]
        sys.modules.update(saved)


def _mutated_value(value, rng):
    if isinstance(value, bool):
        return rng.choice([not value, 1, "true"])
    if isinstance(value, int):
        return rng.choice([value + 1, float(value), str(value), -value, [value], True])
    if isinstance(value, float):
        return rng.choice([int(value), value + 0.5, str(value), (value,)])
    if isinstance(value, str):
        return rng.choice([value.upper(), value + ".", value.replace(" ", "-"), value.replace(" ", "_"), " " + value, value[:-1] or "x",
                           f"'{value}'", 5, [value]])
    if isinstance(value, list):
        return rng.choice([value[::-1], value + value[:1], tuple(value), value[:-1], [str(x) for x in value]])
    if isinstance(value, dict):
        changed = dict(value)
        if changed and rng.random() < 0.5:
            changed.pop(rng.choice(list(changed)))
        else:
            changed["extra"] = 1
        return changed
    return value


def _mutated(calls, question, rng):
    calls = copy.deepcopy(calls)
    index = rng.randrange(len(calls))
    ((name, arguments),) = calls[index].items()
    kind = rng.randrange(6)
    if kind == 0 and arguments:
        param = rng.choice(list(arguments))
        arguments[param] = _mutated_value(arguments[param], rng)
    elif kind == 1 and arguments:
        arguments.pop(rng.choice(list(arguments)))
    elif kind == 2:
        properties = list(rng.choice(question.functions)["parameters"]["properties"])
        if properties:
            arguments[rng.choice(properties)] = rng.choice([1, 2.0, "x", [1], {"a": 1}, None])
    elif kind == 3:
        rng.shuffle(calls)
    elif kind == 4:
        calls[index] = {rng.choice(question.functions)["name"]: arguments}
    elif len(calls) > 1:
        calls.pop(index)
    return calls


GARBAGE = ["", "[]", "Sorry, I cannot.", "```\n[f(a=1)]\n```", "'[f()]'", "[f(a=b.c)]", "[f(a=lambda: 1)]",
           "[f(a=x[0])]", "[f(a=g(1, 2))]", "[f(a=-x)]", "[f(1, a=2)]", "f(a=1)\nmore text", "[f(a=3*10**2)]"]


@pytest.mark.parametrize("category", AST_CATEGORIES)
def test_every_verdict_is_bfcls(official, category):
    ast_checker, python, their_decode = official
    rng = random.Random(f"bfcl-differential:{category}")
    tally, disagreements = collections.Counter(), []
    for question in load_category(category):
        calls = oracle_calls(question, rng.choice(CHOICES))
        replies = [render_calls(calls)] + [render_calls(_mutated(calls, question, rng)) for _ in range(8)]
        replies += [render_calls(_mutated(_mutated(calls, question, rng), question, rng)) for _ in range(3)]
        replies += rng.sample(GARBAGE, 2)
        for reply in replies:
            try:
                ours = check_calls(question.functions, decode_calls(reply), question.possible_answer, category).valid
            except DecodeError:
                ours = "decode_failed"
            try:
                decoded = their_decode(reply)
            except Exception:
                theirs = "decode_failed"
            else:
                theirs = ast_checker(question.functions, decoded, question.possible_answer, python, category,
                                     "prompting_model")["valid"]
            tally[theirs] += 1
            if ours != theirs:
                disagreements.append((question.id, reply[:160], ours, theirs))
    assert not disagreements, disagreements[:5]
    assert min(tally.values()) > 50, tally  # accepted, refused and undecodable replies all well represented
