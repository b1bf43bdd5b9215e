"""Each mutation kind changes the code as its name says, leaves the rest byte for byte, and parses."""

from __future__ import annotations

import ast
import difflib
from pathlib import Path

import pytest

from retrace.evaluation.repofix.mutations import MUTATION_KINDS, mutant_at, mutate, site_count

SOURCE = '''"""A module to mutate."""

import math


class Base:
    pass


class Shape(Base, object):
    """A shape."""

    def __init__(self, width, height):
        self.width = width  # keep this comment
        self.height = height

    def area(self):
        return self.width * self.height

    def grow(self, by=2):
        total = 0
        for step in range(by):
            total += step
        with open(__file__) as handle:
            handle.read()
        if self.width > 0 and self.height > 0 and by:
            return total + 1 + by
        else:
            return -1


def clamp(x, lo, hi):
    # the comment in clamp
    if x < lo:
        return lo
    while x > hi:
        x = x - 1
    return math.floor(x)
'''


def changes(original: str, mutated: str) -> tuple[list[str], list[str]]:
    """(removed lines, added lines), stripped, of a line diff."""
    removed, added = [], []
    for line in difflib.ndiff(original.splitlines(), mutated.splitlines()):
        if line.startswith("- "):
            removed.append(line[2:].strip())
        elif line.startswith("+ "):
            added.append(line[2:].strip())
    return removed, added


def all_mutants(kind: str, seed: int = 0):
    mutants, _ = mutate(SOURCE, "shapes.py", kind, seed)
    assert mutants, f"{kind}: no mutant of the sample"
    return mutants


def find(kind: str, removed_line: str, seed: int = 0):
    """The mutant of `kind` that changes the line `removed_line`."""
    for mutant in all_mutants(kind, seed):
        removed, added = changes(SOURCE, mutant.source)
        if removed_line in removed:
            return mutant, removed, added
    raise AssertionError(f"{kind}: no mutant changes {removed_line!r}")


@pytest.mark.parametrize("kind", MUTATION_KINDS)
def test_every_mutant_parses_changes_the_tree_and_keeps_other_units(kind):
    original_units = {ast.unparse(n) for n in ast.parse(SOURCE).body}
    for mutant in all_mutants(kind):
        tree = ast.parse(mutant.source)
        assert ast.dump(tree) != ast.dump(ast.parse(SOURCE))
        changed = [ast.unparse(n) for n in tree.body if ast.unparse(n) not in original_units]
        assert len(changed) == 1, f"{mutant.description}: more than one top-level unit changed"
        assert mutant.kind == kind and mutant.path == "shapes.py"
        if "clamp" not in mutant.unit:  # a mutant elsewhere leaves clamp's comment alone
            assert "    # the comment in clamp\n" in mutant.source


@pytest.mark.parametrize("kind", MUTATION_KINDS)
def test_mutants_are_deterministic_for_a_seed(kind):
    assert [m.source for m in all_mutants(kind, seed=3)] == [m.source for m in all_mutants(kind, seed=3)]


def test_operation_change_swaps_an_operator_within_its_group():
    _, removed, added = find("operation_change", "return self.width * self.height")
    assert removed == ["return self.width * self.height"]
    assert added[0] in {f"return self.width {op} self.height" for op in ("/", "//", "%")}
    _, _, added = find("operation_change", "total += step")
    assert added == ["total -= step"]


def test_flip_operator_flips_comparisons_and_boolean_operators():
    assert find("flip_operator", "if x < lo:")[2] == ["if x > lo:"]
    assert find("flip_operator", "while x > hi:")[2] == ["while x < hi:"]
    flipped = {tuple(find("flip_operator", "if self.width > 0 and self.height > 0 and by:")[2])}
    assert flipped & {("if self.width > 0 or self.height > 0 or by:",), ("if self.width < 0 and self.height > 0 and by:",),
                      ("if self.width > 0 and self.height < 0 and by:",)}


def test_swap_operands_swaps_both_sides():
    assert find("swap_operands", "return self.width * self.height")[2] == ["return self.height * self.width"]
    assert find("swap_operands", "if x < lo:")[2] == ["if lo < x:"]


def test_break_chains_drops_the_middle_operand():
    assert find("break_chains", "return total + 1 + by")[2] == ["return total + by"]


def test_change_constants_moves_a_number_by_one():
    assert find("change_constants", "def grow(self, by=2):")[2][0] in ("def grow(self, by=1):", "def grow(self, by=3):")
    assert find("change_constants", "x = x - 1")[2][0] in ("x = x - 0", "x = x - 2")


