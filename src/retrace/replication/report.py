"""The replication's report: `report.md` and its PNGs, written from the run's artifacts and nothing else.

Each figure and each number names the file it comes from; the paper's numbers stand beside ours only where
the paper published one (DESIGN.md's table, `retrace.evaluation.paper_table.ROWS`). The closing paragraph,
"What this shows and does not show", is assembled from the numbers: whether each difference's 95% interval
excludes 0 in every seed, how the search moved the code's NLL and the Think length, how the document
lengths compare with the paper's. A number the run did not produce is "-" with the reason, never filled in.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from retrace.atomic import write_text
from retrace.data.budget_check import PAPER_MEAN_TOKENS
from retrace.replication import artifacts, figures
from retrace.replication.artifacts import Difference, MetricValue, read_json
from retrace.replication.pipeline import ARMS, BASE, MANIFEST, model_name

# Our metric -> the paper's row (its benchmark name in paper_table.ROWS) and the factor to its unit (percent).
PAPER_ROWS = {("ruler", "mean"): ("RULER @64k", 1.0), ("humaneval", "pass@1"): ("HumanEval", 100.0),
              ("aptbench", "average"): ("APTBench (average)", 1.0)}
# The headline comparison the paper makes, and the metric that measures reconstruction here.
KEY_PAIRS = (("repo2agent-search", "raw-repos"), ("repo2agent", "raw-repos"), ("repo2agent-search", "repo2agent"))
LABELS = {arm.name: arm.label for arm in ARMS} | {BASE: "base (untrained)"}


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:,.{digits}f}"


def _cell(value: MetricValue | None, scale: float = 1.0, digits: int = 3) -> str:
    if value is None:
        return "-"
    text = _fmt(value.estimate * scale, digits)
    if value.interval:
        text += f" [{_fmt(value.interval[0] * scale, digits)}, {_fmt(value.interval[1] * scale, digits)}]"
    return text


def _paper(benchmark: str) -> dict[str, float | None]:
    from retrace.evaluation.paper_table import PAPER_COLUMNS, ROWS

    row = next((r for r in ROWS if r.benchmark == benchmark), None)
    return dict(zip(PAPER_COLUMNS, row.paper)) if row else {}


def _arm_cell(models: dict[str, Any], arm_name: str, seeds: list[int], task: str, metric: str,
              scale: float = 1.0) -> str:
    """One seed: `estimate [low, high]`; several: the mean over seeds, then each seed's cell."""
    names = [BASE] if arm_name == BASE else [model_name(a, s) for s in seeds for a in ARMS if a.name == arm_name]
    values = [(n, artifacts.metric_value(models.get(n, {}).get("tasks", {}).get(task, {}), metric)) for n in names]
    found = [(n, v) for n, v in values if v is not None]
    if not found:
        return "-"
    if len(found) == 1:
        return _cell(found[0][1], scale)
    mean = artifacts.mean([v.estimate * scale for _, v in found])
    return f"{_fmt(mean)} (" + "; ".join(f"s{n.rpartition('-s')[2]} {_cell(v, scale)}" for n, v in found) + ")"


def _difference_phrase(diff: Difference, lower_is_better: bool) -> str:
    """Plain words for one comparison, from its per-seed intervals and the over-seeds one."""
    seeds = sorted(diff.per_seed)
    parts = []
    for seed in seeds:
        entry = diff.per_seed[seed]
        interval = entry.get("interval")
        bounds = f" [{_fmt(interval[0], 4)}, {_fmt(interval[1], 4)}]" if interval else " (no interval)"
        parts.append(f"s{seed} {entry['difference']:+.4f}{bounds}")
    excluded = [bool(diff.per_seed[s].get("excludes_zero")) for s in seeds]
    signs = {math.copysign(1, diff.per_seed[s]["difference"]) for s in seeds if diff.per_seed[s]["difference"]}
    better = "lower" if lower_is_better else "higher"
    first = diff.per_seed[seeds[0]]["difference"]
    direction = ("better" if (first < 0) == lower_is_better else "worse") if first else "equal"
    later, earlier = LABELS.get(diff.later, diff.later), LABELS.get(diff.earlier, diff.earlier)
    over = diff.over_seeds
    if all(excluded) and len(signs) == 1:
        verdict = (f"**{later} is {direction}** than {earlier} ({better} is better): the 95% interval excludes 0 in "
                   f"every seed")
        if over and over[1] <= 0 <= over[2]:
            verdict += ", though the t-interval over seeds includes 0 (the seeds' spread is as large as the effect)"
    elif all(excluded):
        verdict = (f"{later} vs {earlier}: every seed's interval excludes 0, but on opposite sides, so the sign "
                   "depends on the seed")
    elif any(excluded):
        verdict = (f"{later} vs {earlier}: the interval excludes 0 in {sum(excluded)} of {len(seeds)} seeds only, so "
                   "the seeds disagree or the effect is at the edge of what this sample resolves")
    else:
        verdict = f"{later} and {earlier} cannot be told apart here: every seed's interval includes 0"
    seeds_text = (f"; over seeds {over[0]:+.4f} [{_fmt(over[1], 4)}, {_fmt(over[2], 4)}] (t-interval, "
                  f"{len(seeds)} seeds)" if over else "")
    return f"{verdict} ({', '.join(parts)}{seeds_text})."


