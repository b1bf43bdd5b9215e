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
    read_budget_chars: int = field(default=0, metadata={
        "help": "0: Read observations are whole files; else longer files are cut and marked truncated."})
    prompt_facts_chars: int = field(default=800, metadata={
        "help": "Facts shown to a model policy are cut to this many characters (prefill dominates CPU cost)."})
    seed: int = field(default=0, metadata={"help": "Seed for sampled generation."})

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"key 'policy': unknown policy '{self.policy}'; available: {sorted(POLICIES)}")
        unknown = set(self.policy_kinds) - set(REQUEST_KINDS)
        if unknown:
            raise ValueError(f"key 'policy_kinds': unknown {sorted(unknown)}; expected some of {list(REQUEST_KINDS)}")
