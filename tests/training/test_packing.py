"""Tokenisation with a loss mask and packing: the arithmetic that decides what the model is trained on."""

from __future__ import annotations

import random

import pytest

from retrace.training import IGNORE_INDEX, PackedCollator, pack_documents, tokenize_document
from retrace.training.dataset import _tokenize_batch, bos_id_for


def _tokenize(doc, tokenizer, bos_id=None):
    texts, trained = [s.text for s in doc.segments], [s.train for s in doc.segments]
    out = _tokenize_batch({"texts": [texts], "train": [trained]}, tokenizer, bos_id)
    return out["input_ids"][0], out["labels"][0]


def test_labels_are_masked_exactly_on_untrained_segments(tokenizer, documents):
    for doc in documents:
        ids, labels = _tokenize(doc, tokenizer)
        start = 0
        for segment in doc.segments:
            seg_ids = tokenizer(segment.text, add_special_tokens=False)["input_ids"]
            assert ids[start:start + len(seg_ids)] == seg_ids
            expected = seg_ids if segment.train else [IGNORE_INDEX] * len(seg_ids)
            assert labels[start:start + len(seg_ids)] == expected, segment.kind
            start += len(seg_ids)
        assert ids[start:] == [tokenizer.eos_token_id] and labels[start:] == [tokenizer.eos_token_id]
        assert tokenizer.decode(ids[:-1]) == doc.text


def test_bos_is_prepended_untrained_only_when_asked(tokenizer):
    assert bos_id_for(tokenizer, "auto") is None  # SmolLM2 adds no BOS to plain text
    assert bos_id_for(tokenizer, "never") is None
    bos = bos_id_for(tokenizer, "always")
    ids, labels = tokenize_document([[5, 6], [7]], [True, False], eos_id=2, bos_id=bos)
    assert ids == [bos, 5, 6, 7, 2] and labels == [IGNORE_INDEX, 5, 6, IGNORE_INDEX, 2]


def _random_docs(rng, count):
    docs = []
    for _ in range(count):
        n = rng.randint(1, 40)
        ids = [rng.randint(3, 999) for _ in range(n)]
        docs.append((ids, [i if rng.random() < 0.7 else IGNORE_INDEX for i in ids]))
    return docs


@pytest.mark.parametrize("max_length", [1 + 1, 7, 16, 64, 1000])
def test_packing_keeps_every_token_exactly_once(max_length):
    docs = _random_docs(random.Random(max_length), 50)
    packs = list(pack_documents(docs, max_length, pad_id=0))
    total = sum(len(ids) for ids, _ in docs)
    assert all(len(p[key]) == max_length for p in packs for key in p)
    assert len(packs) == -(-total // max_length)  # ceil: only the last pack is short, and it is padded
    flat_ids = [t for p in packs for t in p["input_ids"]]
    flat_labels = [t for p in packs for t in p["labels"]]
    pad = len(packs) * max_length - total
    assert flat_ids[:total] == [t for ids, _ in docs for t in ids]
    assert flat_labels[:total] == [t for _, labels in docs for t in labels]
    assert flat_ids[total:] == [0] * pad and flat_labels[total:] == [IGNORE_INDEX] * pad


def test_position_ids_restart_at_documents_packs_and_padding():
    docs = [([10] * 3, [10] * 3), ([11] * 6, [11] * 6), ([12] * 2, [12] * 2)]
    packs = list(pack_documents(docs, 5, pad_id=0))
    assert [p["position_ids"] for p in packs] == [[0, 1, 2, 0, 1], [0, 1, 2, 3, 0], [0, 0, 1, 2, 3]]
    assert [p["input_ids"] for p in packs] == [[10, 10, 10, 11, 11], [11, 11, 11, 11, 12], [12, 0, 0, 0, 0]]
    assert all("position_ids" not in p for p in pack_documents(docs, 5, pad_id=0, separate_documents=False))


def test_collator_stacks_or_flattens():
    packs = list(pack_documents([([1, 2, 3, 4], [1, 2, 3, 4])], 2, pad_id=0))
    batch = PackedCollator()(packs)
    assert batch["input_ids"].tolist() == [[1, 2], [3, 4]] and "attention_mask" not in batch
    flat = PackedCollator(flatten=True)(packs)
    assert flat["input_ids"].tolist() == [[1, 2, 3, 4]] and flat["position_ids"].shape == (1, 4)
