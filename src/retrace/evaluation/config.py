"""The evaluate stage's recipe: which models, which tasks, and the caps that bound its cost."""

from __future__ import annotations

from dataclasses import dataclass, field

from retrace.llm import embedded_model_dir

CONTEXT_KINDS = ("trajectory", "raw")
GENERATION_BACKENDS = ("hf", "vllm", "openai")


@dataclass
class EvaluationConfig:
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
    batch_size: int = field(default=4, metadata={"help": "windows per forward pass"})
    dtype: str = field(default="float32", metadata={"help": "torch dtype name, or auto (the checkpoint's)"})
    device: str = field(default="auto", metadata={"help": "cpu, cuda, cuda:1, ... or auto"})
    output_dir: str = field(default="runs/eval", metadata={"help": "where results.json/.md/.png go"})
    seed: int = field(default=0, metadata={"help": "recorded and set; tasks derive their sample seeds from it"})
    # Generation (benchmarks that make the model write): one backend for every model of the run.
    backend: str = field(default="hf", metadata={
        "help": "who generates: hf (transformers, CPU or GPU), vllm (in-process, GPU), openai (a server)",
        "choices": list(GENERATION_BACKENDS)})
    generation_batch_size: int = field(default=8, metadata={"help": "prompts per generate call (hf)"})
    max_model_len: int = field(default=0, metadata={
        "help": "longest prompt + completion in tokens (vllm engine limit; 0: the model's own)"})
    tensor_parallel_size: int = field(default=1, metadata={"help": "GPUs per model (vllm)"})
    gpu_memory_utilization: float = field(default=0.9, metadata={"help": "share of GPU memory vLLM may take"})
    openai_base_url: str = field(default="http://127.0.0.1:8000/v1", metadata={
        "help": "API root of the OpenAI-compatible server (backend openai)"})
    openai_model: str = field(default="", metadata={
        "help": "served model id (backend openai; empty: the model spec's path)"})
    openai_concurrency: int = field(default=16, metadata={"help": "requests in flight (backend openai)"})
    tokenizer: str = field(default="", metadata={
        "help": "tokenizer path for prompt lengths with backend openai (empty: the model spec's path)"})
    compare: list[str] = field(default_factory=list, metadata={
        "help": "evaluate output dirs to compare side by side instead of evaluating (table + bar chart)"})

    def __post_init__(self) -> None:
        """Refuse bad values at parse time, naming the key (the recipe parser adds the recipe's name)."""
        from retrace.evaluation.models import parse_model_specs
        from retrace.evaluation.tasks import get_task

        parse_model_specs(self.models)
        for name in self.tasks:
            get_task(name)
        unknown = [c for c in self.contexts if c not in CONTEXT_KINDS]
        if unknown or not self.contexts:
            raise ValueError(f"key 'contexts': expected some of {list(CONTEXT_KINDS)}, got {self.contexts}")
        for key in ("max_context_tokens", "max_chunk_tokens", "batch_size", "generation_batch_size",
                    "tensor_parallel_size", "openai_concurrency"):
            if getattr(self, key) < 1:
                raise ValueError(f"key '{key}' must be at least 1, got {getattr(self, key)}")
        for key in ("max_target_tokens_per_file", "max_files"):
            if getattr(self, key) < 0:
                raise ValueError(f"key '{key}' must be 0 (no cap) or more, got {getattr(self, key)}")
