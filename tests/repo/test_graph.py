"""Module naming, import resolution to files, and the development-order guarantee."""

import os
import random
import sysconfig

import pytest

from retrace.repo import (
    RepoGraph,
    RepoSnapshot,
    SourceFile,
    analyze_repository,
    development_order,
    file_kind,
    ingest_local_dir,
)
from retrace.repo.graph import scope_tested_by


def _snapshot(files: dict[str, str], name: str = "repo") -> RepoSnapshot:
    return RepoSnapshot(
        name=name,
        source="mem",
        revision=None,
        license=None,
        description="",
        files=[SourceFile(path, "python", text) for path, text in sorted(files.items())],
    )


def _deps(files: dict[str, str], name: str = "repo") -> dict[str, list[str]]:
    graph = analyze_repository(_snapshot(files, name))
    return {path: summary.deps for path, summary in graph.files.items()}


def _assert_order_guarantee(graph: RepoGraph):
    assert sorted(graph.dev_order) == sorted(graph.files)
    assert len(set(graph.dev_order)) == len(graph.dev_order)
    position = {path: i for i, path in enumerate(graph.dev_order)}
    broken = set(graph.broken_edges)
    assert broken <= set(graph.edges)
    in_cycle = {path for cycle in graph.cycles for path in cycle}
    for importer, imported in graph.edges:
        if (importer, imported) in broken:
            assert importer in in_cycle and imported in in_cycle
        else:
            assert position[imported] < position[importer], (importer, imported)


def test_absolute_imports_and_init_semantics():
    deps = _deps(
        {
            "pkg/__init__.py": "from .core import run\n",
            "pkg/core.py": "import pkg.util.text\nfrom pkg import helpers, missing\n",
            "pkg/helpers.py": "from pkg.util import text as t\nimport os, numpy\n",
            "pkg/util/__init__.py": "",
            "pkg/util/text.py": "from pkg.util import nothing_here\nfrom . import text\n",
            "main.py": "import pkg\nfrom pkg.core import run\n",
        }
    )
    assert deps == {
        "main.py": ["pkg/__init__.py", "pkg/core.py"],
        "pkg/__init__.py": ["pkg/core.py"],
        # submodule preferred; a name that is no submodule falls back to the package __init__
        "pkg/core.py": ["pkg/__init__.py", "pkg/helpers.py", "pkg/util/text.py"],
        "pkg/helpers.py": ["pkg/util/text.py"],
        "pkg/util/__init__.py": [],
        "pkg/util/text.py": ["pkg/util/__init__.py"],  # never itself
    }


def test_relative_imports_resolve_against_the_package():
    deps = _deps(
        {
            "pkg/__init__.py": "from . import a\nfrom .sub import b\n",
            "pkg/a.py": "from .sub.b import X\nfrom .. import outside\n",
            "pkg/sub/__init__.py": "from .. import a\nfrom ..a import f\n",
            "pkg/sub/b.py": "from . import *\nfrom ...too_high import y\nfrom .c import z\n",
            "top.py": "from . import pkg\n",
        }
    )
    assert deps == {
        "pkg/__init__.py": ["pkg/a.py", "pkg/sub/b.py"],
        "pkg/a.py": ["pkg/sub/b.py"],
        "pkg/sub/__init__.py": ["pkg/a.py"],
        "pkg/sub/b.py": ["pkg/sub/__init__.py"],
        "top.py": [],
    }


def test_src_layout_and_module_names():
    graph = analyze_repository(
        _snapshot(
            {
                "src/lib/__init__.py": "",
                "src/lib/io.py": "from lib import __version__\n",
                "tests/test_io.py": "from lib.io import read\nimport conftest\n",
                "tests/conftest.py": "",
                "setup.py": "",
            }
        )
    )
    modules = {path: s.module for path, s in graph.files.items()}
    assert modules == {
        "setup.py": "setup",
        "src/lib/__init__.py": "lib",
        "src/lib/io.py": "lib.io",
        "tests/conftest.py": "tests.conftest",
        "tests/test_io.py": "tests.test_io",
    }
    assert graph.files["tests/test_io.py"].deps == ["src/lib/io.py"]
    assert graph.files["src/lib/io.py"].deps == ["src/lib/__init__.py"]


