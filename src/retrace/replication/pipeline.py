"""Run the paper's comparison end to end: one synthesis, three arms x seeds of training, one evaluation.

Each stage runs its entry script (`synthesize.py`, `train.py`, `evaluate.py`) as a subprocess with a recipe
from `recipes/replication/`, so the scripts stay the only way a stage runs and every output directory
carries its own resolved recipe. A stage whose output is complete is skipped (synthesis: `stats.json`;
training: `train_results.json`; evaluation: `results.json` naming every model), so a rerun after a crash
redoes only what is missing. The driver's own record, `replication.json`, lists the arms, seeds, models,
the exact commands, each stage's wall time and any task dropped for want of data.
"""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from retrace.atomic import write_json

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[3]
MANIFEST = "replication.json"


@dataclass(frozen=True)
class Arm:
    """One training corpus of the paper's comparison, all three exported from the same repositories."""

    name: str          # model name prefix in the evaluation (`<name>-s<seed>`)
    label: str         # the paper's name for it
    documents: str     # folder under the synthesis output
    corpus: str        # its key in stats.json's `tokens_per_document` and in the budget records


ARMS = (Arm("raw-repos", "Raw-Repos", "baselines/raw_repos", "raw_repos"),
        Arm("repo2agent", "Repo2Agent", "baselines/no_search", "no_search"),
        Arm("repo2agent-search", "Repo2Agent-Search", "documents", "documents"))
BASE = "base"


def model_name(arm: Arm, seed: int) -> str:
    return f"{arm.name}-s{seed}"


@dataclass
class ReplicationPlan:
    """Where things go and what each stage is told beyond its recipe (overrides are `--key value` tokens)."""

    output_dir: Path
    recipes_dir: Path = REPO_ROOT / "recipes" / "replication"
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    synthesize_args: list[str] = field(default_factory=list)
    train_args: list[str] = field(default_factory=list)
    evaluate_args: list[str] = field(default_factory=list)

    @property
    def synth_dir(self) -> Path:
        return self.output_dir / "synth"

    @property
    def eval_dir(self) -> Path:
        return self.output_dir / "eval"

    def model_dir(self, arm: Arm, seed: int) -> Path:
        return self.output_dir / "models" / model_name(arm, seed)

    def recipe(self, stage: str) -> Path:
        return self.recipes_dir / f"{stage}.yaml"

    def base_model(self) -> str:
        """The model every arm starts from: the training override if given, else the training recipe's."""
        return override_value(self.train_args, "model_name_or_path") or str(
            yaml.safe_load(self.recipe("train").read_text(encoding="utf-8"))["model_name_or_path"])


def override_value(args: list[str], key: str) -> str | None:
    """The value of `--key value` among command-line overrides, or None."""
    flag = f"--{key}"
    return next((args[i + 1] for i, token in enumerate(args[:-1]) if token == flag), None)


def split_args(text: str) -> list[str]:
    return shlex.split(text) if text else []


def run_script(script: str, args: list[str], log_path: Path) -> float:
    """Run an entry script, echoing and logging its output; returns seconds; raises on failure."""
    command = [sys.executable, str(REPO_ROOT / script), *args]
    logger.info("running: %s", shlex.join(command))
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with log_path.open("w", encoding="utf-8") as log:
        log.write(shlex.join(command) + "\n")
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, bufsize=1)
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            sys.stdout.write(line)
        code = process.wait()
    if code != 0:
        raise RuntimeError(f"{script} failed with exit code {code}; its output: {log_path}")
    return time.perf_counter() - started


def evaluation_tasks(plan: ReplicationPlan) -> tuple[list[str] | None, list[str]]:
    """(the `--tasks` override to pass, or None to keep the recipe's; notes on tasks dropped and why).

    APTBench data is not part of the project (`../shared/data/aptbench`): without it the task is dropped
    and the report says so, rather than the whole run failing after hours of training.
    """
    if "--tasks" in plan.evaluate_args:
        return None, []
    recipe = yaml.safe_load(plan.recipe("evaluate").read_text(encoding="utf-8"))
    tasks = list(recipe.get("tasks", []))
    if "aptbench" not in tasks:
        return None, []
    from retrace.evaluation.aptbench.data import resolve_data_dir

    data_dir = resolve_data_dir(override_value(plan.evaluate_args, "aptbench_data") or recipe.get("aptbench_data", ""))
    if (data_dir / "data").is_dir() or (data_dir / "code").is_dir():
        return None, []
    kept = [t for t in tasks if t != "aptbench"]
    return kept, [f"aptbench not run: no APTBench data at {data_dir} (set $RETRACE_APTBENCH_DATA or aptbench_data)"]


def _results_cover(results_path: Path, models: list[str]) -> bool:
    if not results_path.is_file():
        return False
    done = json.loads(results_path.read_text(encoding="utf-8")).get("models", {})
    return all(m in done and all(t.get("metrics") for t in done[m].get("tasks", {}).values()) for m in models)


def run_replication(plan: ReplicationPlan) -> dict[str, Any]:
    """Synthesize, train every arm at every seed, evaluate them with the base; returns the manifest."""
    out = plan.output_dir
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"arms": [vars(a) for a in ARMS], "seeds": plan.seeds, "base_model": plan.base_model(),
                                "recipes": {s: str(plan.recipe(s)) for s in ("synthesize", "train", "evaluate")},
                                "commands": {}, "seconds": {}, "skipped": [], "notes": []}
    if (out / MANIFEST).is_file():  # a rerun keeps the wall times of the stages it skips
        manifest["seconds"] = json.loads((out / MANIFEST).read_text(encoding="utf-8")).get("seconds", {})

    def stage(name: str, script: str, args: list[str], done: bool) -> None:
        manifest["commands"][name] = shlex.join([script, *args])
        if done:
            logger.info("%s: output complete, skipped", name)
            manifest["skipped"].append(name)
        else:
            manifest["seconds"][name] = round(run_script(script, args, out / "logs" / f"{name}.log"), 1)
        write_json(out / MANIFEST, manifest)

    stage("synthesize", "synthesize.py", ["--config", str(plan.recipe("synthesize")), "--output_dir",
                                          str(plan.synth_dir), *plan.synthesize_args],
          (plan.synth_dir / "stats.json").is_file())
    models = {BASE: manifest["base_model"]}
    for seed in plan.seeds:
        for arm in ARMS:
            target = plan.model_dir(arm, seed)
            args = ["--config", str(plan.recipe("train")), "--documents", str(plan.synth_dir / arm.documents),
                    "--output_dir", str(target), "--model_name_or_path", manifest["base_model"], "--seed", str(seed),
                    "--shuffle_seed", str(seed), *plan.train_args]
            stage(f"train/{model_name(arm, seed)}", "train.py", args, (target / "train_results.json").is_file())
            models[model_name(arm, seed)] = str(target)
    manifest["models"] = models
    tasks, manifest["notes"] = evaluation_tasks(plan)
    args = ["--config", str(plan.recipe("evaluate")), "--output_dir", str(plan.eval_dir), "--heldout",
            str(plan.synth_dir / "heldout"), "--models", *[f"{n}={p}" for n, p in models.items()],
            *(["--tasks", *tasks] if tasks is not None else []), *plan.evaluate_args]
    stage("evaluate", "evaluate.py", args, _results_cover(plan.eval_dir / "results.json", list(models)))
    return manifest
