"""Turn repositories into agent trajectories and training documents.

Usage:
    # the CPU quickstart: standard-library packages, the embedded SmolLM2 writes the Think text
    python synthesize.py --config recipes/quickstart/synthesize.yaml

    # any recipe key can be overridden on the command line
    python synthesize.py --config recipes/quickstart/synthesize.yaml --policy_backend structural \
        --sources path/to/repo python:email --output_dir runs/my_synth

Stages, in order: ingest (read the repositories) -> analyze (tree-sitter summaries, dependency graph,
development order; a repository whose document would exceed `document_budget_tokens` becomes sub-projects,
docs/documents.md) -> simulate (main agent plans, one sub-agent per file reads its dependencies and
writes the file) -> refine (search each Think for the text that makes the real code most likely) ->
export (trajectory, training document, Raw-Repos and no-search baselines per repository).
Outputs are written one repository at a time, atomically; a re-run skips finished repositories, and a
run killed at any point then run again leaves exactly what an uninterrupted run leaves. To fan out,
give each launch its own `--shard_index` (a repository's shard is a stable hash of its name):

    for i in 0 1 2 3; do python synthesize.py --config ... --num_shards 4 --shard_index $i & done
"""

from __future__ import annotations

import logging
from itertools import islice
from pathlib import Path

from retrace.agents import SimulationArguments, build_policy, simulate_repositories
from retrace.atomic import remove_partial_writes, write_json
from retrace.data import read_trajectories
from retrace.data.budget_check import (
    budget_summary,
    document_names,
    export_within_budget,
    repository_done,
    token_counter,
)
from retrace.data.export import ExportArguments, decontaminate_export, finish_export
from retrace.data.stats import split_artifact_stats
from retrace.evaluation.decontamination import evaluation_texts
from retrace.llm import EnginePool, RequestsFailed
from retrace.provenance import save_run_info
from retrace.recipe import run_entry
from retrace.refine import (
    RefineArguments,
    RefineStats,
    build_proposer,
    build_step_scorer,
    collect_refine_stats,
    no_search_trajectory,
    plot_refine_stats,
    refine_trajectories,
)
from retrace.repo import IngestStats
from retrace.repo.budget import DocumentBudgetArguments, budget_parts, fit_to_budget
from retrace.repo.parallel import ScaleArguments, analyze_in_workers, batches, shard_of
from retrace.repo.sources import IngestArguments, ingest_sources

logger = logging.getLogger("retrace.synthesize")