def test_package_init_wins_over_same_named_module():
    deps = _deps({"a.py": "", "a/__init__.py": "", "main.py": "import a\n"})
    assert deps["main.py"] == ["a/__init__.py"]


def test_root_as_package_like_lib_email():
    files = {
        "__init__.py": "def message_from_string(s):\n    from email.parser import Parser\n",
        "parser.py": "from email.feedparser import FeedParser\n",
        "feedparser.py": "from email import errors\n",
        "errors.py": "",
        "mime/__init__.py": "",
        "mime/base.py": "import email.policy\nfrom email import message\n",
        "mime/text.py": "from email.mime.base import MIMEBase\nfrom .base import X\nfrom ..errors import E\n",
        "message.py": "",
        "policy.py": "",
    }
    graph = analyze_repository(_snapshot(files, name="email"))
    assert graph.files["mime/text.py"].module == "email.mime.text"
    assert graph.files["__init__.py"].module == "email"
    assert graph.files["mime/text.py"].deps == ["errors.py", "mime/base.py"]
    assert graph.files["mime/base.py"].deps == ["message.py", "policy.py"]
    assert graph.files["__init__.py"].deps == ["parser.py"]
    _assert_order_guarantee(graph)


def test_real_stdlib_email_package():
    email_dir = os.path.join(sysconfig.get_paths()["stdlib"], "email")
    if not os.path.isfile(os.path.join(email_dir, "__init__.py")):
        pytest.skip("no stdlib sources")
    graph = analyze_repository(ingest_local_dir(email_dir))
    assert graph.repo == "email"
    assert graph.files["mime/text.py"].module == "email.mime.text"
    assert {"mime/base.py", "mime/nonmultipart.py", "charset.py"} <= set(
        graph.files["mime/nonmultipart.py"].deps + graph.files["mime/text.py"].deps + ["mime/nonmultipart.py"]
    )
    assert "mime/base.py" in graph.files["mime/nonmultipart.py"].deps
    assert all(s.parse_ok for s in graph.files.values())
    _assert_order_guarantee(graph)
    assert graph.dev_order.index("mime/base.py") < graph.dev_order.index("mime/text.py")


def test_cycle_broken_deterministically_and_recorded():
    files = {
        "a.py": "import b\n",
        "b.py": "import c\n",
        "c.py": "import a\nimport d\n",
        "d.py": "",
        "e.py": "import a\n",
    }
    graph = analyze_repository(_snapshot(files))
    assert graph.cycles == [["a.py", "b.py", "c.py"]]
    assert graph.dev_order == ["d.py", "a.py", "c.py", "b.py", "e.py"]
    assert graph.broken_edges == [("a.py", "b.py")]
    _assert_order_guarantee(graph)
    again = analyze_repository(_snapshot(dict(reversed(list(files.items())))))
    assert again == graph
    assert RepoGraph.from_dict(graph.to_dict()) == graph


def test_ties_keep_directories_together():
    order, cycles, broken = development_order(["z.py", "a/y.py", "a/b/x.py", "a/c.py", "b.py"], [])
    assert order == ["b.py", "z.py", "a/c.py", "a/y.py", "a/b/x.py"]
    assert cycles == [] and broken == []


@pytest.mark.parametrize("seed", range(8))
def test_order_guarantee_on_random_repositories(tmp_path, seed):
    rng = random.Random(seed)
    n = rng.randint(5, 25)
    paths = [f"pkg/{'sub/' if i % 3 == 0 else ''}m{i}.py" for i in range(n)]
    expected = set()
    sources = {p: "" for p in paths}
    for i, path in enumerate(paths):
        for j in rng.sample(range(n), rng.randint(0, 4)):
            if j != i:
                module = paths[j][:-3].replace("/", ".")
                sources[path] += f"import {module}\n" if rng.random() < 0.5 else f"from {module} import x\n"
                expected.add((path, paths[j]))
    for path, text in sources.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    graph = analyze_repository(ingest_local_dir(tmp_path, name="r"))
    assert set(graph.edges) == expected
    _assert_order_guarantee(graph)
    assert analyze_repository(ingest_local_dir(tmp_path, name="r")) == graph


