"""Recipe arguments of the simulation stage."""

from __future__ import annotations

from dataclasses import dataclass, field

from retrace.agents.policies import POLICIES, REQUEST_KINDS


@dataclass
class SimulationArguments:
    """Who writes the agents' words, and how much of each dependency a sub-agent reads."""

    policy: str = field(default="structural", metadata={
        "help": f"Policy writing requirements, Think steps and reports: one of {sorted(POLICIES)}."})
    policy_model: str = field(default="~/.cache/retrace/models/SmolLM2-135M-Instruct", metadata={
        "help": "Chat model of a model-backed policy: a local path or hub id."})
    policy_kinds: list[str] = field(default_factory=lambda: list(REQUEST_KINDS), metadata={
        "help": f"Which texts the model writes (the rest stay structural): some of {list(REQUEST_KINDS)}."})
    policy_max_new_tokens: int = field(default=96, metadata={"help": "Generation cap per text."})
    policy_batch_size: int = field(default=16, metadata={"help": "Conversations generated together."})
    policy_temperature: float = field(default=0.0, metadata={"help": "0 means greedy."})
    policy_dtype: str = field(default="auto", metadata={"help": "torch dtype of the policy model."})
    policy_retries: int = field(default=1, metadata={
        "help": "Times an unusable reply is asked again (sampled) before the structural text fills in."})
    policy_retry_temperature: float = field(default=0.7, metadata={
        "help": "Sampling temperature of those retries, so that a greedy model can answer differently."})
    policy_base_url: str = field(default="http://127.0.0.1:8000/v1", metadata={
        "help": "openai policy: API root of the OpenAI-compatible server; policy_model is the served id."})
    policy_api_key_env: str = field(default="OPENAI_API_KEY", metadata={
        "help": "openai policy: environment variable holding the API key (unset or empty: no key)."})
    policy_concurrency: int = field(default=8, metadata={"help": "openai policy: requests in flight at once."})
    policy_timeout_s: float = field(default=60.0, metadata={
        "help": "openai policy: timeout of each network operation of a request, in seconds."})
    policy_max_retries: int = field(default=4, metadata={
        "help": "openai policy: retries of a request on 429/5xx, timeouts, lost connections, malformed bodies."})
    policy_ready_timeout_s: float = field(default=600.0, metadata={
        "help": "openai policy: how long to wait for the server to list its models before the first request."})
    policy_max_model_len: int = field(default=0, metadata={"help": "vllm policy: context length; 0: the model's."})
    policy_tensor_parallel_size: int = field(default=1, metadata={"help": "vllm policy: GPUs per model."})
    policy_gpu_memory_utilization: float = field(default=0.9, metadata={
        "help": "vllm policy: share of GPU memory vLLM may take."})
    read_budget_chars: int = field(default=0, metadata={
        "help": "0: Read observations are whole files; else longer files are cut and marked truncated."})
    prompt_facts_chars: int = field(default=800, metadata={
        "help": "Facts shown to a model policy are cut to this many characters (prefill dominates CPU cost)."})
    seed: int = field(default=0, metadata={"help": "Seed for sampled generation."})

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"key 'policy': unknown policy '{self.policy}'; available: {sorted(POLICIES)}")
        for key in ("policy_retries", "policy_max_retries"):
            if getattr(self, key) < 0:
                raise ValueError(f"key '{key}': must be >= 0, got {getattr(self, key)}")
        for key in ("policy_concurrency", "policy_timeout_s", "policy_ready_timeout_s", "policy_tensor_parallel_size"):
            if getattr(self, key) <= 0:
                raise ValueError(f"key '{key}': must be > 0, got {getattr(self, key)}")
        unknown = set(self.policy_kinds) - set(REQUEST_KINDS)
        if unknown:
            raise ValueError(f"key 'policy_kinds': unknown {sorted(unknown)}; expected some of {list(REQUEST_KINDS)}")

    def policy_kwargs(self) -> dict:
        """The keywords of `build_policy`: every backend's keys; each builder takes those it knows."""
        return {"model_name_or_path": self.policy_model, "kinds": self.policy_kinds, "seed": self.seed,
                "max_new_tokens": self.policy_max_new_tokens, "batch_size": self.policy_batch_size,
                "temperature": self.policy_temperature, "dtype": self.policy_dtype, "retries": self.policy_retries,
                "retry_temperature": self.policy_retry_temperature, "base_url": self.policy_base_url,
                "api_key_env": self.policy_api_key_env, "concurrency": self.policy_concurrency,
                "timeout_s": self.policy_timeout_s, "max_retries": self.policy_max_retries,
                "ready_timeout_s": self.policy_ready_timeout_s, "max_model_len": self.policy_max_model_len,
                "tensor_parallel_size": self.policy_tensor_parallel_size,
                "gpu_memory_utilization": self.policy_gpu_memory_utilization}
