"""A synthesis run: plan every split, write this shard's repositories with an executor, then finish.

The steps, in order: remove what a killed run left half-written; plan each split once (or reuse the plan);
keep the repositories of this shard that are not done yet; write them in batches with the `local` or
`ray` executor (retrying a batch whose model requests failed once, stopping past `max_failed_batches`);
decontaminate this shard's training repositories; write the shard's stats file; and, when it is time
(`finish`), the finish step: stats.json, refine_stats.json and refine.png, the dataset card and the viewer,
once, from every shard's output. A run killed at any point and run again leaves exactly what an
uninterrupted run leaves: files are written atomically and a repository is done once its record exists.
"""

from __future__ import annotations

import logging
from pathlib import Path

from retrace.agents import SimulationArguments
from retrace.atomic import remove_partial_writes, write_json
from retrace.data.budget_check import document_names, repository_done
from retrace.data.export import ExportArguments, decontaminate_export, finish_export
from retrace.data.trajectory import iter_trajectories
from retrace.evaluation.decontamination import evaluation_texts
from retrace.refine import RefineArguments, collect_refine_stats, plot_refine_stats
from retrace.repo.budget import DocumentBudgetArguments
from retrace.repo.parallel import ScaleArguments
from retrace.repo.sources import IngestArguments
from retrace.synthesis.batch import REFINE_COST_KEYS, BatchSettings
from retrace.synthesis.context import RunContext
from retrace.synthesis.planning import SplitPlan, plan_inputs
from retrace.synthesis.progress import Progress
from retrace.synthesis.stats import (
    add_refine_cost,
    all_shards_complete,
    merged_stats,
    shard_split_stats,
    summed_refine_cost,
    write_shard_stats,
)

logger = logging.getLogger("retrace.synthesis")

REQUEST_CACHE_DIR = "cache/requests"
SPLITS = ("train", "heldout")


def run_synthesis(ingest_args: IngestArguments, budget_args: DocumentBudgetArguments,
                  sim_args: SimulationArguments, refine_args: RefineArguments, export_args: ExportArguments,
                  scale: ScaleArguments, *, progress: bool = True) -> None:
    """Synthesize this shard (`scale`) of the recipe's sources into `export_args.output_dir`.

    Raises SystemExit naming the server when batches lost model requests (past `max_failed_batches`: at
    once; otherwise at the end, after everything else is written).
    """
    out = export_args.output_dir
    if Path(out).is_dir() and (removed := remove_partial_writes(out)):
        logger.info("removed %d partial files left by a killed run", removed)
    # benchmark texts to keep out of the training documents (loaded first: a bad set name fails before any work)
    evaluation_sets = (evaluation_texts(export_args.decontamination_sets)
                       if export_args.decontaminate != "off" else None)
    plans = {split: plan_inputs(split, specs, ingest_args, scale, out)
             for split, specs in zip(SPLITS, (ingest_args.sources, ingest_args.heldout_sources)) if specs}
    if scale.finish == "only":
        finish_run(out, plans, scale, export_args, refine_args)
        return
    request_cache = str(Path(out) / REQUEST_CACHE_DIR) if scale.request_cache else None
    settings = BatchSettings(budget_args, sim_args, refine_args, export_args, request_cache)
    todo = {split: [e for e in plan.entries if export_args.overwrite or
                    not repository_done(out, split, e.name, budget_args.document_budget_tokens)]
            for split, plan in plans.items()}
    for split, plan in plans.items():
        logger.info("%s: %d repositories in this shard, %d to do (%d already written)", split, len(plan.entries),
                    len(todo[split]), len(plan.entries) - len(todo[split]))
    total = sum(len(plan.entries) for plan in plans.values())
    context = RunContext(ingest_args, settings, scale,
                         Progress(total, total - sum(map(len, todo.values())), enabled=progress))
    executor = _executor(context)
    shard = (scale.shard_index, scale.num_shards)
    decontamination = None
    try:
        unfinished = executor.run(todo)
    finally:
        context.progress.close()
        add_refine_cost(out, shard, {k: context.progress.refine_cost[k] for k in REFINE_COST_KEYS
                                     if k in context.progress.refine_cost})
        for role, usage in executor.usage().items():
            logger.info("%s usage this run: %s", role, usage)
        executor.close()
    # decontamination: drop or flag this shard's repositories that overlap a benchmark the suite ships
    if "train" in plans and evaluation_sets is not None:
        decontamination = decontaminate_export(out, document_names(out, "train", plans["train"].names), export_args,
                                               evaluation_sets, shard)
    write_shard_stats(out, shard, {split: shard_split_stats(out, split, plan.names) for split, plan in plans.items()},
                      unfinished, decontamination)
    logger.info("this run: %s", context.progress.summary())
    if scale.finish == "auto" and (scale.num_shards == 1 or all_shards_complete(out, scale.num_shards)):
        finish_run(out, plans, scale, export_args, refine_args)
    elif scale.finish == "auto":
        logger.info("finish step left to the last shard (or run with --finish only once every shard is done)")
    if unfinished:
        raise SystemExit(f"{unfinished} repositories are not written: their batches lost model requests twice "
                         f"(the last error: {context.failures[-1]}); finished repositories are kept: run again")


def _executor(context: RunContext):
    if context.scale.executor == "ray":
        from retrace.synthesis.ray_executor import RayExecutor

        return RayExecutor(context)
    from retrace.synthesis.local_executor import LocalExecutor

    return LocalExecutor(context)


def finish_run(output_dir: str, plans: dict[str, SplitPlan], scale: ScaleArguments, export_args: ExportArguments,
               refine_args: RefineArguments) -> None:
    """stats.json, refine statistics, the dataset card and the viewer: once, from every shard's output."""
    write_json(f"{output_dir}/stats.json", merged_stats(output_dir, scale.num_shards, plans))
    if refine_args.refine:  # from the artifacts on disk, so a resumed run reports the same
        refine_summary = collect_refine_stats(iter_trajectories(f"{output_dir}/trajectories"))
        for key, value in summed_refine_cost(output_dir, scale.num_shards).items():
            setattr(refine_summary, key, value)
        write_json(f"{output_dir}/refine_stats.json", refine_summary.to_dict())
        plot_refine_stats(refine_summary, f"{output_dir}/refine.png")
    # the dataset card (README.md, loadable with `datasets.load_dataset(out, "documents")`) and the viewer
    finish_export(output_dir, tokenizer=export_args.dataset_card_tokenizer, viewer=export_args.viewer,
                  viewer_max_repositories=export_args.viewer_max_repositories,
                  parquet_shard_mb=export_args.parquet_shard_mb, push_to_hub=export_args.push_to_hub,
                  hub_private=export_args.hub_private)
    logger.info("wrote %s (stats.json, README.md, trajectories/, documents/, baselines/, heldout/, viewer/)",
                output_dir)
