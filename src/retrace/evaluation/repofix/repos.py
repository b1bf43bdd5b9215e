"""The real repositories repo-fix mutates: pure-Python code plus the real tests that exercise it.

Two kinds of spec, both offline:
- `stdlib:NAME`: a standard-library module or package of the running Python with its own test from
  `Lib/test` (`textwrap.py` + `test_textwrap.py`, `tomllib/` + `test_tomllib/`): real, maintained
  code whose tests run in well under a second. The test goes to the workspace root under its own name
  so that nothing shadows the stdlib's `test` package that it imports helpers from.
- `dir:PATH`: a local project directory, read through `retrace.repo.ingest_local_dir` (its Python
  files; the usual vendored/generated filters). Files named `test_*.py` / `*_test.py`, files under a
  `tests/` or `test/` directory and `conftest.py` are its tests; the other files are its sources.
"""

from __future__ import annotations

import hashlib
import json
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

FRAMEWORKS = ("unittest", "pytest")
DEFAULT_REPOS = ("stdlib:textwrap", "stdlib:shlex", "stdlib:graphlib", "stdlib:colorsys", "stdlib:fractions")


@dataclass(frozen=True)
class Repository:
    """A workspace to mutate: every file by relative path, which are sources, which are tests."""

    name: str
    files: dict[str, str]
    source_paths: tuple[str, ...]    # what mutations may change
    test_paths: tuple[str, ...]      # read-only for the agent, restored before scoring
    targets: tuple[str, ...]         # what the runner runs: module names (unittest) or paths (pytest)
    framework: str
    own_modules: tuple[str, ...] = field(default=())   # top-level import names the workspace provides

    def fingerprint(self) -> str:
        """A digest of everything that decides the tests' outcomes (for the task cache key)."""
        payload = json.dumps([self.name, sorted(self.files.items()), self.source_paths, self.test_paths,
                              self.targets, self.framework, self.own_modules])
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _read_tree(root: Path, prefix: str, python_only: bool) -> dict[str, str]:
    files = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts or (python_only and path.suffix != ".py"):
            continue
        try:
            files[f"{prefix}{path.relative_to(root).as_posix()}"] = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary test data: not part of a text workspace
    return files


def stdlib_repository(name: str) -> Repository:
    """The stdlib module or package `name` and its Lib/test tests; ValueError when either is missing."""
    stdlib = _stdlib_dir()
    module_file, package_dir = stdlib / f"{name}.py", stdlib / name
    if module_file.is_file():
        sources = {f"{name}.py": module_file.read_text(encoding="utf-8")}
    elif (package_dir / "__init__.py").is_file():
        sources = _read_tree(package_dir, f"{name}/", python_only=True)
    else:
        raise ValueError(f"stdlib:{name}: no pure-Python module or package {name} in {stdlib}")
    test_name = f"test_{name}"
    test_file, test_dir = stdlib / "test" / f"{test_name}.py", stdlib / "test" / test_name
    if test_file.is_file():
        tests = {f"{test_name}.py": test_file.read_text(encoding="utf-8")}
    elif (test_dir / "__init__.py").is_file():
        tests = _read_tree(test_dir, f"{test_name}/", python_only=False)
    else:
        raise ValueError(f"stdlib:{name}: no test/{test_name}.py or package in {stdlib} "
                         "(this Python was installed without its test suite)")
    return Repository(name=f"stdlib:{name}", files={**sources, **tests}, source_paths=tuple(sources),
                      test_paths=tuple(tests), targets=(test_name,), framework="unittest",
                      own_modules=(name, test_name))


def is_test_path(path: str) -> bool:
    parts = PurePosixPath(path).parts
    filename = parts[-1]
    return (filename.startswith("test_") or filename.endswith("_test.py") or filename == "conftest.py"
            or any(part in ("tests", "test") for part in parts[:-1]))


def _module_name(path: str) -> str:
    return str(PurePosixPath(path).with_suffix("")).replace("/", ".").removesuffix(".__init__")


def directory_repository(path: str, framework: str = "pytest") -> Repository:
    """A local project directory's Python files; ValueError when it has no sources or no tests."""
    from retrace.repo import ingest_local_dir

    root = Path(path).expanduser()
    if not root.is_dir():
        raise ValueError(f"dir:{path}: not a directory")
    snapshot = ingest_local_dir(root)
    files = {f.path: f.text for f in snapshot.files} if snapshot else {}
    tests = [p for p in files if is_test_path(p)]
    sources = [p for p in files if p not in tests and PurePosixPath(p).name != "setup.py"]
    if not sources or not tests:
        raise ValueError(f"dir:{path}: needs Python sources and tests, found {len(sources)} sources and "
                         f"{len(tests)} test files")
    runnable = [p for p in tests if PurePosixPath(p).name.startswith("test_") or p.endswith("_test.py")]
    targets = tuple(runnable) if framework == "pytest" else tuple(_module_name(p) for p in runnable)
    own = tuple(sorted({PurePosixPath(p).parts[0].removesuffix(".py") for p in files}))
    return Repository(name=f"dir:{root.name}", files=files, source_paths=tuple(sources), test_paths=tuple(tests),
                      targets=targets, framework=framework, own_modules=own)


def load_repository(spec: str, framework: str = "auto") -> Repository:
    """A repository from its spec (`stdlib:NAME` or `dir:PATH`); ValueError naming the problem otherwise."""
    kind, _, value = spec.partition(":")
    if framework not in ("auto", *FRAMEWORKS):
        raise ValueError(f"unknown test framework {framework!r}; expected auto or one of {FRAMEWORKS}")
    if kind == "stdlib" and value:
        if framework == "pytest":
            raise ValueError(f"{spec}: stdlib tests run with unittest")
        return stdlib_repository(value)
    if kind == "dir" and value:
        return directory_repository(value, "pytest" if framework == "auto" else framework)
    raise ValueError(f"repository spec {spec!r}: expected stdlib:NAME or dir:PATH")
