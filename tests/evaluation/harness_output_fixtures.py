"""Small files shaped like what each GPU harness writes, for the paper-table tests.

Each writer builds its files the way the harness does, from the harness's source (read, not run: none of
them can run offline here):
- lm-eval 0.4.x `EvaluationTracker.save_results_aggregated`: `<output_path>/<pretrained with / as __>/
  results_<date_id>.json`; keys `results`, `group_subtasks`, `configs`, `versions`, `n-shot`,
  `higher_is_better`, `n-samples`, `config`, `git_hash`, `date`; metrics `"<metric>,<filter>"` with
  `"<metric>_stderr,<filter>"`; RULER's metrics named by length, -1 for a length without samples.
- HELMET `eval.py::run_test`: `<output_dir>/<dataset>_<tag>_<test>_in<L>_size<n>_shots<k>_samp<do_sample>max<g>
  min<m>t<temperature>p<top_p>_chat<chat>_<seed>.json` with `args`, `data`, `metrics`, `averaged_metrics` (x100)
  and beside it `<that>.score` (= averaged_metrics); for ALCE, `eval_alce.py` writes the `.score` instead.
- LongCodeBench `codeqa_eval.py::LongCodeQAEvaluator.run`: `{"predictions": [{"id", "prompt", "response",
  "correct_letter"}], "metrics": {"accuracy", "correct", "total"}}`.
- EvalPlus 0.3.x `evaluate.py`: `<root>/<dataset>/<model>_<backend>_temp_0.0.eval_results.json` with `date`,
  `hash`, `eval` (per problem, a list of `{task_id, solution, base_status, plus_status, ...}`) and
  `pass_at_k` (`base`, `plus`).
- retrace evaluate.py: `results.json` with `models[name].tasks[task].metrics`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RULER_TASKS = ("niah_single_1", "niah_single_2", "niah_single_3", "niah_multikey_1", "niah_multikey_2",
               "niah_multikey_3", "niah_multiquery", "niah_multivalue", "ruler_vt", "ruler_cwe", "ruler_fwe",
               "ruler_qa_squad", "ruler_qa_hotpot")


def _dump(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
    return path


def lm_eval_results(output_path: Path, model_path: str, results: dict[str, dict[str, Any]],
                    group_subtasks: dict[str, list[str]], n_shot: dict[str, int],
                    n_samples: dict[str, int], date_id: str = "2026-12-05T10-11-12.123456") -> Path:
    """One aggregated lm-eval results file; `results` rows get their `alias` added as lm-eval prints them."""
    rows = {task: {"alias": task if task in group_subtasks else f" - {task}", **row} for task, row in results.items()}
    data = {"results": rows, "group_subtasks": group_subtasks,
            "configs": {t: {"task": t, "num_fewshot": n} for t, n in n_shot.items()},
            "versions": {t: 1.0 for t in results}, "n-shot": n_shot,
            "higher_is_better": {t: {k.split(",")[0]: True for k in row} for t, row in results.items()},
            "n-samples": {t: {"original": n, "effective": n} for t, n in n_samples.items()},
            "config": {"model": "vllm", "model_args": f"pretrained={model_path},dtype=bfloat16",
                       "batch_size": "auto", "random_seed": 0},
            "git_hash": "abc1234", "date": 1796000000.0}
    folder = output_path / model_path.strip("/").replace("/", "__")
    return _dump(folder / f"results_{date_id}.json", data)


def ruler(output_path: Path, model_path: str, per_task_64k: dict[str, float], group_64k: float | None,
          date_id: str = "2026-12-05T10-11-12.123456") -> Path:
    """lm-eval RULER run at 32768 and 65536; `group_64k=None` leaves the group row without that length."""
    results = {task: {"32768,none": 0.9, "32768_stderr,none": "N/A", "65536,none": score,
                      "65536_stderr,none": "N/A"} for task, score in per_task_64k.items()}
    results["ruler"] = {"32768,none": 0.9, "32768_stderr,none": "N/A"}
    if group_64k is not None:
        results["ruler"].update({"65536,none": group_64k, "65536_stderr,none": "N/A"})
    return lm_eval_results(output_path, model_path, results, {"ruler": list(per_task_64k)},
                           dict.fromkeys(per_task_64k, 0), dict.fromkeys(per_task_64k, 500), date_id)


HELMET_FILES = {  # dataset, test file stem, shots, generation length per HELMET config (short configs)
    "ruler_niah_mk_2": ("validation_32768", 2, 50), "ruler_niah_mk_3": ("validation_32768", 2, 100),
    "ruler_niah_mv": ("validation_32768", 2, 50), "json_kv": ("test_k440_dep6", 2, 100),
    "kilt_nq": ("nq-dev-multikilt_1000_k220_dep6", 2, 20),
    "kilt_triviaqa": ("triviaqa-dev-multikilt_1000_k220_dep6", 2, 20),
    "kilt_hotpotqa": ("hotpotqa-dev-multikilt_1000_k220_dep3", 2, 20),
    "kilt_popqa_3": ("popqa_test_1000_k220_dep6", 2, 20),
    "msmarco_rerank_psg": ("test_reranking_data_k285_dep3", 2, 200),
    "icl_trec_coarse_1600shot_balance": ("", 0, 20), "icl_trec_fine_1600shot_balance": ("", 0, 20),
    "icl_banking77_1450shot_balance": ("", 0, 20), "icl_clinic150_1750shot_balance": ("", 0, 20),
    "icl_nlu_2040shot_balance": ("", 0, 20),
    "alce_asqa_165": ("asqa_eval_gtr_top2000", 2, 300), "alce_qampari_165": ("qampari_eval_gtr_top2000", 2, 300),
}


def helmet_output(output_dir: Path, dataset: str, length: int, scores: dict[str, float], tag: str = "retrace",
                  chat: bool = False) -> Path:
    """One HELMET dataset run: the output JSON (and its `.score`, written by eval.py or eval_alce.py)."""
    test_name, shots, generation = HELMET_FILES[dataset]
    if dataset.startswith("kilt_popqa"):
        tag += "_pop3"  # eval.py adds the popularity threshold to popqa's tag
    samples = 500 if dataset.startswith("icl") else 100
    name = (f"{dataset}_{tag}_{test_name}_in{length}_size{samples}_shots{shots}_sampFalsemax{generation}min0"
            f"t0.0p1.0_chat{chat}_42.json")
    alce = dataset.startswith("alce")
    averaged = {} if alce else {**scores, "input_len": length * 0.97, "output_len": 7.0}
    path = _dump(output_dir / name, {"args": {"datasets": dataset, "input_max_length": length, "tag": tag},
                                     "data": [{"question": "q", "output": "a", "parsed_output": "a"}],
                                     "metrics": {k: [v / 100] for k, v in averaged.items()},
                                     "averaged_metrics": averaged, "throughput": 0.5})
    _dump(path.with_name(path.name + ".score"), scores if alce else averaged)
    return path


def longcodeqa(path: Path, answers: list[tuple[str, str]], harness_accuracy: float | None) -> Path:
    """A LongCodeQA run: (response, correct letter) per question; the harness's own accuracy as it wrote it."""
    predictions = [{"id": str(i), "prompt": "<repository> ... Question ...", "response": response,
                    "correct_letter": letter} for i, (response, letter) in enumerate(answers)]
    data: dict[str, Any] = {"predictions": predictions}
    if harness_accuracy is not None:
        data["metrics"] = {"accuracy": harness_accuracy, "correct": round(harness_accuracy * len(answers)),
                           "total": len(answers)}
    return _dump(path, data)


