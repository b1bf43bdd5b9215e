"""Procedural bugs (SWE-smith's kinds) made with `ast`: one mutant per site, the rest of the file untouched.

Each kind finds its sites inside functions (classes for the class kinds) and changes one site's tree.
The change reaches the text as the smallest edit that says it: the mutated expression's source segment,
or whole statement lines deleted, swapped or dedented, so comments and formatting elsewhere survive
and a diff against the original shows only the bug. When that edit does not reproduce the mutated tree
(a statement sharing its line, an `elif` chain), the whole enclosing unit is unparsed and spliced in
instead. A mutant is kept only when its file parses to exactly the mutated tree and that tree differs
from the original (swapping `x + x` is no bug); every other site is counted by reason. Sites are
enumerated in source order and each random choice (which operator, which offset, which shuffle) comes
from a generator seeded with `(seed, path, kind, site)`: the same file and seed give the same mutants.
"""

from __future__ import annotations

import ast
import hashlib
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from retrace.evaluation.repofix.source_edits import (
    FUNCTIONS,
    Edit,
    apply_edits,
    block_range,
    indent_of,
    parses_to,
    reindent,
    splice_unit,
    units,
)

# SWE-smith's groups: an operator changes to another of its own group (operation_change) ...
OPERATOR_GROUPS = ((ast.Add, ast.Sub), (ast.Mult, ast.Div, ast.FloorDiv, ast.Mod),
                   (ast.BitAnd, ast.BitOr, ast.BitXor), (ast.LShift, ast.RShift))
# ... or flips to its counterpart (flip_operator): comparisons mirrored or negated, and/or swapped.
FLIPPED = {ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.Gt, ast.Gt: ast.Lt, ast.LtE: ast.GtE,
           ast.GtE: ast.LtE, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
           ast.And: ast.Or, ast.Or: ast.And}
SYMBOLS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
           ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>",
           ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.Gt: ">", ast.LtE: "<=", ast.GtE: ">=",
           ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not", ast.And: "and", ast.Or: "or"}


@dataclass(frozen=True)
class Mutant:
    """One bug: the whole mutated file, and where and what (for records; never shown to the model)."""

    kind: str
    path: str
    site: int          # index of the site among this kind's sites in the file
    unit: str          # qualified name of the enclosing function or class
    line: int          # first line of the site's statement or expression (1-based)
    description: str
    source: str


# --- walking a unit ----------------------------------------------------------------------------------

def own_nodes(unit: ast.AST) -> Iterator[ast.AST]:
    """The unit's nodes in a fixed order, not descending into nested functions (their own units)."""
    stack = list(reversed(list(ast.iter_child_nodes(unit))))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, FUNCTIONS):
            stack.extend(reversed(list(ast.iter_child_nodes(node))))


def statement_slots(unit: ast.AST) -> Iterator[tuple[ast.AST, str, int]]:
    """(owner, field, index) of every statement in the unit's own bodies, the unit's body included."""
    for owner in (unit, *own_nodes(unit)):
        if isinstance(owner, FUNCTIONS) and owner is not unit:
            continue
        for name in ("body", "orelse", "finalbody"):
            body = getattr(owner, name, None)
            if isinstance(body, list):
                for index in range(len(body)):
                    yield owner, name, index


def _is_docstring(owner: ast.AST, index: int) -> bool:
    statement = owner.body[index]
    return (index == 0 and isinstance(owner, (*FUNCTIONS, ast.ClassDef)) and isinstance(statement, ast.Expr)
            and isinstance(statement.value, ast.Constant) and isinstance(statement.value.value, str))


# --- the function-level kinds ------------------------------------------------------------------------
# sites(unit) -> sites in a fixed order; apply(site, lines, rng) -> (description, edits), or None when this
# site cannot be changed. `apply` mutates the tree in place; the edits say the same change as text.

def _binops(unit):
    return [n for n in own_nodes(unit) if isinstance(n, (ast.BinOp, ast.AugAssign)) and
            any(isinstance(n.op, group) for group in OPERATOR_GROUPS)]


