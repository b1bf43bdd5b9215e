"""The `aptbench` evaluation task: APTBench's software-engineering subset, the paper's agentic benchmark.

Subtasks: `locate` (issue-fix: which snippet causes the bug; multiple choice), `error` (env-setup: the plan
that fixes a setup error; multiple choice) and `action` (env-setup: the next shell command; exact match).
Where the model's context holds the filled 3-shot prompt plus the answer budget, an item runs the published
protocol: greedy generation through `model.engine.complete` and the published answer extraction. A
multiple-choice item whose prompt does not fit (the locate prompt alone is ~10k tokens of Llama-3's or
~12.8k of SmolLM2's tokenizer) is scored by log-likelihood of its choice letters instead, on the item plus
as many shots as fit, and reported apart (`<subtask>_acc_loglik`). Action items are always generated,
their prompt cut in the middle as the published harness cuts when it is too long. Accuracies are percent.
"""

from __future__ import annotations

import logging
import string
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from retrace.evaluation.aptbench.data import (
    APTBENCH_REPOSITORY,
    APTBENCH_REVISION,
    DATA_ENV,
    SUBTASKS,
    Subtask,
    load_items,
    resolve_data_dir,
    select_items,
    sha256_of,
    subtask_files,
)
from retrace.evaluation.aptbench.prompts import (
    FittedPrompt,
    Template,
    cut_middle,
    encode,
    fit_shots,
    special_token_count,
)
from retrace.evaluation.aptbench.scoring import choice_letters, choose_by_loglik, continuation, judge
from retrace.evaluation.intervals import Resampling
from retrace.evaluation.tasks import Task, TaskResult, reply_texts

if TYPE_CHECKING:
    from retrace.evaluation.config import EvaluationConfig
    from retrace.evaluation.models import ModelUnderTest

logger = logging.getLogger(__name__)

SCORING_MODES = ("auto", "generate", "loglik")
GENERATE, LOGLIK = "generate", "loglik"
UNLIMITED = 1 << 62  # prompt tokens when the engine states no context length


@dataclass
class AptbenchOptions:
    """Recipe keys of the `aptbench` task."""

    aptbench_subtasks: list[str] = field(default_factory=lambda: list(SUBTASKS), metadata={
        "help": f"subtasks to run, some of: {', '.join(SUBTASKS)}"})
    aptbench_samples: int = field(default=0, metadata={
        "help": "items per subtask, drawn by aptbench_seed (0: all: locate 283, error 147, action 1,084)"})
    aptbench_seed: int | None = field(default=None, metadata={
        "help": "seed of the items drawn (unset: the run's seed); same seed and data, same items"})
    aptbench_data: str = field(default="", metadata={
        "help": f"APTBench data dir (empty: ${DATA_ENV}, else ../shared/data/aptbench beside the repository); "
                f"a clone of {APTBENCH_REPOSITORY} works too"})
    aptbench_revision: str = field(default=APTBENCH_REVISION, metadata={
        "help": "the APTBench revision the data is from, recorded with the results"})
    aptbench_scoring: str = field(default="auto", metadata={
        "help": "auto: the published protocol where the prompt fits, log-likelihood of the choices otherwise; "
                "generate: the published protocol everywhere (long prompts cut in the middle, as published); "
                "loglik: every multiple-choice item by log-likelihood (action is always generated)",
        "choices": list(SCORING_MODES)})
    aptbench_max_new_tokens: int = field(default=0, metadata={
        "help": "generation budget (0: the harness's: 10 for multiple choice, 30 for action)"})
    aptbench_context_tokens: int = field(default=0, metadata={
        "help": "context the prompts may use, prompt plus answer, in tokens (0: the model's window); a "
                "smaller one makes a cheap CPU slice, with fewer shots and more log-likelihood items"})

    def __post_init__(self) -> None:
        unknown = [s for s in self.aptbench_subtasks if s not in SUBTASKS]
        if unknown or not self.aptbench_subtasks:
            raise ValueError(f"key 'aptbench_subtasks': expected some of {list(SUBTASKS)}, got {self.aptbench_subtasks}")
        if len(set(self.aptbench_subtasks)) != len(self.aptbench_subtasks):
            raise ValueError(f"key 'aptbench_subtasks': a subtask is listed twice in {self.aptbench_subtasks}")
        if self.aptbench_scoring not in SCORING_MODES:
            raise ValueError(f"key 'aptbench_scoring': expected one of {list(SCORING_MODES)}, "
                             f"got {self.aptbench_scoring!r}")
        for key in ("aptbench_samples", "aptbench_max_new_tokens", "aptbench_context_tokens"):
            if getattr(self, key) < 0:
                raise ValueError(f"key '{key}' must be 0 (see its help) or more, got {getattr(self, key)}")

    def max_new_tokens(self, subtask: Subtask) -> int:
        return self.aptbench_max_new_tokens or subtask.max_new_tokens


