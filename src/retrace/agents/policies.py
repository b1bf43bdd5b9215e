"""Policies: who writes the agents' words (requirements, purposes, Think steps, reports).

Every request carries its structural text, written from analysis facts. The `structural` policy
returns it as is; a model-backed one is a `ChatPolicy` over any engine of `retrace.llm` (`hf`, `vllm`,
`openai`, chosen by the recipe's `policy_backend`): it renders the request's prompt template, generates,
validates the reply (`retrace.agents.validation`), asks again when it is unusable and finally falls back
to the structural text, counting why.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field, replace
from importlib import resources

from retrace.agents.validation import instruction_text, opener, review_reply
from retrace.llm import raise_on_failures, synthesis_advice, with_opener

logger = logging.getLogger(__name__)

REQUEST_KINDS = ("requirements", "purpose", "think_read", "think_write", "report")


@dataclass
class PolicyRequest:
    kind: str                       # one of REQUEST_KINDS; names the prompt template
    fields: dict[str, str]          # values for the template's placeholders
    structural: str                 # the grounded fallback text
    forbidden_lines: list[str] = field(default_factory=list)  # real code lines the text must not paste
    anchors: list[str] = field(default_factory=list)  # names of which a grounded text mentions at least one
    code_ngrams: frozenset[tuple[str, ...]] = frozenset()  # word runs of the real code the text must not share
    languages: str = ""             # the project's languages ("Go and C"); others may not be named. "": unchecked
    sentences: int = 0              # the most sentences the prompt asks for: a reply is cut there. 0: no cut
    stop: tuple[str, ...] = ()      # where generation stops (SENTENCE_STOPS: after the first sentence)
    framing: str = ""               # the prompt's fixed words (a delegation's, the tree's) a reply must add to
    echo_of: str = ""               # model-written text in the prompt (the file's plan entry) not to repeat


@dataclass
class PolicyReply:
    text: str
    source: str                     # "structural" or the policy that wrote it
    fallback_reason: str | None = None
    repairs: tuple[str, ...] = ()   # what validation cut from a kept model reply ("trimmed", ...)


# A request may stop at its first sentence's end (saving the tokens a small model spends going on); the engines
# cut the stop string, so the full stop is put back (`_ended`). Not for a reply that may open with a list
# number ("1. "), which would stop at once.
SENTENCE_STOPS = (". ", ".\n")


def _ended(text: str, finish_reason: str | None, request: PolicyRequest) -> str:
    """A reply's text, with the full stop a sentence stop cut put back."""
    text = text.rstrip()
    if request.stop == SENTENCE_STOPS and finish_reason != "length" and text and (
            text[-1].isalnum() or text[-1] in "\"')]`"):
        return text + "."
    return text


def load_prompt(kind: str) -> str:
    return resources.files("retrace.agents").joinpath("prompts", f"{kind}.prompt").read_text(encoding="utf-8")


class StructuralPolicy:
    """Offline and deterministic: the grounded text, nothing else."""

    name = "structural"

    def __init__(self):
        self.counts: Counter[str] = Counter()

    def write(self, requests: list[PolicyRequest]) -> list[PolicyReply]:
        self.counts["structural"] += len(requests)
        return [PolicyReply(r.structural, "structural") for r in requests]


