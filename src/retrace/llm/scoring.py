"""Token log-likelihood of a target text given a context: the rules every engine's `score` shares.

Evaluation scores held-out code with it, and the refine stage uses it as its scorer (the NLL of a
Write payload given the trajectory prefix). Callers give (context, target) text pairs and get the
summed and mean negative log-likelihood of the target's tokens, in nats. The tokenisation and window
rule live here once (`WindowedScoring`); an engine adds only how a window is forwarded.

Tokenisation: context and target are tokenised separately, the target without special tokens, and
the ids are concatenated, so a target has the same tokens whatever its context (contexts can then be
compared on exactly the same tokens). Special tokens the tokenizer puts in front of a text (a BOS) are
put in front of every window; when a window would start with nothing to condition on, the BOS (or
else the EOS) token is used, so every target token is scored.

Window rule, with C = `max_context_tokens` and T = `max_chunk_tokens`: the target is scored in chunks
of at most T tokens; the chunk starting at target token k sees the last C tokens (special prefix
included) of `context + target[:k]`, then its own tokens. So every scored token is conditioned on at
least min(C, available) tokens before its chunk, a forward pass holds at most C + T tokens, and when
C covers the context plus the whole target the chunked scores equal one unchunked pass.

Shared prefixes (`encode_prefix` + `score_after_prefix`): when many continuations follow one context
(the refine stage's candidate Thinks after one trajectory prefix), the prefix is forwarded once and
reused by every row (the HF key/value cache, or the server's prefix cache). No window there, nothing is
cut; the caller cuts the prefix (from the left) and the target beforehand, and prefix + row must fit
the engine's positions.

`PromptLogprobScoring` is the scoring of engines that return prompt log-probabilities (vLLM in-process
and vLLM's OpenAI-compatible server): every scored sequence is one prompt, the log-probability of each
prompt token given the tokens before it comes back, and only the target positions are kept.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ScoreRequest:
    """Score `target` given `context` (plain text; either may be empty)."""

    context: str
    target: str


@dataclass(frozen=True)
class TargetScore:
    """Negative log-likelihood of one target, in nats."""

    nll_sum: float
    n_tokens: int  # target tokens scored
    # Per-token NLLs in target order, only when asked for (surprisal-guided search needs them).
    token_nlls: tuple[float, ...] | None = field(default=None, compare=False, repr=False)

    @property
    def mean(self) -> float:
        """Mean NLL per scored token (nats/token); NaN for an empty target."""
        return self.nll_sum / self.n_tokens if self.n_tokens else math.nan


@dataclass
class PrefixState:
    """A context forwarded once. `ids` include the special prefix; `cache` is the engine's own (HF: per-layer
    keys and values plus the last position's output; prompt-log-probability engines: nothing, the server
    holds it)."""

    ids: list[int]
    cache: Any = None
    cached_tokens: int = 0  # prefix tokens the engine already held when it was encoded


@dataclass
class Piece:
    """One forward row: a window whose last `n_scored` tokens are target tokens of request `request`."""

    request: int
    input_ids: list[int]
    n_scored: int


class WindowedScoring:
    """Tokenisation, the window rule and the public scoring calls; engines implement `_score_pieces`,
    `encode_prefix` and `score_after_prefix`.

    `_init_scoring` must run in the engine's constructor once the tokenizer and position limit are known.
    `tokens_forwarded` counts every token the engine computed (padding and cache hits excluded).
    """

    tokenizer: Any
    max_positions: int

    def _init_scoring(self, tokenizer: Any, *, max_positions: int | None, max_context_tokens: int | None = None,
                      max_chunk_tokens: int | None = None) -> None:
        """Windows left as None fit the model: at most 1,024 tokens each, together within its positions."""
        limit = max_positions or 1 << 30
        if max_chunk_tokens is None:
            max_chunk_tokens = min(1024, max(limit // 2, 1))
        if max_context_tokens is None:
            max_context_tokens = min(1024, max(limit - max_chunk_tokens, 1))
        if max_context_tokens < 1 or max_chunk_tokens < 1:
            raise ValueError("max_context_tokens and max_chunk_tokens must be at least 1")
        self.max_positions = max_positions or 1 << 30
        if max_context_tokens + max_chunk_tokens > self.max_positions:
            raise ValueError(f"max_context_tokens + max_chunk_tokens = {max_context_tokens + max_chunk_tokens} "
                             f"exceeds the model's {self.max_positions} positions")
        self.tokenizer = tokenizer
        self.max_context_tokens = max_context_tokens
        self.max_chunk_tokens = max_chunk_tokens
        self.special_prefix = self._special_prefix_ids()
        if len(self.special_prefix) >= max_context_tokens:
            raise ValueError("max_context_tokens leaves no room after the tokenizer's special prefix")
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        if not self.special_prefix and start is None:
            raise ValueError("the tokenizer has neither BOS nor EOS to start an empty context")
        self.start_ids = list(self.special_prefix) or [start]
        self.tokens_forwarded = 0

    # -- tokenisation ------------------------------------------------------------------------------

    def _special_prefix_ids(self) -> list[int]:
        probe = "x"
        with_special = self.tokenizer(probe)["input_ids"]
        plain = self.tokenizer(probe, add_special_tokens=False)["input_ids"]
        for cut in range(len(with_special) - len(plain) + 1):
            if with_special[cut:cut + len(plain)] == plain:
                return list(with_special[:cut])
        return []

    def encode_target(self, text: str) -> list[int]:
        """Target token ids: no special tokens, independent of any context."""
        return self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]

    def encode_context(self, text: str) -> list[int]:
        """The last tokens of `text` that can ever be seen (the left is cut), without special tokens.

        Only the tail of a long text is tokenised; its first token is dropped because it may be a
        fragment of a token cut in half, so results match tokenising the whole text except there.
        """
        keep = self.max_context_tokens
        tail_chars = keep * 16
        if len(text) > tail_chars:
            ids = self.tokenizer(text[-tail_chars:], add_special_tokens=False, verbose=False)["input_ids"][1:]
            if len(ids) >= keep:
                return ids[-keep:]
        return self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"][-keep:]

    # -- scoring -----------------------------------------------------------------------------------

    def score(self, requests: Iterable[ScoreRequest | tuple[str, str]], *, max_target_tokens: int | None = None,
              desc: str | None = None) -> list[TargetScore]:
        """One score per request, in order; only the first `max_target_tokens` target tokens when given."""
        pairs = []
        for request in requests:
            context, target = (request.context, request.target) if isinstance(request, ScoreRequest) else request
            target_ids = self.encode_target(target)
            if max_target_tokens is not None:
                target_ids = target_ids[:max_target_tokens]
            pairs.append((self.encode_context(context), target_ids))
        return self.score_ids(pairs, desc=desc)

    def score_ids(self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]], *,
                  desc: str | None = None) -> list[TargetScore]:
        """Score (context ids, target ids) pairs, ids without special tokens; see the module's window rule."""
        pieces = [piece for index, (ctx, tgt) in enumerate(pairs) for piece in self._pieces(index, ctx, tgt)]
        sums = [0.0] * len(pairs)
        counts = [0] * len(pairs)
        for piece, nll in zip(pieces, self._score_pieces(pieces, desc)):
            sums[piece.request] += nll
            counts[piece.request] += piece.n_scored
        return [TargetScore(nll_sum=s, n_tokens=n) for s, n in zip(sums, counts)]

    def _pieces(self, index: int, context_ids: Sequence[int], target_ids: Sequence[int]) -> list[Piece]:
        room = self.max_context_tokens - len(self.special_prefix)
        history = list(context_ids)[-room:]
        pieces = []
        for start in range(0, len(target_ids), self.max_chunk_tokens):
            chunk = list(target_ids[start:start + self.max_chunk_tokens])
            seen = (history + list(target_ids[:start]))[-room:]
            prefix = list(self.special_prefix) + seen if (self.special_prefix or seen) else list(self.start_ids)
            pieces.append(Piece(index, prefix + chunk, len(chunk)))
        return pieces

    def _prefix_ids(self, prefix_ids: Sequence[int]) -> list[int]:
        return list(self.special_prefix) + list(prefix_ids) or list(self.start_ids)

    def _check_rows_fit(self, state: PrefixState, rows: Sequence[tuple[Sequence[int], Sequence[int]]]) -> None:
        longest = max((len(m) + len(t) for m, t in rows), default=0)
        if len(state.ids) + longest > self.max_positions:
            raise ValueError(f"prefix ({len(state.ids)}) + row ({longest}) tokens exceed the model's "
                             f"{self.max_positions} positions")

    # -- what an engine provides --------------------------------------------------------------------

    def _score_pieces(self, pieces: list[Piece], desc: str | None) -> list[float]:
        """Summed NLL of each piece's last `n_scored` tokens, in order."""
        raise NotImplementedError

    def encode_prefix(self, prefix_ids: Sequence[int]) -> PrefixState:
        """Forward `special prefix + prefix_ids` once (the BOS/EOS start token when both are empty)."""
        raise NotImplementedError

    def score_after_prefix(self, state: PrefixState, rows: Sequence[tuple[Sequence[int], Sequence[int]]], *,
                           token_nlls: bool = False) -> list[TargetScore]:
        """Score (middle ids, target ids) rows that all follow `state`'s prefix: target given prefix + middle.

        Numbers equal `score_ids([(prefix + middle, target)])` with a window covering everything, within
        floating-point tolerance. Raises ValueError when prefix + a row exceeds the model's positions.
        """
        raise NotImplementedError


