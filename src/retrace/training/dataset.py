"""Exported documents -> a cached `datasets.Dataset` of packed sequences, built once per (data, tokenizer, rule).

Tokenisation runs through `datasets.map` (parallel with `preprocessing_num_workers`), packing streams into
Arrow through `Dataset.from_generator`, and the result is saved under a key that hashes the document files
(path, size, mtime), the tokenizer, and every packing setting. A second run, every other rank of a
multi-node job, and `--pretokenize_only` followed by the real launch all load the same packs from disk.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

from datasets import Dataset, load_from_disk

from retrace.atomic import write_json
from retrace.data import read_documents
from retrace.training.arguments import DataArguments
from retrace.training.packing import IGNORE_INDEX, pack_documents, tokenize_document

logger = logging.getLogger(__name__)

# Bump when the tokenisation or packing rule changes, so old caches are not reused.
PACKING_VERSION = 1
STATS_FILE = "packing_stats.json"


def document_files(paths: list[str]) -> list[Path]:
    """Every `.jsonl` named by `paths` (files, or directories of them), sorted within each directory."""
    files: list[Path] = []
    for raw in paths:
        path = Path(os.path.expanduser(raw))
        files.extend(sorted(path.glob("*.jsonl")) if path.is_dir() else [path])
    return files


def bos_id_for(tokenizer: Any, rule: str) -> int | None:
    """The BOS id to prepend under `rule` (auto: only when the tokenizer adds BOS to plain text itself)."""
    bos = tokenizer.bos_token_id
    if rule == "never" or bos is None:
        return None
    if rule == "always":
        return bos
    ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    return bos if ids and ids[0] == bos else None


def cache_key(files: list[Path], tokenizer: Any, data_args: DataArguments) -> str:
    """A digest of everything the packs depend on."""
    digest = hashlib.sha256()
    for file in files:
        stat = file.stat()
        digest.update(f"{file.resolve()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    digest.update((backend.to_str() if backend is not None else repr(tokenizer.get_vocab())).encode())
    settings = {"version": PACKING_VERSION, "max_length": data_args.max_length,
                "shuffle_seed": data_args.shuffle_seed,
                "max_documents": data_args.max_documents, "add_bos": data_args.add_bos,
                "separate_documents": data_args.separate_documents, "eos": tokenizer.eos_token_id,
                "pad": tokenizer.pad_token_id, "bos": tokenizer.bos_token_id}
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def _document_records(files: list[Path], seed: int, max_documents: int | None) -> list[dict[str, Any]]:
    documents = [doc for file in files for doc in read_documents(file)]
    random.Random(seed).shuffle(documents)
    if max_documents is not None:
        documents = documents[:max_documents]
    return [{"repo": d.repo, "texts": [s.text for s in d.segments], "train": [s.train for s in d.segments]}
            for d in documents]


def _tokenize_batch(batch: dict[str, list], tokenizer: Any, bos_id: int | None) -> dict[str, list]:
    out: dict[str, list] = {"input_ids": [], "labels": [], "num_tokens": [], "num_trained": []}
    for texts, trained in zip(batch["texts"], batch["train"]):
        segment_ids = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
        ids, labels = tokenize_document(segment_ids, trained, eos_id=tokenizer.eos_token_id, bos_id=bos_id)
        out["input_ids"].append(ids)
        out["labels"].append(labels)
        out["num_tokens"].append(len(ids))
        out["num_trained"].append(sum(label != IGNORE_INDEX for label in labels))
    return out


def _packs(tokenized: Dataset, max_length: int, pad_id: int, separate_documents: bool):
    rows = ((row["input_ids"], row["labels"]) for row in tokenized)
    yield from pack_documents(rows, max_length, pad_id=pad_id, separate_documents=separate_documents)


def build_packed_dataset(data_args: DataArguments, tokenizer: Any, cache_root: str | Path) -> tuple[Dataset, dict]:
    """The packed training set and its statistics (documents, tokens, trained tokens, packs, padding)."""
    files = document_files(data_args.documents)
    key = cache_key(files, tokenizer, data_args)
    target = Path(cache_root) / key
    if (target / STATS_FILE).is_file():
        logger.info("loading packed data from %s", target)
        return load_from_disk(str(target)), json.loads((target / STATS_FILE).read_text())

    records = _document_records(files, data_args.shuffle_seed, data_args.max_documents)
    if not records:
        raise ValueError(f"no documents found in {data_args.documents}")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{key}-") as scratch:
        tokenized = Dataset.from_list(records).map(
            _tokenize_batch, batched=True, batch_size=64, num_proc=data_args.preprocessing_num_workers,
            remove_columns=["repo", "texts", "train"], desc="tokenising documents",
            fn_kwargs={"tokenizer": tokenizer, "bos_id": bos_id_for(tokenizer, data_args.add_bos)})
        packed = Dataset.from_generator(
            _packs, cache_dir=scratch, fingerprint=key,
            gen_kwargs={"tokenized": tokenized, "max_length": data_args.max_length, "pad_id": pad_id,
                        "separate_documents": data_args.separate_documents})
        stats = _stats(tokenized, packed, data_args)
        staging = Path(scratch) / "packed"
        packed.save_to_disk(str(staging))
        write_json(staging / STATS_FILE, stats)
        if not target.exists():
            os.replace(staging, target)
        else:  # another process finished first: keep its copy
            shutil.rmtree(staging)
    logger.info("packed %d documents (%d tokens, %d trained) into %d sequences of %d; cached in %s",
                stats["documents"], stats["tokens"], stats["trained_tokens"], stats["sequences"],
                data_args.max_length, target)
    return load_from_disk(str(target)), stats


def _stats(tokenized: Dataset, packed: Dataset, data_args: DataArguments) -> dict[str, Any]:
    tokens = sum(tokenized["num_tokens"])
    trained = sum(tokenized["num_trained"])
    sequences = len(packed)
    return {"documents": len(tokenized), "tokens": tokens, "trained_tokens": trained, "sequences": sequences,
            "max_length": data_args.max_length, "pad_tokens": sequences * data_args.max_length - tokens,
            "documents_from": list(data_args.documents)}
