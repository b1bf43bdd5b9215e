"""Java: types with their methods and constructors, imports, and resolution by fully qualified name.

Summary: classes, interfaces, enums, records and annotation types (nested ones as `Outer.Inner`)
with methods and constructors; signatures are the declaration head without annotations; doc
comments are the `/** ... */` right above. Java has no free functions. `module` is the file's
fully qualified class name: its `package` declaration plus the file name. Imports: `module` is the
imported name as written (`com.acme.util.Strings`, `com.acme.util.Math.max` with kind "static");
a wildcard import has names ["*"].

Resolution: every in-repo `.java` file is indexed by its fully qualified name (package declaration
+ file name, so any source root works: `src/main/java/`, `src/test/java/`, `src/`, the root).
`import a.b.C` depends on the file `a.b.C`, or on the deepest indexed prefix (static imports and
nested classes: `a.b.C.member` -> `a.b.C`); `import a.b.*` on every file of package `a.b`. Files of
the same package need no import: a file depends on a same-package file when it mentions that
file's class name as a whole word (comments included; cheap, and rarely wrong).
"""

from __future__ import annotations

import re
from functools import lru_cache

import tree_sitter
import tree_sitter_java

from ..analysis import ClassInfo, FileSummary, FunctionInfo, ImportInfo, count_lines
from .base import build_tools, callee_names, doc_comment, file_doc_comment, line, signature, text

# Lines that open a declaration: the agents may state them (a signature is an analysis fact), and the
# leakage checks do not count them as pasted code.
SIGNATURE_PREFIXES = ("public ", "protected ", "private ", "static ", "abstract ", "final ", "class ",
                      "interface ", "enum ", "record ", "@")
_QUERY = "(method_invocation) @call (object_creation_expression) @new"
_TYPE_DECLARATIONS = {
    "class_declaration", "interface_declaration", "enum_declaration", "record_declaration",
    "annotation_type_declaration",
}  # fmt: skip
_METHOD_TYPES = {"method_declaration", "constructor_declaration", "compact_constructor_declaration"}
_ANNOTATIONS = {"annotation", "marker_annotation"}


@lru_cache(maxsize=1)
def _tools() -> tuple[tree_sitter.Parser, tree_sitter.Query]:
    return build_tools(tree_sitter_java.language(), _QUERY)


def _annotations(node: tree_sitter.Node) -> list[tree_sitter.Node]:
    modifiers = next((c for c in node.named_children if c.type == "modifiers"), None)
    return [c for c in modifiers.named_children if c.type in _ANNOTATIONS] if modifiers is not None else []


def _method(node: tree_sitter.Node) -> FunctionInfo:
    return FunctionInfo(
        name=text(node.child_by_field_name("name")),
        signature=signature(node, node.child_by_field_name("body"), drop=_annotations(node)),
        docstring=doc_comment(node),
        line=line(node),
    )


def _types(nodes: list[tree_sitter.Node], prefix: str, found: list[ClassInfo]) -> None:
    """Type declarations among `nodes` and, recursively, their nested types (named Outer.Inner)."""
    for node in nodes:
        if node.type not in _TYPE_DECLARATIONS or node.child_by_field_name("name") is None:
            continue
        name = prefix + text(node.child_by_field_name("name"))
        bases = []
        for field_name in ("superclass", "interfaces"):
            clause = node.child_by_field_name(field_name)
            if clause is not None:
                bases += [text(t) for t in _type_list(clause)]
        extends = next((c for c in node.named_children if c.type == "extends_interfaces"), None)
        if extends is not None:
            bases += [text(t) for t in _type_list(extends)]
        info = ClassInfo(name=name, bases=bases, docstring=doc_comment(node), line=line(node))
        found.append(info)
        body = node.child_by_field_name("body")
        members = list(body.named_children) if body is not None else []
        for member in list(members):
            if member.type == "enum_body_declarations":
                members += member.named_children
        info.methods = [_method(m) for m in members if m.type in _METHOD_TYPES]
        _types(members, name + ".", found)


