"""What a refinement run did: NLL and Think length per iteration (the paper's Figure 3), acceptance, leaks, cost.

Computed from the per-step search logs alone (`step.search`, a `SearchLog`), so the same numbers can be
recomputed from trajectories on disk. NLLs are in nats per payload token; "token-weighted" means the NLL
of all searched payload tokens pooled (long files weigh more), "step mean" the plain mean over steps.
Think steps and plans (`refine_plan`) are summarised apart: `summary` / `per_repo` count Thinks only (both
kinds; `by_kind` splits them: `think` right before a Write, `think_read` before the Reads), `plan` /
`plan_per_repo` the plans (their target: the first tokens of the files after the plan).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from retrace.atomic import write_json
from retrace.data import SearchLog, Step
from retrace.data.records import THINK_KINDS


@dataclass
class SearchSummary:
    steps: int = 0
    candidates: int = 0            # proposals that reached the guard (duplicates of tried texts excluded)
    scored: int = 0
    accepted: int = 0
    leaks: dict[str, int] = field(default_factory=dict)   # rejections by rule: ngram, lines
    too_long: int = 0
    unhelpful: int = 0             # final Think does not beat the no-Think baseline
    dropped: int = 0
    target_tokens: int = 0         # payload tokens scored per candidate, summed over steps
    context_tokens: int = 0        # prefix tokens the scorer conditioned on, summed over steps
    nll: list[float] = field(default_factory=list)            # token-weighted, per iteration (0: before search)
    step_nll: list[float] = field(default_factory=list)       # step mean, per iteration
    think_chars: list[float] = field(default_factory=list)    # mean Think length per iteration
    think_tokens: list[float] = field(default_factory=list)
    baseline_nll: float = math.nan  # token-weighted NLL without any Think

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.scored if self.scored else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "acceptance_rate": self.acceptance_rate}


def _mean(values: list[float]) -> float:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return sum(values) / len(values) if values else math.nan


def _weighted(pairs: list[tuple[float, int]]) -> float:
    pairs = [(v, w) for v, w in pairs if v is not None and not math.isnan(v) and w]
    total = sum(w for _, w in pairs)
    return sum(v * w for v, w in pairs) / total if total else math.nan


def summarize_steps(logs: list[SearchLog], iterations: int) -> SearchSummary:
    """Summary of step search logs; every log has `iterations + 1` incumbent entries."""
    out = SearchSummary(steps=len(logs))
    for log in logs:
        for entry in log.candidates:
            out.candidates += 1
            if entry.leak:
                out.leaks[entry.leak] = out.leaks.get(entry.leak, 0) + 1
            elif entry.too_long:
                out.too_long += 1
            else:
                out.scored += 1
                out.accepted += bool(entry.accepted)
        out.unhelpful += bool(log.unhelpful)
        out.dropped += bool(log.dropped)
        out.target_tokens += log.target_tokens
        out.context_tokens += log.context_tokens
    for t in range(iterations + 1):
        out.nll.append(_weighted([(log.incumbent_nll[t], log.target_tokens) for log in logs]))
        out.step_nll.append(_mean([log.incumbent_nll[t] for log in logs]))
        out.think_chars.append(_mean([log.incumbent_chars[t] for log in logs]))
        out.think_tokens.append(_mean([log.incumbent_tokens[t] for log in logs]))
    out.baseline_nll = _weighted([(log.baseline_nll, log.target_tokens) for log in logs])
    return out


@dataclass
class RepoLogs:
    """One repository's search records: its Thinks' logs, its plan's, and what was not searched, by reason."""

    repo: str
    logs: list[SearchLog]
    plan_log: SearchLog | None = None
    skipped: dict[str, int] = field(default_factory=dict)
    plan_skipped: str = ""


