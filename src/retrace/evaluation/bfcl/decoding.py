"""A model's reply in BFCL's prompting format (`[f(a=1), g.h(b='x')]`) read into calls, with `ast`, never eval.

The rules follow BFCL's own prompting decoder (read in the `bfcl-eval` wheel, written anew here):
the reply is stripped of backticks, newlines and spaces at both ends, wrapped in `[...]` where a
bracket is missing (so a reply in quotes becomes a list holding a string: no call; BFCL's later strip
of single quotes never applies), and parsed as one Python expression whose elements must all be calls. A call's name is its dotted attribute path; only keyword arguments count
(positional ones are dropped, as BFCL drops them). Values: literals (`...` becomes the string "..."),
negative numbers, lists, tuples, dicts, a bare name as its name string, a call without keywords as
its source text, a call with keywords as a nested `{name: {param: value}}`, a subscript as its
source text, and arithmetic on literals (`3*10**8`), which BFCL evaluates with `eval` and we fold
with a small evaluator of our own (bounded, so no reply can make it run long). Anything else is a
`DecodeError` with the reason, which the task counts; nothing a model writes is executed.

Where BFCL's decoder has an outright bug we do not copy it: unary `+5` stays 5 (BFCL negates it), and
`not x` / `~x` become their source text (BFCL negates their operand too); either way the reply is a
call, so irrelevance verdicts are BFCL's.
"""

from __future__ import annotations

import ast
import operator
from typing import Any

Call = dict[str, dict[str, Any]]  # {function_name: {param: value}}, one key

_ARITHMETIC = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
               ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_MAX_EXPONENT = 4096          # keeps `9**9**9` from running for minutes
_MAX_FOLDED_LENGTH = 100_000  # longest string or list a folded `"a" * n` may build


class DecodeError(ValueError):
    """A reply that is not a list of function calls in BFCL's Python syntax; the message says why."""


def decode_calls(reply: str) -> list[Call]:
    """The calls in `reply`, in order; `[]` for an empty list. A `DecodeError` for anything else."""
    text = reply.strip("`\n ")
    if not text.startswith("["):
        text = "[" + text
    if not text.endswith("]"):
        text = text + "]"
    text = text.strip().strip("'")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise DecodeError(f"not a Python expression: {type(exc).__name__}: {exc}") from None
    body = tree.body
    if isinstance(body, ast.Call):
        elements = [body]
    elif isinstance(body, (ast.List, ast.Tuple)):
        elements = body.elts
    else:
        raise DecodeError(f"expected a list of calls, got a {type(body).__name__} expression")
    calls = []
    for position, element in enumerate(elements):
        if not isinstance(element, ast.Call):
            raise DecodeError(f"element {position} is a {type(element).__name__}, not a function call")
        try:
            calls.append(_call(element))
        except RecursionError:
            raise DecodeError("arguments nested too deeply") from None
    return calls


def _function_name(node: ast.expr) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def _call(node: ast.Call) -> Call:
    arguments: dict[str, Any] = {}
    for keyword in node.keywords:
        # `**mapping` has no name; BFCL keeps it under None, which no schema accepts: keep it visibly.
        arguments[keyword.arg if keyword.arg is not None else "**"] = _value(keyword.value)
    return {_function_name(node.func): arguments}


def _value(node: ast.expr) -> Any:
    if isinstance(node, ast.Constant):
        return "..." if node.value is Ellipsis else node.value
    if isinstance(node, ast.UnaryOp):
        return _signed(node)
    if isinstance(node, ast.List):
        return [_value(item) for item in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(_value(item) for item in node.elts)
    if isinstance(node, ast.Dict):
        if any(key is None for key in node.keys):
            raise DecodeError("a dict with `**` unpacking")
        try:
            return {_value(key): _value(value) for key, value in zip(node.keys, node.values)}
        except TypeError as exc:  # an unhashable key such as a list
            raise DecodeError(f"a dict key that cannot be a key: {exc}") from None
    if isinstance(node, ast.BinOp):
        return _fold(node)
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Call):
        return _call(node) if node.keywords else ast.unparse(node)
    if isinstance(node, ast.Subscript):
        return f"{ast.unparse(node.value)}[{ast.unparse(node.slice)}]"
    raise DecodeError(f"unsupported argument syntax {type(node).__name__}: {ast.unparse(node)[:80]!r}")


def _signed(node: ast.UnaryOp) -> Any:
    """`-3` or `+2.5`: a sign on a number literal (BFCL reads the operand's literal value, nothing else)."""
    if not isinstance(node.op, (ast.USub, ast.UAdd)):
        return ast.unparse(node)
    operand = node.operand.value if isinstance(node.operand, ast.Constant) else None
    if not isinstance(operand, (int, float, complex)):  # bool is an int here, as in Python
        raise DecodeError(f"a sign on something that is not a number: {ast.unparse(node)[:80]!r}")
    return -operand if isinstance(node.op, ast.USub) else +operand


def _fold(node: ast.expr) -> Any:
    """The value of arithmetic on literals (what BFCL gets from `eval`), bounded in time and size."""
    if isinstance(node, ast.Constant) and node.value is not Ellipsis:
        return node.value
    if isinstance(node, ast.UnaryOp):
        return _signed(node)
    if isinstance(node, (ast.List, ast.Tuple)):
        items = [_fold(item) for item in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if not isinstance(node, ast.BinOp):
        raise DecodeError(f"arithmetic on something that is not a literal: {ast.unparse(node)[:80]!r}")
    function = _ARITHMETIC.get(type(node.op))
    if function is None:
        raise DecodeError(f"unsupported operator in {ast.unparse(node)[:80]!r}")
    left, right = _fold(node.left), _fold(node.right)
    if function is operator.pow and isinstance(right, (int, float)) and (
            abs(right) > _MAX_EXPONENT or isinstance(left, int) and left.bit_length() * abs(right) > 1 << 20):
        raise DecodeError(f"power too large in {ast.unparse(node)[:80]!r}")
    if function is operator.mul and any(isinstance(v, (str, bytes, list, tuple)) for v in (left, right)):
        count = right if isinstance(right, int) else left
        if isinstance(count, int) and count * max(len(v) for v in (left, right) if hasattr(v, "__len__")) \
                > _MAX_FOLDED_LENGTH:
            raise DecodeError(f"repetition too long in {ast.unparse(node)[:80]!r}")
    try:
        return function(left, right)
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise DecodeError(f"cannot compute {ast.unparse(node)[:80]!r}: {exc}") from None


def render_calls(calls: list[Call]) -> str:
    """`calls` written as a correct model would answer: `[f(a=1, b='x'), g()]` (values as Python literals)."""
    written = []
    for call in calls:
        ((name, arguments),) = call.items()
        written.append(f"{name}({', '.join(f'{param}={value!r}' for param, value in arguments.items())})")
    return "[" + ", ".join(written) + "]"


def jsonable(value: Any) -> Any:
    """`value` with tuples as lists and non-JSON scalars (bytes, complex) as their repr, for records."""
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, (str, int, float, bool)) and k is not None else k: jsonable(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)
