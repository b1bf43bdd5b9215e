"""The dataset card: `<output_dir>/README.md`, a Hugging Face card whose configs make the folder loadable.

`datasets.load_dataset(output_dir, "documents", split="train")` works because the card's YAML names
each config's `data_files`: the Parquet shards under `data/` when the finish step packed them
(retrace.data.pack), else the per-repository JSONL files; the packed folder pushed to the Hub loads the
same way. Every figure is
computed from the artifacts on disk (like stats.json), so a resumed run and a straight one write the
same card. Token counts need a tokenizer path and are skipped without one: characters are always there.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from retrace.atomic import write_text
from retrace.data.budget_check import card_section, token_counter
from retrace.data.document import Document
from retrace.data.layout import (
    CONFIGS,
    DOCUMENTS,
    HELDOUT,
    RAW_BASELINE,
    TRAJECTORIES,
    TRAJECTORY_CONFIGS,
    artifact_files,
    iter_jsonl,
)
from retrace.data.pack import shard_pattern

SPLITS = {"train": "", "heldout": f"{HELDOUT}/"}
MAX_SOURCES_LISTED = 50


@dataclass
class SplitCounts:
    """What one split holds; chars and tokens per segment kind as [trained, masked]."""

    repositories: int = 0
    files: int = 0
    documents: int = 0
    raw_documents: int = 0
    raw_chars: int = 0
    kind_chars: dict[str, list[int]] = field(default_factory=dict)
    kind_tokens: dict[str, list[int]] = field(default_factory=dict)
    text_sources: Counter = field(default_factory=Counter)
    sources: list[str] = field(default_factory=list)    # the first MAX_SOURCES_LISTED only
    source_count: int = 0
    licenses: Counter = field(default_factory=Counter)

    def total(self, table: dict[str, list[int]], trained: bool | None = None) -> int:
        return sum(t * (trained is not False) + m * (trained is not True) for t, m in table.values())


def _records(directory: Path) -> Iterator[dict[str, Any]]:
    """An artifact folder's records one at a time: the card is counted over 300k repositories in bounded memory."""
    return (record for _, _, record in iter_jsonl(artifact_files(directory)))


def _token_counter(tokenizer: str | None):
    """A function from texts to token counts, or None (no tokenizer: tokens are not reported)."""
    if not tokenizer:
        return None
    return token_counter(tokenizer, 1.0)[0]  # one way to count a corpus's tokens


def count_split(base: Path, count_tokens=None) -> SplitCounts:
    """Counts over one split's trajectories, documents and Raw-Repos baseline under `base`."""
    counts = SplitCounts()
    for traj in _records(base / TRAJECTORIES):
        counts.repositories += 1
        counts.files += len(traj["order"])
        counts.text_sources.update(traj["meta"].get("text_sources", {}))
        counts.source_count += 1
        if len(counts.sources) < MAX_SOURCES_LISTED:
            counts.sources.append(traj["source"])
        counts.licenses[traj["meta"].get("license") or "unknown"] += 1
    for record in _records(base / DOCUMENTS):
        counts.documents += 1
        segments = Document.from_dict(record).segments
        tokens = count_tokens([s.text for s in segments]) if count_tokens else [0] * len(segments)
        for seg, n_tokens in zip(segments, tokens):
            column = 0 if seg.train else 1
            counts.kind_chars.setdefault(seg.kind, [0, 0])[column] += len(seg.text)
            if count_tokens:
                counts.kind_tokens.setdefault(seg.kind, [0, 0])[column] += n_tokens
    for record in _records(base / RAW_BASELINE):
        counts.raw_documents += 1
        counts.raw_chars += len(Document.from_dict(record).text)
    return counts


def _jsonl_patterns(output_dir: Path, folder: str) -> list[str]:
    """The globs that find a folder's per-repository files: the hashed layout, and flat files of older runs."""
    files = artifact_files(output_dir / folder)
    flat = any(f.parent == output_dir / folder for f in files)
    return [p for p, present in ((f"{folder}/*/*.jsonl", len(files) > flat), (f"{folder}/*.jsonl", flat)) if present]


