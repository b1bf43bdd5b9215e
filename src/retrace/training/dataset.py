"""Sources -> a cached `datasets.Dataset` of packed sequences, built once per (data, tokenizer, rule, mixture).

Each source (the `documents` key, or every entry of `mixture`) is read as rows of segments, tokenised
through `datasets.map` (parallel with `preprocessing_num_workers`), and a seeded choice of its rows meets
its token budget (`retrace.training.mixture`). The chosen rows of all sources are shuffled together,
packed into Arrow through `Dataset.from_generator`, and saved under a key that hashes the local files
(path, size, mtime), hub datasets' fingerprints, the tokenizer, the mixture and every packing setting.
A second run, every other rank of a multi-node job, and `--pretokenize_only` followed by the real launch
all load the same packs from disk. `packing_stats.json` beside the packs holds the realised tokens per
source.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset, concatenate_datasets, load_from_disk

from retrace.atomic import write_json
from retrace.training.arguments import DataArguments
from retrace.training.mixture import plan_budgets, select_documents, source_seed
from retrace.training.packing import IGNORE_INDEX, pack_documents, tokenize_document
from retrace.training.sources import (
    SourceSpec,
    documents_source,
    load_hub_source,
    load_source_rows,
    parse_mixture,
    source_fingerprint,
)

logger = logging.getLogger(__name__)

# Bump when the tokenisation, selection or packing rule changes, so old caches are not reused.
PACKING_VERSION = 2
STATS_FILE = "packing_stats.json"


def training_sources(data_args: DataArguments) -> list[SourceSpec]:
    """The recipe's sources: its `mixture`, or the `documents` key as one source used whole.

    In a mixture, the one source without `path` or `dataset` reads the `documents` key, so a recipe's
    documents (or a `--documents` override) can be mixed without repeating the path.
    """
    specs = parse_mixture(data_args.mixture)
    if not specs:
        return [documents_source(data_args.documents, data_args.max_documents)]
    pathless = [s for s in specs if s.path is None and s.dataset is None]
    if pathless and not data_args.documents:
        raise ValueError(f"mixture source '{pathless[0].name}' has no 'path' or 'dataset' and 'documents' is "
                         "empty: give it a path, or name the documents")
    if data_args.documents and not pathless:
        raise ValueError("both 'documents' and 'mixture' are set but no mixture source reads the documents: "
                         "leave 'path' out of the source that should (it then reads 'documents'), or clear "
                         "documents with --documents ''")
    for spec in pathless:
        spec.path = list(data_args.documents)
    return specs


def bos_id_for(tokenizer: Any, rule: str) -> int | None:
    """The BOS id to prepend under `rule` (auto: only when the tokenizer adds BOS to plain text itself)."""
    bos = tokenizer.bos_token_id
    if rule == "never" or bos is None:
        return None
    if rule == "always":
        return bos
    ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    return bos if ids and ids[0] == bos else None


def cache_key(specs: list[SourceSpec], hub: dict[str, Dataset], tokenizer: Any, data_args: DataArguments) -> str:
    """A digest of everything the packs depend on."""
    digest = hashlib.sha256()
    for spec in specs:
        digest.update(source_fingerprint(spec, hub.get(spec.name)).encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    digest.update((backend.to_str() if backend is not None else repr(tokenizer.get_vocab())).encode())
    settings = {"version": PACKING_VERSION, "max_length": data_args.max_length,
                "shuffle_seed": data_args.shuffle_seed, "total": data_args.mixture_total_tokens,
                "add_bos": data_args.add_bos, "separate_documents": data_args.separate_documents,
                "eos": tokenizer.eos_token_id, "pad": tokenizer.pad_token_id, "bos": tokenizer.bos_token_id}
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def _tokenize_batch(batch: dict[str, list], tokenizer: Any, bos_id: int | None) -> dict[str, list]:
    out: dict[str, list] = {"input_ids": [], "labels": [], "num_tokens": [], "num_trained": []}
    for texts, trained in zip(batch["texts"], batch["train"]):
        segment_ids = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"] if texts else []
        _append(out, *tokenize_document(segment_ids, trained, eos_id=tokenizer.eos_token_id, bos_id=bos_id))
    return out


def _ids_batch(batch: dict[str, list], eos_id: int, bos_id: int | None, train: bool) -> dict[str, list]:
    """Pre-tokenised rows: the ids as one segment, BOS/EOS added as for text."""
    out: dict[str, list] = {"input_ids": [], "labels": [], "num_tokens": [], "num_trained": []}
    for ids in batch["ids"]:
        _append(out, *tokenize_document([list(map(int, ids))], [train], eos_id=eos_id, bos_id=bos_id))
    return out


def _append(out: dict[str, list], ids: list[int], labels: list[int]) -> None:
    out["input_ids"].append(ids)
    out["labels"].append(labels)
    out["num_tokens"].append(len(ids))
    out["num_trained"].append(sum(label != IGNORE_INDEX for label in labels))


def _tokenize_source(rows: Dataset, spec: SourceSpec, tokenizer: Any, data_args: DataArguments,
                     scratch: Path) -> Dataset:
    bos_id = bos_id_for(tokenizer, data_args.add_bos)
    if "ids" in rows.column_names:
        function, kwargs = _ids_batch, {"eos_id": tokenizer.eos_token_id, "bos_id": bos_id, "train": spec.train}
    else:
        function, kwargs = _tokenize_batch, {"tokenizer": tokenizer, "bos_id": bos_id}
    return rows.map(function, batched=True, batch_size=64, num_proc=data_args.preprocessing_num_workers,
                    remove_columns=rows.column_names, desc=f"tokenising {spec.name}", fn_kwargs=kwargs,
                    cache_file_name=str(scratch / f"{spec.name}-tokens.arrow"))


def _packs(rows: Dataset, max_length: int, pad_id: int, separate_documents: bool):
    stream = ((ids, labels) for batch in rows.iter(batch_size=256)
              for ids, labels in zip(batch["input_ids"], batch["labels"]))
    yield from pack_documents(stream, max_length, pad_id=pad_id, separate_documents=separate_documents)


def build_packed_dataset(data_args: DataArguments, tokenizer: Any, cache_root: str | Path) -> tuple[Dataset, dict]:
    """The packed training set and its statistics (documents, tokens, trained tokens, packs, padding, sources)."""
    specs = training_sources(data_args)
    hub = {spec.name: load_hub_source(spec) for spec in specs if spec.dataset is not None}
    key = cache_key(specs, hub, tokenizer, data_args)
    target = Path(cache_root) / key
    if (target / STATS_FILE).is_file():
        logger.info("loading packed data from %s", target)
        return load_from_disk(str(target)), json.loads((target / STATS_FILE).read_text())

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{key}-") as scratch:
        tokenized = {spec.name: _tokenize_source(load_source_rows(spec, Path(scratch), hub.get(spec.name)),
                                                 spec, tokenizer, data_args, Path(scratch)) for spec in specs}
        lengths = {name: np.asarray(rows["num_tokens"], dtype=np.int64) for name, rows in tokenized.items()}
        available = {}
        for spec in specs:
            capped = lengths[spec.name]
            if spec.max_documents is not None:  # the budget plan sees what the cap leaves
                capped = capped[np.random.default_rng(source_seed(data_args.shuffle_seed, spec.name))
                                .permutation(len(capped))[:spec.max_documents]]
            available[spec.name] = int(capped.sum())
        budgets = plan_budgets(specs, available, data_args.mixture_total_tokens)
        chosen, source_stats = [], {}
        for spec in specs:
            selection = select_documents(lengths[spec.name], budgets[spec.name],
                                         source_seed(data_args.shuffle_seed, spec.name), spec.max_documents)
            rows = tokenized[spec.name].select(selection.indices)
            if not len(rows):
                raise ValueError(f"no documents found in source {spec.describe()}")
            if selection.passes > 1:
                logger.warning("source %s is repeated %.2f times to meet its budget of %d tokens",
                               spec.describe(), selection.passes, selection.budget)
            chosen.append(rows)
            source_stats[spec.name] = _source_stats(spec, selection, rows)
        mixed = concatenate_datasets(chosen) if len(chosen) > 1 else chosen[0]
        if len(chosen) > 1:  # interleave the sources; a single source is already in its seeded order
            mixed = mixed.select(np.random.default_rng(data_args.shuffle_seed).permutation(len(mixed)))
        packed = Dataset.from_generator(
            _packs, cache_dir=scratch, fingerprint=key,
            gen_kwargs={"rows": mixed, "max_length": data_args.max_length, "pad_id": pad_id,
                        "separate_documents": data_args.separate_documents})
        stats = _stats(source_stats, packed, data_args, specs)
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
    for name, entry in stats["sources"].items():
        logger.info("source %s: %d documents, %d tokens (%.1f%% of the mix; budget %s; %.2f passes)", name,
                    entry["documents"], entry["tokens"], 100 * entry["share"], entry["budget_tokens"],
                    entry["passes"])
    return load_from_disk(str(target)), stats


def _source_stats(spec: SourceSpec, selection, rows: Dataset) -> dict[str, Any]:
    return {"weight": spec.weight, "budget_tokens": selection.budget, "available_tokens": selection.available_tokens,
            "documents": len(rows), "tokens": int(sum(rows["num_tokens"])),
            "trained_tokens": int(sum(rows["num_trained"])), "passes": round(selection.passes, 4),
            "spec": {k: v for k, v in asdict(spec).items() if v is not None}}


def _stats(sources: dict[str, dict], packed: Dataset, data_args: DataArguments,
           specs: list[SourceSpec]) -> dict[str, Any]:
    tokens = sum(entry["tokens"] for entry in sources.values())
    for entry in sources.values():
        entry["share"] = round(entry["tokens"] / max(1, tokens), 6)
    sequences = len(packed)
    return {"documents": sum(entry["documents"] for entry in sources.values()), "tokens": tokens,
            "trained_tokens": sum(entry["trained_tokens"] for entry in sources.values()), "sequences": sequences,
            "max_length": data_args.max_length, "pad_tokens": sequences * data_args.max_length - tokens,
            "documents_from": [spec.describe() for spec in specs], "sources": sources}
