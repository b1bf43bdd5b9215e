"""Python: per-file summaries from tree-sitter, and import resolution through `ModuleIndex`.

tree-sitter is used (not `ast`) because it tolerates broken files: a file with syntax errors is
still summarised as far as it parses and marked `parse_ok=False`. Docstrings are the real ones
(first statement string literal, `inspect.cleandoc`); signatures are `def name(params) -> ret`.
Resolution rules live in `retrace.repo.modules` (absolute, relative, `from . import x`, package
`__init__`, src layout, the repository as a package).
"""

from __future__ import annotations

import ast
import inspect
import re
from functools import lru_cache

import tree_sitter
import tree_sitter_python

from ..analysis import ClassInfo, FileSummary, FunctionInfo, ImportInfo, count_lines
from ..modules import ModuleIndex

_DOTTED_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
_LINE_BREAK = re.compile(r"\s*\n\s*")
_STRING_PREFIX = re.compile(r"[A-Za-z]*")

# One query for both: a query's cost is mostly the walk over the tree, so one walk serves both.
# Lines that open a declaration: the agents may state them (a signature is an analysis fact), and the
# leakage checks do not count them as pasted code.
SIGNATURE_PREFIXES = ("def ", "async def ", "class ", "@")
_QUERY = (
    "[(import_statement) (import_from_statement) (future_import_statement)] @import "
    "(call function: [(identifier) (attribute)] @callee)"
)


@lru_cache(maxsize=1)
def _python_tools() -> tuple[tree_sitter.Parser, tree_sitter.Query]:
    language = tree_sitter.Language(tree_sitter_python.language())
    return tree_sitter.Parser(language), tree_sitter.Query(language, _QUERY)


def _text(node: tree_sitter.Node) -> str:
    return node.text.decode("utf-8", errors="replace")


def _one_line(node: tree_sitter.Node) -> str:
    """Node text on one line, comments removed; whitespace inside a line is kept as written."""
    start = node.start_byte
    pieces, cursor = [], start
    source = node.text
    for comment in _comments(node) if b"#" in source else ():
        pieces.append(source[cursor - start : comment.start_byte - start])
        cursor = comment.end_byte
    pieces.append(source[cursor - start :])
    flat = _LINE_BREAK.sub(" ", b"".join(pieces).decode("utf-8", errors="replace")).strip()
    for opener in "([{":
        flat = flat.replace(opener + " ", opener)
    for comma_closer in (", )", ",)", ", ]", ",]"):
        flat = flat.replace(comma_closer, comma_closer[-1])
    return flat.replace(" )", ")").replace(" ]", "]")


def _comments(node: tree_sitter.Node) -> list[tree_sitter.Node]:
    found, stack = [], [node]
    while stack:
        current = stack.pop()
        if current.type == "comment":
            found.append(current)
        elif current.child_count:
            stack.extend(current.children)
    return sorted(found, key=lambda n: n.start_byte)


def _string_value(node: tree_sitter.Node) -> str | None:
    """The value of a string literal node, via `ast.literal_eval`; None for bytes and f-strings."""
    raw = _text(node)
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        body = raw[_STRING_PREFIX.match(raw).end() :]
        for quote in ('"""', "'''", '"', "'"):
            if body.startswith(quote) and body.endswith(quote) and len(body) >= 2 * len(quote):
                return body[len(quote) : -len(quote)]
        return None
    return value if isinstance(value, str) else None


def _docstring(body: tree_sitter.Node | None) -> str | None:
    """The cleaned docstring of a module or block: its first statement, if a string literal."""
    if body is None:
        return None
    for child in body.named_children:
        if child.type == "comment":
            continue
        if child.type != "expression_statement" or child.named_child_count != 1:
            return None
        literal = child.named_children[0]
        if literal.type not in ("string", "concatenated_string"):
            return None
        value = _string_value(literal)
        return inspect.cleandoc(value) if value is not None else None
    return None


def _function(node: tree_sitter.Node) -> FunctionInfo:
    name = _text(node.child_by_field_name("name"))
    is_async = any(child.type == "async" for child in node.children[:2])
    type_params = node.child_by_field_name("type_parameters")
    params = node.child_by_field_name("parameters")
    returns = node.child_by_field_name("return_type")
    signature = ("async def " if is_async else "def ") + name
    signature += _one_line(type_params) if type_params is not None else ""
    signature += _one_line(params) if params is not None else "()"
    if returns is not None:
        signature += " -> " + _one_line(returns)
    return FunctionInfo(
        name=name,
        signature=signature,
        docstring=_docstring(node.child_by_field_name("body")),
        line=node.start_point[0] + 1,
    )


