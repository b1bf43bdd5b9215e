"""Hand-made held-out repositories shared by the evaluation tests (imported by conftest and tests)."""

from __future__ import annotations

from retrace.data import Step, Trajectory

# Files of very different lengths, so token-weighted and file-averaged means differ.
FILES = {
    "pkg/util.py": "def clamp(x, lo, hi):\n    return max(lo, min(hi, x))\n",
    "pkg/core.py": "from pkg.util import clamp\n\n" + "".join(
        f"def scale_{i}(x):\n    \"\"\"Scale by {i}.\"\"\"\n    return clamp(x * {i}, 0, 100)\n\n" for i in range(12)),
    "pkg/__init__.py": "from pkg.core import scale_1\n",
}
OTHER = {"tool/main.py": "import sys\n\nprint(sys.argv)\n", "tool/empty.py": ""}


def make_trajectory(repo: str, files: dict[str, str]) -> Trajectory:
    order = list(files)
    steps = [Step("main", "requirements", None, f"Build {repo}."),
             Step("main", "plan", None, "\n".join(f"- {p}" for p in order))]
    for i, path in enumerate(order):
        steps.append(Step(path, "think", None, f"Implement {path}."))
        if i:
            steps.append(Step(path, "read", order[i - 1], files[order[i - 1]]))
        steps.append(Step(path, "write", path, files[path]))
    return Trajectory(repo=repo, source=f"/src/{repo}", order=order, steps=steps)
