"""C and C++: functions, structs/classes with their methods, `#include`s, and include resolution.

Summary: functions are definitions and prototypes at file level, also inside namespaces,
`extern "C"` blocks, templates and preprocessor conditionals (header guards); out-of-class method
definitions keep their qualified name (`Shape::area`). Structs, classes, unions and enums with a
body are classes (a `typedef struct {...} name_t` takes the typedef name); member functions declared
or defined in a class body are its methods. Doc comments are the comment block right above. A `.h`
file is parsed as C and, if that fails while C++ parses cleanly, as C++. Imports: `#include "x.h"`
(kind "include") and `#include <x.h>` (kind "include_system"), `module` the path as written.

Resolution: `#include "p"` is looked up relative to the including file's directory, then in the
include directories; `#include <p>` in the include directories only (so `<vector>` finds nothing
unless the repository has such a file). Include directories, in order: the repository root, then
every in-repo directory named `include` (shallowest first, then by name), then `src/`. When the
repository is itself an include directory's child (ingesting `/usr/include/openssl` as "openssl"),
`<openssl/ssl.h>` also finds `ssl.h` at its root, as Python's repository-as-package rule does.
"""

from __future__ import annotations

import posixpath
from functools import cache

import tree_sitter
import tree_sitter_c
import tree_sitter_cpp

from ..analysis import ClassInfo, FileSummary, FunctionInfo, ImportInfo, count_lines
from .base import build_tools, callee_names, doc_comment, file_doc_comment, line, signature, text

# Lines that open a declaration: the agents may state them (a signature is an analysis fact), and the
# leakage checks do not count them as pasted code.
SIGNATURE_PREFIXES = ("struct ", "class ", "union ", "enum ", "typedef ", "namespace ", "template", "#define ")
_QUERY = "(preproc_include) @include (call_expression function: (_) @callee)"
_GRAMMARS = {"c": tree_sitter_c.language, "cpp": tree_sitter_cpp.language}
_CONTAINERS = {
    "preproc_ifdef", "preproc_if", "preproc_else", "preproc_elif", "preproc_elifdef",
    "linkage_specification", "declaration_list", "namespace_definition", "template_declaration",
}  # fmt: skip
_CLASS_TYPES = {"struct_specifier", "class_specifier", "union_specifier", "enum_specifier"}
_DECLARATOR_WRAPPERS = {
    "pointer_declarator",
    "reference_declarator",
    "function_declarator",
    "parenthesized_declarator",
}


@cache
def _tools(language: str) -> tuple[tree_sitter.Parser, tree_sitter.Query]:
    return build_tools(_GRAMMARS[language](), _QUERY)


def _function_declarator(node: tree_sitter.Node | None) -> tree_sitter.Node | None:
    """The function_declarator under a declaration's declarator chain (pointers, references)."""
    while node is not None and node.type != "function_declarator":
        if node.type not in _DECLARATOR_WRAPPERS:
            return None
        node = node.child_by_field_name("declarator")
    return node


def _function(node: tree_sitter.Node, doc_node: tree_sitter.Node) -> FunctionInfo | None:
    declarator = _function_declarator(node.child_by_field_name("declarator"))
    if declarator is None:
        return None
    name = declarator.child_by_field_name("declarator")
    return FunctionInfo(
        name=text(name),
        signature=signature(node, node.child_by_field_name("body")),
        docstring=doc_comment(doc_node),
        line=line(node),
    )


def _class(node: tree_sitter.Node, doc_node: tree_sitter.Node, name: str) -> ClassInfo:
    bases = []
    methods = []
    for child in node.named_children:
        if child.type == "base_class_clause":
            bases += [text(b) for b in child.named_children if b.type not in ("access_specifier", "comment")]
    body = node.child_by_field_name("body")
    for member in body.named_children if body is not None else ():
        target = (
            member.named_children[-1]
            if member.type == "template_declaration" and member.named_child_count
            else member
        )
        if target.type in ("function_definition", "field_declaration", "declaration"):
            method = _function(target, member)
            if method is not None:
                methods.append(method)
    return ClassInfo(
        name=name, bases=bases, docstring=doc_comment(doc_node), line=line(node), methods=methods
    )


