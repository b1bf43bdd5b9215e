"""Turn repositories into agent trajectories and training documents.

Usage:
    # the CPU quickstart: standard-library packages, the embedded SmolLM2 writes the Think text
    python synthesize.py --config recipes/quickstart/synthesize.yaml

    # any recipe key can be overridden on the command line
    python synthesize.py --config recipes/quickstart/synthesize.yaml --policy structural \
        --sources path/to/repo python:email --output_dir runs/my_synth

Stages, in order: ingest (read the repositories) -> analyze (tree-sitter summaries, dependency graph,
development order) -> simulate (main agent plans, one sub-agent per file reads its dependencies and
writes the file) -> export (trajectory, training document and Raw-Repos baseline per repository).
Outputs are written one repository at a time, atomically; a re-run skips finished repositories.
"""

from __future__ import annotations

import logging
from collections import Counter

from retrace.agents import SimulationArguments, SimulationOptions, build_policy, simulate_repositories
from retrace.atomic import write_json
from retrace.data.export import ExportArguments, export_repository, is_done
from retrace.provenance import save_run_info
from retrace.recipe import run_entry
from retrace.repo import IngestStats, analyze_repository
from retrace.repo.sources import IngestArguments, ingest_sources

logger = logging.getLogger("retrace.synthesize")


def main(ingest_args: IngestArguments, sim_args: SimulationArguments, export_args: ExportArguments, recipe) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    save_run_info(export_args.output_dir, recipe, stage="synthesize")
    policy = None
    stats: dict = {"splits": {}}
    for split, specs in (("train", ingest_args.sources), ("heldout", ingest_args.heldout_sources)):
        if not specs:
            continue
        ingest_stats = IngestStats()
        snapshots = ingest_sources(specs, ingest_args, ingest_stats)
        todo = [s for s in snapshots if export_args.overwrite or not is_done(export_args.output_dir, split, s.name)]
        logger.info("%s: %d repositories, %d to do (%d already written)", split, len(snapshots), len(todo),
                    len(snapshots) - len(todo))
        graphs = [analyze_repository(s) for s in todo]
        if todo and policy is None:
            policy = build_policy(sim_args.policy, model_name_or_path=sim_args.policy_model,
                                  max_new_tokens=sim_args.policy_max_new_tokens, batch_size=sim_args.policy_batch_size,
                                  temperature=sim_args.policy_temperature, dtype=sim_args.policy_dtype,
                                  seed=sim_args.seed, kinds=sim_args.policy_kinds)
        trajectories = simulate_repositories(list(zip(todo, graphs)), policy,
                                             SimulationOptions(read_budget_chars=sim_args.read_budget_chars,
                                                               prompt_facts_chars=sim_args.prompt_facts_chars))
        sizes: Counter[str] = Counter()
        for snapshot, graph, trajectory in zip(todo, graphs, trajectories):
            files = {f.path: f.text for f in snapshot.files}
            sizes.update(export_repository(export_args.output_dir, split, trajectory, files, export_args.raw_baseline))
            sizes["parse_failures"] += sum(not s.parse_ok for s in graph.files.values())
            sizes["cycles"] += len(graph.cycles)
        stats["splits"][split] = {**ingest_stats.to_dict(), "repos_written": len(todo),
                                  "repos_resumed": len(snapshots) - len(todo), **sizes}
    if policy is not None:
        stats["policy"] = {"name": sim_args.policy, "texts": dict(policy.counts),
                           "usage": getattr(policy, "usage", {})}
    write_json(f"{export_args.output_dir}/stats.json", stats)
    logger.info("wrote %s (stats.json, trajectories/, documents/, heldout/)", export_args.output_dir)


if __name__ == "__main__":
    run_entry(main, IngestArguments, SimulationArguments, ExportArguments)
