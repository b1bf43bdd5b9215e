"""JavaScript, TypeScript and TSX: definitions, imports and in-repo resolution of relative specifiers.

Summary: classes (and TypeScript interfaces and enums) with their methods; functions are function
declarations and `const f = (...) => ...` / `function` expressions bound at the top level, inside
`export` too; doc comments are the `/** ... */` block right above. Imports: `import ... from 'x'`,
`export ... from 'x'`, `import x = require('x')`, `require('x')` and `import('x')` anywhere, with
`module` the raw specifier and `names` the imported names ("default", "*" for namespaces).

Resolution (the rule dependency edges follow): a specifier starting with `.` or `/` is joined to
the importing file's directory (`/`: the repository root) and tried as written, then with each of
`.ts .tsx .d.ts .js .jsx .mjs .cjs .json`, then as a directory's `index` with those extensions; a
`.js`-family specifier that is missing is also tried as the TypeScript file it compiles from
(`./x.js` -> `./x.ts`). Bare specifiers (packages) are not in-repo and are ignored.
"""

from __future__ import annotations

import posixpath
from functools import cache

import tree_sitter
import tree_sitter_javascript
import tree_sitter_typescript

from ..analysis import ClassInfo, FileSummary, FunctionInfo, ImportInfo, count_lines
from .base import build_tools, callee_names, doc_comment, file_doc_comment, line, signature, text

# Lines that open a declaration: the agents may state them (a signature is an analysis fact), and the
# leakage checks do not count them as pasted code.
SIGNATURE_PREFIXES = ("function ", "function* ", "async function ", "class ", "interface ", "type ", "enum ",
                      "export ", "declare ", "abstract class ", "@")
_QUERY = "[(import_statement) (export_statement)] @import (call_expression) @call (new_expression) @new"
_GRAMMARS = {
    "javascript": tree_sitter_javascript.language,
    "typescript": tree_sitter_typescript.language_typescript,
    "tsx": tree_sitter_typescript.language_tsx,
}
_CLASS_TYPES = {
    "class_declaration",
    "abstract_class_declaration",
    "interface_declaration",
    "enum_declaration",
}
_FUNCTION_TYPES = {"function_declaration", "generator_function_declaration", "function_signature"}
_METHOD_TYPES = {"method_definition", "method_signature", "abstract_method_signature"}
_FUNCTION_VALUES = {"arrow_function", "function_expression", "function", "generator_function"}
_EXTENSIONS = (".ts", ".tsx", ".d.ts", ".js", ".jsx", ".mjs", ".cjs", ".json")


@cache
def _tools(language: str) -> tuple[tree_sitter.Parser, tree_sitter.Query]:
    return build_tools(_GRAMMARS[language](), _QUERY)


def _string_value(node: tree_sitter.Node | None) -> str | None:
    if node is None or node.type not in ("string", "template_string"):
        return None
    value = text(node)
    return value[1:-1] if len(value) >= 2 else None


def _function(node: tree_sitter.Node, doc_node: tree_sitter.Node, name: str | None = None) -> FunctionInfo:
    name = name or text(node.child_by_field_name("name"))
    return FunctionInfo(
        name=name,
        signature=signature(node, node.child_by_field_name("body")),
        docstring=doc_comment(doc_node),
        line=line(node),
    )


def _bound_functions(node: tree_sitter.Node, doc_node: tree_sitter.Node) -> list[FunctionInfo]:
    """`const f = (a) => ...` and `var g = function () {}`: named by the variable."""
    found = []
    for declarator in node.named_children:
        value = declarator.child_by_field_name("value")
        if declarator.type == "variable_declarator" and value is not None and value.type in _FUNCTION_VALUES:
            name = text(declarator.child_by_field_name("name"))
            head = signature(node, value.child_by_field_name("body"))
            found.append(
                FunctionInfo(name=name, signature=head, docstring=doc_comment(doc_node), line=line(node))
            )
    return found


def _class(node: tree_sitter.Node, doc_node: tree_sitter.Node) -> ClassInfo:
    bases: list[str] = []
    for child in node.named_children:
        if child.type in ("class_heritage", "extends_type_clause"):
            clauses = [c for c in child.named_children if c.type in ("extends_clause", "implements_clause")]
            for clause in clauses or [child]:
                bases += [
                    text(t) for t in clause.named_children if t.type not in ("type_arguments", "comment")
                ]
    body = node.child_by_field_name("body")
    methods = []
    for member in body.named_children if body is not None else ():
        if member.type in _METHOD_TYPES and member.child_by_field_name("name") is not None:
            methods.append(_function(member, member))
    return ClassInfo(
        name=text(node.child_by_field_name("name")),
        bases=bases,
        docstring=doc_comment(doc_node),
        line=line(node),
        methods=methods,
    )