@dataclass
class SubtaskData:
    subtask: Subtask
    template: Template
    items: list[dict[str, Any]]       # the selected items, in file order
    queries: list[str]                # each item's filled query
    total_items: int


@dataclass
class AptbenchData:
    """Shared by every model of a run: the selected items with their filled queries, and the files' digests."""

    data_dir: str
    seed: int
    subtasks: list[SubtaskData]
    files: dict[str, str]             # path relative to the data dir -> sha256


def prepare(config: EvaluationConfig, options: AptbenchOptions | None) -> AptbenchData:
    """Read, select and fill every subtask's items; AptbenchDataError when the data is not there."""
    options = options or AptbenchOptions()
    data_dir = resolve_data_dir(options.aptbench_data)
    seed = config.seed if options.aptbench_seed is None else options.aptbench_seed
    subtasks, files = [], {}
    for name in options.aptbench_subtasks:
        subtask = SUBTASKS[name]
        items_path, template_path = subtask_files(data_dir, subtask)
        template = Template.parse(template_path.read_text(encoding="utf-8"), subtask)
        everything = load_items(items_path)
        items = select_items(everything, options.aptbench_samples, seed, name)
        subtasks.append(SubtaskData(subtask, template, items, [template.fill(item, subtask) for item in items],
                                    len(everything)))
        for path in (items_path, template_path):
            files[str(path.relative_to(data_dir))] = sha256_of(path)
    return AptbenchData(str(data_dir), seed, subtasks, files)


def context_limits(engine: Any, options: AptbenchOptions) -> tuple[int | None, int | None]:
    """(generation context, scoring positions): the engine's, capped by aptbench_context_tokens (None: no limit)."""
    cap = options.aptbench_context_tokens or None
    generation = min(filter(None, (engine.max_model_len, cap)), default=None)
    scoring = min(filter(None, (getattr(engine, "max_positions", None), cap)), default=None)
    return generation, scoring


@dataclass(frozen=True)
class PromptRoom:
    """Prompt tokens (special tokens excluded) that fit with the answer, per way of scoring; None: no limit."""

    generation: int | None   # context - special tokens - generation budget
    scoring: int | None      # positions - special tokens - the longest choice continuation
    special_tokens: int

    @classmethod
    def for_subtask(cls, engine: Any, subtask: Subtask, options: AptbenchOptions) -> PromptRoom:
        generation, scoring = context_limits(engine, options)
        specials = special_token_count(engine.tokenizer)
        longest = max(len(encode(engine.tokenizer, continuation(letter))) for letter in string.ascii_uppercase)
        return cls(None if generation is None else generation - specials - options.max_new_tokens(subtask),
                   None if scoring is None else scoring - specials - longest, specials)