def _operation_change(node, lines, rng):
    group = next(g for g in OPERATOR_GROUPS if isinstance(node.op, g))
    old = type(node.op)
    new = rng.choice([op for op in group if op is not old])
    node.op = new()
    edit = ("expr", node) if isinstance(node, ast.BinOp) else ("stmt", node)
    return f"`{SYMBOLS[old]}` changed to `{SYMBOLS[new]}`", [edit]


def _flippables(unit):
    return [n for n in own_nodes(unit) if isinstance(n, (ast.Compare, ast.BoolOp)) and
            all(type(op) in FLIPPED for op in (n.ops if isinstance(n, ast.Compare) else [n.op]))]


def _flip_operator(node, lines, rng):
    if isinstance(node, ast.BoolOp):
        old = type(node.op)
        node.op = FLIPPED[old]()
    else:
        index = rng.randrange(len(node.ops))
        old = type(node.ops[index])
        node.ops[index] = FLIPPED[old]()
    return f"`{SYMBOLS[old]}` flipped to `{SYMBOLS[FLIPPED[old]]}`", [("expr", node)]


def _swappables(unit):
    return [n for n in own_nodes(unit) if (isinstance(n, ast.BinOp) and not isinstance(n.op, ast.MatMult))
            or (isinstance(n, ast.Compare) and len(n.ops) == 1)]


def _swap_operands(node, lines, rng):
    if isinstance(node, ast.BinOp):
        node.left, node.right = node.right, node.left
    else:
        node.left, node.comparators[0] = node.comparators[0], node.left
    return "operands swapped", [("expr", node)]


def _chains(unit):
    return [n for n in own_nodes(unit) if (isinstance(n, ast.BinOp) and isinstance(n.left, ast.BinOp))
            or (isinstance(n, ast.BoolOp) and len(n.values) > 2) or (isinstance(n, ast.Compare) and len(n.ops) > 1)]


def _break_chains(node, lines, rng):
    if isinstance(node, ast.BinOp):  # (a op1 b) op2 c -> a op2 c
        node.left = node.left.left
        description = "middle operand of a chain dropped"
    elif isinstance(node, ast.BoolOp):
        node.values.pop(rng.randrange(len(node.values)))
        description = "one operand of a boolean chain dropped"
    else:  # a < b < c -> a < b
        node.ops, node.comparators = node.ops[:1], node.comparators[:1]
        description = "comparison chain cut to its first comparison"
    return description, [("expr", node)]


def _constants(unit):
    return [n for n in own_nodes(unit) if isinstance(n, ast.Constant) and type(n.value) in (int, float)]


def _change_constants(node, lines, rng):
    old = node.value
    node.value = old + rng.choice((-1, 1)) if isinstance(old, int) else old * rng.choice((0.5, 2.0))
    return f"constant {old!r} changed to {node.value!r}", [("expr", node)]


def _statements_of(*types):
    def sites(unit):
        return [(o, f, i) for o, f, i in statement_slots(unit) if isinstance(getattr(o, f)[i], types)]
    return sites


def _remover(label):
    def apply(slot, lines, rng):
        owner, name, index = slot
        body = getattr(owner, name)
        removed = body.pop(index)
        first, last = block_range(removed)
        replacement: list[str] = []
        if not body and (name == "body" or (name == "finalbody" and not getattr(owner, "handlers", None))):
            body.append(ast.Pass())
            replacement = [indent_of(removed, lines) + "pass\n"]
        return f"{label} at line {removed.lineno} removed", [("lines", first, last, replacement)]
    return apply


def _remove_wrapper(slot, lines, rng):
    owner, name, index = slot
    body = getattr(owner, name)
    wrapper = body[index]
    body[index:index + 1] = wrapper.body
    inner = lines[block_range(wrapper.body[0])[0]:wrapper.body[-1].end_lineno]
    moved = reindent(inner, indent_of(wrapper.body[0], lines), indent_of(wrapper, lines))
    description = f"{type(wrapper).__name__.lower()} wrapper at line {wrapper.lineno} removed, its body kept"
    return description, [("lines", *block_range(wrapper), moved)]


def _if_else_pairs(unit):
    return [n for n in own_nodes(unit) if isinstance(n, ast.If) and n.orelse]


