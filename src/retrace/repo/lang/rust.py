"""Rust: structs, enums, traits and impls, free functions, `mod`/`use` and their resolution to files.

Summary: structs, enums, unions and traits are classes; an `impl` block's functions go to its
type's class when the type is declared in the same file (the trait joins its bases), else to a
class named after the type; free functions are `fn` items at the top level. Doc comments are the
`///` lines or `/** */` above (attributes may sit between); the file's docstring is its `//!`
lines. Imports: `mod foo;` (kind "mod", module "foo"); `use a::b::{c, d as e}` (kind "use",
module "a::b", names ["c", "d"]; a plain path `use a::b::C` is module "a::b", names ["C"]);
`extern crate x` (kind "extern_crate"). Inline `mod name { ... }` bodies are not summarised.

Resolution, by file location (the usual Cargo layout, `#[path]` attributes ignored):
- a crate's source directory is the nearest enclosing `src/`; a file's module path comes from its
  place under it (`src/lib.rs` and `src/main.rs` are the crate root, `src/a/mod.rs` and `src/a.rs`
  are `crate::a`, `src/a/b.rs` is `crate::a::b`);
- `mod foo;` in a crate root, `mod.rs`, or a file directly under `tests/`, `examples/`,
  `benches/`, `bin/` looks in the file's directory, otherwise in a directory named after the
  file; it depends on `foo.rs` there, else on `foo/mod.rs`;
- `use crate::p`, `use self::p`, `use super::p` (and the crate's own name from a `Cargo.toml`
  `[package] name`, dashes as underscores) depend on the deepest existing module file along
  `p` (for each listed name first, then the common path); other crates are not in-repo.
"""

from __future__ import annotations

import posixpath
import re
from functools import lru_cache

import tree_sitter
import tree_sitter_rust

from ..analysis import ClassInfo, FileSummary, FunctionInfo, ImportInfo, count_lines
from .base import build_tools, callee_names, clean_comment, doc_comment, line, signature, text

# Lines that open a declaration: the agents may state them (a signature is an analysis fact), and the
# leakage checks do not count them as pasted code.
SIGNATURE_PREFIXES = ("fn ", "pub fn ", "pub(crate) fn ", "async fn ", "pub async fn ", "const fn ", "pub const fn ",
                      "struct ", "pub struct ", "enum ", "pub enum ", "trait ", "pub trait ", "impl ", "impl<", "mod ",
                      "pub mod ", "#[")
_QUERY = "(call_expression function: (_) @callee) (macro_invocation macro: (_) @macro)"
_TYPE_ITEMS = {"struct_item", "enum_item", "union_item", "trait_item"}
_SKIP = frozenset({"attribute_item"})
_MOD_DIRS = {"tests", "examples", "benches", "bin"}
_PACKAGE_NAME = re.compile(r"^\[package\][^\[]*?^\s*name\s*=\s*\"([^\"]+)\"", re.MULTILINE | re.DOTALL)


@lru_cache(maxsize=1)
def _tools() -> tuple[tree_sitter.Parser, tree_sitter.Query]:
    return build_tools(tree_sitter_rust.language(), _QUERY)


def _function(node: tree_sitter.Node) -> FunctionInfo:
    return FunctionInfo(
        name=text(node.child_by_field_name("name")),
        signature=signature(node, node.child_by_field_name("body")),
        docstring=doc_comment(node, _SKIP),
        line=line(node),
    )


def _functions_in(body: tree_sitter.Node | None) -> list[FunctionInfo]:
    if body is None:
        return []
    kinds = ("function_item", "function_signature_item")
    return [_function(n) for n in body.named_children if n.type in kinds and n.child_by_field_name("name")]


def _type_name(node: tree_sitter.Node | None) -> str:
    """`Point<T>` -> "Point", `crate::a::Point` -> "Point", `&mut X` -> "X"."""
    raw = text(node).split("<")[0].strip().lstrip("&").removeprefix("mut ").strip()
    return raw.rsplit("::", 1)[-1]


