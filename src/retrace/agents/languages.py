"""What the agents say about a repository's languages, and which lines of its code they may state.

Prompts name the project's own languages ("the Go and C project"), never a default one. Lines that open a
declaration (a signature: an analysis fact) come from each language module's `SIGNATURE_PREFIXES`; every
other substantial line of a file is code that a policy's text must not paste.
"""

from __future__ import annotations

import re
from collections import Counter

from retrace.repo import RepoGraph
from retrace.repo.lang import FAMILY_OF_LANGUAGE

LANGUAGE_NAMES = {
    "python": "Python", "javascript": "JavaScript", "typescript": "TypeScript", "tsx": "TypeScript",
    "java": "Java", "go": "Go", "rust": "Rust", "c": "C", "cpp": "C++",
}
# Names a reply may use only for a language of the project, or one its prompt names (json's docstring says
# "JavaScript"). "Go" and "C" are left out: as words they are too often something else.
# ("esm.mjs is an Elixir-like module": SmolLM2 on commander, 2026-12-05)
_LANGUAGE_WORDS = re.compile(r"\b(Python|JavaScript|TypeScript|Java|Rust|Ruby|PHP|Kotlin|Swift|Perl|Golang|Scala|"
                             r"Haskell|Elixir|Erlang|Clojure|Lua|Dart)\b|C\+\+|C#")
_ASSIGNMENT = re.compile(r"\s=\s")


def project_languages(graph: RepoGraph) -> list[str]:
    """The display names of the repository's code languages, the most used (in files) first."""
    counts = Counter(LANGUAGE_NAMES[s.language] for s in graph.files.values() if s.language in LANGUAGE_NAMES)
    return [name for name, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))]


def language_phrase(names: list[str]) -> str:
    """ "Python", "Go and C", "JavaScript, TypeScript and C"; "software" for a repository without code."""
    if not names:
        return "software"
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def foreign_languages(text: str, allowed: str) -> list[str]:
    """Language names `text` uses that `allowed` (the project's languages and the prompt) never mentions."""
    known = set(_LANGUAGE_WORDS.findall(allowed)) | {m.group(0) for m in _LANGUAGE_WORDS.finditer(allowed)}
    return sorted({m.group(0) for m in _LANGUAGE_WORDS.finditer(text)} - known)


def signature_prefixes(language: str) -> tuple[str, ...]:
    family = FAMILY_OF_LANGUAGE.get(language)
    return getattr(family, "SIGNATURE_PREFIXES", ()) if family is not None else ()


def is_signature_line(line: str, prefixes: tuple[str, ...]) -> bool:
    """A stripped line that opens a declaration (`def f(a, b):`, `pub fn run(&self)`), not an assignment."""
    return line.startswith(prefixes) and not _ASSIGNMENT.search(line.split("(", 1)[0])


def forbidden_lines(text: str, language: str, min_chars: int) -> list[str]:
    """Lines of the real file a policy must not paste: every stripped line of `min_chars`+ but signatures."""
    prefixes = signature_prefixes(language)
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if len(stripped) >= min_chars and not is_signature_line(stripped, prefixes):
            lines.append(stripped)
    return lines


def code_word_ngrams(text: str, language: str, n: int) -> frozenset[tuple[str, ...]]:
    """The `n`-word runs (whitespace-separated) of the file's lines that are not signatures.

    A reply sharing one of them copies a piece of code longer than any phrase prose shares with code by
    chance, even when it never copies a whole line.
    """
    prefixes = signature_prefixes(language)
    code = [w for line in text.splitlines() if not is_signature_line(line.strip(), prefixes) for w in line.split()]
    return frozenset(tuple(code[i:i + n]) for i in range(len(code) - n + 1))
