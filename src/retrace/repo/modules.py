"""Dotted module names for a repository's files, and resolution of imports to in-repo files.

Naming: a file's module comes from its path under each candidate root, in priority order:
1. the repository itself as a package named `repo_name`, when the root holds `__init__.py`
   (ingesting CPython's `Lib/email` as "email": `mime/text.py` is `email.mime.text`);
2. `src/`, when the repository has one (the src layout);
3. the repository root.
`pkg/__init__.py` names the module `pkg`. A file has one preferred name (the first root that
names it); every name it has under any root can be imported. When two files claim one name, the
higher-priority root wins, then a package `__init__.py` over a same-named `.py` (as Python does).

Resolution, absolute imports (the rule the dependency edges follow):
- `import a.b.c` depends on the deepest in-repo module among `a.b.c`, `a.b`, `a` (only that
  one: package `__init__`s along the way are not added, they would mostly add cycles).
- `from M import n` depends on submodule `M.n` if it is in the repo, else on the deepest in-repo
  module among `M` and its prefixes; `from M import *` on `M` the same way.
Relative imports are first made absolute against the importing file's package (for an
`__init__.py` the package is itself); ones reaching above the top are ignored. Imports of
anything not in the repository are ignored, and a file never depends on itself.
"""

from __future__ import annotations

from collections.abc import Iterable

from .analysis import ImportInfo

_INIT = "__init__.py"


def _dotted(parts: list[str]) -> str | None:
    """Module name for path parts ending in a .py file, or None if a part is not an identifier."""
    parts = list(parts)
    parts[-1] = parts[-1][: -len(".py")]
    if parts[-1] == "__init__":
        parts.pop()
    if not parts or not all(part.isidentifier() for part in parts):
        return None
    return ".".join(parts)


class ModuleIndex:
    """Maps dotted module names to in-repo file paths, and resolves a file's imports to paths."""

    def __init__(self, repo_name: str, paths: Iterable[str]):
        py_paths = sorted(p for p in paths if p.endswith(".py"))
        path_set = set(py_paths)
        roots: list[tuple[str, str]] = []  # (directory prefix, module name prefix)
        if _INIT in path_set and repo_name.isidentifier():
            roots.append(("", repo_name))
        if any(p.startswith("src/") for p in py_paths):
            roots.append(("src/", ""))
        roots.append(("", ""))
        self.path_by_module: dict[str, str] = {}
        self.module_by_path: dict[str, str] = {}
        for dir_prefix, module_prefix in roots:
            claims: dict[str, str] = {}
            for path in py_paths:
                if not path.startswith(dir_prefix):
                    continue
                parts = path[len(dir_prefix) :].split("/")
                name = _dotted(parts)  # None for the root __init__.py and non-identifier parts
                if module_prefix and parts == [_INIT]:
                    name = module_prefix
                elif module_prefix and name is not None:
                    name = f"{module_prefix}.{name}"
                if name is None:
                    continue
                # A package __init__ beats a same-named module file within one root.
                if name not in claims or path.endswith("/" + _INIT) or path == _INIT:
                    claims[name] = path
            for name, path in claims.items():
                self.path_by_module.setdefault(name, path)
                self.module_by_path.setdefault(path, name)

    def module_of(self, path: str) -> str | None:
        """The preferred dotted name of an in-repo file, None if no root can name it."""
        return self.module_by_path.get(path)

    def _deepest(self, dotted: str) -> str | None:
        parts = dotted.split(".")
        for end in range(len(parts), 0, -1):
            path = self.path_by_module.get(".".join(parts[:end]))
            if path is not None:
                return path
        return None

    def _absolute(self, path: str, info: ImportInfo) -> str | None:
        """The absolute module an import names, or None when it cannot be made absolute."""
        if info.level == 0:
            return info.module
        module = self.module_of(path)
        if module is None:
            return None
        package = module.split(".")
        if not (path == _INIT or path.endswith("/" + _INIT)):
            package.pop()
        up = info.level - 1
        if up >= len(package):  # beyond the top-level package, as Python refuses too
            return None
        base = package[: len(package) - up]
        return ".".join(base + ([info.module] if info.module else []))

    def resolve(self, path: str, info: ImportInfo) -> list[str]:
        """In-repo file paths that `path` depends on through one import statement."""
        target = self._absolute(path, info)
        if not target:
            return []
        found = set()
        if info.names and info.names != ["*"]:
            fallback = None
            for name in info.names:
                sub = self.path_by_module.get(f"{target}.{name}")
                if sub is not None:
                    found.add(sub)
                else:
                    fallback = fallback or self._deepest(target)
                    if fallback is not None:
                        found.add(fallback)
        else:
            deepest = self._deepest(target)
            if deepest is not None:
                found.add(deepest)
        found.discard(path)
        return sorted(found)
