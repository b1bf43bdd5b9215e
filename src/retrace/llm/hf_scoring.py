"""How the `hf` engine forwards scoring windows: batched, right-padded, the vocabulary projection only where scored.

Rows in a batch are right-padded with an attention mask; padding sits after every real token, so causal
attention and default position ids leave the real tokens' logits unchanged. Logits are computed only at
the positions that predict a scored token, in blocks of `HEAD_BLOCK_POSITIONS`, so the (positions x
vocab) float32 block stays bounded. For shared prefixes the prefix's key/value cache is copied into every
row of a batch, so each row forwards only its own tokens. A model that is being trained may be lent as
scorer: its training mode is restored after every call.
"""

from __future__ import annotations

from collections.abc import Sequence

from tqdm.auto import tqdm

from retrace.llm.scoring import Piece, PrefixState, TargetScore, WindowedScoring

HEAD_BLOCK_POSITIONS = 512


class HFForwardScoring(WindowedScoring):
    """The scoring half of `HFEngine`; needs `model`, `batch_size`, `pad_id` and `device`."""

    def _score_pieces(self, pieces: list[Piece], desc: str | None) -> list[float]:
        import torch

        # Longest first: similar lengths share a batch (little padding) and memory peaks at once.
        order = sorted(range(len(pieces)), key=lambda i: -len(pieces[i].input_ids))
        batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        sums = [0.0] * len(pieces)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                for batch in tqdm(batches, desc=desc or "scoring", unit="batch", disable=desc is None):
                    for index, nll in zip(batch, self._forward([pieces[i] for i in batch])):
                        sums[index] = nll
        finally:
            self.model.train(was_training)
        return sums

    def _forward(self, batch: list[Piece]) -> list[float]:
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
        nll = self._nlls(hidden, torch.tensor(labels, device=device))
        sums, offset = [], 0
        for piece in batch:
            sums.append(float(nll[offset:offset + piece.n_scored].sum()))
            offset += piece.n_scored
        return sums

    def _nlls(self, hidden, labels):
        """Per-position NLL (float64, CPU) of `labels` from hidden states (or logits), block by block."""
        import torch

        nll = torch.empty(len(labels), dtype=torch.float64)
        for lo in range(0, len(labels), HEAD_BLOCK_POSITIONS):
            logits = self._logits(hidden[lo:lo + HEAD_BLOCK_POSITIONS]).float()
            logp = torch.log_softmax(logits, dim=-1)
            picked = logp.gather(-1, labels[lo:lo + HEAD_BLOCK_POSITIONS, None]).squeeze(-1)
            nll[lo:lo + HEAD_BLOCK_POSITIONS] = -picked.double().cpu()
        return nll

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
        import torch

        ids = self._prefix_ids(prefix_ids)
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
        return PrefixState(ids=ids, cache=(layers, last))

    def score_after_prefix(self, state: PrefixState, rows: Sequence[tuple[Sequence[int], Sequence[int]]], *,
                           token_nlls: bool = False) -> list[TargetScore]:
        import torch

        self._check_rows_fit(state, rows)
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

        layers, last_output = state.cache
        device = self.device
        width = max(len(m) + len(t) for m, t in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        for r, (middle, target) in enumerate(rows):
            ids[r, :len(middle) + len(target)] = torch.tensor(list(middle) + list(target))
        self.tokens_forwarded += sum(len(m) + len(t) for m, t in rows)
        # Right padding after every real token: causal attention keeps real tokens' outputs exact, so no mask.
        cache = DynamicCache(ddp_cache_data=[(k.expand(len(rows), -1, -1, -1), v.expand(len(rows), -1, -1, -1))
                                             for k, v in layers], config=self.model.config)
        if self._uses_plain_head():
            outputs = self.model.get_decoder()(input_ids=ids.to(device), cache=cache, use_cache=True).last_hidden_state
        else:
            outputs = self.model(input_ids=ids.to(device), cache=cache, use_cache=True).logits
        results = []
        for r, (middle, target) in enumerate(rows):
            m = len(middle)
            # Output at position p predicts token p + 1; the first target token after an empty middle is
            # predicted by the prefix's last position.
            picked = outputs[r, max(m - 1, 0):m + len(target) - 1]
            if m == 0:
                picked = torch.cat([last_output[None].to(picked.dtype), picked])
            results.append(self._nlls(picked, torch.tensor(list(target), device=device)))
        return results
