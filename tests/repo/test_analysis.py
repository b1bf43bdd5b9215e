"""tree-sitter summaries: every import form, docstrings, signatures, calls, broken files."""

import textwrap

from retrace.repo import FileSummary, ImportInfo, summarize_python


def _summary(source: str) -> FileSummary:
    return summarize_python("m.py", textwrap.dedent(source))


def test_import_forms_including_nested_and_relative():
    s = _summary(
        """\
        from __future__ import annotations
        import os
        import a.b as c, d
        from x.y import (p as q, r)
        from . import sibling
        from ..up import thing
        from .star import *
        try:
            import fast_json as json
        except ImportError:
            import json
        if True:
            from cond import z
        def f():
            import inner.mod
        class K:
            from . import in_class
        """
    )
    assert s.imports == [
        ImportInfo("__future__", ["annotations"], 0, 1),
        ImportInfo("os", [], 0, 2),
        ImportInfo("a.b", [], 0, 3),
        ImportInfo("d", [], 0, 3),
        ImportInfo("x.y", ["p", "r"], 0, 4),
        ImportInfo("", ["sibling"], 1, 5),
        ImportInfo("up", ["thing"], 2, 6),
        ImportInfo("star", ["*"], 1, 7),
        ImportInfo("fast_json", [], 0, 9),
        ImportInfo("json", [], 0, 11),
        ImportInfo("cond", ["z"], 0, 13),
        ImportInfo("inner.mod", [], 0, 15),
        ImportInfo("", ["in_class"], 1, 17),
    ]
    assert s.parse_ok


def test_docstrings_all_quote_styles():
    s = _summary(
        '''\
        r"""Module doc with \\n kept raw."""

        def a():
            \'\'\'Single-quoted triple.\'\'\'

        def b():
            "plain"

        def c():
            """
            Indented
              block.
            """

        def d():
            x = 1
            "not a docstring"

        def e():
            # a comment first
            u"after comment"

        def f():
            b"bytes are not docstrings"

        class K:
            "Class" ' doc'
        '''
    )
    assert s.docstring == "Module doc with \\n kept raw."
    docs = {f.name: f.docstring for f in s.functions}
    assert docs == {
        "a": "Single-quoted triple.",
        "b": "plain",
        "c": "Indented\n  block.",
        "d": None,
        "e": "after comment",
        "f": None,
    }
    assert s.classes[0].docstring == "Class doc"


def test_signatures_classes_and_methods():
    s = _summary(
        """\
        @decorator
        async def fetch(url: str, *, timeout: float = 1.0) -> bytes:
            pass

        def multi(
            a,  # first
            b=(1, 2),
            /,
            *args: int,
            **kwargs,
        ) -> dict[str, int]:
            pass

        class Child(Base, mixins.Mixin, metaclass=Meta):
            \"\"\"A child.\"\"\"

            def method(self, x): ...

            @property
            def prop(self) -> int: ...

            class Inner:
                pass
        """
    )
    sigs = {f.name: (f.signature, f.line) for f in s.functions}
    assert sigs == {
        "fetch": ("async def fetch(url: str, *, timeout: float = 1.0) -> bytes", 2),
        "multi": ("def multi(a, b=(1, 2), /, *args: int, **kwargs) -> dict[str, int]", 5),
    }
    (child,) = s.classes
    assert child.name == "Child" and child.line == 14
    assert child.bases == ["Base", "mixins.Mixin"]
    assert child.docstring == "A child."
    assert [(m.name, m.signature) for m in child.methods] == [
        ("method", "def method(self, x)"),
        ("prop", "def prop(self) -> int"),
    ]


def test_calls_are_distinct_dotted_and_sorted():
    s = _summary(
        """\
        import json
        def run(self):
            json.loads(self.bar(foo(1)))
            foo()
            make()()
            get().attr()
            self.a.b.c()
        """
    )
    assert s.calls == ["foo", "get", "json.loads", "make", "self.a.b.c", "self.bar"]


def test_parse_errors_flagged_but_summarised():
    s = summarize_python("bad.py", "import ok\ndef broken(:\n    pass\ndef fine(x):\n    return x\n")
    assert not s.parse_ok
    assert s.imports == [ImportInfo("ok", [], 0, 1)]
    assert "fine" in [f.name for f in s.functions]
    assert s.n_lines == 5


def test_line_counts_and_empty_file():
    assert summarize_python("e.py", "").n_lines == 0
    assert summarize_python("e.py", "x = 1").n_lines == 1
    assert summarize_python("e.py", "x = 1\r\ny = 2\r\n").n_lines == 2
    empty = summarize_python("e.py", "")
    assert empty.parse_ok and empty.docstring is None and empty.imports == []


def test_summary_roundtrip():
    s = _summary(
        """\
        '''Doc.'''
        from . import a
        class K(B):
            def m(self): pass
        def f(): g()
        """
    )
    assert FileSummary.from_dict(s.to_dict()) == s


def test_every_language_survives_broken_and_truncated_sources():
    """Summarisers never raise on content: prefixes of real-looking files, garbage, lone surrogates."""
    import importlib
    import pathlib

    from retrace.repo.lang import FAMILY_OF_LANGUAGE

    here = pathlib.Path(__file__).parent
    samples = {
        "python": here.joinpath("test_analysis.py").read_text(),
        "javascript": "import a from './a';\nexport default class X extends Y { m() { require('z'); } }\nconst f = () => 1;\n",
        "typescript": "import type { T } from './t';\nexport interface I<T> { m(): T }\nnamespace N { export function g(a: number): void {} }\n",
        "tsx": "export function App(): JSX.Element { return <div>{f()}</div>; }\n",
        "java": "package a.b;\nimport c.D;\n/** Doc. */\npublic class E<T> extends F implements G { E() {} enum H { X; void m() {} } }\n",
        "go": 'package p\n\nimport (\n\tx "a.com/b"\n)\n\ntype T struct{ U }\n\nfunc (t *T) M(a int) (int, error) { return x.F(a), nil }\n',
        "rust": "//! Doc.\nmod a;\nuse crate::{b::{c, d as e}, f::*};\n#[derive(X)]\npub struct S<T>(T);\nimpl<T> Tr for S<T> { fn m(&self) {} }\n",
        "c": '#ifndef H\n#define H\n#include "a.h"\ntypedef struct { int x; } s_t;\nint f(int (*cb)(void), char **argv);\n#endif\n',
        "cpp": '#include <v>\nnamespace n { template <class T> class C : public B<T> { C(); ~C(); T operator()(int) const; }; }\n',
    }
    for language, source in samples.items():
        family = importlib.import_module(FAMILY_OF_LANGUAGE[language].__name__)
        assert family.summarize("x", source, language).parse_ok, language
        step = max(1, len(source) // 40)
        for end in range(0, len(source), step):
            family.summarize("x", source[:end], language)  # must not raise
        family.summarize("x", "}{)(\x00 ;;; \udcff <<< " * 3 + source[::-1], language)
