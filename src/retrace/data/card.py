"""The dataset card: `<output_dir>/README.md`, a Hugging Face card whose configs make the folder loadable.

`datasets.load_dataset(output_dir, "documents", split="train")` works because the card's YAML names
each config's `data_files`; the same folder pushed to the Hub loads the same way. Every figure is
computed from the artifacts on disk (like stats.json), so a resumed run and a straight one write the
same card. Token counts need a tokenizer path and are skipped without one: characters are always there.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from retrace.atomic import write_text
from retrace.data.budget_check import card_section, token_counter
from retrace.data.document import Document
from retrace.data.export import DOCUMENTS, HELDOUT, NO_SEARCH_BASELINE, RAW_BASELINE, TRAJECTORIES

# config name -> (folder relative to the output directory, split name)
CONFIGS = {
    "documents": (DOCUMENTS, "train"),
    "raw_repos": (RAW_BASELINE, "train"),
    "no_search": (NO_SEARCH_BASELINE, "train"),
    "heldout": (f"{HELDOUT}/{DOCUMENTS}", "test"),
    "heldout_raw_repos": (f"{HELDOUT}/{RAW_BASELINE}", "test"),
}
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
    sources: list[str] = field(default_factory=list)
    licenses: Counter = field(default_factory=Counter)

    def total(self, table: dict[str, list[int]], trained: bool | None = None) -> int:
        return sum(t * (trained is not False) + m * (trained is not True) for t, m in table.values())


def _records(directory: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted(directory.glob("*.jsonl")) if directory.is_dir() else []:
        with open(path, encoding="utf-8") as handle:
            out.extend(json.loads(line) for line in handle if line.strip())
    return out


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


def front_matter(output_dir: Path) -> dict[str, Any]:
    """The card's YAML: one config per artifact folder that holds documents."""
    configs = []
    for name, (folder, split) in CONFIGS.items():
        if any((output_dir / folder).glob("*.jsonl")):
            entry: dict[str, Any] = {"config_name": name, "data_files": [{"split": split, "path": f"{folder}/*.jsonl"}]}
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


def render_card(output_dir: Path, splits: dict[str, SplitCounts], tokenizer: str | None) -> str:
    meta = front_matter(output_dir)
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
        "Configs: " + ", ".join(f"`{c['config_name']}` ({c['data_files'][0]['path']})" for c in meta["configs"])
        + ". Trajectories (`trajectories/*.jsonl`: the un-flattened steps, with their `meta` and, on some steps, "
        "the `grounding`, `plan` and `search` records) are files, not a config; the format is in retrace's "
        "docs/formats.md.", "",
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
        shown = ", ".join(f"`{s}`" for s in c.sources[:MAX_SOURCES_LISTED])
        more = f" and {len(c.sources) - MAX_SOURCES_LISTED:,} more" if len(c.sources) > MAX_SOURCES_LISTED else ""
        licences = ", ".join(f"{k} ({v})" for k, v in c.licenses.most_common())
        lines.append(f"- {split}: {shown or 'none'}{more}. Licences: {licences or '-'}.")
    lines += ["", "Each repository keeps its own licence; `license: other` above says only that this "
              "collection has no single one.", "", "## Provenance", "",
              f"- retrace git revision: `{info.get('git_revision', 'unknown')}`",
              f"- command: `synthesize.py {' '.join(info.get('argv', []))}`",
              f"- written: {info.get('time', 'unknown')}", "", "Resolved recipe (`recipe.yaml`):", "",
              "```yaml", recipe.rstrip(), "```", ""]
    return "\n".join(lines)


def write_dataset_card(output_dir: str | Path, tokenizer: str | None = None) -> Path:
    """Write `<output_dir>/README.md` from the artifacts on disk; `tokenizer` (a local path) adds token counts."""
    output_dir = Path(output_dir)
    count_tokens = _token_counter(tokenizer)
    splits = {split: count_split(output_dir / prefix, count_tokens) for split, prefix in SPLITS.items()}
    splits = {s: c for s, c in splits.items() if c.repositories or c.documents or s == "train"}
    card = output_dir / "README.md"
    write_text(card, render_card(output_dir, splits, tokenizer))
    return card
