"""Readers for what the GPU recipes' harnesses leave on disk, each returning one number in percent and its file.

`recipes/evaluation-gpu/` runs harnesses retrace does not own; the paper's table (`paper_table`) is built from
their outputs as written. Every reader returns a `Reading`: the value in percent (None when absent), the file
it came from, which metric of that file was taken, and otherwise the reason there is no value. A reader never
raises on a missing or malformed output: a cell of the table says why it is empty instead.

The formats, and where each comes from. None of these harnesses can run offline here, so each parser is
written against the harness's source at the commit named (read, not executed) and tested on files built
the same way (tests/evaluation/test_paper_table.py):
- lm-eval 0.4.x (`--output_path DIR`; task configs read on its main branch, RULER's at 3e9e457a):
  `DIR/<model path with / as __>/results_<date>.json` holding `results[task]["<metric>,<filter>"]`
  (fractions) and `"<metric>_stderr,<filter>"`, a group's row beside its subtasks', `group_subtasks` and
  `n-samples`. RULER's metrics are named by length (`"65536,none"`; -1 marks a length without samples).
  A group row absent from `results` is recomputed from its subtasks (weighted by sample count where
  lm-eval's group config says `weight_by_size`).
- HELMET (princeton-nlp/HELMET `eval.py` at 0a5c203f, `scripts/collect_results.py` at 1cbf4873): per
  dataset and length `<dataset>_<tag>_<test>_in<length>_size<n>_shots<k>_...json`, plus `<that>.score` holding
  `averaged_metrics` (already x100); ALCE's `.score` is written by `eval_alce.py`; GPT-4o-judged outputs
  are `<stem>-gpt4eval_o.json`. Metric per dataset and the category averages follow HELMET's
  `scripts/collect_results.py` (dataset matched by name in that script's order).
- LongCodeBench (Zteefano/long-code-bench, LongCodeQA runner `codeqa_eval.py` at 91db30f5): one JSON per
  run, `{"predictions": [{"id", "prompt", "response", "correct_letter"}], "metrics": {"accuracy", ...}}`.
  Its scorer reads a field the runner does not write at some revisions, so predictions are re-scored
  here with the harness's own answer rule ("Final Answer: X", else a trailing letter).
- EvalPlus 0.3.x (`evalplus.evaluate --root R`; `evaluate.py` at 58571f98):
  `R/<dataset>/<model>_<backend>_temp_0.0.eval_results.json` (older: `_eval_results.json`) with
  `pass_at_k.base["pass@1"]` (original tests) and `.plus` (HumanEval+), and per problem
  `eval[task_id] = [{"base_status": "pass"|"fail", ...}]`.
- retrace's evaluate.py: `results.json`, `models[<name>].tasks[<task>].metrics` (fractions, except where a
  task says percent: `aptbench`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Reading:
    """One benchmark number for one model: percent, or None with `reason`; `source` is the file (or folder) read,
    `files` every file that went into the number when there are several; `fallback` marks a number measured
    another way than the row's first choice (another task or harness), so it is flagged where it is shown."""

    value: float | None
    source: Path | None = None
    metric: str = ""
    reason: str = ""
    stderr: float | None = None
    files: tuple[Path, ...] = ()
    fallback: bool = False


def missing(reason: str, source: Path | None = None) -> Reading:
    return Reading(None, source, reason=reason)


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value) else None


# --- lm-eval ----------------------------------------------------------------------------------------------