def _mixed_snapshot(files: dict[str, str], name: str = "proj") -> RepoSnapshot:
    from retrace.repo.languages import language_of

    sources = [SourceFile(path, language_of(path) or "text", text) for path, text in sorted(files.items())]
    return RepoSnapshot(name=name, source="mem", revision=None, license=None, description="", files=sources)


def test_file_kinds():
    kinds = {
        p: file_kind(p, lang)
        for p, lang in [
            ("README.md", "markdown"), ("pyproject.toml", "toml"), ("pkg/package.json", "json"),
            ("docs/guide.md", "markdown"), ("pkg/README.md", "markdown"), ("pkg/data/words.txt", "text"),
            ("pkg/core.py", "python"), ("tests/helpers.py", "python"), ("pkg/test_core.py", "python"),
            ("x/y_test.go", "go"), ("web/a.spec.ts", "typescript"), ("src/test/java/p/ATest.java", "java"),
            ("src/main/java/p/Contest.java", "java"), ("setup.py", "python"),
        ]
    }  # fmt: skip
    assert kinds == {
        "README.md": "project", "pyproject.toml": "project", "pkg/package.json": "project",
        "docs/guide.md": "project", "pkg/README.md": "readme", "pkg/data/words.txt": "text",
        "pkg/core.py": "code", "tests/helpers.py": "test", "pkg/test_core.py": "test",
        "x/y_test.go": "test", "web/a.spec.ts": "test", "src/test/java/p/ATest.java": "test",
        "src/main/java/p/Contest.java": "code", "setup.py": "code",
    }  # fmt: skip


def test_non_code_placement_rule():
    graph = analyze_repository(
        _mixed_snapshot(
            {
                "README.md": "# proj\n",
                "LICENSE": "MIT\n",
                "pyproject.toml": "[project]\nname = 'proj'\n",
                "docs/usage.rst": "Usage\n",
                "setup.py": "import setuptools\n",
                "proj/__init__.py": "from .core import run\n",
                "proj/core.py": "from .util import helper\n",
                "proj/util.py": "",
                "proj/README.md": "The package.\n",
                "proj/data/words.txt": "a b\n",
                "proj/sub/__init__.py": "",
                "proj/sub/leaf.py": "from ..util import helper\n",
                "proj/defaults.yaml": "k: v\n",
                "proj/ext/package.json": "{}\n",
            }
        )
    )
    assert graph.dev_order == [
        # 1. project files: root text (README first), docs/, manifests anywhere
        "README.md", "LICENSE", "pyproject.toml", "docs/usage.rst", "proj/ext/package.json",
        # 2. by hierarchy, imports first; a directory's README first, its other text after its subdirectories
        "setup.py", "proj/README.md", "proj/util.py", "proj/core.py", "proj/__init__.py",
        "proj/data/words.txt", "proj/sub/__init__.py", "proj/sub/leaf.py", "proj/defaults.yaml",
    ]  # fmt: skip
    _assert_order_guarantee(graph)