def test_remove_loop_deletes_the_loop_and_its_body():
    mutant, removed, added = find("remove_loop", "for step in range(by):")
    assert removed == ["for step in range(by):", "total += step"] and added == []
    _, removed, added = find("remove_loop", "while x > hi:")
    assert removed == ["while x > hi:", "x = x - 1"] and added == []


def test_remove_conditional_deletes_the_if():
    _, removed, added = find("remove_conditional", "if x < lo:")
    assert removed == ["if x < lo:", "return lo"] and added == []


def test_remove_assign_deletes_one_assignment_and_keeps_comments():
    mutant, removed, added = find("remove_assign", "self.height = height")
    assert removed == ["self.height = height"] and added == []
    assert "        self.width = width  # keep this comment\n" in mutant.source
    _, removed, added = find("remove_assign", "x = x - 1")  # the loop's only statement: a pass is left
    assert removed == ["x = x - 1"] and added == ["pass"]


def test_remove_wrapper_keeps_the_body_dedented():
    mutant, removed, added = find("remove_wrapper", "with open(__file__) as handle:")
    assert "        handle.read()\n" in mutant.source and "with open" not in mutant.source
    assert added == [] or added == ["handle.read()"]


def test_if_else_invert_swaps_the_branches_and_keeps_the_condition():
    mutant = all_mutants("if_else_invert")[0]
    grow = next(n for n in ast.walk(ast.parse(mutant.source)) if isinstance(n, ast.FunctionDef) and n.name == "grow")
    branch = next(n for n in grow.body if isinstance(n, ast.If))
    assert ast.unparse(branch.test) == "self.width > 0 and self.height > 0 and by"
    assert ast.unparse(branch.body) == "return -1" and ast.unparse(branch.orelse) == "return total + 1 + by"


def test_shuffle_lines_reorders_the_same_statements():
    for mutant in all_mutants("shuffle_lines"):
        removed, added = changes(SOURCE, mutant.source)
        assert sorted(removed) == sorted(added) and removed


def test_class_rm_base_removes_each_base_in_turn():
    headers = set()
    for mutant in all_mutants("class_rm_base"):
        removed, added = changes(SOURCE, mutant.source)
        assert removed == ["class Shape(Base, object):"] and len(added) == 1
        headers.add(added[0])
    assert headers == {"class Shape(object):", "class Shape(Base):"} and site_count(SOURCE, "class_rm_base") == 2


def test_class_rm_funcs_removes_each_method_whole():
    removed_methods = []
    for mutant in all_mutants("class_rm_funcs"):
        shape = next(n for n in ast.parse(mutant.source).body if isinstance(n, ast.ClassDef) and n.name == "Shape")
        methods = {n.name for n in shape.body if isinstance(n, ast.FunctionDef)}
        assert len(methods) == 2
        removed_methods.extend({"__init__", "area", "grow"} - methods)
    assert sorted(removed_methods) == ["__init__", "area", "grow"]
    assert mutant_at(SOURCE, "s.py", "class_rm_funcs", 0).description == "Shape: method `__init__` removed"


def test_shuffle_methods_reorders_methods_with_their_text():
    mutant = all_mutants("shuffle_methods")[0]
    shape = next(n for n in ast.parse(mutant.source).body if isinstance(n, ast.ClassDef) and n.name == "Shape")
    methods = [n.name for n in shape.body if isinstance(n, ast.FunctionDef)]
    assert sorted(methods) == ["__init__", "area", "grow"] and methods != ["__init__", "area", "grow"]
    assert "        self.width = width  # keep this comment\n" in mutant.source


def test_unknown_kind_and_unparsable_file_are_refused():
    with pytest.raises(ValueError, match="unknown mutation kind"):
        mutate(SOURCE, "shapes.py", "rename_everything")
    with pytest.raises(ValueError, match="does not parse"):
        mutate("def broken(:\n", "broken.py", "flip_operator")


def test_real_stdlib_module_gives_parsing_mutants_of_every_function_kind():
    import sysconfig

    source = (Path(sysconfig.get_paths()["stdlib"]) / "textwrap.py").read_text()
    for kind in ("operation_change", "flip_operator", "remove_conditional", "if_else_invert"):
        mutants, skipped = mutate(source, "textwrap.py", kind)
        assert len(mutants) >= 5, (kind, skipped)
        for mutant in mutants[:5]:
            removed, added = changes(source, mutant.source)
            assert ast.parse(mutant.source) and len(removed) + len(added) <= 40, mutant.description