def _use_paths(node: tree_sitter.Node | None, prefix: str, out: list[str]) -> None:
    """Flatten a use tree into full paths (`a::{b, c::d}` -> a::b, a::c::d); `*` kept as a name."""
    if node is None:  # a broken use tree
        return
    kind = node.type
    if kind == "scoped_use_list":
        path = node.child_by_field_name("path")
        inner = prefix + (text(path) + "::" if path is not None else "")
        _use_paths(node.child_by_field_name("list"), inner, out)
    elif kind == "use_list":
        for child in node.named_children:
            _use_paths(child, prefix, out)
    elif kind == "use_as_clause":
        _use_paths(node.child_by_field_name("path"), prefix, out)
    elif kind == "use_wildcard":
        scope = next((c for c in node.named_children), None)
        out.append(prefix + (text(scope) + "::" if scope is not None else "") + "*")
    elif kind != "comment":
        out.append(prefix + text(node))


def _use(node: tree_sitter.Node) -> ImportInfo | None:
    argument = node.child_by_field_name("argument")
    if argument is None:
        return None
    paths: list[str] = []
    _use_paths(argument, "", paths)
    if not paths:
        return None
    split = [p.split("::") for p in paths]
    common = split[0][:-1] if len(split) == 1 else list(posixpath.commonprefix(split))
    names = ["::".join(parts[len(common) :]) for parts in split]
    if not common and len(names) == 1:  # `use serde;`
        return ImportInfo(module=names[0], names=[], level=0, line=line(node), kind="use")
    return ImportInfo(module="::".join(common), names=names, level=0, line=line(node), kind="use")


def summarize(path: str, source_text: str, language: str = "rust") -> FileSummary:
    """Summarise one Rust file; `module` (its module path) is left to the resolver."""
    parser, query = _tools()
    root = parser.parse(source_text.encode("utf-8", errors="surrogatepass")).root_node
    imports: list[ImportInfo] = []
    classes: list[ClassInfo] = []
    functions: list[FunctionInfo] = []
    impls: list[tree_sitter.Node] = []
    inner_docs: list[str] = []
    for node in root.named_children:
        kind = node.type
        if (
            kind == "line_comment"
            and text(node).startswith("//!")
            or kind == "block_comment"
            and text(node).startswith("/*!")
        ):
            inner_docs.append(clean_comment(text(node)))
        elif kind == "mod_item" and node.child_by_field_name("body") is None:
            imports.append(
                ImportInfo(
                    module=text(node.child_by_field_name("name")),
                    names=[],
                    level=0,
                    line=line(node),
                    kind="mod",
                )
            )
        elif kind == "use_declaration":
            info = _use(node)
            if info is not None:
                imports.append(info)
        elif kind == "extern_crate_declaration":
            imports.append(
                ImportInfo(
                    module=text(node.child_by_field_name("name")),
                    names=[],
                    level=0,
                    line=line(node),
                    kind="extern_crate",
                )
            )
        elif kind in _TYPE_ITEMS and node.child_by_field_name("name") is not None:
            bounds = node.child_by_field_name("bounds")
            classes.append(ClassInfo(
                name=text(node.child_by_field_name("name")),
                bases=[text(b) for b in bounds.named_children] if bounds is not None else [],
                docstring=doc_comment(node, _SKIP), line=line(node),
                methods=_functions_in(node.child_by_field_name("body")) if kind == "trait_item" else [],
            ))  # fmt: skip
        elif kind == "impl_item":
            impls.append(node)
        elif kind == "function_item" and node.child_by_field_name("name") is not None:
            functions.append(_function(node))
    by_name = {c.name: c for c in classes}
    for node in impls:
        name = _type_name(node.child_by_field_name("type"))
        if name not in by_name:
            by_name[name] = ClassInfo(
                name=name, bases=[], docstring=doc_comment(node, _SKIP), line=line(node)
            )
            classes.append(by_name[name])
        trait = node.child_by_field_name("trait")
        if trait is not None and text(trait) not in by_name[name].bases:
            by_name[name].bases.append(text(trait))
        by_name[name].methods += _functions_in(node.child_by_field_name("body"))
    captures = tree_sitter.QueryCursor(query).captures(root)
    calls = callee_names(text(n) for n in captures.get("callee", []))
    calls += [name + "!" for name in callee_names(text(n) for n in captures.get("macro", []))]
    return FileSummary(
        path=path, language="rust", module=None, docstring="\n".join(inner_docs).strip() or None,
        imports=imports, classes=classes, functions=functions,
        calls=sorted(calls),
        deps=[], parse_ok=not root.has_error, n_lines=count_lines(source_text),
    )  # fmt: skip


