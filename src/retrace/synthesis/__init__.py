"""The synthesis pipeline as a library: plan, analyse, simulate, refine, export, finish (synthesize.py runs it).

`run_synthesis` runs one shard of a recipe with the `local` or the `ray` executor; `finish_run` builds the
run-wide statistics, the dataset card and the viewer once from every shard's output. `analyze_batch` and
`BatchWriter` are the unit of work both executors run (docs/scale.md).
"""

from retrace.synthesis.batch import AnalyzedRepository, BatchResult, BatchSettings, BatchWriter, analyze_batch
from retrace.synthesis.run import finish_run, run_synthesis

__all__ = ["AnalyzedRepository", "BatchResult", "BatchSettings", "BatchWriter", "analyze_batch", "finish_run",
           "run_synthesis"]
