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
    ingest_local_dir,
)


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
