"""The document budget after simulation: real token counts, the over-budget verdict, a record per repository.

`retrace.repo.budget` decides from an estimate which documents a repository becomes. Here each document
is measured once it exists, with the recipe's tokenizer (`dataset_card_tokenizer`) or, without one, the
`document_chars_per_token` ratio, each segment tokenized alone (as the dataset card counts). A part
whose trajectory document, or its no-search baseline, holds more tokens than the budget is **dropped**:
none of its artifacts is written (so the three training corpora keep the same repositories), and it is
counted with its real size in its record and in stats.json. Dropping rather than flagging keeps the
promise a trainer relies on (no document is longer than the budget); a drop means the estimate's
allowances are too small for the recipe's policy, and the log says so.

The record, `budget/<xx>/<name>.json` under the split's folder (retrace.data.layout's path), holds the decision (parts, skipped files with
their reason, estimates) and the measured tokens of every part's documents, per segment kind. It is
written after the repository's documents, so its presence marks the repository done for a resumed run,
and stats.json and the dataset card read their token figures from the records, not from one run's memory.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from retrace.atomic import write_json
from retrace.data.document import Document, raw_repository_document, trajectory_to_document
from retrace.data.export import export_repository
from retrace.data.layout import (
    BUDGET_RECORDS,
    CONTAMINATED,
    DOCUMENTS,
    TRAINING_FOLDERS,
    TRAJECTORIES,
    artifact_files,
    artifact_path,
    split_dir,
)
from retrace.data.trajectory import Trajectory
from retrace.repo.budget import BudgetDecision, TokenCounter, ratio_counter

logger = logging.getLogger(__name__)

# The paper's Figure 2b: mean tokens per document (Llama-3 tokenizer).
PAPER_MEAN_TOKENS = {"documents": 12_083, "raw_repos": 4_866}
# Segment kinds grouped as the token shares report them.
KIND_GROUPS = {"reasoning": ("think",), "agent_text": ("requirements", "plan", "delegate", "report"),
               "code": ("payload",), "markup": ("action", "header"), "observations": ("observation",)}


def token_counter(tokenizer: str | None, chars_per_token: float) -> tuple[TokenCounter, str]:
    """(texts -> token counts, how they are counted): the tokenizer when given, else the ratio."""
    if not tokenizer:
        return ratio_counter(chars_per_token), f"{chars_per_token:g} characters per token (no tokenizer)"
    from transformers import AutoTokenizer  # lazy: runs without a tokenizer need no transformers import

    tok = AutoTokenizer.from_pretrained(str(Path(tokenizer).expanduser()))
    tok.model_max_length = 10**12  # documents are counted whole; no model runs on them here

    def count(texts: Sequence[str]) -> list[int]:
        return [len(ids) for ids in tok(list(texts), add_special_tokens=False)["input_ids"]] if texts else []

    return count, f"tokenizer {tokenizer}"


@dataclass
class DocumentTokens:
    """Measured tokens of one part's documents; `kind_tokens` of the trajectory document, [trained, masked]."""

    documents: int
    no_search: int | None = None
    raw_repos: int | None = None
    kind_tokens: dict[str, list[int]] = field(default_factory=dict)

    def longest_trained_on(self) -> int:
        """The longest of the documents the budget holds for (the trajectory and its no-search baseline)."""
        return max(self.documents, self.no_search or 0)


def _segment_tokens(doc: Document, count: TokenCounter) -> tuple[int, dict[str, list[int]]]:
    kinds: dict[str, list[int]] = {}
    tokens = count([s.text for s in doc.segments])
    for segment, n in zip(doc.segments, tokens):
        kinds.setdefault(segment.kind, [0, 0])[0 if segment.train else 1] += n
    return sum(tokens), kinds