def _type_list(clause: tree_sitter.Node) -> list[tree_sitter.Node]:
    for child in clause.named_children:
        if child.type == "type_list":
            return list(child.named_children)
    return [c for c in clause.named_children if c.type != "comment"]


def _import(node: tree_sitter.Node) -> ImportInfo | None:
    name = next((c for c in node.named_children if c.type in ("scoped_identifier", "identifier")), None)
    if name is None:
        return None
    wildcard = any(c.type == "asterisk" for c in node.named_children)
    static = any(c.type == "static" for c in node.children)
    return ImportInfo(
        module=text(name), names=["*"] if wildcard else [], level=0, line=line(node),
        kind="static" if static else "import",
    )  # fmt: skip


def summarize(path: str, source_text: str, language: str = "java") -> FileSummary:
    """Summarise one Java file; `module` is its fully qualified class name when it declares a package."""
    parser, query = _tools()
    root = parser.parse(source_text.encode("utf-8", errors="surrogatepass")).root_node
    package, imports = "", []
    for node in root.named_children:
        if node.type == "package_declaration":
            name = next(
                (c for c in node.named_children if c.type in ("scoped_identifier", "identifier")), None
            )
            package = text(name)
        elif node.type == "import_declaration":
            info = _import(node)
            if info is not None:
                imports.append(info)
    classes: list[ClassInfo] = []
    _types(root.named_children, "", classes)
    captures = tree_sitter.QueryCursor(query).captures(root)
    callees = []
    for node in captures.get("call", []):
        target = node.child_by_field_name("object")
        name = text(node.child_by_field_name("name"))
        callees.append(f"{text(target)}.{name}" if target is not None else name)
    callees += [text(node.child_by_field_name("type")) for node in captures.get("new", [])]
    stem = path.rsplit("/", 1)[-1].removesuffix(".java")
    return FileSummary(
        path=path, language="java", module=f"{package}.{stem}" if package else stem,
        docstring=file_doc_comment(root), imports=imports, classes=classes, functions=[],
        calls=callee_names(callees), deps=[], parse_ok=not root.has_error, n_lines=count_lines(source_text),
    )  # fmt: skip


class Resolver:
    """Java imports and same-package references to in-repo files (rules in the module docstring)."""

    def __init__(self, repo_name: str, files: dict[str, FileSummary], texts: dict[str, str]):
        self.files = files
        self.texts = texts
        self.path_by_name: dict[str, str] = {}
        self.paths_by_package: dict[str, list[str]] = {}
        for path in sorted(files):
            summary = files[path]
            if summary.language != "java" or not summary.module:
                continue
            self.path_by_name.setdefault(summary.module, path)
            package = summary.module.rpartition(".")[0]
            self.paths_by_package.setdefault(package, []).append(path)
        self._mentions: dict[str, re.Pattern | None] = {}

    def module_of(self, path: str) -> str | None:
        return self.files[path].module

    def _deepest(self, dotted: str) -> str | None:
        parts = dotted.split(".")
        for end in range(len(parts), 1, -1):
            path = self.path_by_name.get(".".join(parts[:end]))
            if path is not None:
                return path
        return None

    def _same_package_pattern(self, package: str) -> re.Pattern | None:
        if package not in self._mentions:
            names = sorted(
                {self.files[p].module.rpartition(".")[2] for p in self.paths_by_package.get(package, [])}
            )
            self._mentions[package] = (
                re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b") if names else None
            )
        return self._mentions[package]

    def deps(self, path: str) -> set[str]:
        summary = self.files[path]
        found: set[str] = set()
        for info in summary.imports:
            if info.names == ["*"]:
                found.update(self.paths_by_package.get(info.module, []))
            else:
                target = self._deepest(info.module)
                if target is not None:
                    found.add(target)
        package = (summary.module or "").rpartition(".")[0]
        pattern = self._same_package_pattern(package) if summary.module else None
        if pattern is not None and len(self.paths_by_package[package]) > 1:
            for name in set(pattern.findall(self.texts.get(path, ""))):
                target = self.path_by_name.get(f"{package}.{name}" if package else name)
                if target is not None:
                    found.add(target)
        found.discard(path)
        return found