def _definitions(block: tree_sitter.Node, classes: list[ClassInfo], functions: list[FunctionInfo]) -> None:
    """Top-level definitions of `block`, looking through `export` and TypeScript namespaces."""
    for child in block.named_children:
        node = child
        if child.type == "export_statement":
            node = child.child_by_field_name("declaration") or child.child_by_field_name("value")
            if node is None:
                continue
        if node.type == "expression_statement" and node.named_child_count == 1:
            node = node.named_children[0]
        if node.child_by_field_name("name") is not None and node.type in _CLASS_TYPES:
            classes.append(_class(node, child))
        elif node.child_by_field_name("name") is not None and node.type in _FUNCTION_TYPES:
            functions.append(_function(node, child))
        elif node.type in ("lexical_declaration", "variable_declaration"):
            functions.extend(_bound_functions(node, child))
        elif node.type in ("internal_module", "module") and node.child_by_field_name("body") is not None:
            _definitions(node.child_by_field_name("body"), classes, functions)


def _names(clause: tree_sitter.Node | None) -> list[str]:
    """Imported or re-exported names: named ones as exported, "default", "*" for namespaces."""
    if clause is None:
        return ["*"]
    if clause.type == "export_clause":
        return [
            text(s.child_by_field_name("name"))
            for s in clause.named_children
            if s.child_by_field_name("name")
        ]
    names = []
    for child in clause.named_children:
        if child.type == "identifier":
            names.append("default")
        elif child.type == "namespace_import" or child.type == "namespace_export":
            names.append("*")
        elif child.type == "named_imports":
            names += [
                text(s.child_by_field_name("name"))
                for s in child.named_children
                if s.child_by_field_name("name")
            ]
    return names


def _statement_import(node: tree_sitter.Node) -> ImportInfo | None:
    source = _string_value(node.child_by_field_name("source"))
    clause = next((c for c in node.named_children if c.type in ("import_clause", "export_clause")), None)
    if source is None:
        require = next((c for c in node.named_children if c.type == "import_require_clause"), None)
        source = _string_value(require.child_by_field_name("source")) if require is not None else None
        if source is None:
            return None
        return ImportInfo(module=source, names=[], level=0, line=line(node), kind="require")
    if node.type == "import_statement":
        names = _names(clause) if clause is not None else []  # `import './side-effect'`
        return ImportInfo(module=source, names=names, level=0, line=line(node), kind="import")
    return ImportInfo(module=source, names=_names(clause), level=0, line=line(node), kind="export")


def summarize(path: str, source_text: str, language: str = "javascript") -> FileSummary:
    """Summarise one JavaScript/TypeScript file; `module` and `deps` are left to the resolver."""
    parser, query = _tools(language)
    root = parser.parse(source_text.encode("utf-8", errors="surrogatepass")).root_node
    captures = tree_sitter.QueryCursor(query).captures(root)
    imports: list[ImportInfo] = []
    for node in captures.get("import", []):
        info = _statement_import(node)
        if info is not None:
            imports.append(info)
    callees = []
    for node in captures.get("call", []):
        function = node.child_by_field_name("function")
        arguments = node.child_by_field_name("arguments")
        if function is not None and (function.type == "import" or text(function) == "require"):
            first = (
                arguments.named_children[0] if arguments is not None and arguments.named_child_count else None
            )
            specifier = _string_value(first)
            if specifier is not None:
                kind = "dynamic" if function.type == "import" else "require"
                imports.append(ImportInfo(module=specifier, names=[], level=0, line=line(node), kind=kind))
                continue
        callees.append(text(function))
    callees += [text(node.child_by_field_name("constructor")) for node in captures.get("new", [])]
    classes: list[ClassInfo] = []
    functions: list[FunctionInfo] = []
    _definitions(root, classes, functions)
    imports.sort(key=lambda i: i.line)
    return FileSummary(
        path=path, language=language, module=None, docstring=file_doc_comment(root), imports=imports, classes=classes,
        functions=functions, calls=callee_names(callees), deps=[], parse_ok=not root.has_error,
        n_lines=count_lines(source_text),
    )  # fmt: skip


class Resolver:
    """Relative JavaScript/TypeScript specifiers to in-repo files (rules in the module docstring)."""

    def __init__(self, repo_name: str, files: dict[str, FileSummary], texts: dict[str, str]):
        self.paths = set(files)
        self.files = files

    def module_of(self, path: str) -> str | None:
        return None

    def resolve(self, path: str, specifier: str) -> str | None:
        if specifier.startswith("/"):
            base = posixpath.normpath(specifier.lstrip("/"))
        elif specifier.startswith("."):
            base = posixpath.normpath(posixpath.join(posixpath.dirname(path), specifier))
        else:
            return None
        if base.startswith("../") or base == "..":
            return None
        stems = [base]
        stem, ext = posixpath.splitext(base)
        if ext in (".js", ".jsx", ".mjs", ".cjs"):
            stems.append(stem)  # `./x.js` written in TypeScript sources means `./x.ts`
        for candidate in (base, *(s + e for s in stems for e in _EXTENSIONS)):
            if candidate in self.paths:
                return candidate
        for extension in _EXTENSIONS:
            candidate = posixpath.join(base, "index" + extension)
            if candidate in self.paths:
                return candidate
        return None

    def deps(self, path: str) -> set[str]:
        found = {self.resolve(path, info.module) for info in self.files[path].imports}
        found.discard(None)
        found.discard(path)
        return found