def measure(trajectory: Trajectory, files: dict[str, str], count: TokenCounter,
            no_search: Trajectory | None = None, raw_baseline: bool = True) -> DocumentTokens:
    """Tokens of the documents `export_repository` writes for this trajectory."""
    total, kinds = _segment_tokens(trajectory_to_document(trajectory), count)
    measured = DocumentTokens(total, kind_tokens=kinds)
    if no_search is not None:
        measured.no_search = _segment_tokens(trajectory_to_document(no_search), count)[0]
    if raw_baseline:
        measured.raw_repos = _segment_tokens(raw_repository_document(trajectory, files), count)[0]
    return measured


def over_budget(measured: DocumentTokens, budget_tokens: int) -> bool:
    return budget_tokens > 0 and measured.longest_trained_on() > budget_tokens


def record_path(output_dir: str | Path, split: str, repo: str) -> Path:
    return artifact_path(split_dir(output_dir, split), BUDGET_RECORDS, repo, ".json")


def write_record(output_dir: str | Path, split: str, decision: BudgetDecision,
                 measured: dict[str, DocumentTokens], counted_with: str) -> None:
    """The repository's record; written last, after every document of its parts (see the module docstring)."""
    documents = {name: {**asdict(m), "over_budget": over_budget(m, decision.budget_tokens)}
                 for name, m in measured.items()}
    write_json(record_path(output_dir, split, decision.repo),
               {**decision.to_dict(), "counted_with": counted_with, "documents": documents})


def export_within_budget(output_dir: str | Path, split: str, decision: BudgetDecision,
                         parts: Sequence[tuple[dict[str, str], Trajectory, Trajectory | None]], count: TokenCounter,
                         counted_with: str, raw_baseline: bool = True) -> dict[str, DocumentTokens]:
    """Export every part of one repository whose documents fit the budget, then write its record.

    `parts` are (files, trajectory, no-search trajectory or None), one per `decision.parts`, in order.
    """
    _remove_stale_parts(output_dir, split, decision)
    measured: dict[str, DocumentTokens] = {}
    for part, (files, trajectory, no_search) in zip(decision.parts, parts, strict=True):
        measured[part.name] = tokens = measure(trajectory, files, count, no_search, raw_baseline)
        if over_budget(tokens, decision.budget_tokens):
            logger.warning("%s: %d tokens (estimated %d) is over the budget of %d: not written, counted in %s",
                           part.name, tokens.longest_trained_on(), part.estimated_tokens, decision.budget_tokens,
                           record_path(output_dir, split, decision.repo))
            continue
        export_repository(output_dir, split, trajectory, files, raw_baseline, no_search=no_search)
    write_record(output_dir, split, decision, measured, counted_with)
    return measured


def _remove_stale_parts(output_dir: str | Path, split: str, decision: BudgetDecision) -> None:
    """Artifacts of parts an earlier decision made and this one does not (a changed budget): removed."""
    previous = read_record(output_dir, split, decision.repo)
    if previous is None:
        return
    base, kept = split_dir(output_dir, split), {p.name for p in decision.parts}
    for name in {p["name"] for p in previous["parts"]} - kept:
        for folder in (*TRAINING_FOLDERS, TRAJECTORIES):
            for root in (base, base / CONTAMINATED):
                artifact_path(root, folder, name).unlink(missing_ok=True)


def read_record(output_dir: str | Path, split: str, repo: str) -> dict[str, Any] | None:
    path = record_path(output_dir, split, repo)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def repository_done(output_dir: str | Path, split: str, repo: str, budget_tokens: int | None = None) -> bool:
    """True when the repository's record exists (every document of its parts was written, or dropped, before)
    and, when `budget_tokens` is given, was made under that budget (a changed budget re-decides the repository)."""
    record = read_record(output_dir, split, repo)
    return record is not None and (budget_tokens is None or record["budget_tokens"] == budget_tokens)


def document_names(output_dir: str | Path, split: str, repos: Iterable[str]) -> list[str]:
    """The names of the documents these repositories became (written, not dropped over the budget).

    A repository without a record (an output written before records existed) is its own document.
    """
    names = []
    for repo in repos:
        record = read_record(output_dir, split, repo)
        if record is None:
            names.append(repo)
            continue
        names += [p["name"] for p in record["parts"] if not record["documents"].get(p["name"], {}).get("over_budget")]
    return names


