"""The `bfcl` evaluation task: BFCL's non-live Python categories in prompting mode, AST-checked.

Questions come from the pinned `bfcl-eval` wheel (prepared once per run, shared by every model); a
slice of `bfcl_samples` per category is spread evenly over each file (one question drawn, seeded, from
each of that many equal stretches), so a small slice still covers the file's range of topics. Each
model answers greedily through `model.engine.chat` with BFCL's system prompt; replies are decoded
with `ast` and checked by our restatement of BFCL's AST checker (see `checker`).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from retrace.evaluation.bfcl.data import CATEGORIES, PACKAGE, BFCLQuestion, load_category
from retrace.evaluation.bfcl.prompting import PROMPT_CONFIG, conversation
from retrace.evaluation.bfcl.scoring import aggregate, score_reply
from retrace.evaluation.intervals import Resampling
from retrace.evaluation.tasks import Task, TaskResult, reply_texts
from retrace.evaluation.wheel_data import WHEELS

if TYPE_CHECKING:
    from retrace.evaluation.config import EvaluationConfig
    from retrace.evaluation.models import ModelUnderTest

logger = logging.getLogger(__name__)


@dataclass
class BFCLOptions:
    """Recipe keys of the `bfcl` task."""

    bfcl_categories: list[str] = field(default_factory=lambda: list(CATEGORIES), metadata={
        "help": f"BFCL categories to run, some of: {', '.join(CATEGORIES)}"})
    bfcl_samples: int = field(default=0, metadata={
        "help": "questions per category, spread evenly over the category's file (0: every question: "
                "400 simple, 200 each of multiple, parallel, parallel_multiple, 240 irrelevance)"})
    bfcl_seed: int | None = field(default=None, metadata={
        "help": "seed of the slice (unset: the run's seed); same seed, same questions"})
    bfcl_max_new_tokens: int = field(default=384, metadata={
        "help": "generation budget per reply (the longest correct reply is ~240 SmolLM2 tokens, in parallel)"})

    def __post_init__(self) -> None:
        unknown = [c for c in self.bfcl_categories if c not in CATEGORIES]
        if unknown or not self.bfcl_categories:
            raise ValueError(f"key 'bfcl_categories': expected some of {list(CATEGORIES)}, got {self.bfcl_categories}")
        if len(set(self.bfcl_categories)) != len(self.bfcl_categories):
            raise ValueError(f"key 'bfcl_categories': a category is listed twice in {self.bfcl_categories}")
        if self.bfcl_samples < 0:
            raise ValueError(f"key 'bfcl_samples' must be 0 (every question) or more, got {self.bfcl_samples}")
        if self.bfcl_max_new_tokens < 1:
            raise ValueError(f"key 'bfcl_max_new_tokens' must be at least 1, got {self.bfcl_max_new_tokens}")


def spread_sample(questions: list[BFCLQuestion], count: int, seed: int, category: str) -> list[BFCLQuestion]:
    """`count` questions, one drawn from each of `count` equal stretches of the file (all when 0 or more)."""
    if count == 0 or count >= len(questions):
        return list(questions)
    rng = random.Random(f"bfcl:{category}:{seed}")
    bounds = [round(i * len(questions) / count) for i in range(count + 1)]
    return [questions[rng.randrange(start, end)] for start, end in zip(bounds, bounds[1:])]


@dataclass
class BFCLData:
    """Shared by every model of a run: the chosen questions of each category, in category order."""

    questions: list[BFCLQuestion]
    available: dict[str, int]  # questions in each category's file
    seed: int


def prepare(config: EvaluationConfig, options: BFCLOptions | None) -> BFCLData:
    options = options or BFCLOptions()
    seed = config.seed if options.bfcl_seed is None else options.bfcl_seed
    chosen, available = [], {}
    for category in options.bfcl_categories:
        questions = load_category(category)
        available[category] = len(questions)
        chosen += spread_sample(questions, options.bfcl_samples, seed, category)
    return BFCLData(questions=chosen, available=available, seed=seed)


def _prompt_tokens(tokenizer: Any, messages: list[dict[str, str]]) -> int | None:
    if not getattr(tokenizer, "chat_template", None):
        return None
    return len(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                             return_dict=True)["input_ids"])


def run(model: ModelUnderTest, data: BFCLData, config: EvaluationConfig, options: BFCLOptions | None) -> TaskResult:
    """Ask every chosen question once, greedily; score each reply; accuracies per category and averaged."""
    from retrace.llm import SamplingParams

    options = options or BFCLOptions()
    engine = model.engine
    conversations = [conversation(q) for q in data.questions]
    lengths = [_prompt_tokens(engine.tokenizer, c) for c in conversations]
    limit = engine.max_model_len
    kept, skipped = [], []
    for question, messages, length in zip(data.questions, conversations, lengths):
        if limit and length is not None and length + options.bfcl_max_new_tokens > limit:
            logger.warning("bfcl: skipping %s for %s: %d prompt tokens + %d new exceed its %d-token context",
                           question.id, model.name, length, options.bfcl_max_new_tokens, limit)
            skipped.append({"id": question.id, "prompt_tokens": length, "reason": f"beyond the {limit}-token context"})
        else:
            kept.append((question, messages, length))
    params = SamplingParams(max_new_tokens=options.bfcl_max_new_tokens, temperature=0.0, seed=data.seed)
    replies = engine.chat([messages for _, messages, _ in kept], params, desc=f"{model.name}: bfcl") if kept else []
    records = []
    for (question, _, length), texts in zip(kept, reply_texts(model, replies, "bfcl")):
        records.append({**score_reply(question, texts[0]), "prompt_tokens": length})

    metrics, per_category = aggregate(records, options.bfcl_categories)
    accuracies = ", ".join(f"{c} {per_category[c]['accuracy']:.1f}" for c in per_category)
    details = {
        "per_category": per_category,
        "counts": {"questions": len(records), "correct": sum(r["correct"] for r in records),
                   "decode_failures": sum(r["decode_error"] is not None for r in records), "skipped": len(skipped)},
        "skipped": skipped,
        "settings": {"seed": data.seed, "samples_per_category": options.bfcl_samples or "all",
                     "questions_available": data.available, "prompt": PROMPT_CONFIG, "sampling": params.to_dict(),
                     "data": f"{PACKAGE}=={WHEELS[PACKAGE].version}",
                     "averaging": "non_live_ast: unweighted mean of the AST categories run (BFCL's non-live "
                                  "summary); overall: unweighted mean of every category run; pooled: all questions"},
        "summary": (f"{len(records)} questions ({len(skipped)} skipped): {accuracies}; "
                    f"overall {metrics['overall']:.1f}%"),
    }
    return TaskResult(metrics=metrics, details=details, records=records)


def _resampled_metrics(questions: list[list[dict[str, Any]]], options: BFCLOptions | None) -> dict[str, float]:
    return aggregate([r for question in questions for r in question], (options or BFCLOptions()).bfcl_categories)[0]


BFCL = Task(
    name="bfcl",
    description="BFCL function calling (simple, multiple, parallel, parallel_multiple, irrelevance), AST-checked",
    prepare=prepare,
    run=run,
    chart_metrics=lambda config, options: ["overall"],
    chart_label="BFCL accuracy (%, unweighted mean over categories)",
    options=BFCLOptions,
    # Questions resampled within their category: the categories' sizes are fixed by the slice, their means averaged.
    resampling=Resampling(unit=lambda r: r["id"], metrics=_resampled_metrics, stratum=lambda r: r["category"],
                          unit_name="questions"),
)
