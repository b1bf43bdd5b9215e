"""C and C++: functions, structs and classes, header guards, and `#include` resolution."""

import textwrap

from retrace.repo import RepoSnapshot, SourceFile, analyze_repository, summarize_file
from retrace.repo.languages import language_of

HEADER = """\
#ifndef ACME_LIST_H
#define ACME_LIST_H
#include <stddef.h>

/* A singly linked list node. */
typedef struct node {
    int value;
    struct node *next;
} node_t;

/** Appends v; returns the new head. */
node_t *list_push(node_t *head, int v);
size_t list_len(const node_t *head);

#endif
"""

SHAPES = """\
#pragma once
#include "list.h"
#include <vector>

namespace acme {
// A shape.
class Shape : public Base, private Named {
 public:
  virtual double area() const = 0;
  explicit Shape(int n) : n_(n) {}
  int sides() const { return n_; }
 private:
  int n_;
};

template <typename T>
T biggest(const std::vector<T>& xs) { return xs.front(); }
}  // namespace acme
"""


def _graph(files: dict[str, str]):
    sources = [SourceFile(p, language_of(p) or "text", textwrap.dedent(t)) for p, t in sorted(files.items())]
    return analyze_repository(RepoSnapshot("acme", "mem", None, None, "", sources))


def test_c_header_inside_guard():
    s = summarize_file("include/acme/list.h", "c", HEADER)
    assert s.parse_ok
    assert [(i.module, i.kind) for i in s.imports] == [("stddef.h", "include_system")]
    (node,) = s.classes
    assert (node.name, node.docstring, node.line) == ("node_t", "A singly linked list node.", 6)
    assert [(f.name, f.signature, f.docstring) for f in s.functions] == [
        ("list_push", "node_t *list_push(node_t *head, int v)", "Appends v; returns the new head."),
        ("list_len", "size_t list_len(const node_t *head)", None),
    ]


def test_cpp_classes_namespaces_and_cpp_header_named_h():
    s = summarize_file("src/shapes.h", "c", SHAPES)  # C++ in a .h: parsed again as C++
    assert s.parse_ok
    (shape,) = s.classes
    assert (shape.name, shape.bases, shape.docstring) == ("Shape", ["Base", "Named"], "A shape.")
    assert [m.signature for m in shape.methods] == [
        "virtual double area() const = 0",
        "explicit Shape(int n) : n_(n)",
        "int sides() const",
    ]
    assert [(f.name, f.signature) for f in s.functions] == [
        ("biggest", "T biggest(const std::vector<T>& xs)")
    ]
    impl = summarize_file(
        "src/shapes.cc",
        "cpp",
        '#include "shapes.h"\ndouble acme::Square::area() const { return helper(s_); }\n',
    )
    assert [(f.name, f.signature) for f in impl.functions] == [
        ("acme::Square::area", "double acme::Square::area() const")
    ]
    assert impl.calls == ["helper"]


def test_include_resolution():
    graph = _graph(
        {
            "CMakeLists.txt": "project(acme C CXX)\n",
            "include/acme/list.h": HEADER,
            "src/list.c": '#include "acme/list.h"\n#include <stdlib.h>\nnode_t *list_push(node_t *h, int v) { return h; }\n',
            "src/shapes.h": SHAPES.replace('"list.h"', '"../include/acme/list.h"'),
            "src/shapes.cc": '#include "shapes.h"\n#include <acme/list.h>\n#include "missing.h"\n',
            "src/detail/impl.cc": '#include "shapes.h"\n#include "detail/impl.h"\n',
            "src/detail/impl.h": "",
            "tests/test_list.c": '#include "acme/list.h"\n#include "../src/list.c"\n',
        }
    )
    deps = {p: s.deps for p, s in graph.files.items() if s.deps}
    assert deps == {
        "src/list.c": ["include/acme/list.h"],  # via the include directory
        "src/shapes.h": ["include/acme/list.h"],  # relative to the including file
        "src/shapes.cc": ["include/acme/list.h", "src/shapes.h"],  # angle include found in include/
        "src/detail/impl.cc": ["src/detail/impl.h", "src/shapes.h"],  # via src/ as an include dir
        "tests/test_list.c": ["include/acme/list.h", "src/list.c"],
    }
    order = graph.dev_order
    assert order[0] == "CMakeLists.txt" and order[-1] == "tests/test_list.c"
    assert order.index("include/acme/list.h") < order.index("src/list.c")


def test_repository_named_like_its_include_prefix():
    sources = [
        SourceFile("ssl.h", "c", "#include <openssl/types.h>\n#include <openssl/missing.h>\n"),
        SourceFile("types.h", "c", "typedef int ossl_int;\n"),
    ]
    graph = analyze_repository(RepoSnapshot("openssl", "mem", None, None, "", sources))
    assert graph.files["ssl.h"].deps == ["types.h"]
