"""Go: types, functions and methods, imports, and resolution of import paths through `go.mod`.

Summary: every `type` declaration is a class (structs, interfaces with their method elements,
other named types); a method goes with its receiver's type when that type is declared in the same
file, otherwise it is a function whose signature shows the receiver. Doc comments are the `//`
lines right above; the file's docstring is the package comment. Imports: `module` is the import
path, names [alias] when the import is renamed (`_` and `.` included).

Resolution: a package is a directory. Each in-repo `go.mod` maps its `module` path to its
directory; import path `M/rest` depends on the `.go` files (not `_test.go`) directly in
`<dir of go.mod for M>/rest`, the longest matching module path winning. Without a matching
`go.mod`, an import path whose first element looks like a host (`example.com/...`) depends on the
in-repo Go package directory that is the longest suffix of the path, if any. Files of one package
need no import; they are ordered by the file hierarchy.
"""

from __future__ import annotations

import posixpath
import re
from functools import lru_cache

import tree_sitter
import tree_sitter_go

from ..analysis import ClassInfo, FileSummary, FunctionInfo, ImportInfo, count_lines
from .base import COMMENT_TYPES, build_tools, callee_names, doc_comment, line, signature, text

# Lines that open a declaration: the agents may state them (a signature is an analysis fact), and the
# leakage checks do not count them as pasted code.
SIGNATURE_PREFIXES = ("func ", "type ", "package ")
_QUERY = "(import_spec) @import (call_expression function: (_) @callee)"
_MODULE_LINE = re.compile(r"^\s*module\s+\"?([^\s\"]+)\"?", re.MULTILINE)


@lru_cache(maxsize=1)
def _tools() -> tuple[tree_sitter.Parser, tree_sitter.Query]:
    return build_tools(tree_sitter_go.language(), _QUERY)


def _function(node: tree_sitter.Node, doc_node: tree_sitter.Node | None = None) -> FunctionInfo:
    return FunctionInfo(
        name=text(node.child_by_field_name("name")),
        signature=signature(node, node.child_by_field_name("body")),
        docstring=doc_comment(doc_node or node),
        line=line(node),
    )


def _receiver_type(node: tree_sitter.Node) -> str:
    """`(p *Point[T])` -> "Point"."""
    receiver = text(node.child_by_field_name("receiver")).strip("()").split()
    return receiver[-1].lstrip("*").split("[")[0] if receiver else ""


def _type_specs(declaration: tree_sitter.Node) -> list[ClassInfo]:
    single = declaration.named_child_count == 1
    found = []
    for spec in declaration.named_children:
        if spec.type not in ("type_spec", "type_alias") or spec.child_by_field_name("name") is None:
            continue
        body = spec.child_by_field_name("type")
        methods, bases = [], []
        if body is not None and body.type == "interface_type":
            for element in body.named_children:
                if element.type == "method_elem":
                    methods.append(_function(element))
                elif element.type == "type_elem":
                    bases.append(text(element))
        elif body is not None and body.type == "struct_type":
            fields = next((c for c in body.named_children if c.type == "field_declaration_list"), None)
            for field_node in fields.named_children if fields is not None else ():
                if field_node.type == "field_declaration" and field_node.child_by_field_name("name") is None:
                    bases.append(text(field_node.child_by_field_name("type")))  # embedded
        found.append(ClassInfo(
            name=text(spec.child_by_field_name("name")), bases=bases,
            docstring=doc_comment(declaration if single else spec), line=line(spec), methods=methods,
        ))  # fmt: skip
    return found


def _package_doc(root: tree_sitter.Node) -> str | None:
    for node in root.named_children:
        if node.type == "package_clause":
            return doc_comment(node)
        if node.type not in COMMENT_TYPES:
            return None
    return None


def summarize(path: str, source_text: str, language: str = "go") -> FileSummary:
    """Summarise one Go file; `module` (its package's import path) is left to the resolver."""
    parser, query = _tools()
    root = parser.parse(source_text.encode("utf-8", errors="surrogatepass")).root_node
    captures = tree_sitter.QueryCursor(query).captures(root)
    imports = []
    for spec in sorted(captures.get("import", []), key=lambda n: n.start_byte):
        path_node = spec.child_by_field_name("path")
        alias = spec.child_by_field_name("name")
        value = text(path_node).strip('"`')
        imports.append(
            ImportInfo(module=value, names=[text(alias)] if alias else [], level=0, line=line(spec))
        )
    classes: list[ClassInfo] = []
    functions: list[FunctionInfo] = []
    methods: list[tuple[str, FunctionInfo]] = []
    for node in root.named_children:
        if node.type == "type_declaration":
            classes += _type_specs(node)
        elif node.type == "function_declaration" and node.child_by_field_name("name") is not None:
            functions.append(_function(node))
        elif node.type == "method_declaration" and node.child_by_field_name("name") is not None:
            methods.append((_receiver_type(node), _function(node)))
    by_name = {c.name: c for c in classes}
    for receiver, method in methods:
        if receiver in by_name:
            by_name[receiver].methods.append(method)
        else:
            functions.append(method)
    functions.sort(key=lambda f: f.line)
    return FileSummary(
        path=path, language="go", module=None, docstring=_package_doc(root), imports=imports,
        classes=classes, functions=functions, calls=callee_names(text(n) for n in captures.get("callee", [])),
        deps=[], parse_ok=not root.has_error, n_lines=count_lines(source_text),
    )  # fmt: skip


class Resolver:
    """Go import paths to the in-repo package directory's files (rules in the module docstring)."""

    def __init__(self, repo_name: str, files: dict[str, FileSummary], texts: dict[str, str]):
        self.files = files
        self.package_files: dict[str, list[str]] = {}
        for path in sorted(files):
            if path.endswith(".go") and not path.endswith("_test.go"):
                self.package_files.setdefault(posixpath.dirname(path), []).append(path)
        self.modules: list[tuple[str, str]] = []  # (module path, directory), longest path first
        for path in sorted(texts):
            if posixpath.basename(path) == "go.mod":
                match = _MODULE_LINE.search(texts[path])
                if match:
                    self.modules.append((match.group(1), posixpath.dirname(path)))
        self.modules.sort(key=lambda m: (-len(m[0]), m))

    def directory_of(self, import_path: str) -> str | None:
        """The in-repo directory holding the package `import_path`, or None."""
        for module, directory in self.modules:
            if import_path == module or import_path.startswith(module + "/"):
                rest = import_path[len(module) :].strip("/")
                candidate = posixpath.join(directory, rest) if rest else directory
                return candidate if candidate in self.package_files else None
        parts = import_path.split("/")
        if "." not in parts[0]:
            return None  # the standard library
        for start in range(1, len(parts)):
            candidate = "/".join(parts[start:])
            if candidate in self.package_files:
                return candidate
        return None

    def module_of(self, path: str) -> str | None:
        directory = posixpath.dirname(path)
        for module, root in self.modules:
            if root == "" or directory == root or directory.startswith(root + "/"):
                rest = directory[len(root) :].strip("/") if root else directory
                return f"{module}/{rest}" if rest else module
        return None

    def deps(self, path: str) -> set[str]:
        found: set[str] = set()
        for info in self.files[path].imports:
            directory = self.directory_of(info.module)
            if directory is not None:
                found.update(self.package_files[directory])
        found.discard(path)
        return found
