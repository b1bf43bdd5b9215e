"""Pieces every language summariser shares: parsers built once, one-line signatures, doc comments.

A signature is the declaration's own text up to its body (modifiers, name, type parameters,
parameters, return type), comments removed and whitespace collapsed to one line: the same rule in
every language, so it costs one slice of the source and never drifts from what is written.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable

import tree_sitter

COMMENT_TYPES = frozenset({"comment", "line_comment", "block_comment"})
_SPACES = re.compile(r"\s+")
# Callee names worth keeping: identifier chains joined by ".", "::" or "->" (no calls, no indexing).
_CALLEE = re.compile(r"[A-Za-z_$][\w$]*(?:(?:\.|::|->)[A-Za-z_$][\w$]*)*\Z")
_DOC_LINE_MARKER = re.compile(r"^\s*(?:/\*\*?|\*/|\*(?!/)|//[/!]?)\s?")


def build_tools(language_capsule, query_source: str) -> tuple[tree_sitter.Parser, tree_sitter.Query]:
    """A parser and one compiled query for a grammar; callers cache the pair once per process."""
    language = tree_sitter.Language(language_capsule)
    return tree_sitter.Parser(language), tree_sitter.Query(language, query_source)


def text(node: tree_sitter.Node | None) -> str:
    return "" if node is None else node.text.decode("utf-8", errors="replace")


def line(node: tree_sitter.Node) -> int:
    return node.start_point[0] + 1


def flatten(raw: str) -> str:
    """Source text on one line: whitespace runs become one space, no space inside brackets."""
    flat = _SPACES.sub(" ", raw).strip()
    for opener in "([{<":
        flat = flat.replace(opener + " ", opener)
    for comma_closer in (", )", ",)", ", ]", ",]", ", }", ",}"):
        flat = flat.replace(comma_closer, comma_closer[-1])
    return flat.replace(" )", ")").replace(" ]", "]")


def _comments_before(node: tree_sitter.Node, end_byte: int) -> list[tree_sitter.Node]:
    """Comment nodes inside `node` that start before `end_byte` (the body is never walked)."""
    found, stack = [], [node]
    while stack:
        current = stack.pop()
        if current.start_byte >= end_byte:
            continue
        if current.type in COMMENT_TYPES:
            found.append(current)
        elif current.child_count:
            stack.extend(current.children)
    return sorted(found, key=lambda n: n.start_byte)


def signature(
    node: tree_sitter.Node, body: tree_sitter.Node | None, drop: Iterable[tree_sitter.Node] = ()
) -> str:
    """The declaration's text up to `body` (whole node when None) on one line, without comments.

    `drop` names child nodes to leave out too (Java annotations, Rust attributes).
    """
    end = body.start_byte if body is not None else node.end_byte
    source = node.text
    start = node.start_byte
    cuts = [(c.start_byte, c.end_byte) for c in drop]
    if b"/" in source[: end - start]:
        cuts += [(c.start_byte, c.end_byte) for c in _comments_before(node, end)]
    pieces, cursor = [], start
    for cut_start, cut_end in sorted(cuts):
        if cut_start >= cursor:
            pieces.append(source[cursor - start : cut_start - start])
            cursor = cut_end
    pieces.append(source[cursor - start : end - start])
    flat = flatten(b"".join(pieces).decode("utf-8", errors="replace"))
    return flat.rstrip(";{ ").rstrip()


def clean_comment(raw: str) -> str:
    """Comment text without its markers (`/** */`, leading `*`, `///`, `//!`, `//`), dedented."""
    if raw.startswith("/*"):
        raw = raw[2:-2] if raw.endswith("*/") else raw[2:]
        raw = raw.lstrip("*!")
    lines = [
        _DOC_LINE_MARKER.sub("", ln, count=1) if ln.lstrip().startswith(("*", "//")) else ln
        for ln in raw.split("\n")
    ]
    return inspect.cleandoc("\n".join(lines))


def doc_comment(node: tree_sitter.Node, skip: frozenset[str] = frozenset()) -> str | None:
    """The comment block right above `node` (no blank line between), cleaned; None if there is none.

    Sibling nodes whose type is in `skip` (attributes, decorators) may sit between.
    """
    parts: list[str] = []
    top = node.start_point[0]
    sibling = node.prev_sibling
    while sibling is not None and (sibling.type in COMMENT_TYPES or sibling.type in skip):
        if sibling.end_point[0] < top - 1:
            break
        if sibling.type in COMMENT_TYPES:
            parts.append(text(sibling))
        top = sibling.start_point[0]
        sibling = sibling.prev_sibling
    if not parts:
        return None
    cleaned = "\n".join(clean_comment(p) for p in reversed(parts)).strip()
    return cleaned or None


def file_doc_comment(root: tree_sitter.Node) -> str | None:
    """A file-level `/** ... */` comment: the file's first node, with a blank line after it."""
    first = root.children[0] if root.child_count else None
    if first is None or first.type not in COMMENT_TYPES or not text(first).startswith("/**"):
        return None
    following = first.next_sibling
    if following is not None and following.start_point[0] <= first.end_point[0] + 1:
        return None  # attached to the declaration below: that declaration's doc
    return clean_comment(text(first)) or None


def callee_names(names: Iterable[str]) -> list[str]:
    """Distinct, sorted callee names that are plain identifier chains; computed callees are dropped."""
    return sorted({name for name in names if _CALLEE.match(name)})
