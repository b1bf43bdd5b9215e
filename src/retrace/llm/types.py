"""What every engine speaks: messages in, `Reply` objects out, `SamplingParams` and `Usage` alike everywhere.

A request that failed for good (its transport retries spent) is a `Reply` with `error` set and no texts, in
every engine and every role; callers test `reply.failed` and count it. `reply.text` on a failed reply
raises `RequestFailed`, never an `AttributeError` on `None`.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

Message = dict[str, str]


def continues_reply(conversation: Sequence[Message]) -> bool:
    """Whether a conversation ends with the start of the assistant's reply, which the engine continues (a
    prefilled opener: the chat template's `continue_final_message`); the reply is then only what follows it."""
    return bool(conversation) and conversation[-1].get("role") == "assistant"


def with_opener(opener: str, text: str) -> str:
    """A continued reply whole: the opener, then the engine's continuation of it (a space between two words
    where a tokenizer's decoding dropped it)."""
    if opener and text[:1].isalnum() and opener[-1:].isalnum():
        return f"{opener} {text}"
    return opener + text


@dataclass(frozen=True)
class SamplingParams:
    """How to sample; `temperature` 0 is greedy (then `n` > 1 repeats the same text)."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    n: int = 1
    stop: tuple[str, ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1 or self.n < 1 or self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ValueError(f"bad sampling parameters: {self}")
        object.__setattr__(self, "stop", tuple(self.stop))

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "stop": list(self.stop)}


def cut_at_stop(text: str, stop: tuple[str, ...]) -> str:
    """`text` up to (not including) the earliest occurrence of any stop string."""
    cut = len(text)
    for marker in stop:
        if marker and (at := text.find(marker)) != -1:
            cut = min(cut, at)
    return text[:cut]


class RequestFailed(RuntimeError):
    """Asked for the text of a request that failed for good (see `Reply.error`)."""


@dataclass(frozen=True)
class Reply:
    """One request's outcome: its `n` sampled texts with their finish reasons, or the reason it failed.

    Texts are cut before the first stop string. `finish_reasons` are the engine's words ("stop",
    "length", ...), one per text. A failed request has no texts and `error` names why
    ("timeout", "http_503", "connection", "malformed_json", ...).
    """

    texts: tuple[str, ...] = ()
    finish_reasons: tuple[str, ...] = ()
    error: str | None = None

    @classmethod
    def failure(cls, reason: str) -> Reply:
        return cls(error=reason)

    @property
    def failed(self) -> bool:
        return self.error is not None

    @property
    def text(self) -> str:
        """The first sample's text; raises `RequestFailed` for a failed request."""
        if self.failed or not self.texts:
            raise RequestFailed(f"the request failed ({self.error or 'no text'}); test `reply.failed` first")
        return self.texts[0]

    @property
    def finish_reason(self) -> str | None:
        return self.finish_reasons[0] if self.finish_reasons else None


@dataclass
class Usage:
    """Requests and tokens an engine spent, with finish reasons, transport retries and failures counted.

    Thread-safe: the OpenAI engine records from its worker threads. `to_dict()` is the flat form the
    run statistics keep: requests, prompt_tokens, completion_tokens, `finish:<reason>`,
    `retry:<reason>`, `failed:<reason>`.
    """

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, *, prompt_tokens: int = 0, completion_tokens: int = 0,
               finish_reasons: tuple[str, ...] | list[str] = ()) -> None:
        with self._lock:
            self.requests += 1
            self.prompt_tokens += prompt_tokens
            self.completion_tokens += completion_tokens
            for reason in finish_reasons:
                self.counts[f"finish:{reason or 'unknown'}"] += 1

    def count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counts[key] += n

    @property
    def failed(self) -> int:
        return sum(v for k, v in self.counts.items() if k.startswith("failed:"))

    def to_dict(self) -> dict[str, int]:
        with self._lock:
            return {"requests": self.requests, "prompt_tokens": self.prompt_tokens,
                    "completion_tokens": self.completion_tokens, **dict(sorted(self.counts.items()))}


def count_failures(replies: list[Reply]) -> Counter[str]:
    """`failed:<reason>` counts of the failed replies in a batch (what a role adds to its own counts)."""
    return Counter(f"failed:{r.error}" for r in replies if r.failed)


class RequestsFailed(RuntimeError):
    """Requests that failed for good (a server's retries spent). Whoever asked stops rather than using what
    it got: a score with lost requests is wrong, and a trajectory written around them is degraded data."""

    def __init__(self, message: str, *, failed: int, requests: int, reasons: dict[str, int] | None = None):
        super().__init__(message)
        self.failed = failed
        self.requests = requests
        self.reasons = dict(reasons or {})


def engine_location(engine: Any) -> str:
    """Where the engine's requests went, for messages: the server's address, else the engine's backend."""
    return getattr(engine, "base_url", None) or f"the {getattr(engine, 'backend', '') or 'model'} engine"


def synthesis_advice(role: str) -> str:
    """What a synthesis role's lost requests tell the user: the batch is not written, and how to go on."""
    return (f"the repositories of this batch are not written: fix the server (or raise {role}_max_retries / "
            f"{role}_timeout_s) and run again; finished repositories are kept")


def raise_on_failures(replies: Sequence[Reply], engine: Any, what: str, advice: str) -> None:
    """Raise `RequestsFailed`, naming the server, `what` asked and `advice`, when any of `replies` failed."""
    failures = count_failures(list(replies))
    if not failures:
        return
    failed = sum(failures.values())
    reasons = {key.removeprefix("failed:"): n for key, n in sorted(failures.items())}
    raise RequestsFailed(
        f"{what}: {failed} of {len(replies)} requests to {engine_location(engine)} failed after retries "
        f"({', '.join(f'{k}: {n}' for k, n in reasons.items())}); {advice}",
        failed=failed, requests=len(replies), reasons=reasons)
