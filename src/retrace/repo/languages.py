"""Which language a file is in, by name: the one table ingest filters on and analysis dispatches on.

Code languages get a tree-sitter analysis; text languages (docs, configs, data) are kept as files the
agents write too, placed in the development order by a rule (see graph.py), with no summary beyond
their size.
"""

from __future__ import annotations

import posixpath

CODE_LANGUAGES = ("python", "javascript", "typescript", "tsx", "java", "go", "rust", "c", "cpp")
TEXT_LANGUAGES = ("markdown", "rst", "text", "toml", "yaml", "json", "ini", "make", "dockerfile", "shell")

LANGUAGE_BY_EXTENSION = {
    ".py": "python", ".pyi": "python",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "tsx",
    ".java": "java", ".go": "go", ".rs": "rust",
    ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp", ".hh": "cpp", ".hxx": "cpp",
    ".md": "markdown", ".rst": "rst", ".txt": "text",
    ".toml": "toml", ".yaml": "yaml", ".yml": "yaml", ".json": "json", ".cfg": "ini", ".ini": "ini",
    ".sh": "shell", ".bash": "shell",
}
LANGUAGE_BY_FILENAME = {
    "Makefile": "make", "makefile": "make", "GNUmakefile": "make", "Dockerfile": "dockerfile",
    "README": "text", "LICENSE": "text", "COPYING": "text", "NOTICE": "text", "AUTHORS": "text",
    "go.mod": "text", "go.work": "text", "go.sum": "text", "pom.xml": "text", "build.gradle": "text",
    "settings.gradle": "text", "CMakeLists.txt": "text", "Cargo.toml": "toml",
}


def language_of(path: str) -> str | None:
    """The language of a repository-relative path, or None when retrace does not know it."""
    name = posixpath.basename(path)
    if name in LANGUAGE_BY_FILENAME:
        return LANGUAGE_BY_FILENAME[name]
    return LANGUAGE_BY_EXTENSION.get(posixpath.splitext(name)[1].lower())


def is_code(language: str) -> bool:
    return language in CODE_LANGUAGES
