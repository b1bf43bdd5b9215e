"""The `ruler` evaluation task: RULER's synthetic long-context tasks at the recipe's lengths.

Samples are built per tokenizer (a length is measured with the evaluated model's own tokenizer and
wrapping), once per distinct tokenizer in a run, and generated greedily through
`model.engine.complete`. A (task, length) cell that cannot be built (a length too short for the
task's fixed text, or longer than the model's context) is skipped, logged and listed in the details.
Scores are percentages: per task per length, their mean per length, and the mean of those.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from retrace.evaluation.intervals import Resampling
from retrace.evaluation.ruler.catalog import (
    LENGTH_TOLERANCE,
    TASK_NAMES,
    TASK_SPECS,
    RulerSample,
    build_sample,
)
from retrace.evaluation.ruler.fitting import LengthError
from retrace.evaluation.ruler.prompts import PROMPT_STYLES, PromptFormat
from retrace.evaluation.ruler.scoring import SCORERS, clean_prediction
from retrace.evaluation.ruler.sources import Sources, load_sources
from retrace.evaluation.tasks import Task, TaskResult, reply_texts

if TYPE_CHECKING:
    from retrace.evaluation.config import EvaluationConfig
    from retrace.evaluation.models import ModelUnderTest

logger = logging.getLogger(__name__)


@dataclass
class RulerOptions:
    """Recipe keys of the `ruler` task."""

    ruler_tasks: list[str] = field(default_factory=lambda: list(TASK_NAMES), metadata={
        "help": f"RULER tasks to run, some of: {', '.join(TASK_NAMES)}"})
    ruler_lengths: list[int] = field(default_factory=lambda: [1024, 4096], metadata={
        "help": "sequence lengths in tokens of the evaluated model's tokenizer: prompt (with chat template or "
                "answer prefix) plus the task's generation budget, as RULER counts them"})
    ruler_samples: int = field(default=4, metadata={"help": "samples per task and length"})
    ruler_seed: int | None = field(default=None, metadata={
        "help": "seed of the samples (unset: the run's seed); same seed and tokenizer, same prompts"})
    ruler_max_new_tokens: int = field(default=0, metadata={
        "help": "generation budget for every task (0: RULER's own: niah 128, vt 30, cwe 120, fwe 50)"})
    ruler_prompt_style: str = field(default="auto", metadata={
        "help": "chat: the model's chat template; base: plain text; auto: chat when the tokenizer has a template",
        "choices": list(PROMPT_STYLES)})
    ruler_answer_prefix: bool = field(default=True, metadata={
        "help": "end the prompt with RULER's answer prefix (e.g. 'The special magic number for X ... is')"})

    def __post_init__(self) -> None:
        unknown = [t for t in self.ruler_tasks if t not in TASK_SPECS]
        if unknown or not self.ruler_tasks:
            raise ValueError(f"key 'ruler_tasks': expected some of {list(TASK_NAMES)}, got {self.ruler_tasks}")
        if len(set(self.ruler_tasks)) != len(self.ruler_tasks):
            raise ValueError(f"key 'ruler_tasks': a task is listed twice in {self.ruler_tasks}")
        if not self.ruler_lengths or any(n < 64 for n in self.ruler_lengths):
            raise ValueError(f"key 'ruler_lengths': give lengths of at least 64 tokens, got {self.ruler_lengths}")
        if len(set(self.ruler_lengths)) != len(self.ruler_lengths):
            raise ValueError(f"key 'ruler_lengths': a length is listed twice in {self.ruler_lengths}")
        if self.ruler_samples < 1:
            raise ValueError(f"key 'ruler_samples' must be at least 1, got {self.ruler_samples}")
        if self.ruler_max_new_tokens < 0:
            raise ValueError(f"key 'ruler_max_new_tokens' must be 0 (RULER's budgets) or more, "
                             f"got {self.ruler_max_new_tokens}")
        if self.ruler_prompt_style not in PROMPT_STYLES:
            raise ValueError(f"key 'ruler_prompt_style': expected one of {list(PROMPT_STYLES)}, "
                             f"got {self.ruler_prompt_style!r}")


@dataclass
class RulerData:
    """Shared by every model of a run: the filler sources, and the samples built per tokenizer."""

    sources: Sources
    seed: int
    built: dict[str, tuple[list[RulerSample], list[dict[str, Any]]]] = field(default_factory=dict)


def build_samples(options: RulerOptions, sources: Sources, prompt_format: PromptFormat,
                  seed: int) -> tuple[list[RulerSample], list[dict[str, Any]]]:
    """Every sample of every (task, length) cell, and the cells skipped with their reason."""
    samples, skipped = [], []
    cells = [(task, length) for task in options.ruler_tasks for length in options.ruler_lengths]
    for task, length in tqdm(cells, desc="ruler: building samples", unit="cell", disable=len(cells) < 4):
        try:
            samples += [build_sample(task, length, i, seed, sources, prompt_format, options.ruler_max_new_tokens)
                        for i in range(options.ruler_samples)]
        except LengthError as exc:
            logger.warning("ruler: skipping %s at %d tokens: %s", task, length, exc)
            skipped.append({"task": task, "length": length, "reason": str(exc)})
    return samples, skipped


def prepare(config: EvaluationConfig, options: RulerOptions | None) -> RulerData:
    options = options or RulerOptions()
    return RulerData(sources=load_sources(), seed=config.seed if options.ruler_seed is None else options.ruler_seed)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def score_samples(samples: list[RulerSample], predictions: list[str]) -> list[dict[str, Any]]:
    """One record per sample: its description, the cleaned prediction and its score in [0, 1]."""
    records = []
    for sample, raw in zip(samples, predictions):
        scorer = TASK_SPECS[sample.task].scorer
        prediction = clean_prediction(raw)
        records.append({**sample.record(), "prediction": prediction, "scorer": scorer,
                        "score": SCORERS[scorer](prediction, sample.answers)})
    return records


def aggregate(records: list[dict[str, Any]], tasks: list[str],
              lengths: list[int]) -> tuple[dict[str, float], dict[int, dict[str, Any]]]:
    """Percent scores: `task@length`, `mean@length` (over the tasks scored there), `mean` (over lengths).

    One pass over the records (the bootstrap calls this once per resample)."""
    cells_rows: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for record in records:
        cells_rows.setdefault((record["task"], record["length"]), []).append(record)
    metrics: dict[str, float] = {}
    per_length: dict[int, dict[str, Any]] = {}
    for length in lengths:
        cells = {}
        for task in tasks:
            rows = cells_rows.get((task, length))
            if not rows:
                continue
            score = 100 * _mean([r["score"] for r in rows])
            metrics[f"{task}@{length}"] = score
            cells[task] = {"score": score, "samples": len(rows),
                           "prompt_tokens": [min(r["prompt_tokens"] for r in rows),
                                             max(r["prompt_tokens"] for r in rows)],
                           "total_tokens": [min(r["total_tokens"] for r in rows),
                                            max(r["total_tokens"] for r in rows)]}
        if cells:
            metrics[f"mean@{length}"] = _mean([c["score"] for c in cells.values()])
            per_length[length] = {"mean": metrics[f"mean@{length}"], "tasks": cells}
    metrics["mean"] = _mean([p["mean"] for p in per_length.values()])
    return metrics, per_length


def _resampled_metrics(samples: list[list[dict[str, Any]]], options: RulerOptions | None) -> dict[str, float]:
    options = options or RulerOptions()
    return aggregate([r for sample in samples for r in sample], options.ruler_tasks, options.ruler_lengths)[0]


def run(model: ModelUnderTest, data: RulerData, config: EvaluationConfig, options: RulerOptions | None) -> TaskResult:
    """Build (or reuse) this tokenizer's samples, generate greedily per task, score by string match."""
    from retrace.llm import SamplingParams

    options = options or RulerOptions()
    engine = model.engine
    prompt_format = PromptFormat.for_tokenizer(engine.tokenizer, options.ruler_prompt_style,
                                               options.ruler_answer_prefix)
    key = prompt_format.fingerprint()
    if key not in data.built:
        data.built[key] = build_samples(options, data.sources, prompt_format, data.seed)
    samples, skipped = data.built[key]
    skipped = list(skipped)
    limit = engine.max_model_len
    if limit:
        too_long = sorted({(s.task, s.length) for s in samples if s.length > limit})
        for task, length in too_long:
            logger.warning("ruler: skipping %s at %d tokens for %s: its context is %d", task, length, model.name, limit)
            skipped.append({"task": task, "length": length, "reason": f"beyond the model's {limit}-token context"})
        samples = [s for s in samples if s.length <= limit]

    records: list[dict[str, Any]] = []
    budgets = {}
    for task in options.ruler_tasks:
        group = [s for s in samples if s.task == task]
        if not group:
            continue
        params = SamplingParams(max_new_tokens=group[0].max_new_tokens, temperature=0.0, seed=data.seed)
        budgets[task] = params.to_dict()
        replies = engine.complete([s.prompt for s in group], params, desc=f"{model.name}: ruler {task}")
        records += score_samples(group, [texts[0] for texts in reply_texts(model, replies, "ruler")])

    metrics, per_length = aggregate(records, options.ruler_tasks, options.ruler_lengths)
    details = {
        "per_length": per_length,
        "counts": {"samples_scored": len(records), "cells_scored": sum(len(p["tasks"]) for p in per_length.values()),
                   "cells_skipped": len(skipped)},
        "skipped": skipped,
        "settings": {"seed": data.seed, "samples_per_cell": options.ruler_samples, "prompt": prompt_format.describe(),
                     "sampling": budgets, "length_counts": "prompt tokens + max_new_tokens",
                     "length_tolerance": LENGTH_TOLERANCE},
        "summary": (f"{len(records)} samples in {sum(len(p['tasks']) for p in per_length.values())} task/length "
                    f"cells ({len(skipped)} skipped), lengths {sorted(per_length)}, "
                    f"{prompt_format.describe()['style']} prompts; mean {metrics['mean']:.1f}%"),
    }
    return TaskResult(metrics=metrics, details=details, records=records)


def _chart_metrics(config: EvaluationConfig, options: RulerOptions | None) -> list[str]:
    """One bar per length and the overall mean: RULER is read as a score against context length
    (one length: the mean alone, which is the same number)."""
    lengths = (options or RulerOptions()).ruler_lengths
    return ([f"mean@{length}" for length in lengths] if len(lengths) > 1 else []) + ["mean"]


RULER = Task(
    name="ruler",
    description="RULER synthetic long-context tasks (needles, variable tracking, word aggregation) at set lengths",
    prepare=prepare,
    run=run,
    chart_metrics=_chart_metrics,
    chart_label="RULER score (% of references recalled, mean over tasks, per length and overall)",
    options=RulerOptions,
    # Samples resampled within their (task, length) cell: the cells are fixed by design, their means averaged.
    resampling=Resampling(unit=lambda r: (r["task"], r["length"], r["index"]), metrics=_resampled_metrics,
                          stratum=lambda r: (r["task"], r["length"])),
)
