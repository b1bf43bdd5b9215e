"""Recipe arguments of the simulation stage: the policy's engine (`policy_*` keys) and what it writes."""

from __future__ import annotations

from dataclasses import dataclass, field

from retrace.agents.policies import REQUEST_KINDS
from retrace.llm import check_engine_keys, engine_arguments

# The policy's engine keys (`policy_backend`, `policy_model`, ... as for every role; see retrace.llm.config).
# `policy_backend: structural` needs no model: the grounded text written from the analysis facts.
PolicyEngineArguments = engine_arguments("policy", backend="structural", batch_size=16)


@dataclass
class SimulationArguments(PolicyEngineArguments):
    """Who writes the agents' words, and how much of each dependency a sub-agent reads."""

    policy_kinds: list[str] = field(default_factory=lambda: list(REQUEST_KINDS), metadata={
        "help": f"Which texts the model writes (the rest stay structural): some of {list(REQUEST_KINDS)}."})
    policy_retries: int = field(default=1, metadata={
        "help": "Times an unusable reply is asked again (sampled) before the structural text fills in."})
    policy_retry_temperature: float = field(default=0.7, metadata={
        "help": "Sampling temperature of those retries, so that a greedy model can answer differently."})
    policy_retry_samples: int = field(default=1, metadata={
        "help": "Replies sampled at once per retry (one engine call, `n`); the usable one with the fewest "
                "repairs is kept. More samples recover more replies of a small model for little more time."})
    policy_prefill_opener: bool = field(default=False, metadata={
        "help": "Start the model's reply with the words its prompt asks it to start with (\"To write x.py, I\") "
                "and let it continue them: a small model then writes the note instead of answering as a chat "
                "assistant. Needs an engine that continues a final assistant message (hf, vllm, a vLLM server's "
                "continue_final_message); off by default, since other OpenAI-compatible servers refuse it."})
    read_budget_chars: int = field(default=0, metadata={
        "help": "0: Read observations are whole files; else longer files are cut and marked truncated."})
    prompt_facts_chars: int = field(default=800, metadata={
        "help": "Facts shown to a model policy (definitions, manifests, the file tree) are cut to this many "
                "characters (prefill dominates CPU cost)."})
    prompt_readme_chars: int = field(default=600, metadata={
        "help": "Characters of the README (or package docstring) the requirements prompt shows."})
    prompt_code_chars: int = field(default=1000, metadata={
        "help": "Characters of the real file shown to the model writing the Think before its Write."})
    prompt_context_chars: int = field(default=400, metadata={
        "help": "Characters of the requirements and of the dependencies' reports shown to a sub-agent."})
    seed: int = field(default=0, metadata={
        "help": "The recipe's seed: every sampled engine (policy, proposer) derives its seeds from it."})

    def __post_init__(self) -> None:
        check_engine_keys(self, "policy")
        if self.policy_retries < 0:
            raise ValueError(f"key 'policy_retries': must be >= 0, got {self.policy_retries}")
        if self.policy_retry_samples < 1:
            raise ValueError(f"key 'policy_retry_samples': must be >= 1, got {self.policy_retry_samples}")
        unknown = set(self.policy_kinds) - set(REQUEST_KINDS)
        if unknown:
            raise ValueError(f"key 'policy_kinds': unknown {sorted(unknown)}; expected some of {list(REQUEST_KINDS)}")
        for key in ("read_budget_chars", "prompt_facts_chars", "prompt_readme_chars", "prompt_code_chars",
                    "prompt_context_chars"):
            if getattr(self, key) < 0:
                raise ValueError(f"key '{key}': must be >= 0, got {getattr(self, key)}")

    def options(self):
        """The `SimulationOptions` these keys set."""
        from retrace.agents.simulate import SimulationOptions

        return SimulationOptions(read_budget_chars=self.read_budget_chars, prompt_facts_chars=self.prompt_facts_chars,
                                 prompt_readme_chars=self.prompt_readme_chars, prompt_code_chars=self.prompt_code_chars,
                                 prompt_context_chars=self.prompt_context_chars)