def _lower_is_better(task: str, metric: str) -> bool:
    return task == "heldout_nll" or metric.endswith("nll") or metric.endswith("ppl")


def _synthesis_facts(synth_dir: Path) -> dict[str, Any]:
    recipe = yaml.safe_load((synth_dir / "recipe.yaml").read_text(encoding="utf-8")) if (
        synth_dir / "recipe.yaml").is_file() else {}
    stats = read_json(synth_dir / "stats.json") if (synth_dir / "stats.json").is_file() else {}
    refine = read_json(synth_dir / "refine_stats.json") if (synth_dir / "refine_stats.json").is_file() else {}
    return {"recipe": recipe, "stats": stats, "refine": refine.get("summary", {})}


def build_report(output_dir: Path) -> Path:
    """Write `<output_dir>/report.md` and its figures from a replication's outputs; returns the report's path."""
    output_dir = Path(output_dir)
    manifest = read_json(output_dir / MANIFEST)
    seeds = list(manifest["seeds"])
    synth_dir, eval_dir = output_dir / "synth", output_dir / "eval"
    synth = _synthesis_facts(synth_dir)
    results = read_json(eval_dir / "results.json")
    models = results.get("models", {})
    lines = ["# Replication of the paper's comparison (miniature)", "",
             f"Written by `python -m retrace.replication` from the run in `{output_dir}`: its driver record "
             f"`{MANIFEST}`, the synthesis in `synth/`, the trained models in `models/`, the evaluation in `eval/`. "
             "Every figure and number below names its source file.", ""]
    lines += _what_ran(output_dir, manifest, synth, models)

    # Figures
    figs = output_dir / "figures"
    curves = {model_name(a, s): artifacts.loss_history(output_dir / "models" / model_name(a, s)) for s in seeds
              for a in ARMS}
    figures.loss_curves(curves, figs / "loss.png", "models/<arm>-s<seed>/trainer_state.json (log_history)")
    tokens = artifacts.document_tokens(synth_dir)
    figures.document_lengths(tokens, dict(PAPER_MEAN_TOKENS), figs / "document_tokens.png",
                             "synth/budget/<xx>/<name>.json (measured tokens per document)")
    has_search = bool(synth["refine"].get("nll"))
    if has_search:
        figures.search_curve(synth["refine"], figs / "search.png", "synth/refine_stats.json (summary)")
    headline = artifacts.headline_metrics(results)
    bars = {(t, m): {n: v for n in models
                     if (v := artifacts.metric_value(models[n].get("tasks", {}).get(t, {}), m)) is not None}
            for t, m, _ in headline}
    figures.benchmark_bars(bars, {(t, m): label for t, m, label in headline}, figs / "benchmarks.png",
                           "eval/results.json (metrics, intervals)")
    with_interval = sum(v.interval is not None for per in bars.values() for v in per.values())
    lines += ["## Figures", "",
              "![training loss](figures/loss.png)", "",
              "Training loss per optimizer step of every arm and seed (source: `models/<arm>-s<seed>/trainer_state.json`). "
              "The arms train on different text (observations are masked in the two trajectory arms), so their losses "
              "are not comparable with each other; the curves show that each run trained.", "",
              "![tokens per document](figures/document_tokens.png)", "",
              "Tokens per training document of each corpus, the paper's Figure 2b (source: `synth/budget/` records, "
              "counted with the recipe's tokenizer; the red line is the paper's mean, Llama-3 tokens).", ""]
    if has_search:
        lines += ["![search](figures/search.png)", "",
                  "The real code's NLL and the mean Think length per search iteration, the paper's Figure 3 "
                  "(source: `synth/refine_stats.json`, `summary`).", ""]
    else:
        lines += ["No search figure: `synth/refine_stats.json` holds no searched step (was `refine` off?).", ""]
    lines += ["![benchmarks](figures/benchmarks.png)", "",
              f"Each evaluated model's headline metrics with 95% bootstrap intervals (source: `eval/results.json`; "
              f"{with_interval} of {sum(len(p) for p in bars.values())} bars carry an interval; a hatched bar has none "
              "in the results, and none is drawn).", ""]

    lines += _paper_table(synth, tokens, models, seeds, headline)
    differences = artifacts.arm_differences(eval_dir, seeds) if models else []
    lines += _differences_table(differences)
    lines += _shows_paragraph(output_dir, differences, synth, tokens, manifest, results)
    path = output_dir / "report.md"
    write_text(path, "\n".join(lines) + "\n")
    return path


