"""Recipe arguments of the refine stage: the search (`refine_*`), the proposer's and the scorer's engines.

The proposer (`proposer_*`) and the scorer (`scorer_*`) name their engines with the same keys as every
role (see retrace.llm.config). `proposer_backend: structural` proposes grounded variants from the facts
with no model. The scorer should be the model to be trained (its tokenizer is the documents').
"""

from __future__ import annotations

from dataclasses import dataclass, field

from retrace.llm import check_engine_keys, engine_arguments

ProposerEngineArguments = engine_arguments("proposer", backend="structural", max_new_tokens=192, temperature=0.7)
ScorerEngineArguments = engine_arguments("scorer", dtype="float32", batch_size=4)


@dataclass
class RefineArguments(ScorerEngineArguments, ProposerEngineArguments):
    """How Think steps (and optionally the plan) are searched: proposer, scorer, budget and the leakage guard."""

    refine: bool = field(default=False, metadata={
        "help": "Search every Think of a sub-agent that writes a file (before its Reads and before its Write) for "
                "text that makes the real file more likely."})
    refine_iterations: int = field(default=3, metadata={"help": "Search iterations per Think step (paper: 3)."})
    refine_candidates: int = field(default=2, metadata={"help": "Rewrites proposed per iteration (paper: 2)."})
    refine_surprisal_guided: bool = field(default=False, metadata={
        "help": "Show the proposer where the real code is most surprising under the incumbent Think."})
    refine_surprisal_spans: int = field(default=3, metadata={"help": "High-loss spans shown per proposal."})
    refine_prefill_opener: bool = field(default=False, metadata={
        "help": "Start each rewrite with the Think's opener (\"I read x.py first because\", \"To write y.py, I\") "
                "and let the proposer continue it, as policy_prefill_opener does for the policy."})
    refine_max_context_tokens: int = field(default=0, metadata={
        "help": "The document prefix before a Think is cut from the left to this many tokens (Think and payload "
                "never are); 0: all the scorer's window holds (its max_model_len or max_position_embeddings, "
                "minus the Think, the text up to the payload and the scored payload)."})
    refine_max_target_tokens: int = field(default=0, metadata={
        "help": "Payload tokens scored per step, from its start (0: all that fit the scorer's positions)."})
    refine_max_think_chars: int = field(default=2400, metadata={
        "help": "Longer proposals are cut at a line boundary (bounds the cost of a candidate)."})
    refine_keep_unhelpful: bool = field(default=True, metadata={
        "help": "Keep a Think whose best text does not beat the no-Think baseline (flagged); false drops it."})
    refine_leak_ngram: int = field(default=12, metadata={
        "help": "A Think sharing this many consecutive whitespace-separated words with the payload is a leak."})
    refine_leak_line_share: float = field(default=0.3, metadata={
        "help": "A Think with more than this share of its substantial lines verbatim in the payload is a leak."})
    refine_max_steps_per_repo: int = field(default=0, metadata={
        "help": "Search only the first N searchable Thinks of each repository, in document order (0: all; a CPU "
                "budget). Thinks skipped for the window or refine_max_between_tokens do not count."})
    refine_max_between_tokens: int = field(default=0, metadata={
        "help": "A Think before the Reads is scored through the Reads' observations and the later Think up to "
                "the payload; when that text is longer than this many tokens the Think is not searched "
                "(counted as skipped 'between'). 0: no limit but the scorer's window. A CPU budget: each of "
                "its candidates forwards all of that text."})
    refine_prompt_facts_chars: int = field(default=1500, metadata={
        "help": "A model proposer is shown the grounding facts (names, signatures) cut to this many characters."})
    refine_prompt_context_chars: int = field(default=700, metadata={
        "help": "A model proposer is shown the requirements, and the reads' reports together, each cut to this "
                "many characters (prompt length is most of a CPU proposer's cost)."})
    refine_plan: bool = field(default=False, metadata={
        "help": "Also search the main agent's plan (its per-file descriptions; the file list never changes) for "
                "text that makes the first tokens of the files that follow more likely; searched first."})
    refine_plan_target_files: int = field(default=4, metadata={
        "help": "The plan's target: the first N Write payloads after it, in development order."})
    refine_plan_target_tokens: int = field(default=64, metadata={
        "help": "Tokens scored from the start of each target payload, each given the whole document before it."})
    refine_plan_window_tokens: int = field(default=1024, metadata={
        "help": "The document after the plan is scored up to this many tokens; a target file that starts "
                "beyond it is left out (bounds a plan candidate's cost)."})

    def __post_init__(self) -> None:
        check_engine_keys(self, "proposer")
        check_engine_keys(self, "scorer")
        for key in ("refine_iterations", "refine_candidates", "refine_leak_ngram", "refine_plan_target_files",
                    "refine_plan_target_tokens", "refine_plan_window_tokens", "refine_prompt_facts_chars",
                    "refine_prompt_context_chars"):
            if getattr(self, key) < 1:
                raise ValueError(f"key '{key}': must be at least 1, got {getattr(self, key)}")
        if self.refine_max_target_tokens < 0:
            raise ValueError("key 'refine_max_target_tokens': must be 0 (all) or positive")
        if self.refine_max_between_tokens < 0:
            raise ValueError("key 'refine_max_between_tokens': must be 0 (no limit) or positive")
        if self.refine_max_context_tokens < 0:
            raise ValueError("key 'refine_max_context_tokens': must be 0 (the scorer's window) or positive")
        if not 0.0 <= self.refine_leak_line_share <= 1.0:
            raise ValueError("key 'refine_leak_line_share': must be in [0, 1]")