class ChatPolicy:
    """A chat model behind any engine writes the requested kinds of text.

    Each reply is validated with `review_reply` (against the prompt, the template's instructions and the
    reply's finish reason); an unusable one is asked again up to `retries` times, sampling
    `retry_samples` replies at `retry_temperature` with a fresh seed so that the answer can differ (a greedy
    model asked twice says the same thing) and keeping the usable one with the fewest repairs, then
    replaced by the structural text. A request the engine could not complete at
    all (a failed `Reply`: its transport retries are spent) is never replaced: `write` raises
    `RequestsFailed` naming the server, so the repositories of the batch are not written (a dead server
    must not turn into structural text counted as done).

    `counts` holds one outcome per request (the engine's backend name, `structural` for kinds not
    delegated, or `fallback:<reason>`; `outcomes()`), plus `retry` (requests asked again),
    `retry:<reason>` (why), `recovered` (usable on a retry) and the repairs of kept replies
    (`scratchpad_stripped`, `heading_dropped`, `cut`, `trimmed`). The policy's name, and the `source` of what
    it writes, is the engine's backend. Requests with their own stop strings (`PolicyRequest.stop`) go to the
    engine in a chat call of their own.
    """

    def __init__(self, engine, *, kinds: list[str] | None = None, retries: int = 1, retry_temperature: float = 0.7,
                 retry_samples: int = 1, prefill: bool = False, seed: int = 0):
        self.engine = engine
        self.name = engine.backend
        self.kinds = set(kinds or REQUEST_KINDS)
        unknown = self.kinds - set(REQUEST_KINDS)
        if unknown:
            raise ValueError(f"unknown policy request kinds {sorted(unknown)}; expected some of {REQUEST_KINDS}")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        self.retries = retries
        self.retry_temperature = retry_temperature
        self.retry_samples = retry_samples
        self.prefill = prefill
        self.seed = seed
        self.system = load_prompt("system").strip()
        self.templates = {kind: load_prompt(kind) for kind in REQUEST_KINDS}
        self.counts: Counter[str] = Counter()

    def outcomes(self) -> dict[str, int]:
        """One count per request answered: by whom it was written, or `fallback:<reason>`."""
        return {k: v for k, v in self.counts.items() if k in (self.name, "structural") or k.startswith("fallback:")}

    def write(self, requests: list[PolicyRequest]) -> list[PolicyReply]:
        replies = [PolicyReply(r.structural, "structural") for r in requests]
        prompts = {i: self.templates[r.kind].format(**r.fields).strip()
                   for i, r in enumerate(requests) if r.kind in self.kinds}
        pending = list(prompts)
        for attempt in range(self.retries + 1):
            if not pending:
                break
            params = self.engine.default_params
            if attempt:
                params = replace(params, temperature=self.retry_temperature, seed=self.seed + attempt,
                                 n=self.retry_samples)
                self.counts["retry"] += len(pending)
            answers = self._ask(requests, prompts, pending, params, "policy" if attempt == 0 else "policy retry")
            raise_on_failures(answers, self.engine, "policy", synthesis_advice("policy"))
            still_pending = []
            for i, answer in zip(pending, answers):
                request = requests[i]
                start = opener(prompts[i]) if self.prefill else ""
                texts = [with_opener(start, text) for text in answer.texts]
                verdict = self._best(texts, answer.finish_reasons, request, prompts[i])
                reason = verdict.reason
                if reason is None:
                    replies[i] = PolicyReply(verdict.text, self.name, repairs=verdict.repairs)
                    self.counts[self.name] += 1
                    self.counts.update(verdict.repairs)
                    if attempt:
                        self.counts["recovered"] += 1
                elif attempt < self.retries:
                    still_pending.append(i)
                    self.counts[f"retry:{reason}"] += 1
                else:
                    replies[i] = PolicyReply(request.structural, "structural", reason)
                    self.counts[f"fallback:{reason}"] += 1
            pending = still_pending
        if len(requests) > len(prompts):
            self.counts["structural"] += len(requests) - len(prompts)
        return replies

    def _best(self, texts: list[str], finish_reasons, request: PolicyRequest, prompt: str):
        """The verdict on the usable sample with the fewest repairs (the first sample's when none is usable)."""
        instructions = instruction_text(self.templates[request.kind], self.system)
        verdicts = [review_reply(_ended(text, finish, request), request, prompt, finish_reason=finish,
                                 instructions=instructions)
                    for text, finish in zip(texts, finish_reasons or (None,) * len(texts))]
        usable = [v for v in verdicts if v.reason is None]
        return min(usable, key=lambda v: len(v.repairs)) if usable else verdicts[0]

    def _ask(self, requests: list[PolicyRequest], prompts: dict[int, str], pending: list[int], params,
             desc: str) -> list:
        """The engine's replies to the pending requests, in order: one chat call per set of stop strings."""
        groups: dict[tuple[str, ...], list[int]] = {}
        for i in pending:
            groups.setdefault(requests[i].stop, []).append(i)
        answers = {}
        for stop, members in groups.items():
            conversations = [[{"role": "system", "content": self.system}, {"role": "user", "content": prompts[i]}]
                             for i in members]
            if self.prefill:  # the reply starts with the opener its instruction asks for; the engine continues it
                for conversation, i in zip(conversations, members):
                    if start := opener(prompts[i]):
                        conversation.append({"role": "assistant", "content": start})
            group_params = replace(params, stop=tuple(params.stop) + stop) if stop else params
            answers.update(zip(members, self.engine.chat(conversations, group_params, desc=desc)))
        return [answers[i] for i in pending]

    @property
    def usage(self) -> dict[str, int]:
        """Requests and tokens spent, finish reasons, transport retries and failures (`Usage.to_dict`), then
        the policy's own `counts` as `policy:<key>` (outcomes, retries by reason, repairs)."""
        return {**self.engine.usage.to_dict(), **{f"policy:{k}": v for k, v in sorted(self.counts.items())}}


def build_policy(args, *, engine=None, engines=None):
    """The policy of a `SimulationArguments`: structural, or a `ChatPolicy` over the `policy_*` engine.

    `engine` replaces the recipe's engine; `engines` (an `EnginePool`) shares loaded models with other roles.
    """
    from retrace.llm import STRUCTURAL, EnginePool, engine_config

    config = engine_config(args, "policy")
    if config.backend == STRUCTURAL and engine is None:
        return StructuralPolicy()
    engine = engine or (engines or EnginePool(seed=args.seed)).get(config, role="policy")
    return ChatPolicy(engine, kinds=args.policy_kinds, retries=args.policy_retries,
                      retry_temperature=args.policy_retry_temperature, retry_samples=args.policy_retry_samples,
                      prefill=args.policy_prefill_opener, seed=args.seed)
