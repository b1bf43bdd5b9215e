"""One module per language family, looked up by language name: a summariser and an import resolver.

Grammars come from the tree-sitter organisation's individual wheels (`tree-sitter-python`,
`-javascript`, `-typescript`, `-java`, `-go`, `-rust`, `-c`, `-cpp`), pinned in requirements.txt:
each is a small self-contained binary wheel (~11 MB for all eight) that works offline with
tree-sitter 0.26, released by the grammar's own maintainers. `tree-sitter-language-pack` was
weighed and not taken: its offline 0.13 bundles ~170 grammars in 184 MB for the nine languages we
analyse, and its 1.x downloads grammars at run time, which fails on machines without network.
Adding a language is one module with `summarize(path, text, language)` and a `Resolver`, plus one
line below. Each module builds its parser and query once per process and reuses them.

A resolver is built once per repository from every file's summary and text:
`module_of(path)` names the file the way the language imports it (None where that means nothing),
and `deps(path)` lists the in-repo files that `path` needs first. One resolver serves a family
(TypeScript may import JavaScript; C++ may include C headers).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from ..analysis import FileSummary, text_summary
from . import c_family, go, java, javascript, python, rust

FAMILY_OF_LANGUAGE: dict[str, ModuleType] = {
    "python": python,
    "javascript": javascript,
    "typescript": javascript,
    "tsx": javascript,
    "java": java,
    "go": go,
    "rust": rust,
    "c": c_family,
    "cpp": c_family,
}


def summarize_file(path: str, language: str, text: str) -> FileSummary:
    """The summary of any kept file: analysed when its language has a family, else a text summary.

    Never raises on file content: if a summariser fails (a pathologically deep tree exhausting the
    recursion limit, or a grammar corner no test has met), the file gets a text summary with
    `parse_ok=False`, counted as a parse failure like a syntax error, and stays in the repository.
    One odd file among millions must not stop a worker; the summarisers themselves are tested
    without this net (tests/repo/test_analysis.py feeds them broken and truncated sources).
    """
    family = FAMILY_OF_LANGUAGE.get(language)
    if family is None:
        return text_summary(path, language, text)
    try:
        return family.summarize(path, text, language)
    except Exception:  # see the docstring
        summary = text_summary(path, language, text)
        summary.parse_ok = False
        return summary


def build_resolvers(
    repo_name: str, files: dict[str, FileSummary], texts: dict[str, str]
) -> Callable[[str], object | None]:
    """A lookup from a language to its family's resolver for this repository, built on first use."""
    built: dict[str, object] = {}

    def resolver_for(language: str):
        family = FAMILY_OF_LANGUAGE.get(language)
        if family is None:
            return None
        if family.__name__ not in built:
            built[family.__name__] = family.Resolver(repo_name, files, texts)
        return built[family.__name__]

    return resolver_for


__all__ = ["FAMILY_OF_LANGUAGE", "build_resolvers", "summarize_file"]