class PromptLogprobScoring(WindowedScoring):
    """Scoring from prompt log-probabilities; an engine implements `_prompt_nlls` and `_warm_prefix`.

    Identical sequences are sent once per call. Nothing is kept on this side between calls: the engine's
    prefix cache makes the rows after an encoded prefix cheap.
    """

    def _prompt_nlls(self, prompts: list[tuple[list[int], int]]) -> list[list[float]]:
        """Per-token NLLs of `ids[first:]` for each distinct (ids, first) with first >= 1, in order."""
        raise NotImplementedError

    def _warm_prefix(self, ids: list[int]) -> int:
        """Forward `ids` once so the engine caches them; prefix tokens it already held (0: no cache)."""
        return 0

    def _target_nlls(self, prompts: list[tuple[list[int], int]]) -> list[list[float]]:
        unique: dict[tuple[tuple[int, ...], int], int] = {}
        for ids, first in prompts:
            unique.setdefault((tuple(ids), first), len(unique))
        keys = list(unique)
        results = self._prompt_nlls([(list(ids), first) for ids, first in keys])
        return [results[unique[(tuple(ids), first)]] for ids, first in prompts]

    def _score_pieces(self, pieces: list[Piece], desc: str | None) -> list[float]:
        nlls = self._target_nlls([(p.input_ids, len(p.input_ids) - p.n_scored) for p in pieces])
        return [math.fsum(values) for values in nlls]

    def encode_prefix(self, prefix_ids: Sequence[int]) -> PrefixState:
        """Forward the prefix once so its KV blocks are cached for the rows after it."""
        ids = self._prefix_ids(prefix_ids)
        if len(ids) > self.max_positions:
            raise ValueError(f"prefix ({len(ids)}) tokens exceed the model's {self.max_positions} positions")
        return PrefixState(ids=ids, cached_tokens=self._warm_prefix(ids))

    def score_after_prefix(self, state: PrefixState, rows: Sequence[tuple[Sequence[int], Sequence[int]]], *,
                           token_nlls: bool = False) -> list[TargetScore]:
        """Each row is the full sequence prefix + middle + target; the prefix comes from the engine's cache."""
        self._check_rows_fit(state, rows)
        results: list[TargetScore] = [TargetScore(0.0, 0, () if token_nlls else None)] * len(rows)
        scored = [i for i, (_, target) in enumerate(rows) if target]
        prompts = [(state.ids + list(rows[i][0]) + list(rows[i][1]), len(state.ids) + len(rows[i][0]))
                   for i in scored]
        for index, nlls in zip(scored, self._target_nlls(prompts)):
            results[index] = TargetScore(math.fsum(nlls), len(nlls), tuple(nlls) if token_nlls else None)
        return results