def _definitions(block: tree_sitter.Node) -> tuple[list[ClassInfo], list[FunctionInfo]]:
    """Classes and functions defined directly in `block` (decorated ones included)."""
    classes: list[ClassInfo] = []
    functions: list[FunctionInfo] = []
    for child in block.named_children:
        node = child.child_by_field_name("definition") if child.type == "decorated_definition" else child
        if node is None:
            continue
        if node.type == "function_definition" and node.child_by_field_name("name") is not None:
            functions.append(_function(node))
        elif node.type == "class_definition" and node.child_by_field_name("name") is not None:
            classes.append(_class(node))
    return classes, functions


def _class(node: tree_sitter.Node) -> ClassInfo:
    superclasses = node.child_by_field_name("superclasses")
    bases = []
    if superclasses is not None:
        bases = [
            _one_line(arg)
            for arg in superclasses.named_children
            if arg.type not in ("keyword_argument", "comment")
        ]
    body = node.child_by_field_name("body")
    methods = _definitions(body)[1] if body is not None else []
    return ClassInfo(
        name=_text(node.child_by_field_name("name")),
        bases=bases,
        docstring=_docstring(body),
        line=node.start_point[0] + 1,
        methods=methods,
    )


def _imported_name(node: tree_sitter.Node) -> str:
    if node.type == "aliased_import":
        node = node.child_by_field_name("name")
    return _text(node)


def _from_import(node: tree_sitter.Node) -> ImportInfo | None:
    """One `from ... import ...` statement (future imports included) as an ImportInfo."""
    line = node.start_point[0] + 1
    if node.type == "future_import_statement":
        names = [_imported_name(n) for n in node.children_by_field_name("name")]
        return ImportInfo(module="__future__", names=names, level=0, line=line)
    module_node = node.child_by_field_name("module_name")
    if module_node is None:
        return None
    level, module = 0, ""
    if module_node.type == "relative_import":
        for child in module_node.named_children:
            if child.type == "import_prefix":
                level = _text(child).count(".")
            elif child.type == "dotted_name":
                module = _text(child)
    else:
        module = _text(module_node)
    names = [_imported_name(n) for n in node.children_by_field_name("name")]
    if any(child.type == "wildcard_import" for child in node.named_children):
        names = ["*"]
    return ImportInfo(module=module, names=names, level=level, line=line)


def _imports(nodes: list[tree_sitter.Node]) -> list[ImportInfo]:
    """Every import in the file, wherever it is nested, in source order."""
    found: list[ImportInfo] = []
    for node in sorted(nodes, key=lambda n: n.start_byte):
        if node.type == "import_statement":
            line = node.start_point[0] + 1
            for name in node.children_by_field_name("name"):
                found.append(ImportInfo(module=_imported_name(name), names=[], level=0, line=line))
        else:
            info = _from_import(node)
            if info is not None:
                found.append(info)
    return found


def _calls(nodes: list[tree_sitter.Node]) -> list[str]:
    """Distinct dotted callee names ("foo", "self.bar", "json.loads"); computed callees are dropped."""
    distinct = {node.text for node in nodes}  # dedupe before decoding: tests repeat self.assert* a lot
    return sorted(
        name
        for name in (raw.decode("utf-8", errors="replace") for raw in distinct)
        if _DOTTED_NAME.match(name)
    )


def summarize_python(path: str, text: str) -> FileSummary:
    """Summarise one Python file; `module` and `deps` are left empty for the graph step."""
    parser, query = _python_tools()
    tree = parser.parse(text.encode("utf-8", errors="surrogatepass"))
    root = tree.root_node
    captures = tree_sitter.QueryCursor(query).captures(root)
    classes, functions = _definitions(root)
    return FileSummary(
        path=path,
        language="python",
        module=None,
        docstring=_docstring(root),
        imports=_imports(captures.get("import", [])),
        classes=classes,
        functions=functions,
        calls=_calls(captures.get("callee", [])),
        deps=[],
        parse_ok=not root.has_error,
        n_lines=count_lines(text),
    )


def summarize(path: str, text: str, language: str = "python") -> FileSummary:
    return summarize_python(path, text)


class Resolver:
    """Python imports to in-repo files, by dotted module names (see `retrace.repo.modules`)."""

    def __init__(self, repo_name: str, files: dict[str, FileSummary], texts: dict[str, str]):
        self.index = ModuleIndex(repo_name, files)
        self.files = files

    def module_of(self, path: str) -> str | None:
        return self.index.module_of(path)

    def deps(self, path: str) -> set[str]:
        found: set[str] = set()
        for info in self.files[path].imports:
            found.update(self.index.resolve(path, info))
        return found