def lm_eval_results(folder: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every lm-eval aggregated results file under `folder`, newest first (by the date in its name)."""
    files = sorted(folder.glob("**/results_*.json"), key=lambda p: (p.name, str(p)), reverse=True)
    loaded = [(path, _load_json(path)) for path in files]
    return [(path, data) for path, data in loaded if isinstance(data, dict) and isinstance(data.get("results"), dict)]


def _group_from_subtasks(data: dict[str, Any], group: str, key: str, weighted: bool) -> tuple[float, str] | None:
    """A group's `key` recomputed from its subtasks' rows, as lm-eval aggregates it; None if a subtask lacks it."""
    subtasks = (data.get("group_subtasks") or {}).get(group) or []
    values, weights = [], []
    for task in subtasks:
        value = _number((data["results"].get(task) or {}).get(key))
        if value is None or value < 0:
            return None
        samples = (data.get("n-samples") or {}).get(task) or {}
        values.append(value)
        weights.append(float(samples.get("effective", 1)) if weighted else 1.0)
    if not values or sum(weights) <= 0:
        return None
    mean = sum(v * w for v, w in zip(values, weights)) / sum(weights)
    return mean, f"recomputed from {len(values)} subtasks ({'weighted by size' if weighted else 'unweighted'})"


def read_lm_eval(folder: Path, tasks: Sequence[str], key: str, weighted: bool = True) -> Reading:
    """The first of `tasks` (lm-eval task or group names, in preference order) found in the newest results file
    under `folder` that has it; `key` is `"<metric>,<filter>"`. Fractions become percent."""
    found = lm_eval_results(folder)
    if not found:
        return missing(f"no lm-eval results_*.json under {folder}")
    for task in tasks:
        for path, data in found:
            if task not in data["results"] and task not in (data.get("group_subtasks") or {}):
                continue
            row = data["results"].get(task) or {}
            value, how = _number(row.get(key)), ""
            if value is None or value < 0:
                recomputed = _group_from_subtasks(data, task, key, weighted)
                if recomputed is None:
                    return missing(f"{task} has no '{key}' in {path.name}", path)
                value, how = recomputed
            metric_name, _, filter_name = key.partition(",")
            stderr = _number(row.get(f"{metric_name}_stderr,{filter_name}"))
            shots = (data.get("n-shot") or {}).get(task)
            note = f"{task} {key}" + (f", {shots}-shot" if shots is not None else "") + (f"; {how}" if how else "")
            return Reading(100 * value, path, note, stderr=None if stderr is None else 100 * stderr,
                           fallback=task != tasks[0])
    return missing(f"none of {', '.join(tasks)} in the lm-eval results under {folder}")


def read_lm_eval_ruler(folder: Path, length: int, tasks: Sequence[str]) -> Reading:
    """lm-eval's RULER at one length: the `ruler` group row, else the unweighted mean over all of `tasks`."""
    key = f"{length},none"
    found = [(path, data) for path, data in lm_eval_results(folder) if "ruler" in data["results"]
             or set(tasks) & set(data["results"])]
    if not found:
        return missing(f"no lm-eval RULER results under {folder}")
    path, data = found[0]
    value = _number((data["results"].get("ruler") or {}).get(key))
    if value is not None and value >= 0:
        return Reading(100 * value, path, f"ruler {key} (mean of {len(tasks)} tasks)")
    scores = {task: _number((data["results"].get(task) or {}).get(key)) for task in tasks}
    absent = [task for task, score in scores.items() if score is None or score < 0]
    if absent:
        return missing(f"RULER at {length} lacks {', '.join(absent)} in {path.name}", path)
    return Reading(100 * sum(scores.values()) / len(tasks), path, f"mean of {len(tasks)} RULER tasks' {key}")


# --- HELMET -----------------------------------------------------------------------------------------------

# HELMET's scripts/collect_results.py: the metric(s) of each dataset, matched by name in this order.
HELMET_DATASET_METRICS: dict[str, tuple[str, ...]] = {
    "json_kv": ("substring_exact_match",), "nq": ("substring_exact_match",),
    "popqa": ("substring_exact_match",), "triviaqa": ("substring_exact_match",),
    "hotpotqa": ("substring_exact_match",), "narrativeqa": ("gpt-4-score",), "msmarco_rerank_psg": ("NDCG@10",),
    "trec_coarse": ("exact_match",), "trec_fine": ("exact_match",), "banking77": ("exact_match",),
    "clinic150": ("exact_match",), "nlu": ("exact_match",), "qmsum": ("rougeL_recall",),
    "multi_lexsum": ("gpt-4-f1",),
    "ruler_niah_mk_2": ("ruler_recall",), "ruler_niah_mk_3": ("ruler_recall",), "ruler_niah_mv": ("ruler_recall",),
    "infbench_qa": ("rougeL_f1",), "infbench_choice": ("exact_match",), "infbench_sum": ("gpt-4-f1",),
    "alce_asqa": ("str_em", "citation_rec", "citation_prec"),
    "alce_qampari": ("qampari_rec_top5", "citation_rec", "citation_prec"),
}
# The same script's category averages, each over `dataset metric` entries.
HELMET_CATEGORIES: dict[str, tuple[str, ...]] = {
    "Recall": ("json_kv substring_exact_match", "ruler_niah_mk_2 ruler_recall", "ruler_niah_mk_3 ruler_recall",
               "ruler_niah_mv ruler_recall"),
    "RAG": ("nq substring_exact_match", "hotpotqa substring_exact_match", "popqa substring_exact_match",
            "triviaqa substring_exact_match"),
    "ICL": ("trec_coarse exact_match", "trec_fine exact_match", "banking77 exact_match", "clinic150 exact_match",
            "nlu exact_match"),
    "Cite": ("alce_asqa str_em", "alce_asqa citation_rec", "alce_asqa citation_prec",
             "alce_qampari qampari_rec_top5", "alce_qampari citation_rec", "alce_qampari citation_prec"),
    "Re-rank": ("msmarco_rerank_psg NDCG@10",),
    "LongQA": ("narrativeqa gpt-4-score", "infbench_qa rougeL_f1", "infbench_choice exact_match"),
    "Summ": ("infbench_sum gpt-4-f1", "multi_lexsum gpt-4-f1"),
}
_HELMET_NAME = re.compile(r"^(?P<stem>.+)_in(?P<length>\d+)_size\d+_shots\d+_samp.*\.json$")


def _helmet_scores(path: Path) -> dict[str, Any] | None:
    """The averaged metrics of one HELMET output, from the judge's file, the `.score` file or the output itself."""
    judged = path.with_name(path.name[: -len(".json")] + "-gpt4eval_o.json")
    if judged.exists():
        scores = (_load_json(judged) or {}).get("averaged_metrics") or {}
        return {k: v * (100 if k == "gpt-4-f1" else 1) * (100 / 3 if k == "gpt-4-score" else 1)
                for k, v in scores.items() if _number(v) is not None}
    score_file = path.with_name(path.name + ".score")
    if score_file.exists():
        return _load_json(score_file)
    data = _load_json(path)
    return data.get("averaged_metrics") if isinstance(data, dict) else None


def helmet_metrics(folder: Path, length: int) -> dict[str, tuple[float, Path]]:
    """`{"<dataset> <metric>": (value, file)}` of every HELMET output in `folder` at `length` input tokens."""
    out: dict[str, tuple[float, Path]] = {}
    for path in sorted(folder.glob("*.json")):
        match = _HELMET_NAME.match(path.name)
        if path.name.endswith("-gpt4eval_o.json") or not match or int(match["length"]) != length:
            continue
        dataset = next((d for d in HELMET_DATASET_METRICS if d in match["stem"]), None)
        scores = _helmet_scores(path) if dataset else None
        for metric in HELMET_DATASET_METRICS.get(dataset or "", ()):
            if scores and _number(scores.get(metric)) is not None:
                out[f"{dataset} {metric}"] = (float(scores[metric]), path)
    return out


def read_helmet(folder: Path, length: int, categories: Sequence[str]) -> Reading:
    """HELMET at `length`: the mean over `categories` of each category's mean, as HELMET's collect script
    averages; a category counts only with every one of its entries present."""
    if not folder.is_dir():
        return missing(f"no HELMET outputs: {folder} does not exist")
    metrics = helmet_metrics(folder, length)
    means, lacking = {}, []
    for category in categories:
        entries = HELMET_CATEGORIES[category]
        absent = [e for e in entries if e not in metrics]
        if absent:
            lacking.append(f"{category} ({', '.join(absent)})")
        else:
            means[category] = sum(metrics[e][0] for e in entries) / len(entries)
    if lacking:
        return missing(f"HELMET at {length} lacks {'; '.join(lacking)} in {folder}")
    files = tuple(sorted({metrics[e][1] for c in means for e in HELMET_CATEGORIES[c]}))
    detail = ", ".join(f"{c} {v:.2f}" for c, v in means.items())
    return Reading(sum(means.values()) / len(means), folder,
                   f"mean of {len(means)} categories at {length} ({detail}) from {len(files)} files", files=files)


# --- LongCodeBench ----------------------------------------------------------------------------------------

def longcodeqa_answer(response: str) -> str | None:
    """The letter a LongCodeQA reply answers: after "Final Answer:", else a letter ending the reply."""
    match = re.search(r"Final Answer:\s*([ABCD])", response, re.IGNORECASE) or \
        re.search(r"\b([ABCD])\s*$", response.strip(), re.IGNORECASE)
    return match.group(1).upper() if match else None


def read_longcodeqa(path: Path) -> Reading:
    """Accuracy of one LongCodeQA run, re-scored from its saved predictions when they carry the gold letter."""
    if not path.exists():
        return missing(f"no LongCodeBench output {path}")
    data = _load_json(path)
    if not isinstance(data, dict):
        return missing(f"{path.name} is not the LongCodeQA runner's JSON (predictions without gold letters?)", path)
    predictions = data.get("predictions") or []
    scored = [p for p in predictions if isinstance(p, dict) and "correct_letter" in p]
    if scored and len(scored) == len(predictions):
        correct = sum(longcodeqa_answer(str(p.get("response", p.get("text", "")))) == p["correct_letter"]
                      for p in scored)
        note = f"accuracy re-scored from {len(scored)} predictions ({correct} correct)"
        harness = _number((data.get("metrics") or {}).get("accuracy"))
        if harness is not None and abs(harness - correct / len(scored)) > 1e-9:
            note += f"; the harness reported {100 * harness:.2f}"
        return Reading(100 * correct / len(scored), path, note)
    accuracy = _number((data.get("metrics") or {}).get("accuracy"))
    if accuracy is None:
        return missing(f"{path.name} has neither scorable predictions nor metrics.accuracy", path)
    return Reading(100 * accuracy, path, "metrics.accuracy as the harness reported it")


# --- EvalPlus ---------------------------------------------------------------------------------------------

def read_evalplus(folder: Path, tests: str = "base") -> Reading:
    """Greedy pass@1 of the newest EvalPlus result under `folder` on the original tests (`base`) or `plus`."""
    files = sorted(folder.glob("*eval_results.json"), key=lambda p: p.stat().st_mtime, reverse=True) \
        if folder.is_dir() else []
    if not files:
        return missing(f"no EvalPlus *eval_results.json under {folder}")
    path, data = files[0], _load_json(files[0])
    if not isinstance(data, dict):
        return missing(f"{path.name} is not JSON", path)
    value = _number(((data.get("pass_at_k") or {}).get(tests) or {}).get("pass@1"))
    if value is not None:
        return Reading(100 * value, path, f"pass_at_k.{tests}.pass@1")
    problems = data.get("eval") or {}
    if not problems:
        return missing(f"{path.name} has neither pass_at_k.{tests} nor per-problem results", path)
    shares = []
    for runs in problems.values():
        passed = [r.get("base_status") == "pass" and (tests == "base" or r.get("plus_status") == "pass")
                  for r in runs]
        shares.append(sum(passed) / len(passed) if passed else 0.0)
    return Reading(100 * sum(shares) / len(shares), path, f"pass@1 recomputed from {len(shares)} problems ({tests})")


# --- retrace ----------------------------------------------------------------------------------------------

def read_retrace_task(paths: Sequence[Path], model: str, task: str, metrics: Sequence[str],
                      to_percent: float = 100.0) -> Reading:
    """The first of `metrics` of `task` for `model` in the first of `paths` (evaluate.py results.json) that ran it,
    times `to_percent` (100 for a task reporting fractions, 1 for one reporting percent)."""
    for path in paths:
        data = _load_json(path) if path.exists() else None
        outcome = (((data or {}).get("models") or {}).get(model) or {}).get("tasks", {}).get(task)
        if outcome is None:
            continue
        values = outcome.get("metrics") or {}
        for metric in metrics:
            value = _number(values.get(metric))
            if value is not None:
                return Reading(to_percent * value, path, f"{task} {metric}")
        reason = outcome.get("error") or f"none of {', '.join(metrics)} among {', '.join(values) or 'no metrics'}"
        return missing(f"{task} in {path.name}: {reason}", path)
    return missing(f"no results.json with task {task} for {model} at {', '.join(str(p) for p in paths)}")