def _distribution(values: list[int]) -> dict[str, float | int]:
    if not values:
        return {"documents": 0}
    ordered = sorted(values)

    def quantile(q: float) -> float:
        position = q * (len(ordered) - 1)
        low, high = math.floor(position), math.ceil(position)
        return ordered[low] + (ordered[high] - ordered[low]) * (position - low)

    return {"documents": len(ordered), "mean": round(sum(ordered) / len(ordered), 1), "median": quantile(0.5),
            "p90": round(quantile(0.9), 1), "max": ordered[-1], "total": sum(ordered)}


def _shares(kind_tokens: dict[str, list[int]]) -> dict[str, dict[str, float]]:
    total = sum(t + m for t, m in kind_tokens.values())
    trained = sum(t for t, _ in kind_tokens.values())
    grouped: dict[str, list[int]] = {}
    for kind, (t, m) in kind_tokens.items():
        group = next((g for g, kinds in KIND_GROUPS.items() if kind in kinds), "other")
        cell = grouped.setdefault(group, [0, 0])
        cell[0] += t
        cell[1] += m
    order = [g for g in (*KIND_GROUPS, "other") if g in grouped]
    return {"of_all_tokens": {g: round(sum(grouped[g]) / total, 4) for g in order} if total else {},
            "of_trained_tokens": {g: round(grouped[g][0] / trained, 4) for g in order if grouped[g][0]}
            if trained else {}}


def budget_summary(output_dir: str | Path, split: str, repos: Iterable[str] | None = None) -> dict[str, Any]:
    """stats.json's `documents` block: the budget's decisions and the measured tokens per document.

    From the records on disk (all of the split's when `repos` is None), read one at a time (a run's records
    are not held at once); a part counts as written when its document is in `documents/` (a part
    decontamination dropped is not a training document any more).
    """
    base = split_dir(output_dir, split)
    if repos is None:
        records: Iterable[dict[str, Any]] = (json.loads(p.read_text(encoding="utf-8"))
                                             for p in artifact_files(base / BUDGET_RECORDS, ".json"))
    else:
        records = (r for repo in repos if (r := read_record(output_dir, split, repo)) is not None)
    first: dict[str, Any] | None = None
    repositories = repositories_split = parts = 0
    tokens: dict[str, list[int]] = {"documents": [], "no_search": [], "raw_repos": []}
    kinds: dict[str, list[int]] = {}
    skipped: Counter[str] = Counter()
    files_skipped: Counter[str] = Counter()
    tokens_skipped = 0
    estimated = measured_total = 0
    over: dict[str, int] = {}
    contaminated = 0
    for record in records:
        first = first or record
        repositories += 1
        repositories_split += _is_split(record)
        parts += len(record["parts"])
        for part in record["skipped"]:
            skipped[part["reason"]] += 1
            files_skipped[part["reason"]] += len(part["paths"])
            tokens_skipped += part["estimated_tokens"]
        for part in record["parts"]:
            m = record["documents"].get(part["name"])
            if m is None:
                continue
            if m["over_budget"]:
                over[part["name"]] = max(m["documents"], m["no_search"] or 0)
                continue
            if not artifact_path(base, DOCUMENTS, part["name"]).is_file():
                contaminated += artifact_path(base / CONTAMINATED, DOCUMENTS, part["name"]).is_file()
                continue
            for key in tokens:
                if m.get(key) is not None:
                    tokens[key].append(m[key])
            for kind, (t, masked) in m["kind_tokens"].items():
                cell = kinds.setdefault(kind, [0, 0])
                cell[0] += t
                cell[1] += masked
            if part["estimated_tokens"]:
                estimated += part["estimated_tokens"]
                measured_total += m["documents"]
    if first is None:
        return {}
    distributions = {key: _distribution(values) for key, values in tokens.items() if values}
    summary: dict[str, Any] = {
        "budget_tokens": first["budget_tokens"], "counted_with": first["counted_with"],
        "repositories": repositories, "repositories_split": repositories_split,
        "parts": parts, "documents_written": len(tokens["documents"]),
        "documents_over_budget": len(over), "over_budget": dict(sorted(over.items())),
        "documents_contaminated": contaminated,
        "parts_skipped": dict(sorted(skipped.items())), "files_skipped": dict(sorted(files_skipped.items())),
        "estimated_tokens_skipped": tokens_skipped, "tokens_per_document": distributions, "paper_mean_tokens": PAPER_MEAN_TOKENS,
        "token_shares": _shares(kinds),
    }
    if tokens["raw_repos"] and sum(tokens["raw_repos"]):
        summary["ratio_to_raw_repos"] = round(sum(tokens["documents"]) / sum(tokens["raw_repos"]), 3)
    if estimated:
        summary["measured_over_estimated"] = round(measured_total / estimated, 3)
    return summary