def plan_item(tokenizer: Any, part: SubtaskData, query: str, scoring: str, room: PromptRoom) -> tuple[str, FittedPrompt]:
    """(mode, prompt as the model reads it) of one item under the recipe's scoring mode."""
    subtask, template = part.subtask, part.template
    mode = scoring if subtask.multiple_choice else GENERATE
    full = template.prompt(query)
    if mode == "auto":
        fits = room.generation is None or len(encode(tokenizer, full)) <= room.generation
        mode = GENERATE if fits else LOGLIK
    if mode == GENERATE:
        return GENERATE, cut_middle(tokenizer, full, UNLIMITED if room.generation is None else room.generation,
                                    len(template.shots))
    return LOGLIK, fit_shots(tokenizer, template, query, UNLIMITED if room.scoring is None else room.scoring)


def run_subtask(model: ModelUnderTest, part: SubtaskData, options: AptbenchOptions, seed: int) -> list[dict[str, Any]]:
    """One record per item: generated where planned so (one batched call), scored by log-likelihood otherwise."""
    from retrace.llm import SamplingParams

    engine = model.engine
    subtask = part.subtask
    room = PromptRoom.for_subtask(engine, subtask, options)
    plans = [plan_item(engine.tokenizer, part, query, options.aptbench_scoring, room) for query in part.queries]
    records: list[dict[str, Any]] = []
    for item, (mode, prompt) in zip(part.items, plans):
        records.append({"subtask": subtask.name, "index": item["index"], "uuid": item.get("uuid"), "mode": mode,
                        "prompt_tokens": len(prompt.ids) + room.special_tokens, "shots": prompt.shots,
                        "cut_tokens": prompt.cut_tokens, "target": item[subtask.answer_key]})
        if subtask.multiple_choice:
            records[-1]["choices"] = choice_letters(str(item["choices"]).strip())
            records[-1]["answer_in_choices"] = item["answer"] in records[-1]["choices"]
    generated = [i for i, (mode, _) in enumerate(plans) if mode == GENERATE]
    if generated:
        params = SamplingParams(max_new_tokens=options.max_new_tokens(subtask), temperature=0.0, seed=seed)
        replies = engine.complete([plans[i][1].text for i in generated], params,
                                  desc=f"{model.name}: aptbench {subtask.name}")
        for i, texts in zip(generated, reply_texts(model, replies, f"aptbench {subtask.name}")):
            predicted, correct = judge(subtask.multiple_choice, texts[0], records[i]["target"])
            records[i].update(reply=texts[0], predicted=predicted, correct=correct)
    for i, (mode, prompt) in enumerate(plans):
        if mode == LOGLIK:
            predicted, nlls = choose_by_loglik(engine, prompt.ids, records[i]["choices"])
            records[i].update(choice_nll=nlls, predicted=predicted, correct=predicted == records[i]["target"])
    return records


def percent(records: list[dict[str, Any]]) -> float:
    return 100.0 * sum(r["correct"] for r in records) / len(records)


def aggregate(records: list[dict[str, Any]], subtasks: list[str]) -> tuple[dict[str, float], dict[str, Any]]:
    """`<subtask>_acc` (published protocol) and `<subtask>_acc_loglik` over the items scored each way,
    `<subtask>_acc_all` over all its items, and `average`: the mean of the `_acc_all` (percent)."""
    metrics: dict[str, float] = {}
    per_subtask: dict[str, Any] = {}
    for name in subtasks:
        rows = [r for r in records if r["subtask"] == name]
        if not rows:
            continue
        by_mode = {mode: [r for r in rows if r["mode"] == mode] for mode in (GENERATE, LOGLIK)}
        if by_mode[GENERATE]:
            metrics[f"{name}_acc"] = percent(by_mode[GENERATE])
        if by_mode[LOGLIK]:
            metrics[f"{name}_acc_loglik"] = percent(by_mode[LOGLIK])
        metrics[f"{name}_acc_all"] = percent(rows)
        per_subtask[name] = {
            "items": len(rows), "items_by_mode": {mode: len(group) for mode, group in by_mode.items()},
            "shots": dict(sorted(Counter(r["shots"] for r in rows).items())),
            "items_cut": sum(r["cut_tokens"] > 0 for r in rows),
            "prompt_tokens": [min(r["prompt_tokens"] for r in rows), max(r["prompt_tokens"] for r in rows)],
            "no_answer_extracted": sum(r["mode"] == GENERATE and r["predicted"] is None for r in rows),
            "empty_replies": sum(r.get("reply") == "" for r in rows),
        }
        if SUBTASKS[name].multiple_choice:
            per_subtask[name]["answer_not_in_choices"] = sum(not r["answer_in_choices"] for r in rows)
    metrics["average"] = sum(metrics[f"{n}_acc_all"] for n in per_subtask) / len(per_subtask)
    return metrics, per_subtask