def test_tests_come_after_what_they_test():
    graph = analyze_repository(
        _mixed_snapshot(
            {
                "lib/__init__.py": "",
                "lib/a.py": "",
                "lib/z_late.py": "import zzz.late\n",  # only ready after zzz/: the rule, not the tie-break
                "lib/tests/test_a.py": "from lib import a\n",  # tests the lib/ subtree
                "tests/conftest.py": "",
                "tests/test_all.py": "import lib.a\nfrom . import conftest\n",  # tests the whole repo
                "zzz/late.py": "",
                "zzz/late_test.py": "",  # by name: tests its own directory
                "tool/uses_fixture.py": "import tests.fixtures\n",  # code that imports a test...
                "tests/fixtures.py": "",  # ...so that test comes before it (exempt, no cycle)
            }
        )
    )
    order = graph.dev_order
    _assert_order_guarantee(graph)
    pos = {p: i for i, p in enumerate(order)}
    for test in ("lib/tests/test_a.py",):
        assert pos[test] > max(pos["lib/__init__.py"], pos["lib/a.py"], pos["lib/z_late.py"])
    non_test_code = [p for p in order if file_kind(p, "python") == "code" and p != "tool/uses_fixture.py"]
    assert pos["tests/test_all.py"] > max(pos[p] for p in non_test_code)
    assert pos["zzz/late_test.py"] > pos["zzz/late.py"]
    assert pos["tests/fixtures.py"] < pos["tool/uses_fixture.py"]
    assert graph.cycles == [] and graph.broken_edges == []


def test_mixed_languages_every_file_once_and_deterministic():
    files = {
        "README.md": "x\n",
        "Makefile": "all:\n",
        "web/src/a.ts": "import { b } from './b';\n",
        "web/src/b.ts": "import { a } from './a';\n",  # a cycle in TypeScript
        "web/src/b.test.ts": "import { b } from './b';\n",
        "native/include/n.h": "int n(void);\n",
        "native/src/n.c": '#include "n.h"\nint n(void) { return 1; }\n',
        "py/m.py": "def f(: pass\n",  # broken: still summarised, flagged
        "notes.bin.txt": "data\n",
    }
    graph = analyze_repository(_mixed_snapshot(files))
    _assert_order_guarantee(graph)
    assert graph.cycles == [["web/src/a.ts", "web/src/b.ts"]]
    assert graph.files["native/src/n.c"].deps == ["native/include/n.h"]
    assert not graph.files["py/m.py"].parse_ok and graph.files["README.md"].parse_ok
    assert graph.files["README.md"].n_lines == 1 and graph.files["README.md"].language == "markdown"
    assert graph.dev_order.index("web/src/b.test.ts") > graph.dev_order.index("web/src/b.ts")
    again = analyze_repository(_mixed_snapshot(dict(reversed(list(files.items())))))
    assert again == graph
    assert RepoGraph.from_dict(graph.to_dict()) == graph


@pytest.mark.parametrize("seed", range(6))
def test_placement_rule_never_breaks_the_order_guarantee(seed):
    """Random repositories with tests importing code, code importing tests, text and cycles."""
    rng = random.Random(100 + seed)
    dirs = ["pkg", "pkg/sub", "pkg/tests", "tests", "tool"]
    paths = [f"{rng.choice(dirs)}/{'test_' if rng.random() < 0.3 else ''}m{i}.py" for i in range(rng.randint(6, 30))]
    sources = {p: "" for p in paths}
    for path in paths:
        for other in rng.sample(paths, rng.randint(0, 3)):
            if other != path:
                sources[path] += f"import {other[:-3].replace('/', '.')}\n"
    sources.update({"README.md": "", "pkg/data.json": "{}", "pkg/tests/fixture.txt": ""})
    graph = analyze_repository(_mixed_snapshot(sources))
    _assert_order_guarantee(graph)
    pos = {p: i for i, p in enumerate(graph.dev_order)}
    assert graph.dev_order[0] == "README.md"
    after_a_test = {p for p in paths if file_kind(p, "python") == "test"}
    changed = True
    while changed:  # files that import a test, directly or not, are exempt from the rule
        grown = {a for a, b in graph.edges if b in after_a_test} | after_a_test
        changed, after_a_test = grown != after_a_test, grown
    for test in (p for p in paths if file_kind(p, "python") == "test"):
        scope, subtree = scope_tested_by(test)
        for code in paths:
            directory = code.rpartition("/")[0]
            in_scope = directory.startswith(scope) if subtree else directory == scope
            if in_scope and file_kind(code, "python") == "code" and code not in after_a_test:
                assert pos[code] < pos[test], (code, test)
