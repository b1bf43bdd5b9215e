"""The paper's results table for our models, built from what the GPU recipes' harnesses wrote under OUT.

`recipes/evaluation-gpu/paper_table.sh` runs every benchmark of the paper's table for a list of models, each
harness writing `OUT/<harness>/<model>/...`; this module reads those outputs (`harness_outputs`), takes the
paper's metric for each benchmark, and writes `paper_table.md` and `paper_table.json`: rows are the paper's
benchmarks in its order, columns our models, then the paper's own columns for reference. A cell without a
number is "-" with the reason; every number names the file it was read from and the metric taken.

    python -m retrace.evaluation.paper_table runs/eval-gpu --models raw ours

Where each row comes from (the recipe that writes it, the folder, the metric):

| row | recipe | read from OUT/ | metric |
| --- | --- | --- | --- |
| RULER @64k | lm_eval_ruler.sh | ruler/<m>/ | `ruler` group, `65536,none` (mean of 13 tasks) |
| HELMET @32k | helmet.sh | helmet/<m>/ | mean over categories of the 32768 rows (HELMET's collect script) |
| HumanEval | evalplus.sh | evalplus/<m>/humaneval/ | greedy pass@1, original tests (else retrace's humaneval) |
| LongCodeBench 32k/64k | longcodebench.sh | longcodebench/<m>/codeqa_32K.json, _64K | LongCodeQA accuracy |
| BBH | lm_eval_reasoning.sh | reasoning/<m>/ | `bbh_cot_fewshot` `exact_match,get-answer` (3-shot CoT) |
| MATH | lm_eval_reasoning.sh | reasoning/<m>/ | `hendrycks_math` (else `minerva_math`) `exact_match,none` |
| GSM8k | lm_eval_reasoning.sh | reasoning/<m>/ | `gsm8k` `exact_match,strict-match` (5-shot) |
| APTBench (average) | aptbench.sh | aptbench/<m>/results.json (else retrace/<m>/) | `aptbench` `average` |
| AGIEval (not in the paper's) | lm_eval_reasoning.sh | reasoning/<m>/ | `agieval_en` (else `agieval`) `acc,none` |

Which metric the paper used is known only from published summaries (docs/evaluation.md, "The paper's table on
GPUs", says what is chosen and why); the chosen metric is written into every cell's record.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrace.atomic import write_json, write_text
from retrace.evaluation.harness_outputs import (
    HELMET_CATEGORIES,
    Reading,
    read_evalplus,
    read_helmet,
    read_lm_eval,
    read_lm_eval_ruler,
    read_longcodeqa,
    read_retrace_task,
)

# The paper's columns (DESIGN.md; from published summaries, None where not published).
PAPER_COLUMNS = ("ProLong", "Raw-Repos", "Repo2Agent", "Repo2Agent-Search")
RULER_TASKS = ("niah_single_1", "niah_single_2", "niah_single_3", "niah_multikey_1", "niah_multikey_2",
               "niah_multikey_3", "niah_multiquery", "niah_multivalue", "ruler_vt", "ruler_cwe", "ruler_fwe",
               "ruler_qa_squad", "ruler_qa_hotpot")
# HELMET's categories that need no judge model (what helmet.sh runs by default).
DEFAULT_HELMET_CATEGORIES = ("Recall", "RAG", "Re-rank", "Cite", "ICL")
# retrace's `aptbench` task: `average` (percent) = mean over its subtasks of `<subtask>_acc_all`; a subtask
# with items scored by log-likelihood (prompt longer than the context) also reports `<subtask>_acc_loglik`.
APTBENCH_METRIC = "average"
HARNESS_FOLDERS = ("ruler", "helmet", "evalplus", "longcodebench", "reasoning", "aptbench", "retrace")

Reader = Callable[[Path, str, "TableOptions"], Reading]


@dataclass(frozen=True)
class TableOptions:
    helmet_categories: tuple[str, ...] = DEFAULT_HELMET_CATEGORIES


@dataclass(frozen=True)
class Row:
    benchmark: str                            # as the paper's table names it
    paper: tuple[float | None, ...]           # one per PAPER_COLUMNS
    read: Reader
    in_paper: bool = True


def _retrace_results(out: Path, model: str, *folders: str) -> list[Path]:
    return [out / folder / model / "results.json" for folder in folders]


def _humaneval(out: Path, model: str, options: TableOptions) -> Reading:
    reading = read_evalplus(out / "evalplus" / model / "humaneval")
    if reading.value is not None:
        return reading
    fallback = read_retrace_task(_retrace_results(out, model, "retrace"), model, "humaneval", ("pass@1",))
    if fallback.value is None:
        return Reading(None, reading.source, reason=f"{reading.reason}; {fallback.reason}")
    return Reading(fallback.value, fallback.source, f"{fallback.metric} (retrace's suite, no EvalPlus run)",
                   fallback=True)


def _aptbench(out: Path, model: str, options: TableOptions) -> Reading:
    reading = read_retrace_task(_retrace_results(out, model, "aptbench", "retrace"), model, "aptbench",
                                (APTBENCH_METRIC,), to_percent=1.0)
    if reading.value is None or reading.source is None:
        return reading
    outcome = json.loads(reading.source.read_text())["models"][model]["tasks"]["aptbench"]
    loglik = sorted(m for m in outcome["metrics"] if m.endswith("_acc_loglik"))
    if not loglik:
        return reading
    return Reading(reading.value, reading.source, f"{reading.metric}; includes items scored by log-likelihood "
                   f"({', '.join(loglik)}), not the published generation protocol", fallback=True)


ROWS: tuple[Row, ...] = (
    Row("RULER @64k", (57.10, 61.00, None, 61.80),
        lambda out, m, o: read_lm_eval_ruler(out / "ruler" / m, 65536, RULER_TASKS)),
    Row("HELMET @32k", (61.57, 60.98, None, 62.65),
        lambda out, m, o: read_helmet(out / "helmet" / m, 32768, o.helmet_categories)),
    Row("HumanEval", (16.46, 34.76, 36.59, 37.20), _humaneval),
    Row("LongCodeBench 32k", (29.38, 34.16, None, 36.46),
        lambda out, m, o: read_longcodeqa(out / "longcodebench" / m / "codeqa_32K.json")),
    Row("LongCodeBench 64k", (30.52, 27.37, 31.05, 30.26),
        lambda out, m, o: read_longcodeqa(out / "longcodebench" / m / "codeqa_64K.json")),
    Row("BBH", (66.69, 66.27, None, 67.03),
        lambda out, m, o: read_lm_eval(out / "reasoning" / m, ("bbh_cot_fewshot",), "exact_match,get-answer")),
    Row("MATH", (1.64, 2.18, 3.72, 3.76),
        lambda out, m, o: read_lm_eval(out / "reasoning" / m, ("hendrycks_math", "minerva_math"),
                                       "exact_match,none")),
    Row("GSM8k", (None, 61.94, 61.94, 60.96),
        lambda out, m, o: read_lm_eval(out / "reasoning" / m, ("gsm8k",), "exact_match,strict-match")),
    Row("APTBench (average)", (None, 29.02, 30.10, 29.65), _aptbench),
    Row("AGIEval", (None, None, None, None),
        lambda out, m, o: read_lm_eval(out / "reasoning" / m, ("agieval_en", "agieval"), "acc,none"),
        in_paper=False),
)


def discover_models(out: Path) -> list[str]:
    """Model names that have an output folder under any harness folder of `out`, sorted."""
    names = {p.name for folder in HARNESS_FOLDERS if (out / folder).is_dir()
             for p in (out / folder).iterdir() if p.is_dir() and p.name != "comparison"}
    return sorted(names)


def _relative(path: Path | None, out: Path) -> str | None:
    if path is None:
        return None
    try:
        return str(path.resolve().relative_to(out.resolve()))
    except ValueError:
        return str(path)


def build_table(out: str | Path, models: Sequence[str], options: TableOptions | None = None) -> dict[str, Any]:
    """The table as a dict: `rows[i].cells[model]` = value (percent, 2 decimals kept in full) or None, with
    `source` (path relative to `out`), `metric` and `reason`."""
    out, options = Path(out), options or TableOptions()
    unknown = [c for c in options.helmet_categories if c not in HELMET_CATEGORIES]
    if unknown:
        raise ValueError(f"unknown HELMET categories {unknown}; known: {', '.join(HELMET_CATEGORIES)}")
    rows = []
    for row in ROWS:
        cells = {}
        for model in models:
            reading = row.read(out, model, options)
            cells[model] = {"value": reading.value, "source": _relative(reading.source, out),
                            "metric": reading.metric, "reason": reading.reason, "stderr": reading.stderr,
                            "fallback": reading.fallback, "files": [_relative(f, out) for f in reading.files]}
        rows.append({"benchmark": row.benchmark, "in_paper": row.in_paper,
                     "paper": dict(zip(PAPER_COLUMNS, row.paper)), "cells": cells})
    versions = out / "harness_versions.txt"  # written by paper_table.sh
    return {"out": str(out.resolve()), "models": list(models), "paper_columns": list(PAPER_COLUMNS),
            "helmet_categories": list(options.helmet_categories), "rows": rows,
            "harness_versions": versions.read_text().splitlines() if versions.exists() else []}


FALLBACK_MARK = " †"


def _number(value: float | None, fallback: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.2f}" + (FALLBACK_MARK if fallback else "")


def markdown(table: dict[str, Any]) -> str:
    """The paper's layout: benchmarks down, our models then the paper's columns across; sources and gaps below."""
    models, paper = table["models"], table["paper_columns"]
    lines = ["# The paper's table, our models", "",
             f"Numbers in percent, from `{table['out']}`. Paper columns: published summaries of Zeng et al. "
             "(2026), for reference; `-` = not published / not measured (reason below); `†` = measured another "
             "way than the row's first choice (see Sources).", "",
             "| benchmark | " + " | ".join(models) + " | " + " | ".join(f"paper {c}" for c in paper) + " |",
             "|---" * (1 + len(models) + len(paper)) + "|"]
    for row in table["rows"]:
        name = row["benchmark"] + ("" if row["in_paper"] else " (not in the paper's table)")
        ours = [_number(row["cells"][m]["value"], row["cells"][m]["fallback"]) for m in models]
        refs = [_number(row["paper"][c]) for c in paper]
        lines.append(f"| {name} | " + " | ".join(ours + refs) + " |")
    lines += ["", "## Sources", ""]
    gaps = []
    for row in table["rows"]:
        for model in models:
            cell = row["cells"][model]
            if cell["value"] is None:
                gaps.append(f"- {row['benchmark']}, {model}: {cell['reason']}")
            else:
                lines.append(f"- {row['benchmark']}, {model}: {cell['value']:.2f} from `{cell['source']}` "
                             f"({cell['metric']})")
    if gaps:
        lines += ["", "## Missing", ""] + gaps
    if table.get("harness_versions"):
        lines += ["", "## Harness versions", ""] + [f"- {line}" for line in table["harness_versions"]]
    return "\n".join(lines) + "\n"


def write_paper_table(out: str | Path, models: Sequence[str] | None = None, options: TableOptions | None = None,
                      output_dir: str | Path | None = None) -> dict[str, Any]:
    """Build the table for `models` (default: every model with outputs under `out`) and write
    `paper_table.md` / `paper_table.json` into `output_dir` (default `out`)."""
    out = Path(out)
    models = list(models) if models else discover_models(out)
    if not models:
        raise ValueError(f"no models: none given and no harness outputs under {out} ({', '.join(HARNESS_FOLDERS)})")
    table = build_table(out, models, options)
    target = Path(output_dir) if output_dir else out
    write_json(target / "paper_table.json", table)
    write_text(target / "paper_table.md", markdown(table))
    return table


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="the OUT folder the GPU recipes wrote (recipes/evaluation-gpu/common.sh)")
    parser.add_argument("--models", nargs="*", default=None,
                        help="model names (MODELS' names), in column order; default: every one found")
    parser.add_argument("--helmet_categories", nargs="*", default=list(DEFAULT_HELMET_CATEGORIES),
                        help=f"categories averaged into HELMET @32k; known: {', '.join(HELMET_CATEGORIES)}")
    parser.add_argument("--output_dir", default=None, help="where to write paper_table.md/.json (default: OUT)")
    args = parser.parse_args(argv)
    models = [spec.split("=", 1)[0] for spec in args.models] if args.models else None
    try:
        table = write_paper_table(args.out, models, TableOptions(tuple(args.helmet_categories)), args.output_dir)
    except ValueError as error:
        parser.error(str(error))
    print(markdown(table).split("\n## Sources")[0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