def main(ingest_args: IngestArguments, budget_args: DocumentBudgetArguments, sim_args: SimulationArguments,
         refine_args: RefineArguments, export_args: ExportArguments, scale: ScaleArguments, recipe) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    out = export_args.output_dir
    if Path(out).is_dir() and (removed := remove_partial_writes(out)):
        logger.info("removed %d partial files left by a killed run", removed)
    save_run_info(out, recipe, stage="synthesize")
    # benchmark texts to keep out of the training documents (loaded first: a bad set name fails before any work)
    evaluation_sets = (evaluation_texts(export_args.decontamination_sets)
                       if export_args.decontaminate != "off" else None)
    roles: dict = {}  # policy, proposer, scorer: built on first use, shared by every batch
    engines = EnginePool(seed=sim_args.seed)  # roles naming the same model share one loaded copy
    refine_cost = RefineStats(iterations=refine_args.refine_iterations)  # the scorer's work, summed over batches
    options = sim_args.options()
    # documents are measured in the recipe's tokens (the card's tokenizer), else at a documented ratio
    count_tokens, counted_with = token_counter(export_args.dataset_card_tokenizer, budget_args.document_chars_per_token)
    stats: dict = {"shard": [scale.shard_index, scale.num_shards], "splits": {}}

    def run_batch(batch: list, split: str) -> None:
        """Analyze, split, simulate, refine and export one batch; raises RequestsFailed if a server failed."""
        # 2. analyze (worker processes), then fit the training context: a repository over the document
        # budget becomes sub-projects, each simulated as a repository (docs/documents.md)
        graphs = analyze_in_workers(batch, scale.num_workers)
        decisions = [fit_to_budget(s, g, budget_args, count_tokens, sim_args.read_budget_chars)
                     for s, g in zip(batch, graphs)]
        parts = [part for s, g, d in zip(batch, graphs, decisions) for part in budget_parts(s, g, d)]
        # 3. simulate (one policy call per batch)
        if parts and "policy" not in roles:
            roles["policy"] = build_policy(sim_args, engines=engines)
        trajectories = simulate_repositories(parts, roles["policy"], options) if parts else []
        # 4. refine: search each Think before a Write (held-out trajectories are evaluation targets: as is)
        searched = refine_args.refine and split == "train" and bool(trajectories)
        if searched:
            if "scorer" not in roles:
                roles["scorer"] = build_step_scorer(refine_args, engines=engines)
                roles["proposer"] = build_proposer(refine_args, seed=sim_args.seed, engines=engines)
            trajectories, refine_stats = refine_trajectories(trajectories, refine_args, roles["proposer"],
                                                             roles["scorer"])
            refine_cost.add_cost(refine_stats)
            logger.info("refine: %d steps, NLL per iteration %s, %d tokens forwarded, %.0f s",
                        refine_stats.summary.steps, [round(x, 3) for x in refine_stats.summary.nll],
                        refine_stats.tokens_forwarded, refine_stats.seconds)
        # 5. export, atomically, one repository at a time; a document over the budget is measured, not written
        done = iter(zip(parts, trajectories))
        for decision in decisions:
            exported = [({f.path: f.text for f in snapshot.files}, trajectory,
                         no_search_trajectory(trajectory) if searched else None)
                        for (snapshot, _), trajectory in islice(done, len(decision.parts))]
            export_within_budget(out, split, decision, exported, count_tokens, counted_with,
                                 export_args.raw_baseline)

    def attempt(batch: list, split: str) -> bool:
        """Run a batch; a server that failed leaves it unwritten (retried later), past a threshold stops the run."""
        try:
            run_batch(batch, split)
            return True
        except RequestsFailed as error:
            failures.append(error)
            logger.error("%s: a batch of %d repositories (%s) is not written: %s", split, len(batch),
                         ", ".join(s.name for s in batch[:4]) + (", ..." if len(batch) > 4 else ""), error)
            if len(failures) > scale.max_failed_batches:
                raise SystemExit(f"synthesis stopped: {len(failures)} batches lost model requests "
                                 f"(max_failed_batches: {scale.max_failed_batches}); the last: {error}") from error
            return False

    failures: list[RequestsFailed] = []  # batches whose model server failed, in this run
    unfinished = 0
    for split, specs in (("train", ingest_args.sources), ("heldout", ingest_args.heldout_sources)):
        if not specs:
            continue
        # 1. ingest (every run, deterministically), then keep this shard's repositories
        ingest_stats = IngestStats()
        snapshots = [s for s in ingest_sources(specs, ingest_args, ingest_stats)
                     if shard_of(s.name, scale.num_shards) == scale.shard_index]
        todo = [s for s in snapshots if export_args.overwrite or
                not repository_done(out, split, s.name, budget_args.document_budget_tokens)]
        logger.info("%s: %d repositories in this shard, %d to do (%d already written)", split, len(snapshots),
                    len(todo), len(snapshots) - len(todo))
        retry = [batch for batch in batches(todo, scale.repos_per_batch) if not attempt(batch, split)]
        unfinished += sum(len(batch) for batch in retry if not attempt(batch, split))  # once more, after the rest
        names = document_names(out, split, [s.name for s in snapshots])  # sub-projects too
        # 6. decontamination: drop or flag repositories that overlap a benchmark the suite ships
        if split == "train" and evaluation_sets is not None:
            stats["decontamination"] = decontaminate_export(out, names, export_args, evaluation_sets,
                                                            (scale.shard_index, scale.num_shards))
        stats["splits"][split] = {**ingest_stats.to_dict(), **split_artifact_stats(out, split, names),
                                  "documents": budget_summary(out, split, [s.name for s in snapshots])}
    write_json(f"{out}/stats.json", stats)
    if refine_args.refine:  # from the artifacts on disk, so a resumed run reports the same
        refine_summary = collect_refine_stats(read_trajectories(f"{out}/trajectories"))
        refine_summary.add_cost(refine_cost)
        write_json(f"{out}/refine_stats.json", refine_summary.to_dict())
        plot_refine_stats(refine_summary, f"{out}/refine.png")
    # 7. the dataset card (README.md, loadable with `datasets.load_dataset(out, "documents")`) and the viewer
    finish_export(out, tokenizer=export_args.dataset_card_tokenizer, viewer=export_args.viewer)
    for role in ("policy", "proposer"):
        if getattr(user := roles.get(role), "usage", None):
            logger.info("%s usage this run: %s", role, user.usage)
    logger.info("wrote %s (stats.json, README.md, trajectories/, documents/, baselines/, heldout/, viewer/)", out)
    if unfinished:
        raise SystemExit(f"{unfinished} repositories are not written: their batches lost model requests twice "
                         f"(the last error: {failures[-1]}); finished repositories are kept: run again")


if __name__ == "__main__":
    run_entry(main, IngestArguments, DocumentBudgetArguments, SimulationArguments, RefineArguments, ExportArguments,
              ScaleArguments)
