"""Turn repositories into agent trajectories and training documents.

Usage:
    # the CPU quickstart: standard-library packages, the embedded SmolLM2 writes the Think text
    python synthesize.py --config recipes/quickstart/synthesize.yaml

    # any recipe key can be overridden on the command line
    python synthesize.py --config recipes/quickstart/synthesize.yaml --policy_backend structural \
        --sources path/to/repo python:email --output_dir runs/my_synth

    # on Ray Data: a local cluster started by the run (4 CPUs), two model workers holding the engines
    python synthesize.py --config recipes/quickstart/synthesize.yaml --executor ray --ray_num_cpus 4 \
        --ray_model_workers 2
    # on a running Ray cluster (`ray start --head` on the head node), one GPU per model worker
    python synthesize.py --config recipes/llama3-8b/synthesize_repo2agent_search.yaml --executor ray \
        --ray_address auto --ray_model_workers 8 --ray_gpus_per_model_worker 1

Stages, in order: plan (read the sources once, filter, drop near-duplicates in input order, assign each
repository its shard: `<output_dir>/plan/<split>.jsonl`, reused on resume) -> analyze (tree-sitter
summaries, dependency graph, development order; a repository whose document would exceed
`document_budget_tokens` becomes sub-projects, docs/documents.md) -> simulate (main agent plans, one
sub-agent per file reads its dependencies and writes the file) -> refine (search each Think for the text
that makes the real code most likely) -> export (trajectory, training document, Raw-Repos and no-search
baselines per repository) -> finish (stats.json, refine statistics, the dataset card and the viewer).
Outputs are written one repository at a time, atomically; a re-run skips finished repositories, and a
run killed at any point then run again leaves exactly what an uninterrupted run leaves. A batch whose
model requests failed is not written: it is tried again after the others, and past `max_failed_batches`
the run stops with an error naming the server. To fan out by hand, give each launch its own
`--shard_index` (a repository's shard is a stable hash of its name):

    for i in 0 1 2 3; do python synthesize.py --config ... --num_shards 4 --shard_index $i & done

Each shard writes `stats/shard-<i>-of-<n>.json` at its end. The finish step runs once: with
`finish: auto` (the default) at the end of a one-shard run, or, on a sharded run, at the end of the
shard that finds every shard's stats file complete; `--finish only` runs just the finish step (after
every shard is done, e.g. as the last job of a SLURM array), `--finish skip` never. docs/scale.md.
"""

from __future__ import annotations

import logging

from retrace.agents import SimulationArguments
from retrace.data.export import ExportArguments
from retrace.provenance import save_run_info
from retrace.recipe import run_entry
from retrace.refine import RefineArguments
from retrace.repo.budget import DocumentBudgetArguments
from retrace.repo.parallel import ScaleArguments
from retrace.repo.sources import IngestArguments
from retrace.synthesis import run_synthesis


def main(ingest_args: IngestArguments, budget_args: DocumentBudgetArguments, sim_args: SimulationArguments,
         refine_args: RefineArguments, export_args: ExportArguments, scale: ScaleArguments, recipe) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    save_run_info(export_args.output_dir, recipe, stage="synthesize")
    run_synthesis(ingest_args, budget_args, sim_args, refine_args, export_args, scale)


if __name__ == "__main__":
    run_entry(main, IngestArguments, DocumentBudgetArguments, SimulationArguments, RefineArguments, ExportArguments,
              ScaleArguments)
