"""What the agents are told about a project (README, manifests, languages) and which code lines they may state."""

from __future__ import annotations

import pytest

from retrace.agents.languages import forbidden_lines, foreign_languages, language_phrase, project_languages
from retrace.agents.project import manifest_text, readme_text
from retrace.agents.validation import shares_code
from retrace.repo import RepoSnapshot, SourceFile, analyze_repository


def snapshot(files: dict[str, str], name: str = "proj") -> RepoSnapshot:
    from retrace.repo.languages import language_of

    return RepoSnapshot(name, "local", None, None, "",
                        [SourceFile(path, language_of(path) or "text", text) for path, text in files.items()])


def test_languages_are_named_by_file_count_and_joined_as_prose():
    graph = analyze_repository(snapshot({"a.go": "package a\n", "b.go": "package a\n", "c.c": "int x;\n",
                                         "README.md": "# proj\n"}))
    assert project_languages(graph) == ["Go", "C"]
    assert [language_phrase(n) for n in (["Go", "C"], ["JavaScript", "TypeScript", "C"], ["Rust"], [])] == [
        "Go and C", "JavaScript, TypeScript and C", "Rust", "software"]


@pytest.mark.parametrize("language,allowed,forbidden", [
    ("python", "def parse_arguments(self, argv=None, namespace=None):",
     "return self._registry.setdefault(name, value)"),
    ("go", "func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {",
     "if err := s.handler.Handle(r); err != nil {"),
    ("rust", "pub fn parse_arguments(input: &str, options: &Options) -> Result<Args> {",
     "let parsed = input.split(',').map(parse_one);"),
    ("javascript", "export function parseArguments(argv, options = {}) {", "const parsed = argv.slice(2).map(parseOne);"),
    ("java", "public static List<String> parseArguments(String[] argv) {",
     "return Arrays.stream(argv).map(String::trim).toList();"),
    ("c", "struct parser_state *parser_new(const char *input, size_t length)", "state->cursor = state->input + offset;"),
])
def test_signature_lines_are_facts_and_other_lines_are_code(language, allowed, forbidden):
    text = f"{allowed}\n    {forbidden}\n"
    assert forbidden_lines(text, language, 30) == [forbidden]


def test_an_assignment_that_starts_like_a_declaration_is_code():
    text = "export const DEFAULT_OPTIONS = Object.freeze({ strict: true, depth: 5 });\n"
    assert forbidden_lines(text, "javascript", 30) == [text.strip()]


def test_a_run_of_code_words_is_pasted_code_even_inside_a_sentence():
    from retrace.agents.languages import code_word_ngrams

    code = "def area(w, h):\n    total = to_metres(w) * to_metres(h) + margin(w, h) - border(w) * 2\n"
    grams = code_word_ngrams(code, "python", 12)
    assert shares_code("First, total = to_metres(w) * to_metres(h) + margin(w, h) - border(w) * 2 and done.", grams)
    assert not shares_code("area multiplies the two sides once both are converted to metres.", grams)
    assert not code_word_ngrams("def area(w, h, depth, scale, unit, precision, rounding, mode, label, x):", "python", 12)


def test_other_languages_may_be_named_only_where_the_prompt_names_them():
    assert foreign_languages("counter.js is a small Python class.", "JavaScript") == ["Python"]
    assert foreign_languages("JSON comes from JavaScript object literals.", "Python\nJavaScript Object Notation") == []
    assert foreign_languages("It parses Java-style and C++ comments.", "JavaScript") == ["C++", "Java"]
    assert foreign_languages("The JavaScript API.", "TypeScript and JavaScript") == []
    assert foreign_languages("esm.mjs is an Elixir-like module.", "JavaScript") == ["Elixir"]


def test_a_readme_reads_as_prose():
    text = ("# tool\n\n[![ci](https://x/b.svg)](https://x)\n\n- [Install](#install)\n- [Usage](#usage)\n\n"
            "## Install\n\nTool **formats** tables, see [the docs](https://x/docs).\n\n```sh\nnpm i tool\n```\n\n"
            "<p align=center><img src=logo.png></p>\n\nIt reads CSV and writes Markdown.\n")
    assert readme_text(text) == "tool\nTool formats tables, see the docs.\nIt reads CSV and writes Markdown."


def test_manifests_give_name_description_and_dependencies():
    snap = snapshot({
        "package.json": '{"name": "tool", "description": "Format tables", "main": "index.js", '
                        '"dependencies": {"csv-parse": "^5"}, "devDependencies": {"jest": "^29"}}',
        "pyproject.toml": '[project]\nname = "tool"\ndescription = "Format tables"\ndependencies = ["rich>=13"]\n',
        "go.mod": "module example.com/tool\n\ngo 1.22\n\nrequire github.com/spf13/cobra v1.8.0\n",
        "broken/package.json": "{not json",
    })
    assert manifest_text(snap).splitlines() == [
        'package.json: name tool; description "Format tables"; main index.js; dependencies csv-parse',
        'pyproject.toml: name tool; description "Format tables"; dependencies rich',
        "go.mod: module example.com/tool; dependencies github.com/spf13/cobra",
    ]