def _if_else_invert(node, lines, rng):
    body_lines = (block_range(node.body[0])[0], node.body[-1].end_lineno - 1)
    else_lines = (block_range(node.orelse[0])[0], node.orelse[-1].end_lineno - 1)
    body_text = lines[body_lines[0]:body_lines[1] + 1]
    else_text = lines[else_lines[0]:else_lines[1] + 1]
    node.body, node.orelse = node.orelse, node.body
    edits = [("lines", *body_lines, else_text), ("lines", *else_lines, body_text)]
    return f"if/else branches swapped at line {node.lineno} (condition kept)", edits


def _bodies(unit):
    return [o for o in (unit, *own_nodes(unit)) if isinstance(getattr(o, "body", None), list)
            and not (isinstance(o, FUNCTIONS) and o is not unit) and not isinstance(o, ast.ClassDef)
            and sum(not _is_docstring(o, i) for i in range(len(o.body))) > 1]


def _reorder(owner, slots: list[int], order: list[int], lines) -> list[Edit]:
    """Statements `order[k]` moved into slot `slots[k]` of owner.body, as tree change and line edits."""
    statements = list(owner.body)
    edits = []
    for slot, source in zip(slots, order):
        owner.body[slot] = statements[source]
        first, last = block_range(statements[source])
        edits.append(("lines", *block_range(statements[slot]), lines[first:last + 1]))
    return edits


def _shuffle_lines(node, lines, rng):
    slots = [i for i in range(len(node.body)) if not _is_docstring(node, i)]
    order = rng.sample(slots, len(slots))
    if order == slots:
        order = slots[1:] + slots[:1]
    return "statements of a block shuffled", _reorder(node, slots, order, lines)


FUNCTION_KINDS: dict[str, tuple[Callable, Callable]] = {
    "operation_change": (_binops, _operation_change),
    "flip_operator": (_flippables, _flip_operator),
    "swap_operands": (_swappables, _swap_operands),
    "break_chains": (_chains, _break_chains),
    "change_constants": (_constants, _change_constants),
    "remove_loop": (_statements_of(ast.For, ast.AsyncFor, ast.While), _remover("loop")),
    "remove_conditional": (_statements_of(ast.If), _remover("conditional")),
    "remove_assign": (_statements_of(ast.Assign, ast.AugAssign, ast.AnnAssign), _remover("assignment")),
    "remove_wrapper": (_statements_of(ast.With, ast.AsyncWith, ast.Try, getattr(ast, "TryStar", ast.Try)), _remove_wrapper),
    "if_else_invert": (_if_else_pairs, _if_else_invert),
    "shuffle_lines": (_bodies, _shuffle_lines),
}


# --- the class kinds: sites(class) -> sites; apply(class, site, lines, rng) like the function kinds ---

def _methods(cls: ast.ClassDef) -> list[int]:
    return [i for i, statement in enumerate(cls.body) if isinstance(statement, FUNCTIONS)]


def _class_rm_base(cls, base_index, lines, rng):
    if cls.body[0].lineno == cls.lineno:
        return None
    last = block_range(cls.body[0])[0] - 1
    while last > cls.lineno - 1 and (not lines[last].strip() or lines[last].lstrip().startswith("#")):
        last -= 1
    removed = cls.bases.pop(base_index)
    header = ast.unparse(ast.ClassDef(name=cls.name, bases=cls.bases, keywords=cls.keywords,
                                      body=[ast.Pass()], decorator_list=[])).splitlines()[0]
    return (f"base class `{ast.unparse(removed)}` removed",
            [("lines", cls.lineno - 1, last, [indent_of(cls, lines) + header + "\n"])])


def _class_rm_funcs(cls, body_index, lines, rng):
    if len(cls.body) < 2:
        return None
    removed = cls.body.pop(body_index)
    return f"method `{removed.name}` removed", [("lines", *block_range(removed), [])]


def _shuffle_methods(cls, site, lines, rng):
    methods = _methods(cls)
    order = rng.sample(methods, len(methods))
    if order == methods:
        order = methods[1:] + methods[:1]
    return "methods reordered", _reorder(cls, methods, order, lines)