@dataclass
class RefineStats:
    """A run's global summary, one summary per repository, and the scorer's cost."""

    iterations: int
    summary: SearchSummary = field(default_factory=SearchSummary)       # Think steps
    per_repo: dict[str, SearchSummary] = field(default_factory=dict)
    plan: SearchSummary = field(default_factory=SearchSummary)          # plans (one step per repository)
    plan_per_repo: dict[str, SearchSummary] = field(default_factory=dict)
    plan_skipped: dict[str, int] = field(default_factory=dict)          # repositories whose plan was not searched
    by_kind: dict[str, SearchSummary] = field(default_factory=dict)     # Thinks by kind (THINK_KINDS)
    skipped: dict[str, int] = field(default_factory=dict)               # Thinks not searched, by reason
    # The scorer's cost, measured while searching (not recomputable from disk): of the `cost_repositories`
    # repositories this invocation refined; a resumed run counts only its own.
    tokens_forwarded: int = 0       # every token the scorer fed its model (padding excluded)
    unique_tokens: int = 0          # prefix windows + distinct rows scored: tokens that had to be forwarded
    seconds: float = 0.0
    scoring_seconds: float = 0.0
    cost_repositories: int = 0

    def add_cost(self, other: RefineStats) -> None:
        """Add the cost fields of `other` (one batch's search) to this run's."""
        self.tokens_forwarded += other.tokens_forwarded
        self.unique_tokens += other.unique_tokens
        self.seconds += other.seconds
        self.scoring_seconds += other.scoring_seconds
        self.cost_repositories += other.cost_repositories or len(other.per_repo)

    @property
    def forwarded_per_unique(self) -> float:
        return self.tokens_forwarded / self.unique_tokens if self.unique_tokens else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {"iterations": self.iterations, "summary": self.summary.to_dict(),
                "per_repo": {k: v.to_dict() for k, v in self.per_repo.items()},
                "plan": self.plan.to_dict(), "plan_per_repo": {k: v.to_dict() for k, v in self.plan_per_repo.items()},
                "plan_skipped": self.plan_skipped, "by_kind": {k: v.to_dict() for k, v in self.by_kind.items()},
                "skipped": self.skipped,
                "tokens_forwarded": self.tokens_forwarded, "unique_tokens": self.unique_tokens,
                "forwarded_per_unique": self.forwarded_per_unique, "seconds": self.seconds,
                "scoring_seconds": self.scoring_seconds, "cost_repositories": self.cost_repositories}

    def save(self, path: str | Path) -> None:
        write_json(path, self.to_dict())


def _add(counts: dict[str, int], key: str, n: int = 1) -> None:
    counts[key] = counts.get(key, 0) + n


def refine_stats(iterations: int, repos: list[RepoLogs]) -> RefineStats:
    """The summaries of a run (cost fields 0: the search adds what it measured)."""
    stats = RefineStats(iterations=iterations)
    thinks = [log for r in repos for log in r.logs]
    stats.summary = summarize_steps(thinks, iterations)
    stats.by_kind = {kind: summarize_steps([log for log in thinks if log.kind == kind], iterations)
                     for kind in THINK_KINDS if any(log.kind == kind for log in thinks)}
    stats.plan = summarize_steps([r.plan_log for r in repos if r.plan_log is not None], iterations)
    for r in repos:
        stats.per_repo[r.repo] = summarize_steps(r.logs, iterations)
        if r.plan_log is not None:
            stats.plan_per_repo[r.repo] = summarize_steps([r.plan_log], iterations)
        for reason, n in r.skipped.items():
            _add(stats.skipped, reason, n)
        if r.plan_skipped:
            _add(stats.plan_skipped, r.plan_skipped)
    return stats


def refine_meta(stats: RefineStats, repo: RepoLogs) -> dict[str, Any]:
    """A repository's `meta.refine` entries: `stats`, and where they apply `plan_stats`, `skipped`, `plan_skipped`."""
    meta: dict[str, Any] = {"stats": stats.per_repo[repo.repo].to_dict()}
    if repo.repo in stats.plan_per_repo:
        meta["plan_stats"] = stats.plan_per_repo[repo.repo].to_dict()
    if repo.skipped:
        meta["skipped"] = dict(repo.skipped)
    if repo.plan_skipped:
        meta["plan_skipped"] = repo.plan_skipped
    return meta