def _what_ran(output_dir: Path, manifest: dict[str, Any], synth: dict[str, Any], models: dict[str, Any]) -> list[str]:
    recipe = synth["recipe"]
    lines = ["## What ran", "",
             f"- Synthesis (`synth/recipe.yaml`): trained on {', '.join(map(str, recipe.get('sources', []))) or '-'}; "
             f"held out {', '.join(map(str, recipe.get('heldout_sources', []))) or '-'}; policy "
             f"`{recipe.get('policy_backend', '-')}`, proposer `{recipe.get('proposer_backend', '-')}`, search "
             f"{recipe.get('refine_iterations', '-')} iterations x {recipe.get('refine_candidates', '-')} rewrites."]
    for name in [model_name(a, s) for s in manifest["seeds"] for a in ARMS]:
        path = output_dir / "models" / name / "train_results.json"
        if not path.is_file():
            lines.append(f"- `{name}`: no train_results.json")
            continue
        train_results = read_json(path)
        train, data = train_results.get("train", {}), train_results.get("data", {})
        seen = train.get("num_input_tokens_seen") or train.get("global_step", 0) * train.get("global_batch_tokens", 0)
        lines.append(f"- `{name}` (`models/{name}/train_results.json`): {train.get('global_step', '-')} steps x "
                     f"{train.get('global_batch_tokens', '-')} tokens = {seen:,} tokens read; corpus "
                     f"{data.get('tokens', 0):,} tokens of which {data.get('trained_tokens', 0):,} carry loss; final "
                     f"train loss {_fmt(train.get('train_loss'))}.")
    lines.append(f"- Evaluation (`eval/results.json`): {', '.join(models)}.")
    seconds = manifest.get("seconds", {})
    if seconds:
        lines.append("- Wall time per stage (`replication.json`): " + ", ".join(
            f"{stage} {s / 60:.1f} min" for stage, s in seconds.items()) + f"; total {sum(seconds.values()) / 60:.1f} min.")
    lines += [f"- Note: {note}" for note in manifest.get("notes", [])]
    return [*lines, ""]