def front_matter(output_dir: Path, packed: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """The card's YAML: one config per artifact that holds data, pointing at its Parquet shards when `packed`
    (`{config: shard paths}` from retrace.data.pack) and at its JSONL files otherwise. Trajectories are a
    config only when packed: their JSONL records vary too much for `datasets`' JSON schema inference."""
    configs = []
    for name, (folder, split) in CONFIGS.items():
        if packed is not None:
            paths = [shard_pattern(name, split, len(packed[name]))] if packed.get(name) else []
        else:
            paths = [] if name in TRAJECTORY_CONFIGS else _jsonl_patterns(output_dir, folder)
        if paths:
            entry: dict[str, Any] = {"config_name": name,
                                     "data_files": [{"split": split, "path": paths[0] if len(paths) == 1 else paths}]}
            if name == "documents":
                entry["default"] = True
            configs.append(entry)
    return {"pretty_name": f"retrace trajectories ({output_dir.name})", "license": "other",
            "task_categories": ["text-generation"], "tags": ["code", "synthetic", "agent-trajectories", "retrace"],
            "configs": configs}


def _kind_table(counts: SplitCounts) -> str:
    tokens = bool(counts.kind_tokens)
    head = "| kind | trained chars | masked chars |" + (" trained tokens | masked tokens |" if tokens else "")
    rows = [head, "|" + " --- |" * (5 if tokens else 3)]
    for kind, (trained, masked) in sorted(counts.kind_chars.items()):
        row = f"| {kind} | {trained:,} | {masked:,} |"
        if tokens:
            t, m = counts.kind_tokens.get(kind, [0, 0])
            row += f" {t:,} | {m:,} |"
        rows.append(row)
    return "\n".join(rows)


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "-"


def render_card(output_dir: Path, splits: dict[str, SplitCounts], tokenizer: str | None,
                packed: dict[str, list[str]] | None = None) -> str:
    meta = front_matter(output_dir, packed)
    trajectories_note = (
        "Trajectories (the un-flattened steps, with their `meta` and, on some steps, the `grounding`, `plan` and "
        "`search` records) are the `trajectories` config, `steps` and `meta` as JSON strings, like every `meta` "
        "in the Parquet shards (`json.loads(row['meta'])`)" if packed is not None else
        f"Trajectories (`{TRAJECTORIES}/<xx>/<name>.jsonl`: the un-flattened steps, with their `meta` and, on some "
        "steps, the `grounding`, `plan` and `search` records) are files, not a config")
    info_path, recipe_path = output_dir / "run_info.json", output_dir / "recipe.yaml"
    info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.is_file() else {}
    recipe = recipe_path.read_text(encoding="utf-8") if recipe_path.is_file() else "(no recipe.yaml found)\n"
    lines = [
        "---", yaml.safe_dump(meta, sort_keys=False).rstrip(), "---", "",
        f"# {meta['pretty_name']}", "",
        "Synthetic agent trajectories made by retrace from real repositories: a main agent "
        "writes requirements and a file-level plan, sub-agents Read the files they depend on and Write each file "
        "in development order. Every Read observation and every Write payload is the real file. Each repository "
        "is one document of segments `{text, train, kind, path}`; its text is the concatenation of the segment "
        "texts, and `train` says whether a segment's tokens carry loss (observations do not).", "",
        "## Loading", "", "```python", "from datasets import load_dataset", "",
        f'documents = load_dataset("{output_dir}", "documents", split="train")',
        f'baseline = load_dataset("{output_dir}", "raw_repos", split="train")   # Raw-Repos: files concatenated',
        f'heldout = load_dataset("{output_dir}", "heldout", split="test")',
        "```", "",
        "Configs: " + ", ".join(f"`{c['config_name']}` ({_paths_text(c)})" for c in meta["configs"])
        + f". {trajectories_note}; the format is in retrace's docs/formats.md.", "",
        "## Contents", "",
        "| split | repositories | files | documents | Raw-Repos documents | document chars | trained share "
        "| mean chars per document | mean Raw-Repos chars |",
        "| --- |" + " --- |" * 8,
    ]
    for split, c in splits.items():
        chars = c.total(c.kind_chars)
        lines.append(f"| {split} | {c.repositories:,} | {c.files:,} | {c.documents:,} | {c.raw_documents:,} | "
                     f"{chars:,} | {_share(c.total(c.kind_chars, True), chars)} | "
                     f"{chars // c.documents if c.documents else 0:,} | "
                     f"{c.raw_chars // c.raw_documents if c.raw_documents else 0:,} |")
    for split, c in splits.items():
        lines += ["", f"### Segment kinds: {split}", "", _kind_table(c)]
        if c.kind_tokens:
            tokens = c.total(c.kind_tokens)
            lines += ["", f"{tokens:,} tokens, {_share(c.total(c.kind_tokens, True), tokens)} trained "
                      f"(tokenizer `{tokenizer}`, each segment tokenized alone)."]
    if not tokenizer:
        lines += ["", "Token counts were not computed (no tokenizer given); characters are exact."]
    lines += card_section(output_dir, list(splits))  # tokens per document, from budget/ records
    lines += ["", "## Who wrote the text", "", "Text steps by author (`fallback:<reason>`: a model reply was "
              "replaced by the grounded structural text).", "", "| split | author | steps |", "| --- | --- | --- |"]
    lines += [f"| {s} | {k} | {v:,} |" for s, c in splits.items() for k, v in sorted(c.text_sources.items())]
    lines += ["", "## Sources", ""]
    for split, c in splits.items():
        shown = ", ".join(f"`{s}`" for s in c.sources)
        more = f" and {c.source_count - len(c.sources):,} more" if c.source_count > len(c.sources) else ""
        licences = ", ".join(f"{k} ({v})" for k, v in c.licenses.most_common())
        lines.append(f"- {split}: {shown or 'none'}{more}. Licences: {licences or '-'}.")
    lines += ["", "Each repository keeps its own licence; `license: other` above says only that this "
              "collection has no single one.", "", "## Provenance", "",
              f"- retrace git revision: `{info.get('git_revision', 'unknown')}`",
              f"- command: `synthesize.py {' '.join(info.get('argv', []))}`",
              f"- written: {info.get('time', 'unknown')}", "", "Resolved recipe (`recipe.yaml`):", "",
              "```yaml", recipe.rstrip(), "```", ""]
    return "\n".join(lines)


def _paths_text(config: dict[str, Any]) -> str:
    path = config["data_files"][0]["path"]
    return ", ".join(path) if isinstance(path, list) else path


def write_dataset_card(output_dir: str | Path, tokenizer: str | None = None,
                       packed: dict[str, list[str]] | None = None) -> Path:
    """Write `<output_dir>/README.md` from the artifacts on disk; `tokenizer` (a local path) adds token counts;
    `packed` (retrace.data.pack's `{config: shards}`) points the configs at the Parquet shards."""
    output_dir = Path(output_dir)
    count_tokens = _token_counter(tokenizer)
    splits = {split: count_split(output_dir / prefix, count_tokens) for split, prefix in SPLITS.items()}
    splits = {s: c for s, c in splits.items() if c.repositories or c.documents or s == "train"}
    card = output_dir / "README.md"
    write_text(card, render_card(output_dir, splits, tokenizer, packed))
    return card
