"""One batch of repositories, analysed then simulated, refined and exported: the unit every executor runs.

The work splits where the hardware does: `analyze_batch` is model-free CPU work (tree-sitter analysis,
then the document budget's split into sub-projects) that a Ray task can run ahead of the models;
`BatchWriter` holds the engines (policy, proposer, scorer, built on first use and kept for every later
batch) and turns analysed repositories into the files on disk. Both executors call these same functions,
so a repository's files do not depend on who ran it. A batch whose model requests failed for good
(`RequestsFailed`) comes back as a `BatchResult` with `failure` set and nothing of it written.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import islice

from retrace.agents import SimulationArguments, build_policy, simulate_repositories
from retrace.data.budget_check import export_within_budget, over_budget, token_counter
from retrace.data.export import ExportArguments
from retrace.llm import EnginePool, RequestsFailed
from retrace.refine import (
    RefineArguments,
    RefineStats,
    build_proposer,
    build_step_scorer,
    no_search_trajectory,
    refine_trajectories,
)
from retrace.repo.budget import BudgetDecision, DocumentBudgetArguments, budget_parts, fit_to_budget
from retrace.repo.graph import RepoGraph
from retrace.repo.parallel import analyze_in_workers
from retrace.repo.snapshot import RepoSnapshot

logger = logging.getLogger(__name__)

REFINE_COST_KEYS = ("tokens_forwarded", "unique_tokens", "seconds", "scoring_seconds", "cost_repositories")


@dataclass
class BatchSettings:
    """The recipe sections a batch needs (picklable: a Ray worker receives them once)."""

    budget: DocumentBudgetArguments
    simulation: SimulationArguments
    refine: RefineArguments
    export: ExportArguments
    request_cache: str | None = None  # a directory for EnginePool's request cache, or None


@dataclass
class AnalyzedRepository:
    """A repository after analysis and the budget: the documents (sub-projects) it becomes."""

    snapshot: RepoSnapshot
    decision: BudgetDecision
    parts: list[tuple[RepoSnapshot, RepoGraph]]


@dataclass
class BatchResult:
    """What a batch reports back (small: names and counts, never texts)."""

    split: str
    repos: list[str]
    tokens_written: int = 0      # tokens of the training documents written (the recipe's counter)
    documents_written: int = 0
    text_steps: int = 0          # text steps written (requirements, plans, Thinks, reports)
    fallbacks: int = 0           # of those, model replies replaced by structural text (`fallback:<reason>`)
    refine_cost: dict[str, float] = field(default_factory=dict)
    failure: str = ""            # the RequestsFailed message when the batch is not written
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return bool(self.failure)


@functools.lru_cache(maxsize=4)
def counter_for(tokenizer: str | None, chars_per_token: float):
    """The recipe's token counter, loaded once per process (an analysis task reuses its worker's)."""
    return token_counter(tokenizer, chars_per_token)


def analyze_batch(snapshots: Sequence[RepoSnapshot], settings: BatchSettings,
                  num_workers: int = 1) -> list[AnalyzedRepository]:
    """Analyse the repositories and fit each to the document budget (model-free; in input order)."""
    count_tokens, _ = counter_for(settings.export.dataset_card_tokenizer, settings.budget.document_chars_per_token)
    graphs = analyze_in_workers(list(snapshots), num_workers)
    analyzed = []
    for snapshot, graph in zip(snapshots, graphs):
        decision = fit_to_budget(snapshot, graph, settings.budget, count_tokens, settings.simulation.read_budget_chars)
        analyzed.append(AnalyzedRepository(snapshot, decision, budget_parts(snapshot, graph, decision)))
    return analyzed


class BatchWriter:
    """Simulates, refines and exports analysed batches, holding the engines across batches."""

    def __init__(self, settings: BatchSettings):
        self.settings = settings
        # roles naming the same model share one loaded copy; replies are cached by request (a retried batch
        # does not pay twice for what it got before its server failed)
        self.engines = EnginePool(seed=settings.simulation.seed, request_cache=settings.request_cache)
        self.roles: dict = {}  # policy, proposer, scorer: built on first use
        self.count_tokens, self.counted_with = counter_for(settings.export.dataset_card_tokenizer,
                                                           settings.budget.document_chars_per_token)

    def run(self, analyzed: list[AnalyzedRepository], split: str) -> BatchResult:
        """Write the batch; a server that failed for good leaves it unwritten and is reported, not raised."""
        started = time.perf_counter()
        names = [a.snapshot.name for a in analyzed]
        try:
            result = self._write(analyzed, split)
        except RequestsFailed as error:
            logger.error("%s: a batch of %d repositories (%s) is not written: %s", split, len(names),
                         ", ".join(names[:4]) + (", ..." if len(names) > 4 else ""), error)
            result = BatchResult(split, names, failure=str(error))
        result.seconds = time.perf_counter() - started
        return result

    def usage(self) -> dict[str, object]:
        """The model roles' request and token counts so far (for the log)."""
        return {role: user.usage for role in ("policy", "proposer")
                if getattr(user := self.roles.get(role), "usage", None)}

    def _write(self, analyzed: list[AnalyzedRepository], split: str) -> BatchResult:
        sim, refine, export = self.settings.simulation, self.settings.refine, self.settings.export
        parts = [part for a in analyzed for part in a.parts]
        if parts and "policy" not in self.roles:
            self.roles["policy"] = build_policy(sim, engines=self.engines)
        trajectories = simulate_repositories(parts, self.roles["policy"], sim.options()) if parts else []
        # refine: search each Think before a Write (held-out trajectories are evaluation targets: as is)
        searched = refine.refine and split == "train" and bool(trajectories)
        result = BatchResult(split, [a.snapshot.name for a in analyzed])
        if searched:
            if "scorer" not in self.roles:
                self.roles["scorer"] = build_step_scorer(refine, engines=self.engines)
                self.roles["proposer"] = build_proposer(refine, seed=sim.seed, engines=self.engines)
            trajectories, refine_stats = refine_trajectories(trajectories, refine, self.roles["proposer"],
                                                             self.roles["scorer"])
            cost = RefineStats(iterations=refine.refine_iterations)
            cost.add_cost(refine_stats)
            result.refine_cost = {key: getattr(cost, key) for key in REFINE_COST_KEYS}
            logger.info("refine: %d steps, NLL per iteration %s, %d tokens forwarded, %.0f s",
                        refine_stats.summary.steps, [round(x, 3) for x in refine_stats.summary.nll],
                        refine_stats.tokens_forwarded, refine_stats.seconds)
        for trajectory in trajectories:
            sources = trajectory.meta.get("text_sources", {})
            result.fallbacks += sum(n for k, n in sources.items() if k.startswith("fallback:"))
            result.text_steps += sum(n for k, n in sources.items() if not k.startswith("fallback:"))
        # export, atomically, one repository at a time; a document over the budget is measured, not written
        done = iter(zip(parts, trajectories))
        for repository in analyzed:
            exported = [({f.path: f.text for f in snapshot.files}, trajectory,
                         no_search_trajectory(trajectory) if searched else None)
                        for (snapshot, _), trajectory in islice(done, len(repository.decision.parts))]
            measured = export_within_budget(export.output_dir, split, repository.decision, exported,
                                            self.count_tokens, self.counted_with, export.raw_baseline)
            written = [m for m in measured.values() if not over_budget(m, repository.decision.budget_tokens)]
            result.documents_written += len(written)
            result.tokens_written += sum(m.documents for m in written)
        return result