def step_logs(traj) -> list[SearchLog]:
    """The search logs of a trajectory's searched Thinks: kept ones in step order, then dropped ones."""
    kept = [s.search for s in traj.steps if s.search is not None and s.kind == "think"]
    dropped = [Step.from_dict(r["step"]).search for r in (traj.meta.get("refine") or {}).get("dropped", [])]
    return kept + [log for log in dropped if log is not None]


def plan_log(traj) -> SearchLog | None:
    """The search log of a trajectory's plan, or None when its plan was not searched."""
    return next((s.search for s in traj.steps if s.kind == "plan" and s.search is not None), None)


def collect_refine_stats(trajectories) -> RefineStats:
    """Summaries recomputed from refined trajectories (e.g. read back from disk), in any order (an iterator
    streams a large run: only the search logs are kept); cost fields stay 0 (`add_cost` brings in what the
    run measured)."""
    repos = sorted((RepoLogs(t.repo, step_logs(t), plan_log(t), dict(t.meta["refine"].get("skipped") or {}),
                             t.meta["refine"].get("plan_skipped") or "") for t in trajectories if "refine" in t.meta),
                   key=lambda r: r.repo)
    logs = [log for r in repos for log in r.logs] + [r.plan_log for r in repos if r.plan_log is not None]
    iterations = max((len(log.incumbent_nll) - 1 for log in logs), default=0)
    return refine_stats(iterations, repos)


def plot_refine_stats(stats: RefineStats, path: str | Path) -> Path:
    """A PNG of payload NLL (with the no-Think baseline; per Think kind when both were searched) and mean Think
    length per iteration.

    When plans were searched, a third panel shows the plans' target NLL with the no-plan baseline.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary, plan = stats.summary, stats.plan
    x = list(range(len(summary.nll)))
    fig, axes = plt.subplots(1, 3 if plan.steps else 2, figsize=(13.5 if plan.steps else 9, 3.4))
    left, right = axes[0], axes[1]
    left.plot(x, summary.nll, marker="o", label="with Think (token-weighted)")
    left.plot(x, summary.step_nll, marker="s", linestyle="--", label="with Think (step mean)")
    if len(stats.by_kind) > 1:  # the Thinks before a Write and before the Reads, apart
        for kind, part in stats.by_kind.items():
            left.plot(x, part.nll, marker=".", linestyle=":", label=f"{kind} ({part.steps} steps)")
    if not math.isnan(summary.baseline_nll):
        left.axhline(summary.baseline_nll, color="grey", linestyle=":", label="no Think")
    left.set(xlabel="search iteration", ylabel="payload NLL (nats/token)", title="Code NLL")
    left.legend(fontsize=7)
    right.plot(x, summary.think_tokens, marker="o", color="tab:green")
    right.set(xlabel="search iteration", ylabel="mean Think length (tokens)", title="Think length")
    title = f"refine: {summary.steps} Think steps, acceptance {summary.acceptance_rate:.0%}"
    if plan.steps:
        third = axes[2]
        px = list(range(len(plan.nll)))
        third.plot(px, plan.nll, marker="o", color="tab:purple", label="with plan (token-weighted)")
        if not math.isnan(plan.baseline_nll):
            third.axhline(plan.baseline_nll, color="grey", linestyle=":", label="no plan")
        third.set(xlabel="search iteration", ylabel="NLL of the files' first tokens", title="Plan: code NLL")
        third.set_xticks(px)
        third.legend(fontsize=7)
        title += f"; {plan.steps} plans, acceptance {plan.acceptance_rate:.0%}"
    for axis in (left, right):
        axis.set_xticks(x)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
