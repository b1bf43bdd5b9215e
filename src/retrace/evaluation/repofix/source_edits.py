"""Text edits for mutants: say an `ast` change as the smallest change to the source text.

Kinds mutate the tree and describe the same change as edits on the original lines: an expression's
source segment re-rendered, or whole statement lines deleted, moved or re-indented. `apply_edits`
makes the text; `splice_unit` is the fallback that unparses a whole function or class over its lines.
Lines inside multi-line strings are never re-indented, so their values do not change.
"""

from __future__ import annotations

import ast
import copy
import io
import tokenize

FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)

# An edit on the original text: ("expr", node) replaces the node's segment by the unparsed mutated node;
# ("stmt", node) replaces the statement's lines by its unparsed form; ("lines", first, last, new_lines)
# replaces 0-based lines first..last inclusive.
Edit = tuple


def block_range(node: ast.AST) -> tuple[int, int]:
    """0-based first and last line of a statement, its decorators included."""
    first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", ()))])
    return first - 1, node.end_lineno - 1


def indent_of(node: ast.AST, lines: list[str]) -> str:
    return lines[node.lineno - 1][:node.col_offset]


def reindent(text_lines: list[str], old: str, new: str) -> list[str]:
    """Lines moved from indentation `old` to `new`; lines inside multi-line strings are left as they are."""
    interior: set[int] = set()
    try:
        for token in tokenize.generate_tokens(io.StringIO("".join(text_lines)).readline):
            if token.type == tokenize.STRING and token.end[0] > token.start[0]:
                interior.update(range(token.start[0], token.end[0]))  # 0-based lines after the first
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    out = []
    for i, line in enumerate(text_lines):
        if i in interior or not line.strip():
            out.append(line)
        else:
            out.append(new + line[len(old):] if line.startswith(old) else line)
    return out


def units(tree: ast.Module, types: tuple[type, ...]) -> list[tuple[str, ast.AST]]:
    """(qualified name, node) of every function or class of the given types, in source order."""
    found: list[tuple[str, ast.AST]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (*FUNCTIONS, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if isinstance(child, types):
                    found.append((name, child))
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return sorted(found, key=lambda item: (item[1].lineno, item[1].col_offset))


def apply_edits(lines: list[str], edits: list[Edit], parenthesize: bool) -> str:
    lines = list(lines)
    spans = []
    for edit in edits:
        if edit[0] == "expr":
            node = edit[1]
            text = ast.unparse(node)
            spans.append((node.lineno - 1, node.col_offset, node.end_lineno - 1, node.end_col_offset,
                          f"({text})" if parenthesize else text))
        elif edit[0] == "stmt":
            node = edit[1]
            text = [line + "\n" for line in ast.unparse(node).splitlines()]
            spans.append((*block_range(node)[:1], None, block_range(node)[1], None,
                          reindent(text, "", indent_of(node, lines))))
        else:
            spans.append((edit[1], None, edit[2], None, edit[3]))
    for first, col, last, end_col, new in sorted(spans, key=lambda s: (s[0], s[1] or 0), reverse=True):
        if col is None:
            lines[first:last + 1] = new
        else:  # ast columns count UTF-8 bytes
            head = lines[first].encode()[:col].decode()
            tail = lines[last].encode()[end_col:].decode()
            lines[first:last + 1] = [head + new + tail]
    return "".join(lines)


def splice_unit(unit: ast.AST, lines: list[str]) -> str:
    """The file with the (mutated) unit unparsed over its lines, from `def`/`class` on; decorators kept."""
    undecorated = copy.copy(unit)
    undecorated.decorator_list = []
    text = [line + "\n" for line in ast.unparse(undecorated).splitlines()]
    spliced = list(lines)
    spliced[unit.lineno - 1:unit.end_lineno] = reindent(text, "", indent_of(unit, lines))
    return "".join(spliced)


def parses_to(text: str, expected_dump: str) -> bool:
    try:
        return ast.dump(ast.parse(text)) == expected_dump
    except SyntaxError:
        return False