def _paper_table(synth: dict[str, Any], tokens: dict[str, list[int]], models: dict[str, Any], seeds: list[int],
                 headline: list[tuple[str, str, str]]) -> list[str]:
    from retrace.evaluation.paper_table import PAPER_COLUMNS

    lines = ["## This run beside the paper", "",
             "Ours: one cell per arm; with several seeds the mean over seeds, then each seed's estimate with its 95% "
             "interval. Paper: DESIGN.md's table (published summaries; '-' where not published). The paper trained "
             "Llama-3-8B on 20B tokens at 64k context; ours is the small model and token budget above.", "",
             "| figure | source | base | " + " | ".join(f"ours: {a.label}" for a in ARMS) + " | "
             + " | ".join(f"paper: {c}" for c in PAPER_COLUMNS[1:]) + " |",
             "| --- " * (6 + len(PAPER_COLUMNS) - 1) + "|"]
    means = {a.corpus: artifacts.mean(tokens.get(a.corpus, [])) for a in ARMS}
    paper_tokens = [f"{PAPER_MEAN_TOKENS['raw_repos']:,}", "-", f"{PAPER_MEAN_TOKENS['documents']:,}"]
    lines.append("| mean tokens per document | `synth/budget/` | - | " + " | ".join(
        _fmt(means[a.corpus], 0) for a in ARMS) + " | " + " | ".join(paper_tokens) + " |")
    raw = means["raw_repos"]
    ratio = [(means[a.corpus] / raw) if raw and math.isfinite(raw) else None for a in ARMS]
    paper_ratio = PAPER_MEAN_TOKENS["documents"] / PAPER_MEAN_TOKENS["raw_repos"]
    lines.append("| tokens per document / Raw-Repos | `synth/budget/` | - | " + " | ".join(
        _fmt(r, 2) for r in ratio) + f" | 1.00 | - | {paper_ratio:.2f} |")
    refine = synth["refine"]
    if refine.get("nll"):
        lines.append("| search: code NLL, iteration 0 -> last | `synth/refine_stats.json` | - | - | - | "
                     f"{_fmt(refine['nll'][0])} -> {_fmt(refine['nll'][-1])} | - | - | falls (Figure 3) |")
        lines.append("| search: mean Think tokens, iteration 0 -> last | `synth/refine_stats.json` | - | - | - | "
                     f"{_fmt(refine['think_tokens'][0], 0)} -> {_fmt(refine['think_tokens'][-1], 0)} | - | - | "
                     "grows (Figure 3) |")
    for task, metric, _ in headline:
        benchmark, scale = PAPER_ROWS.get((task, metric), ("", 1.0))
        paper = _paper(benchmark)
        label = f"{task} {metric}" + (f" (paper: {benchmark}{', x100' if scale != 1 else ''})" if benchmark else "")
        cells = [_arm_cell(models, name, seeds, task, metric, scale) for name in (BASE, *[a.name for a in ARMS])]
        paper_cells = [_fmt(paper.get(c), 2) if benchmark else "-" for c in PAPER_COLUMNS[1:]]
        lines.append(f"| {label} | `eval/results.json` | " + " | ".join(cells) + " | " + " | ".join(paper_cells) + " |")
    return [*lines, ""]


def _differences_table(differences: list[Difference]) -> list[str]:
    if not differences:
        return ["## Differences", "", "No differences: the evaluation holds no two comparable models.", ""]
    seeds = sorted({s for d in differences for s in d.per_seed})
    lines = ["## Differences (later minus earlier, paired bootstrap 95% intervals)", "",
             "Per seed, both models were scored on the same units in one evaluation (`eval/results.json`, "
             "`eval/samples/`), so one bootstrap draw serves both; `*` marks an interval that excludes 0. "
             "Over seeds: the mean of the per-seed differences with a Student-t 95% interval (wide with two seeds).", "",
             "| comparison | metric | " + " | ".join(f"seed {s}" for s in seeds) + " | over seeds |",
             "| --- | --- | " + "--- | " * len(seeds) + "--- |"]
    for diff in differences:
        cells = []
        for seed in seeds:
            entry = diff.per_seed.get(seed)
            if entry is None:
                cells.append("-")
                continue
            interval = entry.get("interval")
            mark = "*" if entry.get("excludes_zero") else ""
            cells.append(f"{entry['difference']:+.4f}" + (f" [{_fmt(interval[0], 4)}, {_fmt(interval[1], 4)}]"
                                                         if interval else " (no interval)") + mark)
        over = diff.over_seeds
        over_cell = f"{over[0]:+.4f} [{_fmt(over[1], 4)}, {_fmt(over[2], 4)}]" if over else "-"
        lines.append(f"| {LABELS.get(diff.later, diff.later)} - {LABELS.get(diff.earlier, diff.earlier)} | "
                     f"{diff.task} {diff.metric} | " + " | ".join(cells) + f" | {over_cell} |")
    return [*lines, ""]