def _is_split(record: dict[str, Any]) -> bool:
    return BudgetDecision.from_dict(record).split


_CORPORA = (("documents", "documents"), ("no_search", "baselines/no_search"), ("raw_repos", "baselines/raw_repos"))


def card_section(output_dir: str | Path, splits: Iterable[str]) -> list[str]:
    """The dataset card's "Document length" section (markdown lines), from the records; [] without records."""
    summaries = {split: s for split in splits if (s := budget_summary(output_dir, split))}
    if not summaries:
        return []
    first = next(iter(summaries.values()))
    budget = f"{first['budget_tokens']:,} tokens" if first["budget_tokens"] else "none"
    lines = ["", "## Document length", "",
             f"Tokens per document, counted with {first['counted_with']} (each segment alone). Budget per document: "
             f"{budget}; a larger repository is split into sub-projects, a file alone over the budget is skipped, and "
             "a document measured over it is not written (retrace's docs/documents.md).", "",
             "| split | corpus | documents | mean | median | p90 | max |", "| --- |" + " --- |" * 6]
    for split, summary in summaries.items():
        for key, folder in _CORPORA:
            d = summary["tokens_per_document"].get(key)
            if d:
                lines.append(f"| {split} | `{folder}` | {d['documents']:,} | {d['mean']:,.0f} | {d['median']:,.0f} | "
                             f"{d['p90']:,.0f} | {d['max']:,} |")
    lines += [f"| paper | Repo2Agent-Search | - | {PAPER_MEAN_TOKENS['documents']:,} | - | - | - |",
              f"| paper | Raw-Repos | - | {PAPER_MEAN_TOKENS['raw_repos']:,} | - | - | - |", ""]
    paper_ratio = PAPER_MEAN_TOKENS["documents"] / PAPER_MEAN_TOKENS["raw_repos"]
    for split, s in summaries.items():
        skipped = ", ".join(f"{n:,} files ({reason})" for reason, n in s["files_skipped"].items()) or "none"
        ratio = f"{s['ratio_to_raw_repos']:.2f}x" if "ratio_to_raw_repos" in s else "-"
        shares = s["token_shares"]
        trained = ", ".join(f"{group.replace('_', ' ')} {share:.1%}"
                            for group, share in shares.get("of_trained_tokens", {}).items())
        masked = shares.get("of_all_tokens", {}).get("observations", 0.0)
        lines.append(f"- {split}: {s['repositories']:,} repositories became {s['documents_written']:,} documents "
                     f"({s['repositories_split']:,} split); skipped: {skipped}; {s['documents_over_budget']:,} "
                     f"documents over the budget not written. Trajectory/Raw-Repos tokens {ratio} (paper "
                     f"{paper_ratio:.2f}x). Trained tokens: {trained or '-'}; masked observations are {masked:.1%} "
                     "of all tokens.")
    return lines
