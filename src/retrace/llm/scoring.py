"""Token log-likelihood of a target text given a context, with a transformers causal LM.

A role-free backend: evaluation scores held-out code with it, and the refine stage uses it as its
scorer (the NLL of a Write payload given the trajectory prefix). Callers give (context, target) text
pairs and get the summed and mean negative log-likelihood of the target's tokens, in nats.

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
(the refine stage's candidate Thinks after one trajectory prefix), the prefix is forwarded once and its
key/value cache is copied into every row of each batch, so each row forwards only its own tokens. The
rule there is different and simpler: no window, nothing is cut; the caller cuts the prefix (from the
left) and the target beforehand, and prefix + row must fit the model's positions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from retrace.llm.embedded import resolve_model_path

# Logits for this many scored positions at a time: bounds the (positions x vocab) float32 block.
HEAD_BLOCK_POSITIONS = 512


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
    """A context forwarded once: its key/value cache, shared by every continuation scored after it."""

    ids: list[int]                  # the tokens forwarded (special prefix included)
    layers: list[tuple[Any, Any]]   # per layer (keys, values), batch size 1
    last_output: Any                # final hidden state (or logits) at the last prefix position, shape (dim,)


@dataclass
class _Piece:
    """One forward row: a window whose last `n_scored` tokens are target tokens of request `request`."""

    request: int
    input_ids: list[int]
    n_scored: int


class HFScorer:
    """A causal LM that scores targets given contexts, several windows per forward pass.

    Build it from a loaded model and tokenizer (the refine stage may pass the model it trains), or with
    `from_pretrained`. Rows in a batch are right-padded with an attention mask; padding sits after every
    real token, so causal attention and default position ids leave the real tokens' logits unchanged.
    """

    def __init__(self, model, tokenizer, *, max_context_tokens: int = 1024, max_chunk_tokens: int = 1024,
                 batch_size: int = 4, name: str | None = None):
        if max_context_tokens < 1 or max_chunk_tokens < 1 or batch_size < 1:
            raise ValueError("max_context_tokens, max_chunk_tokens and batch_size must be at least 1")
        limit = getattr(model.config, "max_position_embeddings", None)
        if limit is not None and max_context_tokens + max_chunk_tokens > limit:
            raise ValueError(f"max_context_tokens + max_chunk_tokens = {max_context_tokens + max_chunk_tokens} "
                             f"exceeds the model's {limit} positions")
        self.model = model
        self.tokenizer = tokenizer
        self.name = name or getattr(model.config, "_name_or_path", "model")
        self.max_context_tokens = max_context_tokens
        self.max_chunk_tokens = max_chunk_tokens
        self.batch_size = batch_size
        self.special_prefix = self._special_prefix_ids()
        if len(self.special_prefix) >= max_context_tokens:
            raise ValueError("max_context_tokens leaves no room after the tokenizer's special prefix")
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        if not self.special_prefix and start is None:
            raise ValueError("the tokenizer has neither BOS nor EOS to start an empty context")
        self.start_ids = list(self.special_prefix) or [start]
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.start_ids[0]
        self.tokens_forwarded = 0  # every token fed to the model, padding excluded (cost accounting)

    @classmethod
    def from_pretrained(cls, name_or_path: str, *, dtype: str = "float32", device: str | None = None,
                        **kwargs) -> HFScorer:
        """Load a causal LM and its tokenizer by local path or hub id; `dtype` is a torch dtype name or "auto"."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = resolve_model_path(name_or_path)
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype = dtype if dtype == "auto" else getattr(torch, dtype)
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype).to(device)
        return cls(model, tokenizer, name=kwargs.pop("name", name_or_path), **kwargs)

    @property
    def device(self):
        return next(self.model.parameters()).device

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
        import torch

        pieces = [piece for index, (ctx, tgt) in enumerate(pairs) for piece in self._pieces(index, ctx, tgt)]
        # Longest first: similar lengths share a batch (little padding) and memory peaks at once.
        pieces.sort(key=lambda p: -len(p.input_ids))
        batches = [pieces[i:i + self.batch_size] for i in range(0, len(pieces), self.batch_size)]
        sums = [0.0] * len(pairs)
        counts = [0] * len(pairs)
        was_training = self.model.training  # a model being trained may be lent as scorer: restore its mode
        self.model.eval()
        try:
            with torch.inference_mode():
                for batch in tqdm(batches, desc=desc or "scoring", unit="batch", disable=desc is None):
                    for piece, nll in zip(batch, self._forward(batch)):
                        sums[piece.request] += nll
                        counts[piece.request] += piece.n_scored
        finally:
            self.model.train(was_training)
        return [TargetScore(nll_sum=s, n_tokens=n) for s, n in zip(sums, counts)]

    def _pieces(self, index: int, context_ids: Sequence[int], target_ids: Sequence[int]) -> list[_Piece]:
        room = self.max_context_tokens - len(self.special_prefix)
        history = list(context_ids)[-room:]
        pieces = []
        for start in range(0, len(target_ids), self.max_chunk_tokens):
            chunk = list(target_ids[start:start + self.max_chunk_tokens])
            seen = (history + list(target_ids[:start]))[-room:]
            prefix = list(self.special_prefix) + seen if (self.special_prefix or seen) else list(self.start_ids)
            pieces.append(_Piece(index, prefix + chunk, len(chunk)))
        return pieces

    def _forward(self, batch: list[_Piece]) -> list[float]:
        """Summed NLL of each piece's scored tokens (float64 sums of float32 log-probabilities)."""
        import torch

        device = self.device
        width = max(len(p.input_ids) for p in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        rows, cols, labels = [], [], []
        for r, piece in enumerate(batch):
            n = len(piece.input_ids)
            ids[r, :n] = torch.tensor(piece.input_ids)
            mask[r, :n] = 1
            first = n - piece.n_scored  # position of the first scored token
            rows += [r] * piece.n_scored
            cols += range(first - 1, n - 1)  # the position that predicts each scored token
            labels += piece.input_ids[first:]
        self.tokens_forwarded += int(mask.sum())
        hidden = self._hidden_at(ids.to(device), mask.to(device), torch.tensor(rows), torch.tensor(cols))
        labels_t = torch.tensor(labels, device=device)
        nll = torch.empty(len(labels), dtype=torch.float64)
        for lo in range(0, len(labels), HEAD_BLOCK_POSITIONS):
            logits = self._logits(hidden[lo:lo + HEAD_BLOCK_POSITIONS]).float()
            logp = torch.log_softmax(logits, dim=-1)
            picked = logp.gather(-1, labels_t[lo:lo + HEAD_BLOCK_POSITIONS, None]).squeeze(-1)
            nll[lo:lo + HEAD_BLOCK_POSITIONS] = -picked.double().cpu()
        sums, offset = [], 0
        for piece in batch:
            sums.append(float(nll[offset:offset + piece.n_scored].sum()))
            offset += piece.n_scored
        return sums

    def _uses_plain_head(self) -> bool:
        """True when logits are `lm_head(hidden)` (no soft-capping or scaling we would have to copy)."""
        config = self.model.config
        return getattr(config, "final_logit_softcapping", None) is None and getattr(config, "logit_scale", None) \
            is None and self.model.get_output_embeddings() is not None

    def _hidden_at(self, ids, mask, rows, cols):
        """Final hidden states at the predicting positions only, so the vocab projection skips the context."""
        if bool(mask.all()):
            mask = None  # no padding: skip the masked attention path, slower on CPU
        if self._uses_plain_head():
            out = self.model.get_decoder()(input_ids=ids, attention_mask=mask, use_cache=False)
            return out.last_hidden_state[rows.to(ids.device), cols.to(ids.device)]
        logits = self.model(input_ids=ids, attention_mask=mask, use_cache=False).logits
        return logits[rows.to(ids.device), cols.to(ids.device)]

    def _logits(self, hidden):
        return self.model.get_output_embeddings()(hidden) if self._uses_plain_head() else hidden

    # -- shared prefixes ---------------------------------------------------------------------------

    def encode_prefix(self, prefix_ids: Sequence[int]) -> PrefixState:
        """Forward `special prefix + prefix_ids` once (the BOS/EOS start token when both are empty)."""
        import torch

        ids = list(self.special_prefix) + list(prefix_ids) or list(self.start_ids)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                input_ids = torch.tensor([ids], device=self.device)
                if self._uses_plain_head():
                    out = self.model.get_decoder()(input_ids=input_ids, use_cache=True)
                    last = out.last_hidden_state[0, -1]
                else:
                    out = self.model(input_ids=input_ids, use_cache=True)
                    last = out.logits[0, -1]
        finally:
            self.model.train(was_training)
        self.tokens_forwarded += len(ids)
        layers = [(layer.keys, layer.values) for layer in out.cache.layers]
        return PrefixState(ids=ids, layers=layers, last_output=last)

    def score_after_prefix(self, state: PrefixState, rows: Sequence[tuple[Sequence[int], Sequence[int]]], *,
                           token_nlls: bool = False) -> list[TargetScore]:
        """Score (middle ids, target ids) rows that all follow `state`'s prefix: target given prefix + middle.

        Numbers equal `score_ids([(prefix + middle, target)])` with a window covering everything, within
        floating-point tolerance. Raises ValueError when prefix + a row exceeds the model's positions.
        """
        import torch

        limit = getattr(self.model.config, "max_position_embeddings", None)
        longest = max((len(m) + len(t) for m, t in rows), default=0)
        if limit is not None and len(state.ids) + longest > limit:
            raise ValueError(f"prefix ({len(state.ids)}) + row ({longest}) tokens exceed the model's {limit} positions")
        results: list[TargetScore] = [TargetScore(0.0, 0, () if token_nlls else None)] * len(rows)
        order = sorted((i for i, (m, t) in enumerate(rows) if t), key=lambda i: -(len(rows[i][0]) + len(rows[i][1])))
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                for lo in range(0, len(order), self.batch_size):
                    batch = order[lo:lo + self.batch_size]
                    for index, nlls in zip(batch, self._forward_after_prefix(state, [rows[i] for i in batch])):
                        results[index] = TargetScore(float(nlls.sum()), len(nlls),
                                                     tuple(nlls.tolist()) if token_nlls else None)
        finally:
            self.model.train(was_training)
        return results

    def _forward_after_prefix(self, state: PrefixState, rows) -> list:
        """Per-token NLLs (float64, CPU) of each row's target; rows right-padded, the cache copied per row."""
        import torch
        from transformers import DynamicCache

        device = self.device
        width = max(len(m) + len(t) for m, t in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        for r, (middle, target) in enumerate(rows):
            ids[r, :len(middle) + len(target)] = torch.tensor(list(middle) + list(target))
        self.tokens_forwarded += sum(len(m) + len(t) for m, t in rows)
        # Right padding after every real token: causal attention keeps real tokens' outputs exact, so no mask.
        cache = DynamicCache(ddp_cache_data=[(k.expand(len(rows), -1, -1, -1), v.expand(len(rows), -1, -1, -1))
                                             for k, v in state.layers], config=self.model.config)
        if self._uses_plain_head():
            out = self.model.get_decoder()(input_ids=ids.to(device), cache=cache, use_cache=True)
            outputs = out.last_hidden_state
        else:
            outputs = self.model(input_ids=ids.to(device), cache=cache, use_cache=True).logits
        results = []
        for r, (middle, target) in enumerate(rows):
            m = len(middle)
            # Output at position p predicts token p + 1; the first target token after an empty middle is
            # predicted by the prefix's last position.
            picked = outputs[r, max(m - 1, 0):m + len(target) - 1]
            if m == 0:
                picked = torch.cat([state.last_output[None].to(picked.dtype), picked])
            labels = torch.tensor(list(target), device=device)
            nll = torch.empty(len(target), dtype=torch.float64)
            for lo in range(0, len(target), HEAD_BLOCK_POSITIONS):
                logits = self._logits(picked[lo:lo + HEAD_BLOCK_POSITIONS]).float()
                logp = torch.log_softmax(logits, dim=-1)
                chosen = logp.gather(-1, labels[lo:lo + HEAD_BLOCK_POSITIONS, None]).squeeze(-1)
                nll[lo:lo + HEAD_BLOCK_POSITIONS] = -chosen.double().cpu()
            results.append(nll)
        return results
