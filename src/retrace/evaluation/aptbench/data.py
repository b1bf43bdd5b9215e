"""APTBench's software-engineering subset on disk: where it is, what each subtask reads, and the items chosen.

The data is never fetched by retrace: it is read from `aptbench_data`, else `$RETRACE_APTBENCH_DATA`, else
`../shared/data/aptbench` beside the repository. Two layouts are accepted: the offline copy (`data/`,
`prompts/`) and a clone of the public repository at `APTBENCH_REVISION` (`data/`, `code/prompts/`). Every
file read is recorded with its sha256, so a number traces to the exact bytes it was computed on.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrace.recipe import RecipeError

APTBENCH_REPOSITORY = "https://github.com/TencentYoutuResearch/APTBench"
APTBENCH_REVISION = "f944ac1ff6b81e659e1c314c3b1cf6433b560b7a"
DATA_ENV = "RETRACE_APTBENCH_DATA"
REPO_ROOT = Path(__file__).resolve().parents[4]
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "aptbench"


@dataclass(frozen=True)
class Subtask:
    """One APTBench task as the published harness configures it."""

    name: str                          # our short name: metric prefix and recipe value
    dataset: str                       # the harness's (dataset, task) and the data folder under data/
    task: str
    template: str                      # the 3-shot prompt file
    fields: tuple[tuple[str, str], ...]  # (placeholder, item key), filled in this order
    answer_key: str
    max_new_tokens: int                # the harness's budget
    multiple_choice: bool

    @property
    def published_name(self) -> str:
        return f"{self.dataset}/{self.task}"


SUBTASKS: dict[str, Subtask] = {s.name: s for s in (
    Subtask("locate", "issue_fix", "locate", "issue_fix_locate_3shot.txt",
            (("$ISSUE$", "issue_statement"), ("$CHOICES$", "choices")), "answer", 10, True),
    Subtask("error", "env_setup", "error", "env_setup_error_3shot.txt",
            (("$SETUP$", "setup_instruct"), ("$ISSUE_TITLE$", "issue_title"), ("$ISSUE_BODY$", "issue_body"),
             ("$CHOICES$", "choices")), "answer", 10, True),
    Subtask("action", "env_setup", "action", "env_setup_action_3shot.txt",
            (("$EXE_PLAN$", "execution_plan"), ("$EXE_CMDS$", "executed_cmds")), "target_cmd", 30, False),
)}


class AptbenchDataError(RecipeError):
    """The APTBench files are not where the recipe, the environment or the default says (a recipe error: exit 2)."""


def resolve_data_dir(configured: str = "") -> Path:
    """The data directory: the recipe's path, else $RETRACE_APTBENCH_DATA, else ../shared/data/aptbench."""
    chosen = configured or os.environ.get(DATA_ENV, "") or str(DEFAULT_DATA_DIR)
    return Path(chosen).expanduser().resolve()


def prompts_dir(data_dir: Path) -> Path:
    """`prompts/` of the offline copy, or `code/prompts/` of a clone of the public repository."""
    for candidate in (data_dir / "prompts", data_dir / "code" / "prompts"):
        if candidate.is_dir():
            return candidate
    return data_dir / "prompts"


def subtask_files(data_dir: Path, subtask: Subtask) -> tuple[Path, Path]:
    """(items jsonl, prompt template) of a subtask; AptbenchDataError naming what is missing."""
    items = data_dir / "data" / subtask.dataset / subtask.task / "input_data.jsonl"
    template = prompts_dir(data_dir) / subtask.template
    missing = [str(p) for p in (items, template) if not p.is_file()]
    if missing:
        raise AptbenchDataError(
            f"key 'aptbench_data': APTBench files not found: {', '.join(missing)}; point aptbench_data (or "
            f"${DATA_ENV}) at a copy: the offline subset in ../shared/data/aptbench, or `git clone "
            f"{APTBENCH_REPOSITORY}` checked out at {APTBENCH_REVISION}")
    return items, template


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_items(path: Path) -> list[dict[str, Any]]:
    """Every item of a jsonl file, in file order, each with its line index as `index`."""
    with open(path, encoding="utf-8") as handle:
        return [{**json.loads(line), "index": i} for i, line in enumerate(handle) if line.strip()]


def select_items(items: list[dict[str, Any]], samples: int, seed: int, subtask: str) -> list[dict[str, Any]]:
    """All items (`samples` 0 or at least their count), else `samples` drawn without replacement by `seed`
    and the subtask's name, in file order: the same seed and data give the same items on every machine."""
    if not samples or samples >= len(items):
        return list(items)
    chosen = sorted(random.Random(f"aptbench/{subtask}/{seed}").sample(range(len(items)), samples))
    return [items[i] for i in chosen]
