"""Scoring one Think step's candidates: the NLL of the file its sub-agent writes, given the document up to the Think.

For a step, the scored sequence is

    [special prefix] + P + think block + B + payload

tokenised piecewise (each piece on its own, ids concatenated), where
- P is the document text before the Think, cut from the left (the cut does not depend on the candidate,
  so every candidate of the step shares P exactly);
- the think block is `<think>\\n{text}\\n</think>\\n` (the document markup), never cut; the no-Think
  baseline has no think block at all;
- B is the document between the Think and the payload, never cut: for the Think right before a Write
  the write header `<write path="...">\\n`; for a Think before the sub-agent's Reads, the Reads with their
  observations, the Think before the Write and the write header (`between`);
- the payload is cut to its first `max_target_tokens` tokens (0: all), and to what the scorer's positions
  leave (computed once per step from the incumbent plus `ROW_SLACK_TOKENS`; a longer candidate that then
  does not fit is rejected as `too_long`).
How much of P is kept: with `max_context_tokens` N > 0, its last N tokens, giving way (on a model with few
positions) so that at least `MIN_TARGET_TOKENS` payload tokens are scored. With N = 0, the scorer's
window: the positions left after the special prefix, the think block, B, the slack and the payload; the
payload then takes at most what leaves half of that room to P (when P is that long), so a long file does
not crowd out the context. A step where B leaves no room for `MIN_TARGET_TOKENS` payload tokens is not
searched (`begin` returns None).
Only payload tokens are scored; their mean NLL (nats/token) is the step's objective. P is forwarded once
per step and reused for every row (incumbent, baseline, all candidates, all iterations): `encode_prefix` /
`score_after_prefix` of the scorer engine (`scorer_backend`). On `hf` the prefix's past key values are
copied into each row; on `vllm` each row is the full sequence P + row and vLLM's automatic prefix caching
supplies P's key/values; on `openai` (a served vLLM) each row is sent whole (see retrace.llm).
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from retrace.llm.scoring import PrefixState, TargetScore

if TYPE_CHECKING:
    from retrace.llm.engine import Engine

ROW_SLACK_TOKENS = 256  # room left beyond the incumbent's row for longer candidates
MIN_TARGET_TOKENS = 64  # payload tokens kept when positions are short (the prefix gives way first)
UNKNOWN_POSITIONS = 1 << 29  # an engine that does not know its window reports at least this many positions


def think_block(text: str) -> str:
    """A Think step as the document renders it (retrace.data.document's markup; a test keeps them equal)."""
    body = text if text.endswith("\n") or not text else text + "\n"
    return f"<think>\n{body}</think>\n"


def write_header(path: str) -> str:
    return f"<write path=\"{path}\">\n"


@dataclass
class StepScoring:
    """One step's shared state: the prefix cache, the ids between Think and payload, the payload's line map."""

    state: PrefixState  # the prefix as the engine encoded it
    between_ids: list[int]  # B: the write header, or (a Think before Reads) everything up to the payload
    target_ids: list[int]
    payload: str
    token_lines: list[int] = field(default_factory=list)  # 1-based payload line of each target token
    max_row_tokens: int = 0
    unique_tokens: int = 0  # prefix + every distinct row scored (the bench's denominator)
    context_tokens: int = 0  # tokens of P the rows are conditioned on (the special prefix not counted)


class StepScorer:
    """Wraps a scoring engine (any of `retrace.llm`) with the refine stage's cut rules and cost accounting.

    `max_context_tokens` 0 (the default) keeps as much of the prefix as the scorer's window allows; the
    window is the engine's `max_positions` (an `hf` model's `max_position_embeddings`, a vLLM engine's
    `max_model_len`). Raises ValueError for 0 on an engine that does not know its window (an `openai`
    scorer without `scorer_max_model_len`).
    """

    def __init__(self, scorer: Engine, *, max_context_tokens: int = 0, max_target_tokens: int = 0):
        self.scorer = scorer
        self.max_context_tokens = max_context_tokens
        self.max_target_tokens = max_target_tokens
        self.limit = scorer.max_positions
        if not max_context_tokens and self.limit >= UNKNOWN_POSITIONS:
            raise ValueError("refine_max_context_tokens: 0 means the scorer's window, but this scorer does not "
                             "know its window: set scorer_max_model_len (or a positive refine_max_context_tokens)")
        self.seconds = 0.0
        self.unique_tokens = 0
        self.rows_scored = 0

    @property
    def tokens_forwarded(self) -> int:
        return self.scorer.tokens_forwarded

    def count_tokens(self, text: str) -> int:
        """`text`'s length in the scorer's tokens, as it is scored (no special tokens)."""
        return len(self.scorer.encode_target(text))

    def think_ids(self, text: str | None) -> list[int]:
        return [] if text is None else self.scorer.encode_target(think_block(text))

    def encode_tail(self, text: str, keep: int) -> list[int]:
        """The last `keep` tokens of `text` without special tokens (only its tail is tokenised; the first token
        of a cut tail is dropped, since it may be a fragment), like the engine's `encode_context` for any `keep`."""
        if keep <= 0:
            return []
        tokenizer = self.scorer.tokenizer
        tail_chars = keep * 16
        if len(text) > tail_chars:
            ids = tokenizer(text[-tail_chars:], add_special_tokens=False, verbose=False)["input_ids"][1:]
            if len(ids) >= keep:
                return ids[-keep:]
        return tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"][-keep:]

    def begin(self, prefix_text: str, path: str, payload: str, incumbent: str,
              between: str | None = None) -> StepScoring | None:
        """Tokenise and cut, forward the prefix once; `between` is B (default: the write header of `path`).

        None when B leaves too little room for the payload (see the module's rules).
        """
        start = time.perf_counter()
        between_ids = self.scorer.encode_target(write_header(path) if between is None else between)
        target_ids = self.scorer.encode_target(payload)
        if self.max_target_tokens:
            target_ids = target_ids[:self.max_target_tokens]
        row_budget = len(self.think_ids(incumbent)) + len(between_ids) + ROW_SLACK_TOKENS
        special = len(self.scorer.special_prefix)
        room = self.limit - special - row_budget  # for P and the payload together
        if room - 1 < min(MIN_TARGET_TOKENS, len(target_ids)) or not target_ids:
            self.seconds += time.perf_counter() - start
            return None
        if self.max_context_tokens:
            prefix_ids = self.encode_tail(prefix_text, self.max_context_tokens)
            if room - len(prefix_ids) < MIN_TARGET_TOKENS:
                # A model with few positions: shorten the prefix further, so some payload is always scored.
                prefix_ids = prefix_ids[len(prefix_ids) - max(room - MIN_TARGET_TOKENS, 0):]
        else:
            prefix_ids = self.encode_tail(prefix_text, room)
            target_ids = target_ids[:max(room - len(prefix_ids), room // 2)]
            prefix_ids = prefix_ids[len(prefix_ids) - min(len(prefix_ids), room - len(target_ids)):]
        # An empty prefix still takes one start token (the engine's BOS or EOS).
        target_ids = target_ids[:max(self.limit - ((special + len(prefix_ids)) or 1) - row_budget, 1)]
        state = self.scorer.encode_prefix(prefix_ids)
        step = StepScoring(state=state, between_ids=between_ids, target_ids=target_ids, payload=payload,
                           token_lines=self._token_lines(payload, len(target_ids)),
                           max_row_tokens=self.limit - len(state.ids), unique_tokens=len(state.ids),
                           context_tokens=len(prefix_ids))
        self.unique_tokens += len(state.ids)
        self.seconds += time.perf_counter() - start
        return step

    def fits(self, step: StepScoring, think: str | None) -> bool:
        return len(self.think_ids(think)) + len(step.between_ids) + len(step.target_ids) <= step.max_row_tokens

    def score(self, step: StepScoring, thinks: list[str | None]) -> list[TargetScore]:
        """Mean payload NLL for each Think text (None: the no-Think baseline), with per-token NLLs, one batch."""
        start = time.perf_counter()
        rows = [(self.think_ids(t) + step.between_ids, step.target_ids) for t in thinks]
        scores = self.scorer.score_after_prefix(step.state, rows, token_nlls=True)
        added = sum(len(m) + len(t) for m, t in rows)
        step.unique_tokens += added
        self.unique_tokens += added
        self.rows_scored += len(rows)
        self.seconds += time.perf_counter() - start
        return scores

    def _token_lines(self, payload: str, n_tokens: int) -> list[int]:
        """The payload line (1-based) where each scored token starts, from the tokenizer's offsets."""
        newlines = [i for i, ch in enumerate(payload) if ch == "\n"]
        try:
            offsets = self.scorer.tokenizer(payload, add_special_tokens=False,
                                            return_offsets_mapping=True, verbose=False)["offset_mapping"][:n_tokens]
            starts = [o[0] for o in offsets]
        except (NotImplementedError, KeyError, TypeError):  # slow tokenizer: decode piecewise, approximately
            starts, pos = [], 0
            for token in self.scorer.encode_target(payload)[:n_tokens]:
                starts.append(pos)
                pos += len(self.scorer.tokenizer.decode([token]))
        return [bisect.bisect_right(newlines, s - 1) + 1 for s in starts]


def hot_lines(step: StepScoring, score: TargetScore, n: int) -> list[tuple[int, str, float]]:
    """The `n` payload lines with the highest summed NLL under `score`: (line, stripped text, nats)."""
    if not score.token_nlls or n < 1:
        return []
    by_line: dict[int, float] = {}
    for line, nll in zip(step.token_lines, score.token_nlls):
        by_line[line] = by_line.get(line, 0.0) + nll
    lines = step.payload.splitlines()
    ranked = sorted((nats, line) for line, nats in by_line.items()
                    if 0 < line <= len(lines) and lines[line - 1].strip())
    return [(line, lines[line - 1].strip()[:120], nats) for nats, line in reversed(ranked[-n:])]


def build_step_scorer(args, scorer: Engine | None = None, *, engines=None) -> StepScorer:
    """The recipe's scorer (the `scorer_*` engine, built here) or a given engine.

    A given engine (e.g. an `HFEngine` around the model being trained) is used whatever the recipe says;
    `engines` (an `EnginePool`) shares loaded models with other roles.
    """
    if scorer is None:
        from retrace.llm import EnginePool, engine_config

        scorer = (engines or EnginePool()).get(engine_config(args, "scorer"), role="scorer", max_chunk_tokens=1,
                                               max_context_tokens=args.refine_max_context_tokens or None)
    return StepScorer(scorer, max_context_tokens=args.refine_max_context_tokens,
                      max_target_tokens=args.refine_max_target_tokens)
