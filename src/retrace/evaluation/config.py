"""The evaluate stage's recipe: which models, which tasks, the engine that runs them and the caps that bound its cost.

The engine is named with the `eval_*` keys every role shares (see `retrace.llm.config`): `eval_backend`
(hf, vllm, openai), `eval_dtype`, `eval_batch_size`, `eval_base_url`, ... One engine per evaluated model
serves every task: it generates for the benchmarks and scores for `heldout_nll`. The tasks set their own
sampling, so the sampling keys (`eval_temperature`, ...) are refused, and so is `structural`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

from retrace.llm import check_engine_keys, embedded_model_dir, engine_arguments

CONTEXT_KINDS = ("trajectory", "raw")

# `model` empty: each evaluated model's own path (its served id with openai); `tokenizer` empty: that path too.
EvalEngineArguments = engine_arguments("eval", model="", dtype="float32", batch_size=4)


@dataclass
class EvaluationConfig(EvalEngineArguments):
    """Keys of `recipes/*/evaluate.yaml`; any can be overridden on the command line."""

    models: list[str] = field(
        default_factory=lambda: [str(embedded_model_dir())],
        metadata={"help": "models to evaluate, each `name=path` or a plain path or hub id (name = basename)"})
    # Checked when the run starts, not at parse time, so a recipe may name what earlier stages will make.
    heldout: str | None = field(default=None, metadata={
        "help": "held-out set: a synthesize run's `heldout/` dir (its `documents/` are read), a documents dir "
                "of *.jsonl, or one .jsonl file; required by heldout_nll"})
    tasks: list[str] = field(default_factory=lambda: ["heldout_nll"],
                             metadata={"help": "task names (see retrace.evaluation.TASKS)"})
    contexts: list[str] = field(default_factory=lambda: list(CONTEXT_KINDS),
                                metadata={"help": "heldout_nll contexts: trajectory and/or raw"})
    max_context_tokens: int = field(default=1024, metadata={"help": "context window before each scored chunk"})
    max_chunk_tokens: int = field(default=1024, metadata={"help": "target tokens scored per forward pass"})
    max_target_tokens_per_file: int = field(
        default=0, metadata={"help": "score only the first N tokens of each file (0: the whole file)"})
    max_files: int = field(
        default=0, metadata={"help": "score at most N files over the whole held-out set, spread evenly over "
                                     "repositories and development order (0: all)"})
    output_dir: str = field(default="runs/eval", metadata={"help": "where results.json/.md/.png go"})
    seed: int = field(default=0, metadata={
        "help": "recorded and set; tasks derive their sample seeds from it, the bootstrap draws from it"})
    bootstrap_resamples: int = field(default=1000, metadata={
        "help": "bootstrap resamples behind the 95 percent interval of each metric and of each difference (0: none)"})
    compare: list[str] = field(default_factory=list, metadata={
        "help": "evaluate output dirs to compare side by side instead of evaluating (table + bar chart)"})

    def __post_init__(self) -> None:
        """Refuse bad values at parse time, naming the key (the recipe parser adds the recipe's name)."""
        from retrace.evaluation.models import parse_model_specs
        from retrace.evaluation.tasks import get_task

        specs = parse_model_specs(self.models)
        for name in self.tasks:
            get_task(name)
        unknown = [c for c in self.contexts if c not in CONTEXT_KINDS]
        if unknown or not self.contexts:
            raise ValueError(f"key 'contexts': expected some of {list(CONTEXT_KINDS)}, got {self.contexts}")
        for key in ("max_context_tokens", "max_chunk_tokens"):
            if getattr(self, key) < 1:
                raise ValueError(f"key '{key}' must be at least 1, got {getattr(self, key)}")
        for key in ("max_target_tokens_per_file", "max_files"):
            if getattr(self, key) < 0:
                raise ValueError(f"key '{key}' must be 0 (no cap) or more, got {getattr(self, key)}")
        if self.bootstrap_resamples < 0:
            raise ValueError(f"key 'bootstrap_resamples' must be 0 (no intervals) or more, got {self.bootstrap_resamples}")
        # An empty eval_model means each model's own path (a tokenizer is then always at hand), so the
        # check sees the first one filled in.
        check_engine_keys(SimpleNamespace(**{**vars(self), "eval_model": self.eval_model or specs[0].path}), "eval")
        if self.eval_model and self.eval_backend != "openai":
            raise ValueError(f"key 'eval_model': the {self.eval_backend} engine loads each model of `models`; "
                             "eval_model names a served model id (openai engine only): leave it empty")
        if self.eval_model and len(specs) > 1:
            raise ValueError(f"key 'eval_model': one served id for {len(specs)} models; leave it empty and name "
                             "each model by its served id in `models`")