def _definitions(block: tree_sitter.Node, classes: list[ClassInfo], functions: list[FunctionInfo]) -> None:
    for node in block.named_children:
        kind = node.type
        if kind in _CONTAINERS:
            body = node.child_by_field_name("body")
            _definitions(
                body if body is not None and kind != "template_declaration" else node, classes, functions
            )
        elif kind in ("function_definition", "declaration"):
            function = _function(node, node)
            if function is not None:
                functions.append(function)
            specifier = node.child_by_field_name("type")
            if (
                specifier is not None
                and specifier.type in _CLASS_TYPES
                and specifier.child_by_field_name("body")
            ):
                name = specifier.child_by_field_name("name")
                if name is not None:
                    classes.append(_class(specifier, node, text(name)))
        elif kind in _CLASS_TYPES and node.child_by_field_name("body") is not None:
            name = node.child_by_field_name("name")
            if name is not None:
                classes.append(_class(node, node, text(name)))
        elif kind == "type_definition":
            specifier = node.child_by_field_name("type")
            if (
                specifier is not None
                and specifier.type in _CLASS_TYPES
                and specifier.child_by_field_name("body")
            ):
                alias = node.child_by_field_name("declarator")
                name = specifier.child_by_field_name("name")
                classes.append(_class(specifier, node, text(alias if alias is not None else name)))


def _parse(path: str, source: bytes, language: str) -> tuple[tree_sitter.Node, tree_sitter.Query]:
    parser, query = _tools(language)
    root = parser.parse(source).root_node
    if language == "c" and path.endswith(".h") and root.has_error:  # a C++ header named .h
        cpp_parser, cpp_query = _tools("cpp")
        cpp_root = cpp_parser.parse(source).root_node
        if not cpp_root.has_error:
            return cpp_root, cpp_query
    return root, query


def summarize(path: str, source_text: str, language: str = "c") -> FileSummary:
    """Summarise one C or C++ file; `module` and `deps` are left to the resolver."""
    source = source_text.encode("utf-8", errors="surrogatepass")
    root, query = _parse(path, source, "c" if language == "c" else "cpp")
    captures = tree_sitter.QueryCursor(query).captures(root)
    imports = []
    for node in sorted(captures.get("include", []), key=lambda n: n.start_byte):
        target = node.child_by_field_name("path")
        if target is None:
            continue
        raw = text(target)
        system = target.type == "system_lib_string"
        imports.append(ImportInfo(
            module=raw[1:-1] if len(raw) >= 2 else raw, names=[], level=0, line=line(node),
            kind="include_system" if system else "include",
        ))  # fmt: skip
    classes: list[ClassInfo] = []
    functions: list[FunctionInfo] = []
    _definitions(root, classes, functions)
    return FileSummary(
        path=path, language=language, module=None, docstring=file_doc_comment(root), imports=imports,
        classes=classes, functions=functions, calls=callee_names(text(n) for n in captures.get("callee", [])),
        deps=[], parse_ok=not root.has_error, n_lines=count_lines(source_text),
    )  # fmt: skip


class Resolver:
    """C/C++ includes to in-repo files (rules in the module docstring)."""

    def __init__(self, repo_name: str, files: dict[str, FileSummary], texts: dict[str, str]):
        self.files = files
        self.paths = set(files)
        self.own_prefix = repo_name + "/"
        directories = {posixpath.dirname(p) for p in files}
        with_parents = set(directories)
        for directory in directories:
            while directory:
                directory = posixpath.dirname(directory)
                with_parents.add(directory)
        include_dirs = sorted(
            (d for d in with_parents if posixpath.basename(d) == "include"), key=lambda d: (d.count("/"), d)
        )
        self.include_dirs = ["", *include_dirs] + (["src"] if "src" in with_parents else [])

    def module_of(self, path: str) -> str | None:
        return None

    def resolve(self, path: str, info: ImportInfo) -> str | None:
        bases = list(self.include_dirs)
        if info.kind == "include":
            bases.insert(0, posixpath.dirname(path))
        for base in bases:
            candidate = posixpath.normpath(posixpath.join(base, info.module))
            if candidate in self.paths:
                return candidate
        if info.module.startswith(self.own_prefix):
            candidate = posixpath.normpath(info.module[len(self.own_prefix) :])
            return candidate if candidate in self.paths else None
        return None

    def deps(self, path: str) -> set[str]:
        found = {self.resolve(path, info) for info in self.files[path].imports}
        found.discard(None)
        found.discard(path)
        return found  # type: ignore[return-value]