def _shows_paragraph(output_dir: Path, differences: list[Difference], synth: dict[str, Any],
                     tokens: dict[str, list[int]], manifest: dict[str, Any], results: dict[str, Any]) -> list[str]:
    sentences = []
    by_key = {(d.later, d.earlier, d.task, d.metric): d for d in differences}
    for later, earlier in KEY_PAIRS:
        for task, metric, _ in artifacts.headline_metrics(results):
            diff = by_key.get((later, earlier, task, metric))
            if diff is not None and task == "heldout_nll":
                sentences.append(f"On `{task}` `{metric}`: " + _difference_phrase(diff, _lower_is_better(task, metric)))
    others = [d for d in differences if d.task != "heldout_nll" and (d.later, d.earlier) in KEY_PAIRS]
    resolved = [d for d in others if all(e.get("excludes_zero") for e in d.per_seed.values())]
    if others:
        sentences.append(f"Of the {len(others)} benchmark comparisons between arms outside the held-out NLL, "
                         f"{len(resolved)} have an interval that excludes 0 in every seed"
                         + (": " + "; ".join(f"{d.task} {d.metric} ({LABELS[d.later]} - {LABELS[d.earlier]})"
                                             for d in resolved) if resolved else "") + ".")
    refine = synth["refine"]
    if refine.get("nll"):
        sentences.append(_search_sentence(refine))
    means = {k: artifacts.mean(v) for k, v in tokens.items()}
    if means.get("raw_repos") and math.isfinite(means["raw_repos"]) and math.isfinite(means.get("documents", math.nan)):
        sentences.append(f"Trajectory documents are {means['documents'] / means['raw_repos']:.2f}x the Raw-Repos "
                         f"documents of the same files ({means['documents']:,.0f} vs {means['raw_repos']:,.0f} tokens; "
                         f"the paper: {PAPER_MEAN_TOKENS['documents'] / PAPER_MEAN_TOKENS['raw_repos']:.2f}x), a "
                         "ratio set here by the recipe's document budget and the policy's text.")
    limits = _limits(output_dir, manifest, synth, results)
    return ["## What this shows and does not show", "", " ".join(sentences) or "The run produced no comparisons.", "",
            limits, ""]


def _limits(output_dir: Path, manifest: dict[str, Any], synth: dict[str, Any], results: dict[str, Any]) -> str:
    """What the run's size rules out, from its own numbers: model, tokens per arm, seeds, units, contexts."""
    seeds = manifest["seeds"]
    paths = [output_dir / "models" / model_name(a, s) / "train_results.json" for s in seeds for a in ARMS]
    read = [read_json(p).get("train", {}).get("num_input_tokens_seen") for p in paths if p.is_file()]
    read = [r for r in read if r]
    tokens = f"{min(read):,}" + (f"-{max(read):,}" if read and max(read) != min(read) else "") if read else "an unrecorded number of"
    models = results.get("models", {})
    base_tasks = models.get(BASE, next(iter(models.values()), {})).get("tasks", {})
    units = base_tasks.get("heldout_nll", {}).get("units", {})
    heldout_repos = synth["stats"].get("splits", {}).get("heldout", {}).get("documents", {}).get("repositories")
    lengths = results.get("task_options", {}).get("ruler", {}).get("ruler_lengths")
    parts = [f"It does not show the paper's result either way: `{Path(manifest['base_model']).name}` continued on "
             f"{tokens} tokens per arm and seed ({len(seeds)} seed{'s' if len(seeds) > 1 else ''}) is not Llama-3-8B "
             "on 20B tokens."]
    if units:
        parts.append(f"The held-out intervals resample {units.get('count', '?')} {units.get('name', 'units')}"
                     + (f" of {heldout_repos} held-out repositor{'y' if heldout_repos == 1 else 'ies'}" if heldout_repos else "")
                     + "; files of one repository are not independent, so these intervals are on the narrow side.")
    if lengths:
        parts.append(f"RULER ran at {', '.join(map(str, lengths))} tokens, not the paper's 64k.")
    parts.append("A difference whose interval includes 0 is unresolved at this size, not equality.")
    return " ".join(parts)


def _moved(first: float, last: float, digits: int) -> str:
    if round(last, digits) == round(first, digits):
        return f"stayed at {_fmt(first, digits)}"
    return f"{'fell' if last < first else 'rose'} from {_fmt(first, digits)} to {_fmt(last, digits)}"


def _search_sentence(refine: dict[str, Any]) -> str:
    """Figure 3 in words: which way the code's NLL and the Think length went, and whether the paper's did too."""
    nll, think = refine["nll"], refine.get("think_tokens") or [math.nan]
    nll_fell, think_grew = nll[-1] < nll[0], think[-1] > think[0]
    agreement = ("both as in the paper's Figure 3" if nll_fell and think_grew else
                 "the paper's Figure 3 has the NLL falling and the Thinks growing; here "
                 + ("only the NLL fell" if nll_fell else "only the Thinks grew" if think_grew else "neither did"))
    return (f"Over {len(nll) - 1} search iterations the real code's NLL {_moved(nll[0], nll[-1], 3)} nats/token "
            f"(no Think: {_fmt(refine.get('baseline_nll'))}; {refine.get('accepted', 0)} of {refine.get('scored', 0)} "
            f"scored rewrites accepted over {refine.get('steps', 0)} Think steps) and the mean Think "
            f"{_moved(think[0], think[-1], 0)} tokens: {agreement}.")
