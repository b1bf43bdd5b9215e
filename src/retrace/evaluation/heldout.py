"""Held-out reconstruction: how likely is each real file of an unseen repository, given what preceded it?

For every Write payload (a real file) of a held-out trajectory document, the model scores the file's
tokens given one of two contexts:
- `trajectory`: everything before the payload in the trajectory document (requirements, plan, the
  sub-agents' thinks, reads of dependencies, the earlier files, the `<write path=...>` header);
- `raw`: the Raw-Repos baseline, the earlier files concatenated in development order exactly as
  `raw_repository_document` writes them, up to the file's own `<file path=...>` header.
Both contexts score the very same target tokens, so their NLLs compare directly. Metrics are
token-weighted over all scored tokens (sum of NLL / number of tokens), in nats per token, with
perplexity = exp(nll) and bits per byte (comparable across tokenizers). Their 95% intervals resample
files (a file's contexts together) and recompute the token-weighted means (`retrace.evaluation.intervals`).

Cost caps (counted in the details): `max_files` keeps that many files over the whole set, shared out
round-robin across repositories and spread evenly along each repository's development order;
`max_target_tokens_per_file` scores only a file's first N tokens.

Scoring goes through the model's engine, whichever the recipe names: `hf` (forward passes), `vllm`
in-process or a vLLM server (`openai`) by prompt log-probabilities; the tokenisation and windows are the
same rules in every engine (`retrace.llm.scoring`), so the numbers agree within float tolerance.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from retrace.data import Document, Trajectory, raw_repository_document, read_documents
from retrace.evaluation.intervals import Resampling
from retrace.evaluation.tasks import Task, TaskResult
from retrace.llm import RequestsFailed, engine_location
from retrace.recipe import RecipeError

if TYPE_CHECKING:
    from retrace.evaluation.config import EvaluationConfig
    from retrace.evaluation.models import ModelUnderTest


@dataclass(frozen=True)
class FileTarget:
    """One real file to reconstruct, with each context it can be scored under."""

    repo: str
    path: str
    position: int          # index of the file in the repository's development order
    text: str
    contexts: dict[str, str]


def heldout_documents_path(heldout: str | None) -> Path:
    """`<heldout>/documents` when it exists (a synthesize run's `heldout/`), else `heldout` itself."""
    if not heldout:
        raise RecipeError("key 'heldout' is required by task heldout_nll: give a synthesize run's heldout/ dir")
    root = Path(heldout).expanduser()
    if not root.exists():
        raise RecipeError(f"key 'heldout': path does not exist: {heldout}")
    return root / "documents" if (root / "documents").is_dir() else root


def payload_indices(doc: Document) -> list[int]:
    """Segment indices of the document's real files, first occurrence of each path, in document order."""
    seen, found = set(), []
    for i, segment in enumerate(doc.segments):
        if segment.kind == "payload" and segment.path and segment.path not in seen:
            seen.add(segment.path)
            found.append(i)
    return found


def raw_contexts(doc: Document) -> dict[str, str]:
    """For each file path: the Raw-Repos document's text before that file's content.

    Rebuilt from the trajectory document's payloads (the real files, in development order), so it
    needs no other artifact; it differs from the exported baseline only by the headers of empty files.
    """
    indices = payload_indices(doc)
    order = [doc.segments[i].path for i in indices]
    files = {doc.segments[i].path: doc.segments[i].text for i in indices}
    raw = raw_repository_document(Trajectory(doc.repo, str(doc.meta.get("source", "")), order, []), files)
    contexts, prefix = {}, []
    for segment in raw.segments:
        if segment.kind == "payload":
            contexts[segment.path] = "".join(prefix)
        prefix.append(segment.text)
    return contexts


def spread(n: int, k: int) -> list[int]:
    """k indices out of range(n), evenly spaced (each the middle of its share), increasing."""
    k = min(n, k)
    return [int((i + 0.5) * n / k) for i in range(k)]


def select_files(candidates: dict[str, list[int]], max_files: int) -> dict[str, list[int]]:
    """Cap the total: quotas dealt round-robin over repositories, files spread along each repo's order."""
    if not max_files:
        return candidates
    quota = dict.fromkeys(candidates, 0)
    left = max_files
    while left > 0 and any(quota[r] < len(c) for r, c in candidates.items()):
        for repo, cands in candidates.items():
            if left > 0 and quota[repo] < len(cands):
                quota[repo] += 1
                left -= 1
    return {repo: [cands[i] for i in spread(len(cands), quota[repo])] for repo, cands in candidates.items()}


@dataclass
class HeldoutSet:
    targets: list[FileTarget]
    counts: dict[str, int]


def build_heldout_set(documents: list[Document], contexts: list[str], max_files: int = 0) -> HeldoutSet:
    """The files to score and their contexts; empty files are skipped and counted."""
    candidates: dict[str, list[int]] = {}
    docs_by_repo: dict[str, Document] = {}
    counts = {"documents": len(documents), "files_total": 0, "files_empty": 0}
    for doc in documents:
        if doc.repo in docs_by_repo:
            raise ValueError(f"held-out repository {doc.repo!r} appears twice")
        docs_by_repo[doc.repo] = doc
        indices = payload_indices(doc)
        counts["files_total"] += len(indices)
        kept = [i for i in indices if doc.segments[i].text]
        counts["files_empty"] += len(indices) - len(kept)
        candidates[doc.repo] = kept
    chosen = select_files(candidates, max_files)
    targets = []
    for repo, indices in chosen.items():
        doc = docs_by_repo[repo]
        raw = raw_contexts(doc) if "raw" in contexts else {}
        order = {i: n for n, i in enumerate(payload_indices(doc))}
        for i in indices:
            segment = doc.segments[i]
            texts = {"trajectory": "".join(s.text for s in doc.segments[:i]), "raw": raw.get(segment.path, "")}
            targets.append(FileTarget(repo, segment.path, order[i], segment.text, {c: texts[c] for c in contexts}))
    counts["files_selected"] = len(targets)
    counts["files_skipped_by_max_files"] = counts["files_total"] - counts["files_empty"] - len(targets)
    return HeldoutSet(targets, counts)


def prepare(config: EvaluationConfig, options: None = None) -> HeldoutSet:
    path = heldout_documents_path(config.heldout)
    documents = read_documents(path)
    if not documents:
        raise RecipeError(f"key 'heldout': no documents (*.jsonl) found in {path}")
    heldout = build_heldout_set(documents, list(config.contexts), config.max_files)
    heldout.counts["documents_path"] = str(path)
    return heldout


def _summary(nll_sum: float, tokens: int, n_bytes: int, files: int) -> dict[str, float]:
    nll = nll_sum / tokens if tokens else math.nan
    return {"nll": nll, "ppl": math.exp(nll) if tokens else math.nan,
            "bits_per_byte": nll_sum / (math.log(2) * n_bytes) if n_bytes else math.nan,
            "tokens": tokens, "files": files}


def _add(total: list[float], row: dict) -> None:
    total[0] += row["nll_sum"]
    total[1] += row["n_tokens"]
    total[2] += row["n_bytes"]
    total[3] += 1


def context_metrics(rows: list[dict], contexts: list[str]) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Token-weighted summaries per context and the table's metrics, from per-(file, context) records.

    The task's metrics and their bootstrap (which resamples files, both contexts of a file together) both
    come from here, so an interval is always around the very number in the table.
    """
    totals: dict[str, list[float]] = {c: [0.0, 0, 0, 0] for c in contexts}
    for row in rows:
        if row["context"] in totals:
            _add(totals[row["context"]], row)
    per_context = {c: _summary(*totals[c]) for c in contexts}
    metrics: dict[str, float] = {}
    for context, summary in per_context.items():
        for key in ("nll", "ppl", "bits_per_byte"):
            metrics[f"{context}/{key}"] = summary[key]
    if {"trajectory", "raw"} <= set(contexts):
        # Positive: the trajectory makes the real code more likely than the raw files alone do.
        metrics["trajectory_gain/nll"] = per_context["raw"]["nll"] - per_context["trajectory"]["nll"]
    return per_context, metrics


def _resampled_metrics(files: list[list[dict]], options: None = None) -> dict[str, float]:
    rows = [row for file_rows in files for row in file_rows]
    return context_metrics(rows, list(dict.fromkeys(row["context"] for row in rows)))[1]


def _score(model: ModelUnderTest, pairs: list) -> list:
    """The engine's scores; a scoring request that failed for good (a server's) fails the task, naming it."""
    from retrace.llm.openai_engine import ScoringFailed

    engine = model.engine
    failed_before = engine.usage.failed
    try:
        return engine.score_ids(pairs, desc=f"{model.name}: heldout_nll")
    except ScoringFailed as error:
        failed = engine.usage.failed - failed_before
        raise RequestsFailed(f"{model.name}: heldout_nll scoring on {engine_location(engine)} failed: {error}",
                             failed=failed, requests=len(pairs)) from error


def run(model: ModelUnderTest, heldout: HeldoutSet, config: EvaluationConfig, options: None = None) -> TaskResult:
    """Score every selected file under every context; aggregate token-weighted, overall and per repo."""
    engine = model.engine
    cap = config.max_target_tokens_per_file
    pairs, rows = [], []
    tokens_total = 0
    for target in heldout.targets:
        target_ids = engine.encode_target(target.text)
        scored_ids = target_ids[:cap] if cap else target_ids
        tokens_total += len(target_ids)
        scored_text = target.text if len(scored_ids) == len(target_ids) else engine.tokenizer.decode(scored_ids)
        for context in config.contexts:
            pairs.append((engine.encode_context(target.contexts[context]), scored_ids))
            rows.append({"repo": target.repo, "path": target.path, "position": target.position,
                         "context": context, "n_target_tokens": len(target_ids),
                         "n_bytes": len(scored_text.encode("utf-8"))})
    scores = _score(model, pairs)
    totals: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0, 0, 0])
    for row, score in zip(rows, scores):
        row.update(n_tokens=score.n_tokens, nll_sum=score.nll_sum, nll=score.mean)
        _add(totals[(row["context"], row["repo"])], row)
    per_context, metrics = context_metrics(rows, config.contexts)
    per_repo = {repo: {c: _summary(*totals[(c, repo)]) for c in config.contexts}
                for repo in sorted({t.repo for t in heldout.targets})}
    scored = per_context[config.contexts[0]]["tokens"]
    counts = {**heldout.counts, "tokens_scored_per_context": scored,
              "tokens_dropped_by_max_target_tokens": tokens_total - scored}
    details = {"per_context": per_context, "per_repo": per_repo, "counts": counts,
               "settings": {"max_context_tokens": config.max_context_tokens,
                            "max_chunk_tokens": config.max_chunk_tokens,
                            "max_target_tokens_per_file": cap, "max_files": config.max_files},
               "summary": (f"{counts['files_selected']} of {counts['files_total']} files in "
                           f"{counts['documents']} held-out repositories, {scored} tokens scored per context "
                           f"({counts['tokens_dropped_by_max_target_tokens']} beyond the per-file cap); "
                           f"window: {config.max_context_tokens} context tokens")}
    return TaskResult(metrics=metrics, details=details, records=rows)


HELDOUT_NLL = Task(
    name="heldout_nll",
    description="NLL of held-out repositories' real files given the trajectory or the raw-repository context",
    prepare=prepare,
    run=run,
    chart_metrics=lambda config, options: [f"{c}/nll" for c in config.contexts],
    chart_label="held-out code NLL (nats/token, lower is better)",
    scores=True,
    resampling=Resampling(unit=lambda row: (row["repo"], row["path"]), metrics=_resampled_metrics,
                          unit_name="files"),
)
