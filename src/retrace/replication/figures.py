"""The report's figures (PNG, matplotlib Agg), each drawn from one kind of artifact and titled with its source.

Every function takes the data already read (see `artifacts`) plus the source path it names in the figure,
so a test can draw a figure from hand-built numbers and a reader can find the file behind every line.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

from retrace.replication.artifacts import MetricValue
from retrace.replication.pipeline import ARMS

ARM_COLORS = {"raw-repos": "tab:grey", "repo2agent": "tab:blue", "repo2agent-search": "tab:orange", "base": "black"}
SEED_STYLES = ("-", "--", ":", "-.")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path, source: str) -> Path:
    fig.text(0.01, 0.005, f"source: {source}", fontsize=6, color="dimgrey", ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    _pyplot().close(fig)
    return path


def loss_curves(curves: dict[str, list[tuple[int, float]]], path: Path, source: str) -> Path:
    """Training loss per step, one line per trained model (`<arm>-s<seed>`): colour = arm, style = seed."""
    plt = _pyplot()
    fig, axis = plt.subplots(figsize=(7, 4))
    for name, points in curves.items():
        if not points:
            continue
        arm, _, seed = name.rpartition("-s")
        style = SEED_STYLES[int(seed) % len(SEED_STYLES)] if seed.isdigit() else "-"
        steps, losses = zip(*points)
        axis.plot(steps, losses, linestyle=style, marker=".", color=ARM_COLORS.get(arm), label=name)
    axis.set(xlabel="optimizer step", ylabel="training loss (nats/trained token)",
             title="Continued pretraining: loss of each arm and seed")
    axis.legend(fontsize=7)
    return _save(fig, path, source)


def search_curve(summary: dict, path: Path, source: str) -> Path:
    """The paper's Figure 3 from a refine_stats.json `summary`: the real code's NLL and the mean Think length
    per search iteration (iteration 0: before search), with the no-Think NLL as a reference line."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    x = list(range(len(summary.get("nll", []))))
    left.plot(x, summary.get("nll", []), marker="o", label="with Think (token-weighted)")
    if summary.get("step_nll"):
        left.plot(x, summary["step_nll"], marker="s", linestyle="--", label="with Think (step mean)")
    baseline = summary.get("baseline_nll")
    if baseline is not None and math.isfinite(baseline):
        left.axhline(baseline, color="grey", linestyle=":", label="no Think")
    left.set(xlabel="search iteration", ylabel="code NLL (nats/token)", title="NLL of the real code")
    left.legend(fontsize=7)
    right.plot(x, summary.get("think_tokens", []), marker="o", color="tab:green")
    right.set(xlabel="search iteration", ylabel="mean Think length (tokens)", title="Think length")
    for axis in (left, right):
        axis.set_xticks(x)
    fig.suptitle(f"Reasoning search (paper's Figure 3): {summary.get('steps', 0)} Think steps, "
                 f"{summary.get('accepted', 0)} of {summary.get('scored', 0)} scored rewrites accepted", fontsize=9)
    return _save(fig, path, source)


def document_lengths(tokens: dict[str, list[int]], paper_means: dict[str, int], path: Path, source: str) -> Path:
    """Tokens per document per corpus (the paper's Figure 2b): a histogram each, our mean and the paper's
    mean (where published) as vertical lines."""
    plt = _pyplot()
    corpora = [arm for arm in ARMS if tokens.get(arm.corpus)]
    fig, axes = plt.subplots(len(corpora) or 1, 1, figsize=(7, 1.9 * max(1, len(corpora))), sharex=True, squeeze=False)
    for axis, arm in zip(axes[:, 0], corpora):
        values = tokens[arm.corpus]
        axis.hist(values, bins=min(30, max(5, len(values))), color=ARM_COLORS[arm.name], alpha=0.8)
        ours = sum(values) / len(values)
        axis.axvline(ours, color="black", label=f"mean {ours:,.0f} ({len(values)} documents)")
        if arm.corpus in paper_means:
            axis.axvline(paper_means[arm.corpus], color="red", linestyle="--",
                         label=f"paper's mean {paper_means[arm.corpus]:,}")
        axis.set(ylabel="documents", title=arm.label)
        axis.legend(fontsize=7)
    axes[-1, 0].set(xlabel="tokens per document")
    return _save(fig, path, source)


def benchmark_bars(values: dict[tuple[str, str], dict[str, MetricValue]], labels: dict[tuple[str, str], str],
                   path: Path, source: str) -> Path:
    """One panel per (task, metric): a bar per model, coloured by arm, with its 95% interval as an error bar
    where results.json holds one (a bar without one is drawn plain and hatched)."""
    plt = _pyplot()
    panels = [key for key in values if values[key]]
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(3.6 * max(1, len(panels)), 3.8), squeeze=False)
    for axis, key in zip(axes[0], panels):
        models = list(values[key])
        estimates = [values[key][m].estimate for m in models]
        below = [v.estimate - v.interval[0] if v.interval else 0.0 for v in values[key].values()]
        above = [v.interval[1] - v.estimate if v.interval else 0.0 for v in values[key].values()]
        bars = axis.bar(range(len(models)), estimates,
                        color=[ARM_COLORS.get(m.rpartition("-s")[0] or m, "tab:purple") for m in models],
                        yerr=[below, above] if any(below) or any(above) else None, capsize=3)
        for bar, value in zip(bars, values[key].values()):
            if value.interval is None:
                bar.set_hatch("//")
        axis.set_xticks(range(len(models)), models, rotation=60, ha="right", fontsize=7)
        low = min(e - b for e, b in zip(estimates, below))
        high = max(e + a for e, a in zip(estimates, above))
        zoomed = low > 0 and high > 0 and (high - low) < 0.2 * high  # close values: show the differences
        if zoomed:
            pad = max(high - low, 1e-6) * 0.5
            axis.set_ylim(low - pad, high + pad)
        title = f"{key[0]}: {key[1]}" + (" (axis not from 0)" if zoomed else "")
        axis.set_title(title + "\n" + textwrap.fill(labels.get(key, ""), 48), fontsize=7)
    fig.suptitle("Benchmarks, 95% bootstrap intervals (hatched: no interval in results.json)", fontsize=9)
    return _save(fig, path, source)
