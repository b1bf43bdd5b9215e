"""Small synthesis outputs written through the real export, without simulating: many repositories, fast."""

from __future__ import annotations

from pathlib import Path

from retrace.data import Step, Trajectory
from retrace.data.export import export_repository


def toy_trajectory(repo: str, files: dict[str, str]) -> Trajectory:
    """A main agent's requirements and plan, then a Think, a Read of the previous file and a Write per file."""
    order = list(files)
    steps = [Step("main", "requirements", None, f"Build {repo}."), Step("main", "plan", None, "\n".join(order))]
    for i, path in enumerate(order):
        if i:
            steps.append(Step(path, "read", order[i - 1], files[order[i - 1]]))
        steps += [Step(path, "think", None, f"Implement {path}.", {"source": "structural"}),
                  Step(path, "write", path, files[path])]
    return Trajectory(repo=repo, source=f"/src/{repo}", order=order, steps=steps,
                      meta={"license": "MIT", "text_sources": {"structural": len(order)}})


def toy_files(repo: str, size: int = 1) -> dict[str, str]:
    body = "".join(f"VALUE_{i} = {i!r}  # {repo}\n" for i in range(size))
    return {"pkg/__init__.py": f'"""{repo}."""\n', "pkg/core.py": f"from pkg import *\n{body}"}


def write_toy_output(out: Path, train: list[str], heldout: list[str] = (), no_search: bool = True,
                     size: int = 1) -> Path:
    """Export each repository as synthesize.py does (trajectory, documents, Raw-Repos, no-search baseline)."""
    for split, repos in (("train", train), ("heldout", heldout)):
        for repo in repos:
            files = toy_files(repo, size)
            trajectory = toy_trajectory(repo, files)
            export_repository(out, split, trajectory, files, raw_baseline=True,
                              no_search=toy_trajectory(repo, files) if no_search else None)
    return out
