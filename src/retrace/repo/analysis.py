"""What analysis knows about one file: the dataclasses every language's summariser fills.

These summaries are the facts the agents are grounded on, so they are taken from the real syntax
tree, never guessed (see `retrace.repo.lang` for how each language fills them). The fields mean the
same in every language: `imports` are import/require/include/use/mod statements with the raw
specifier, `classes` the type-like definitions (classes, structs, interfaces, traits, enums) with
their methods, `functions` the free functions, `calls` the distinct called names. Files that are not
code (docs, configs) get a summary too, with no definitions (`text_summary`).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FunctionInfo:
    name: str
    signature: str  # "def f(a, b=1) -> int" or "async def ..."
    docstring: str | None
    line: int  # 1-based


@dataclass
class ClassInfo:
    name: str
    bases: list[str]
    docstring: str | None
    line: int
    methods: list[FunctionInfo] = field(default_factory=list)


@dataclass
class ImportInfo:
    """One import-like statement, `module` as written in the source (the raw specifier).

    Python: `import a.b` -> module "a.b", names []; `from ..m import x` -> module "m", names ["x"],
    level 2. Other languages: see `retrace.repo.lang` (level is 0 there); `kind` tells statements of
    one language apart where resolution differs (Rust `mod` vs `use`, C `include_system`).
    """

    module: str
    names: list[str]
    level: int
    line: int
    kind: str = "import"


@dataclass
class FileSummary:
    """Facts about one file; `module` and `deps` are filled by the graph step."""

    path: str
    language: str
    module: str | None
    docstring: str | None
    imports: list[ImportInfo]
    classes: list[ClassInfo]
    functions: list[FunctionInfo]
    calls: list[str]
    deps: list[str]
    parse_ok: bool
    n_lines: int

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "language": self.language,
            "module": self.module,
            "docstring": self.docstring,
            "imports": [vars(i).copy() for i in self.imports],
            "classes": [
                {**vars(c), "methods": [vars(m).copy() for m in c.methods], "bases": list(c.bases)}
                for c in self.classes
            ],
            "functions": [vars(f).copy() for f in self.functions],
            "calls": list(self.calls),
            "deps": list(self.deps),
            "parse_ok": self.parse_ok,
            "n_lines": self.n_lines,
        }

    @classmethod
    def from_dict(cls, d: dict) -> FileSummary:
        classes = [
            ClassInfo(**{**c, "methods": [FunctionInfo(**m) for m in c["methods"]]}) for c in d["classes"]
        ]
        return cls(
            path=d["path"],
            language=d["language"],
            module=d.get("module"),
            docstring=d.get("docstring"),
            imports=[ImportInfo(**i) for i in d["imports"]],  # "kind" absent in old artifacts
            classes=classes,
            functions=[FunctionInfo(**f) for f in d["functions"]],
            calls=list(d["calls"]),
            deps=list(d["deps"]),
            parse_ok=d["parse_ok"],
            n_lines=d["n_lines"],
        )


def count_lines(text: str) -> int:
    """Lines as an editor counts them: a last line without a newline still counts."""
    return text.count("\n") + (1 if text and not text.endswith("\n") else 0)


def text_summary(path: str, language: str, text: str) -> FileSummary:
    """The summary of a file that is not analysed as code: its language and size, nothing else."""
    return FileSummary(
        path=path, language=language, module=None, docstring=None, imports=[], classes=[],
        functions=[], calls=[], deps=[], parse_ok=True, n_lines=count_lines(text),
    )  # fmt: skip
