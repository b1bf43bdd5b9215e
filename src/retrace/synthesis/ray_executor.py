"""The Ray executor: Ray Data streams the shard's repositories through CPU tasks and a pool of model workers.

The dataset holds one block per batch of `repos_per_batch` plan entries (small rows: names and where to
read them). `map_batches` runs `analyze_block` on each block as a CPU task (read only those repositories,
analyse, fit the budget), streaming ahead of the models with Ray Data's backpressure; a pool of
`ray_model_workers` actors (`ModelWorker`, `ray_gpus_per_model_worker` GPUs each) holds the engines, built on
first use, and simulates, refines and exports with `batch_size=repos_per_batch`, the order preserved so a
batch is exactly the local executor's batch. The actors write the files themselves, atomically, exactly as
the local executor does; one small row per batch (repository names, tokens, fallbacks, failure) comes back
to the driver, which counts it and re-runs the failed batches once after the others.

The run starts a local cluster (`ray_num_cpus`, no dashboard, no usage stats) when `ray_address` is empty and
none is running in this process, else joins the cluster at `ray_address`; every node needs retrace installed.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from retrace.repo.parallel import ScaleArguments
from retrace.repo.sources import IngestArguments
from retrace.synthesis.batch import BatchResult, BatchSettings, BatchWriter, analyze_batch
from retrace.synthesis.context import RunContext
from retrace.synthesis.planning import read_entries

logger = logging.getLogger(__name__)


def start_ray(scale: ScaleArguments) -> bool:
    """Connect to (or start) the cluster; True when this call started it (and the run shuts it down)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    if ray.is_initialized():
        return False
    if scale.ray_address:
        ray.init(address=scale.ray_address, log_to_driver=True)
    else:
        ray.init(num_cpus=scale.ray_num_cpus or None, include_dashboard=False, log_to_driver=True,
                 runtime_env={"env_vars": {"RAY_USAGE_STATS_ENABLED": "0"}})
    return True


def analyze_block(block, ingest: IngestArguments, settings: BatchSettings):
    """A CPU task: read one batch's repositories from their plan entries, analyse them, fit the budget."""
    import pyarrow as pa

    entries = [pickle.loads(e) for e in block.column("entry").to_pylist()]
    analyzed = analyze_batch(list(read_entries(entries, ingest)), settings)
    return pa.table({"batch": block.column("batch").to_pylist()[:len(analyzed)],
                     "split": block.column("split").to_pylist()[:len(analyzed)],
                     "analysis": [pickle.dumps(a) for a in analyzed]})


# Analysis tasks only read and compute, so a task lost with its worker is simply run again. The retries also
# keep the analysis in tasks of its own: Ray Data fuses map stages whose remote arguments are equal, and
# fused into the model workers the analysis would make them wait.
ANALYSIS_TASK_ARGS = {"num_cpus": 1, "max_retries": 4}


class ModelWorker:
    """An actor holding the engines; writes each batch it is given and returns one small row per batch."""

    def __init__(self, settings: BatchSettings):
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.writer = BatchWriter(settings)

    def __call__(self, rows):
        import pyarrow as pa

        groups: dict[int, list[int]] = {}  # a batch's rows, in order (a Ray batch holds exactly one)
        batch_ids = rows.column("batch").to_pylist()
        for position, batch_id in enumerate(batch_ids):
            groups.setdefault(batch_id, []).append(position)
        splits, analyses = rows.column("split").to_pylist(), rows.column("analysis").to_pylist()
        results = []
        for positions in groups.values():
            result = self.writer.run([pickle.loads(analyses[p]) for p in positions], splits[positions[0]])
            results.append(json.dumps(asdict(result)))
        return pa.table({"batch": list(groups), "result": results})


class RayExecutor:
    def __init__(self, context: RunContext):
        self.context = context
        self.started_here = start_ray(context.scale)
        import ray.data

        data_context = ray.data.DataContext.get_current()
        data_context.execution_options.preserve_order = True  # a Ray batch is one whole local batch
        data_context.enable_progress_bars = False  # the run's own progress line says it all
        data_context.print_on_execution_start = False

    def run(self, todo: Mapping[str, Sequence[Any]]) -> int:
        """Write the repositories of every split (plan entries, this shard's, not done yet) in one stream;
        returns how many are left unwritten."""
        size = self.context.scale.repos_per_batch
        batches = [(split, list(entries[start:start + size]))
                   for split, entries in todo.items() for start in range(0, len(entries), size)]
        failed = self._run(dict(enumerate(batches)))
        if failed:  # each failed batch once more, after the rest
            failed = self._run({batch_id: batches[batch_id] for batch_id in failed})
        return sum(len(batches[batch_id][1]) for batch_id in failed)

    def _run(self, batches: dict[int, tuple[str, list[Any]]]) -> list[int]:
        """One pass of these batches through the pipeline; the ids of those that failed."""
        if not batches:
            return []
        import pyarrow as pa
        import ray.data

        ctx, scale = self.context, self.context.scale
        blocks = [pa.table({"batch": [batch_id] * len(batch), "split": [split] * len(batch),
                            "entry": [pickle.dumps(e) for e in batch]}) for batch_id, (split, batch) in batches.items()]
        dataset = (ray.data.from_arrow(blocks)
                   .map_batches(analyze_block, batch_size=None, batch_format="pyarrow",
                                compute=ray.data.TaskPoolStrategy(size=scale.num_workers),
                                fn_kwargs={"ingest": ctx.ingest, "settings": ctx.settings}, **ANALYSIS_TASK_ARGS)
                   .map_batches(ModelWorker, batch_size=scale.repos_per_batch, batch_format="pyarrow",
                                fn_constructor_args=(ctx.settings,),
                                compute=ray.data.ActorPoolStrategy(size=scale.ray_model_workers),
                                num_cpus=scale.ray_cpus_per_model_worker,
                                num_gpus=scale.ray_gpus_per_model_worker or None))
        failed = []
        for row in dataset.iter_rows():
            result = BatchResult(**json.loads(row["result"]))
            if result.failed:
                failed.append(row["batch"])
            ctx.record(result)
        return failed

    def usage(self) -> dict[str, object]:
        return {}  # the workers log their own

    def close(self) -> None:
        if self.started_here:
            import ray

            ray.shutdown()
