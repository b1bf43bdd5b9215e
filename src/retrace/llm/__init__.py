"""Language-model engines: one registry, one protocol for chat, completion and scoring, whatever runs the model.

Knows no roles' purposes and no search: a role (policy, proposer, scorer, evaluation) names its engine in
the recipe with the `{role}_*` keys of `EngineConfig` and builds it with `build_engine`. Engines: `hf`
(transformers), `vllm` (in-process), `openai` (any OpenAI-compatible server); see `registry`.
"""

from retrace.llm.cache import CachedEngine, RequestCache, request_key
from retrace.llm.config import (
    STRUCTURAL,
    EngineConfig,
    check_engine_keys,
    engine_arguments,
    engine_config,
)
from retrace.llm.embedded import build_embedded_model, embedded_model_dir, resolve_model_path
from retrace.llm.registry import ENGINES, EnginePool, build_engine, engine_class
from retrace.llm.scoring import PrefixState, ScoreRequest, TargetScore
from retrace.llm.types import (
    Message,
    Reply,
    RequestFailed,
    RequestsFailed,
    SamplingParams,
    Usage,
    count_failures,
    cut_at_stop,
    engine_location,
    raise_on_failures,
    synthesis_advice,
    with_opener,
)

__all__ = [
    "with_opener",
    "ENGINES", "STRUCTURAL", "CachedEngine", "EngineConfig", "EnginePool", "Message", "PrefixState", "Reply",
    "RequestCache", "RequestFailed", "RequestsFailed", "SamplingParams", "ScoreRequest", "TargetScore", "Usage",
    "build_embedded_model", "build_engine", "check_engine_keys", "count_failures", "cut_at_stop",
    "embedded_model_dir", "engine_arguments", "engine_class", "engine_config", "engine_location",
    "raise_on_failures", "request_key", "resolve_model_path", "synthesis_advice",
]
