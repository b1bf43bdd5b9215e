"""What made an output: the resolved recipe, the git revision and package versions, saved beside it."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import platform
import subprocess
import sys
from pathlib import Path

import yaml

from retrace.atomic import write_json, write_text
from retrace.recipe import Recipe

KEY_PACKAGES = (
    "retrace", "torch", "transformers", "tokenizers", "datasets", "accelerate", "peft", "trl", "deepspeed",
    "tree-sitter", "tree-sitter-python", "networkx", "wandb", "vllm", "flash-attn",
)


def git_revision(cwd: str | Path | None = None) -> str | None:
    """The commit of the retrace checkout, with `-dirty` when it has uncommitted changes; None outside git."""
    cwd = cwd or Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10)
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in KEY_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def save_run_info(output_dir: str | Path, recipe: Recipe, stage: str) -> None:
    """Write `<output_dir>/recipe.yaml` (resolved values) and `<output_dir>/run_info.json`."""
    output_dir = Path(output_dir)
    header = f"# resolved recipe for {stage} (from {recipe.path or 'command line only'})\n"
    write_text(output_dir / "recipe.yaml", header + yaml.safe_dump(recipe.values, sort_keys=True))
    write_json(output_dir / "run_info.json", {
        "stage": stage,
        "recipe_path": recipe.path,
        "argv": recipe.argv,
        "git_revision": git_revision(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    })
