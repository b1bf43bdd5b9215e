"""Go: types, functions and methods, imports, resolution through go.mod to package directories."""

import textwrap

from retrace.repo import RepoSnapshot, SourceFile, analyze_repository, summarize_file
from retrace.repo.languages import language_of

UTIL = """\
// Package util holds helpers.
package util

import (
\t"fmt"
\tstr "strings"
)

// Point is a 2-D point.
type Point struct {
\tBase
\tX, Y int
}

// Shape has an area.
type Shape interface {
\tArea() float64
}

// Move shifts p.
func (p *Point) Move(dx int) { p.X += dx }

// Join joins words.
func Join[T any](words []T, sep string) (string, error) {
\treturn str.Join(fmt.Sprint(words), sep), nil
}

func (c Circle) Area() float64 { return 0 }
"""


def _graph(files: dict[str, str]):
    sources = [SourceFile(p, language_of(p) or "text", textwrap.dedent(t)) for p, t in sorted(files.items())]
    return analyze_repository(RepoSnapshot("tool", "mem", None, None, "", sources))


def test_go_definitions():
    s = summarize_file("pkg/util/util.go", "go", UTIL)
    assert s.parse_ok and s.docstring == "Package util holds helpers."
    assert [(i.module, i.names) for i in s.imports] == [("fmt", []), ("strings", ["str"])]
    point, shape = s.classes
    assert (point.name, point.bases, point.docstring) == ("Point", ["Base"], "Point is a 2-D point.")
    assert [(m.signature, m.docstring) for m in point.methods] == [
        ("func (p *Point) Move(dx int)", "Move shifts p.")
    ]
    assert [m.signature for m in shape.methods] == ["Area() float64"]
    assert [(f.name, f.signature) for f in s.functions] == [
        ("Join", "func Join[T any](words []T, sep string) (string, error)"),
        ("Area", "func (c Circle) Area() float64"),  # receiver declared in another file
    ]
    assert s.calls == ["fmt.Sprint", "str.Join"]


def test_go_module_resolution_and_test_placement():
    graph = _graph(
        {
            "go.mod": "module example.com/tool\n\ngo 1.22\n",
            "README.md": "# tool\n",
            "cmd/tool/main.go": 'package main\n\nimport (\n\t"fmt"\n\t"example.com/tool/pkg/util"\n\t"github.com/other/lib"\n)\n',
            "pkg/util/util.go": UTIL,
            "pkg/util/circle.go": "package util\n\ntype Circle struct{}\n",
            "pkg/util/util_test.go": 'package util\n\nimport "testing"\n\nfunc TestJoin(t *testing.T) {}\n',
            "internal/x/x.go": 'package x\n\nimport "example.com/tool/pkg/util"\n',
        }
    )
    main = graph.files["cmd/tool/main.go"]
    assert main.deps == ["pkg/util/circle.go", "pkg/util/util.go"]  # the package's files, not its tests
    assert main.module == "example.com/tool/cmd/tool"
    assert graph.files["pkg/util/util_test.go"].deps == []
    order = graph.dev_order
    assert order[:2] == ["README.md", "go.mod"]
    assert order.index("pkg/util/util_test.go") > max(
        order.index("pkg/util/util.go"), order.index("pkg/util/circle.go")
    )
    assert order.index("pkg/util/util.go") < order.index("internal/x/x.go")


def test_go_without_go_mod_matches_path_suffix():
    graph = _graph(
        {"a/b.go": "package a\n", "main.go": 'package main\nimport "github.com/me/repo/a"\nimport "a"\n'}
    )
    assert graph.files["main.go"].deps == ["a/b.go"]