def _resampled_metrics(items: list[list[dict[str, Any]]], options: AptbenchOptions | None) -> dict[str, float]:
    options = options or AptbenchOptions()
    return aggregate([r for item in items for r in item], options.aptbench_subtasks)[0]


def run(model: ModelUnderTest, data: AptbenchData, config: EvaluationConfig,
        options: AptbenchOptions | None) -> TaskResult:
    options = options or AptbenchOptions()
    records: list[dict[str, Any]] = []
    for part in data.subtasks:
        records += run_subtask(model, part, options, data.seed)
    metrics, per_subtask = aggregate(records, options.aptbench_subtasks)
    loglik = sum(p["items_by_mode"][LOGLIK] for p in per_subtask.values())
    generation, scoring = context_limits(model.engine, options)
    protocol = "published" if not loglik else f"deviation: {loglik} of {len(records)} items by log-likelihood"
    details = {
        "per_subtask": per_subtask,
        "counts": {"items": len(records), **{f"items_{mode}": sum(p["items_by_mode"][mode] for p in per_subtask.values())
                                             for mode in (GENERATE, LOGLIK)}},
        "protocol": protocol,
        "settings": {
            "data_dir": data.data_dir, "repository": APTBENCH_REPOSITORY, "revision": options.aptbench_revision,
            "files_sha256": data.files, "seed": data.seed, "samples_per_subtask": options.aptbench_samples,
            "items_selected": {p.subtask.name: [item["index"] for item in p.items] for p in data.subtasks},
            "items_total": {p.subtask.name: p.total_items for p in data.subtasks},
            "shots_in_templates": {p.subtask.name: len(p.template.shots) for p in data.subtasks},
            "scoring": options.aptbench_scoring, "generation_context_tokens": generation,
            "scoring_context_tokens": scoring,
            "max_new_tokens": {name: options.max_new_tokens(SUBTASKS[name]) for name in options.aptbench_subtasks},
            "generation": "greedy (temperature 0), raw text after the filled template",
            "loglik": "continuation '<letter>)' after the prompt's '(', lowest summed NLL; shots dropped earliest "
                      "first to fit, the item cut in the middle only when it alone does not fit",
        },
        "summary": (f"{len(records)} items, {protocol}; average {metrics['average']:.1f}% ("
                    + ", ".join(f"{n} {metrics[f'{n}_acc_all']:.1f}%" for n in per_subtask) + ")"),
    }
    logger.info("%s: aptbench %s", model.name, details["summary"])
    return TaskResult(metrics=metrics, details=details, records=records)


APTBENCH = Task(
    name="aptbench",
    description="APTBench software-engineering subset (issue-fix locate, env-setup error and action), few-shot",
    prepare=prepare,
    run=run,
    chart_metrics=lambda config, options: ["average"],
    chart_label="APTBench accuracy (%, mean over subtasks; see details for items scored by log-likelihood)",
    options=AptbenchOptions,
    # Items resampled within their (subtask, mode) cell: how many items each way is fixed by the model's window.
    resampling=Resampling(unit=lambda r: (r["subtask"], r["index"]), metrics=_resampled_metrics,
                          stratum=lambda r: (r["subtask"], r["mode"]), unit_name="items"),
)