def evalplus_result(root: Path, model_path: str, base_passed: list[bool], plus_passed: list[bool],
                    with_pass_at_k: bool = True) -> Path:
    """EvalPlus HumanEval results for one greedy sample per problem."""
    identifier = model_path.strip("./").replace("/", "--") + "_vllm_temp_0.0"
    evals = {f"HumanEval/{i}": [{"task_id": f"HumanEval/{i}", "solution": "def f(): pass",
                                 "base_status": "pass" if b else "fail", "plus_status": "pass" if p else "fail",
                                 "base_fail_tests": [], "plus_fail_tests": []}]
             for i, (b, p) in enumerate(zip(base_passed, plus_passed))}
    data: dict[str, Any] = {"date": "2026-12-05 10:11", "hash": "fe585eb4df8c88d844eeb463ea4d0302", "eval": evals}
    if with_pass_at_k:
        both = [b and p for b, p in zip(base_passed, plus_passed)]
        data["pass_at_k"] = {"base": {"pass@1": sum(base_passed) / len(base_passed)},
                             "plus": {"pass@1": sum(both) / len(both)}}
    return _dump(root / "humaneval" / f"{identifier}.eval_results.json", data)


def retrace_results(folder: Path, model: str, tasks: dict[str, dict[str, float]]) -> Path:
    """An evaluate.py results.json for one model."""
    return _dump(folder / "results.json", {
        "stage": "evaluate", "tasks": list(tasks), "settings": {"seed": 0},
        "models": {model: {"path": f"/models/{model}", "tasks": {
            task: {"metrics": metrics, "details": {"summary": task}, "failed_requests": 0, "seconds": 1.0}
            for task, metrics in tasks.items()}}}})
