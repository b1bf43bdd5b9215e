"""Exported documents -> packed datasets.Dataset: every token once, statistics right, cached by content."""

from __future__ import annotations

import os

from retrace.data import read_documents
from retrace.training import IGNORE_INDEX, DataArguments, build_packed_dataset
from retrace.training.dataset import _tokenize_batch


def _tokenized(documents_dir, tokenizer):
    docs = read_documents(documents_dir)
    batch = {"texts": [[s.text for s in d.segments] for d in docs], "train": [[s.train for s in d.segments] for d in docs]}
    out = _tokenize_batch(batch, tokenizer, None)
    return list(zip(out["input_ids"], out["labels"]))


def document_order(flat_ids, flat_labels, documents):
    """Which document each stretch of the packed stream is, in order; fails unless each appears whole, once."""
    order, position, left = [], 0, dict(enumerate(documents))
    while left:
        match = [i for i, (ids, labels) in left.items() if flat_ids[position:position + len(ids)] == ids
                 and flat_labels[position:position + len(ids)] == labels]
        assert match, f"no document starts at token {position}"
        order.append(match[0])
        position += len(left.pop(match[0])[0])
    return order, position


def test_packed_dataset_holds_every_document_token_once(tmp_path, documents_dir, tokenizer):
    args = DataArguments(documents=[str(documents_dir)], max_length=32, shuffle_seed=3)
    dataset, stats = build_packed_dataset(args, tokenizer, tmp_path / "cache")
    documents = _tokenized(documents_dir, tokenizer)
    ids = [t for doc, _ in documents for t in doc]
    labels = [t for _, doc in documents for t in doc]
    flat_ids = [t for row in dataset["input_ids"] for t in row]
    flat_labels = [t for row in dataset["labels"] for t in row]
    order, end = document_order(flat_ids, flat_labels, documents)
    assert end == len(ids) and sorted(order) == [0, 1, 2]
    assert flat_labels[len(labels):] == [IGNORE_INDEX] * stats["pad_tokens"]
    assert stats["documents"] == 3 and stats["tokens"] == len(ids) and stats["sequences"] == len(dataset)
    assert stats["trained_tokens"] == sum(label != IGNORE_INDEX for label in labels)
    assert stats["pad_tokens"] < args.max_length


def test_packs_are_cached_by_content_and_settings(tmp_path, documents_dir, tokenizer):
    args = DataArguments(documents=[str(documents_dir)], max_length=32)
    build_packed_dataset(args, tokenizer, tmp_path / "cache")
    build_packed_dataset(args, tokenizer, tmp_path / "cache")
    assert len(os.listdir(tmp_path / "cache")) == 1  # the second call loaded the first one's packs
    build_packed_dataset(DataArguments(documents=[str(documents_dir)], max_length=48), tokenizer, tmp_path / "cache")
    (documents_dir / "a.jsonl").write_text((documents_dir / "a.jsonl").read_text().splitlines()[0] + "\n")
    _, stats = build_packed_dataset(args, tokenizer, tmp_path / "cache")
    assert stats["documents"] == 2
    assert len([p for p in os.listdir(tmp_path / "cache") if not p.startswith(".")]) == 3