CLASS_KINDS: dict[str, tuple[Callable, Callable]] = {
    "class_rm_base": (lambda cls: list(range(len(cls.bases))), _class_rm_base),
    "class_rm_funcs": (_methods, _class_rm_funcs),
    "shuffle_methods": (lambda cls: [0] if len(_methods(cls)) > 1 else [], _shuffle_methods),
}
MUTATION_KINDS = (*FUNCTION_KINDS, *CLASS_KINDS)


# --- enumeration, text edits and the checks ----------------------------------------------------------

def _rng(seed: int, path: str, kind: str, site: int) -> random.Random:
    return random.Random(hashlib.sha256(f"{seed}\0{path}\0{kind}\0{site}".encode()).digest())


def _sites(tree: ast.Module, kind: str) -> list[tuple[int, int]]:
    """(unit index, site index within the unit) of every site of `kind`, in source order."""
    unit_types, find_sites = ((ast.ClassDef,), CLASS_KINDS[kind][0]) if kind in CLASS_KINDS else (
        FUNCTIONS, FUNCTION_KINDS[kind][0])
    return [(u, s) for u, (_, unit) in enumerate(units(tree, unit_types)) for s in range(len(find_sites(unit)))]


def _site_line(site) -> int:
    node = getattr(site[0], site[1])[site[2]] if isinstance(site, tuple) else site
    return node.lineno


def site_count(source: str, kind: str) -> int:
    """How many sites of `kind` the file has (mutants are then made one at a time by `mutant_at`)."""
    return len(_sites(ast.parse(source), _check_kind(kind)))


def _check_kind(kind: str) -> str:
    if kind not in MUTATION_KINDS:
        raise ValueError(f"unknown mutation kind {kind!r}; known: {', '.join(MUTATION_KINDS)}")
    return kind


def mutant_at(source: str, path: str, kind: str, site_index: int, seed: int = 0) -> Mutant | str:
    """The mutant at one site, or why there is none: "not_applicable", "no_change" or "unparse_mismatch"."""
    tree = ast.parse(source)
    unit_index, local_index = _sites(tree, _check_kind(kind))[site_index]
    lines = source.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    original_dump = ast.dump(tree)
    name, unit = units(tree, (ast.ClassDef,) if kind in CLASS_KINDS else FUNCTIONS)[unit_index]
    rng = _rng(seed, path, kind, site_index)
    if kind in CLASS_KINDS:
        find_sites, apply = CLASS_KINDS[kind]
        line = unit.lineno
        change = apply(unit, find_sites(unit)[local_index], lines, rng)
    else:
        find_sites, apply = FUNCTION_KINDS[kind]
        site = find_sites(unit)[local_index]
        line = _site_line(site)
        change = apply(site, lines, rng)
    if change is None:
        return "not_applicable"
    expected = ast.dump(tree)
    if expected == original_dump:
        return "no_change"
    description, edits = change
    candidates = [lambda: apply_edits(lines, edits, parenthesize=False)]
    if any(e[0] == "expr" for e in edits):
        candidates.append(lambda: apply_edits(lines, edits, parenthesize=True))
    candidates.append(lambda: splice_unit(unit, lines))
    for make in candidates:
        mutated = make()
        if parses_to(mutated, expected):
            return Mutant(kind, path, site_index, name, line, f"{name}: {description}", mutated)
    return "unparse_mismatch"


def mutate(source: str, path: str, kind: str, seed: int = 0) -> tuple[list[Mutant], dict[str, int]]:
    """Every mutant of `kind` in the file, and the sites skipped by reason (counted, never silent).

    Raises ValueError for an unknown kind or a file that does not parse.
    """
    try:
        count = site_count(source, kind)
    except SyntaxError as error:
        raise ValueError(f"{path} does not parse: {error}") from error
    mutants: list[Mutant] = []
    skipped = {"not_applicable": 0, "no_change": 0, "unparse_mismatch": 0}
    for site_index in range(count):
        made = mutant_at(source, path, kind, site_index, seed)
        if isinstance(made, str):
            skipped[made] += 1
        else:
            mutants.append(made)
    return mutants, skipped