class Resolver:
    """Rust `mod` and `use` to in-repo files (rules in the module docstring)."""

    def __init__(self, repo_name: str, files: dict[str, FileSummary], texts: dict[str, str]):
        self.files = files
        self.paths = {p for p in files if p.endswith(".rs")}
        self.crate_names: dict[str, str] = {}  # crate name -> its src directory
        for path in sorted(texts):
            if posixpath.basename(path) == "Cargo.toml":
                match = _PACKAGE_NAME.search(texts[path])
                if match:
                    self.crate_names[match.group(1).replace("-", "_")] = posixpath.join(
                        posixpath.dirname(path), "src"
                    )

    @staticmethod
    def _src_and_module(path: str) -> tuple[str, list[str]] | None:
        """(crate source directory, module path parts) for a file under a `src/` directory."""
        parts = path.split("/")
        if "src" not in parts[:-1]:
            return None
        at = len(parts) - 1 - parts[:-1][::-1].index("src") - 1
        src = "/".join(parts[: at + 1])
        rel = parts[at + 1 :]
        rel[-1] = rel[-1].removesuffix(".rs")
        if rel in (["lib"], ["main"]) or (len(rel) >= 2 and rel[0] == "bin"):
            return src, []
        if rel[-1] == "mod":
            rel.pop()
        return src, rel

    def module_of(self, path: str) -> str | None:
        located = self._src_and_module(path) if path.endswith(".rs") else None
        return "::".join(["crate", *located[1]]) if located is not None else None

    def _module_file(self, src: str, parts: list[str]) -> str | None:
        """The deepest existing file for module path `parts` in crate source directory `src`."""
        for end in range(len(parts), -1, -1):
            stem = posixpath.join(src, *parts[:end]) if end else src
            candidates = (stem + ".rs", stem + "/mod.rs") if end else (src + "/lib.rs", src + "/main.rs")
            for candidate in candidates:
                if candidate in self.paths:
                    return candidate
        return None

    def _mod(self, path: str, name: str) -> str | None:
        directory, base = posixpath.split(path)
        stem = base.removesuffix(".rs")
        owns_directory = stem in ("lib", "main", "mod") or posixpath.basename(directory) in _MOD_DIRS
        directory = directory if owns_directory else posixpath.join(directory, stem)
        for candidate in (posixpath.join(directory, name + ".rs"), posixpath.join(directory, name, "mod.rs")):
            if candidate in self.paths:
                return candidate
        return None

    def _use(self, path: str, dotted: str) -> str | None:
        parts = [p for p in dotted.split("::") if p and p != "*"]
        if len(parts) > 1 and parts[-1] == "self":  # `use a::b::{self}` names the module a::b
            parts.pop()
        if not parts:
            return None
        located = self._src_and_module(path)
        head = parts[0]
        if head == "crate" and located is not None:
            return self._module_file(located[0], parts[1:])
        if head in ("self", "super") and located is not None:
            src, module = located
            base = list(module)
            while parts and parts[0] in ("self", "super"):
                if parts.pop(0) == "super" and base:
                    base.pop()
            return self._module_file(src, base + parts)
        if head in self.crate_names:
            return self._module_file(self.crate_names[head], parts[1:])
        return None

    def deps(self, path: str) -> set[str]:
        found: set[str | None] = set()
        for info in self.files[path].imports:
            if info.kind == "mod":
                found.add(self._mod(path, info.module))
            elif info.kind == "use":
                targets = [f"{info.module}::{n}" if info.module else n for n in info.names] or [info.module]
                found.update(self._use(path, target) for target in targets)
        found.discard(None)
        found.discard(path)
        return found  # type: ignore[return-value]
