"""Documents -> token ids with a loss mask -> fixed-length packs: the pure logic, no datasets, no Trainer.

Tokenisation: every segment is tokenised on its own (no special tokens), so the loss mask follows segment
boundaries exactly; labels are the input ids on trained segments and -100 elsewhere (the model shifts
them). Splitting the text at segment boundaries can tokenise a boundary differently from the whole text:
that is the price of an exact mask. Each document ends with EOS, trained, so the model learns where a
repository ends. BOS is prepended only when asked, or under "auto" when the tokenizer adds one to plain
text itself (Llama-3 does, SmolLM2 does not); its label is -100 since nothing predicts it.

Packing: documents are concatenated in order and cut into `max_length` pieces, so a document may straddle
two packs. Every token lands in exactly one pack. Only the final remainder is short: it is padded to
`max_length` with pad tokens whose labels are -100 (the only padding anywhere; nothing is dropped).

Attention: with `separate_documents`, position ids restart at 0 at every document start (and at the start
of each pack and of the padding). transformers reads restarts in `position_ids` as packed sequences when no
attention mask is passed: sdpa and eager get a block-diagonal causal mask (a dense L x L mask per row, fine
at a few thousand tokens, costly at 64k), flash_attention_2 takes its variable-length path, which needs
the batch flattened into one row (`PackedCollator(flatten=True)`). Without `separate_documents` no
position ids are passed and every token attends to everything before it in its pack, across documents.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import torch

IGNORE_INDEX = -100


def tokenize_document(segment_ids: Sequence[Sequence[int]], trained: Sequence[bool], *, eos_id: int,
                      bos_id: int | None = None) -> tuple[list[int], list[int]]:
    """Join already tokenised segments into one document: (input_ids, labels) with BOS/EOS added."""
    input_ids: list[int] = []
    labels: list[int] = []
    if bos_id is not None:
        input_ids.append(bos_id)
        labels.append(IGNORE_INDEX)
    for ids, train in zip(segment_ids, trained, strict=True):
        input_ids.extend(ids)
        labels.extend(ids if train else [IGNORE_INDEX] * len(ids))
    input_ids.append(eos_id)
    labels.append(eos_id)
    return input_ids, labels


def pack_documents(documents: Iterable[tuple[Sequence[int], Sequence[int]]], max_length: int, *, pad_id: int,
                   separate_documents: bool = True) -> Iterator[dict[str, list[int]]]:
    """Yield packs of exactly `max_length` tokens: `input_ids`, `labels` and, if separating, `position_ids`."""
    ids: list[int] = []
    labels: list[int] = []
    positions: list[int] = []

    def take() -> dict[str, list[int]]:
        pack = {"input_ids": ids[:max_length], "labels": labels[:max_length]}
        if separate_documents:
            pack["position_ids"] = _restart_at_pack_start(positions[:max_length])
        del ids[:max_length], labels[:max_length], positions[:max_length]
        return pack

    for doc_ids, doc_labels in documents:
        if len(doc_ids) != len(doc_labels):
            raise ValueError(f"input_ids and labels differ in length: {len(doc_ids)} != {len(doc_labels)}")
        ids.extend(doc_ids)
        labels.extend(doc_labels)
        positions.extend(range(len(doc_ids)))
        while len(ids) >= max_length:
            yield take()
    if ids:
        fill = max_length - len(ids)
        ids.extend([pad_id] * fill)
        labels.extend([IGNORE_INDEX] * fill)
        positions.extend(range(fill))
        yield take()


def _restart_at_pack_start(positions: list[int]) -> list[int]:
    """A document continued from the previous pack starts again at position 0 here."""
    if positions and positions[0] != 0:
        offset = positions[0]
        head = 0
        while head < len(positions) and positions[head] - offset == head:
            head += 1
        positions = [p - offset for p in positions[:head]] + positions[head:]
    return positions


@dataclass
class PackedCollator:
    """Stack packs (all `max_length` long) into tensors; no attention mask, so position ids delimit documents.

    `flatten=True` concatenates the batch into one row of `batch * max_length` tokens, the form the
    flash_attention_2 variable-length path recognises.
    """

    flatten: bool = False

    def __call__(self, features: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        batch = {key: torch.tensor([f[key] for f in features], dtype=torch.long) for key in features[0]}
        if self.flatten:
            batch = {key: value.reshape(1, -1) for key, value in batch.items()}
        return batch
