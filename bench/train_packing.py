"""Packing efficiency: share of trainable tokens that reach the loss, packed vs one-document-per-row.

Documents are built from the running Python's standard library (one per package, one payload segment per
file, the previous file as an untrained observation), tokenised with the embedded model's tokenizer. Prints,
for several sequence lengths, the share of trainable tokens kept and the share of pad in the batches for
retrace's packing and for the naive layout (each document truncated to max_length, then padded).
"""

from __future__ import annotations

import sysconfig
import time
from pathlib import Path

from transformers import AutoTokenizer

from retrace.data import Document, Segment
from retrace.llm import embedded_model_dir, resolve_model_path
from retrace.training import IGNORE_INDEX, pack_documents
from retrace.training.dataset import _tokenize_batch

PACKAGES = ["email", "http", "logging", "concurrent", "wsgiref", "importlib", "json", "urllib", "xml", "asyncio"]


def stdlib_documents() -> list[Document]:
    lib = Path(sysconfig.get_paths()["stdlib"])
    docs = []
    for package in PACKAGES:
        files = sorted((lib / package).rglob("*.py"))
        segments = []
        for previous, current in zip([None, *files], files):
            if previous is not None:
                segments.append(Segment(previous.read_text(errors="replace")[:2000], False, "observation"))
            segments.append(Segment(current.read_text(errors="replace"), True, "payload"))
        docs.append(Document(package, segments))
    return docs


def main() -> None:
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(str(embedded_model_dir())))
    docs = stdlib_documents()
    start = time.perf_counter()
    out = _tokenize_batch({"texts": [[s.text for s in d.segments] for d in docs],
                           "train": [[s.train for s in d.segments] for d in docs]}, tokenizer, None)
    tokenise_s = time.perf_counter() - start
    rows = list(zip(out["input_ids"], out["labels"]))
    trainable = sum(sum(label != IGNORE_INDEX for label in labels) for _, labels in rows)
    total = sum(len(ids) for ids, _ in rows)
    print(f"{len(docs)} documents, {total:,} tokens ({trainable:,} trainable), tokenised in {tokenise_s:.1f} s")
    print(f"{'max_length':>10} {'packed kept':>12} {'packed pad':>11} {'naive kept':>11} {'naive pad':>10}")
    for max_length in (512, 2048, 8192, 65536):
        packs = list(pack_documents(rows, max_length, pad_id=tokenizer.pad_token_id))
        kept = sum(sum(label != IGNORE_INDEX for label in p["labels"]) for p in packs)
        pad = len(packs) * max_length - total
        naive_kept = sum(sum(label != IGNORE_INDEX for label in labels[:max_length]) for _, labels in rows)
        naive_pad = sum(max_length - min(len(ids), max_length) for ids, _ in rows)
        print(f"{max_length:>10} {kept / trainable:>12.4f} {pad / (len(packs) * max_length):>11.4f} "
              f"{naive_kept / trainable:>11.4f} {naive_pad / (len(rows) * max_length):>10.4f}")


if __name__ == "__main__":
    main()
