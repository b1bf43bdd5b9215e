"""Synthesis at scale on this machine: `executor: ray` against `local`, and the planning pass as the input grows.

    python bench/synthesis_scale.py [--repos 16] [--plan_sizes 40,400] [--scorer tiny|embedded] [--quick]

Inputs: generated Python packages written to a temporary directory (each different: no near-duplicates),
a chain of imports through their modules.

1. Throughput. The same `--repos` packages (8 modules of 20 functions, ~18 KB; under the 3,000-token budget
   each becomes a few sub-projects; the first is also the held-out repository) synthesized by
   `run_synthesis` with the quickstart recipe, structural policy and proposer, refinement (one Think a
   sub-project, 3 iterations x 2 candidates) scored by the tests' tiny random Llama (2 layers, hidden 64,
   the embedded model's tokenizer: `tests/retrace_testing.build_tiny_llama`), no viewer. `--scorer
   embedded` scores with the embedded SmolLM2-135M-Instruct instead (float32, CPU): on this 2-core machine,
   shared, that is minutes a repository, the scorer's cost drowning what the executors differ in. First with `executor: local`, then with `executor: ray` on a local cluster with every CPU of
   this machine (analysis tasks on one CPU, one model worker holding the engines on another). Reported:
   repositories per second of each (the whole `run_synthesis` call: planning, engines loaded, writing, the
   finish step), the ratio ray/local (goal: >= 0.8 on 2 CPUs), and the Ray cluster's start (`ray.init`)
   apart: the Ray run joins the started cluster, so its time holds the pipeline alone. Wall-clock times:
   other work on the machine shows in them, and a Ray worker runs torch on one thread where the local
   run's scorer uses every core.
2. Planning. `plan_split` (4 shards, one process) over the first N of the packages for each N in
   `--plan_sizes` (2 modules of 60 functions, ~11 KB each): wall time (a run without tracemalloc) and peak
   traced memory (a second run under tracemalloc, the plan file removed between), with the growth ratios
   from the smallest size to the largest (linear time: the ratio of sizes; memory: it must not follow the
   texts, so the peak is printed against the input's text bytes). Then reading ONE shard's repositories
   through the executors' path (`read_entries` of its plan entries, every snapshot held) at the largest
   size: its peak against the shard's own and the whole input's text bytes. Every file is read into a
   buffer of `max_file_bytes` + 1 bytes (1 MB, the recipe's), one file at a time: a constant in each peak.

Sizes: 16 repositories and 40 -> 400 take ~4-5 minutes on an idle 2-core CPU; `--quick` (3 repositories,
10 -> 40) ~1-2 minutes, to see the script work.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

try:
    import retrace  # noqa: F401
except ImportError:  # running from a checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "quickstart" / "synthesize.yaml"
sys.path.insert(0, str(ROOT / "tests"))  # the tests' tiny Llama and memory probe
from retrace_testing import build_tiny_llama, peak_traced_bytes  # noqa: E402


def write_packages(root: Path, count: int, modules: int, functions: int) -> tuple[list[str], int]:
    """`count` different packages (a chain of imports through `modules` modules); their specs and text bytes."""
    specs, text_bytes = [], 0
    for r in range(count):
        pkg = root / f"bench{r:04d}" / f"bench{r:04d}"
        pkg.mkdir(parents=True)
        texts = {"__init__.py": f'"""Benchmark package {r}."""\nfrom .mod{modules - 1} import top_{r}\n'}
        for m in range(modules):
            imports = f"from .mod{m - 1} import f{m - 1}_{r}\n" if m else ""
            body = "".join(f"def f{m}_{r}_{k}(value_{k}, scale={k * 7919 + r}):\n"
                           f'    """Step {k} of stage {m} in package {r}."""\n'
                           f"    return value_{k} * scale - {r * m + k}\n\n" for k in range(functions))
            tail = f"def top_{r}(x):\n    return f{m}_{r}(x)\n" if m == modules - 1 else ""
            texts[f"mod{m}.py"] = (f'"""Stage {m} of package {r}."""\n{imports}\n{body}def f{m}_{r}(x):\n'
                                   f"    return x + {m}\n\n{tail}")
        for name, text in texts.items():
            (pkg / name).write_text(text)
            text_bytes += len(text.encode("utf-8"))
        specs.append(str(pkg.parent))
    return specs, text_bytes


def synthesis_sections(specs: list[str], out: Path, executor: str, scorer: str):
    from retrace.agents import SimulationArguments
    from retrace.data.export import ExportArguments
    from retrace.recipe import parse_recipe
    from retrace.refine import RefineArguments
    from retrace.repo.budget import DocumentBudgetArguments
    from retrace.repo.parallel import ScaleArguments
    from retrace.repo.sources import IngestArguments

    *sections, _ = parse_recipe(
        [IngestArguments, DocumentBudgetArguments, SimulationArguments, RefineArguments, ExportArguments,
         ScaleArguments],
        ["--config", str(RECIPE), "--policy_backend", "structural", "--proposer_backend", "structural",
         "--scorer_backend", "hf", "--scorer_model", scorer, "--sources", *specs, "--heldout_sources", specs[0], "--output_dir", str(out),
         "--viewer", "false", "--repos_per_batch", "2", "--document_budget_tokens", "3000",
         "--executor", executor])
    return sections


def scorer_model(work: Path, which: str) -> str:
    """The scorer's model directory: the tests' tiny Llama (built here) or the embedded SmolLM2."""
    from retrace.llm import embedded_model_dir

    if which == "embedded":
        return str(embedded_model_dir())
    return str(build_tiny_llama(work / "tiny-llama", sharpen=40))


def throughput(work: Path, repos: int, scorer: str) -> None:
    from retrace.synthesis import run_synthesis

    specs, _ = write_packages(work / "throughput", repos, modules=8, functions=20)
    done = repos + 1  # and the held-out repository
    seconds = {}
    for executor in ("local", "ray"):
        if executor == "ray":
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            import ray

            started = time.perf_counter()
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
            print(f"ray cluster start ({os.cpu_count()} CPUs): {time.perf_counter() - started:.1f} s "
                  "(not counted below)")
        out = work / f"out-{executor}"
        started = time.perf_counter()
        try:
            run_synthesis(*synthesis_sections(specs, out, executor, scorer), progress=False)
        finally:
            if executor == "ray":
                ray.shutdown()
        seconds[executor] = time.perf_counter() - started
        documents = sum(1 for _ in (out / "documents").rglob("*.jsonl"))
        print(f"{executor:>5}: {done} repositories ({documents} training documents) in {seconds[executor]:.1f} s "
              f"= {done / seconds[executor]:.3f} repositories/s")
    print(f"ray / local throughput: {seconds['local'] / seconds['ray']:.2f} (goal >= 0.8)")


def planning(work: Path, sizes: list[int]) -> None:
    from retrace.repo.plan import plan_split
    from retrace.repo.snapshot import IngestStats
    from retrace.repo.sources import IngestArguments
    from retrace.synthesis.planning import read_entries

    specs, _ = write_packages(work / "planning", max(sizes), modules=2, functions=60)
    warm_up = specs[:2]  # imports and first-use caches, outside the timed runs
    plan_split(warm_up, IngestArguments(sources=warm_up), IngestStats(), num_shards=4,
               plan_path=work / "plans" / "warm-up.jsonl")
    rows, planned = [], []
    for size in sizes:
        chosen = specs[:size]
        args = IngestArguments(sources=chosen)
        read_buffer = args.max_file_bytes + 1
        text_bytes = sum(p.stat().st_size for spec in chosen for p in Path(spec).rglob("*.py"))
        plan_path = work / "plans" / f"{size}.jsonl"

        def plan(chosen=chosen, args=args, plan_path=plan_path):
            plan_path.unlink(missing_ok=True)  # planned afresh, never the reused plan
            return plan_split(chosen, args, IngestStats(), num_shards=4, plan_path=plan_path)

        started = time.perf_counter()
        planned = plan()
        seconds = time.perf_counter() - started
        peak = peak_traced_bytes(plan)
        assert len(planned) == size, f"{size - len(planned)} packages were dropped as duplicates"
        rows.append((size, seconds, peak, text_bytes))
        print(f"plan {size:>5} repositories ({text_bytes / 1e6:.2f} MB of text): {seconds:.2f} s "
              f"({1e3 * seconds / size:.1f} ms/repository), peak traced {peak / 1e6:.2f} MB, "
              f"{(peak - read_buffer) / 1e6:.2f} MB beyond one file's read buffer = "
              f"{(peak - read_buffer) / text_bytes:.2f} x the input's text")
    (small, t0, m0, _), (large, t1, m1, text_bytes) = rows[0], rows[-1]
    print(f"growth {small} -> {large} repositories (x{large / small:.0f}): time x{t1 / t0:.1f} (linear: "
          f"x{large / small:.0f}), peak memory x{m1 / m0:.2f}")

    args = IngestArguments(sources=specs[:large])
    shard = [p for p in planned if p.shard == 0]
    own = sum(len(f.text.encode("utf-8")) for s in read_entries(shard, args) for f in s.files)
    peak = peak_traced_bytes(lambda: list(read_entries(shard, args)))
    print(f"one shard of 4 read ({len(shard)} of {large} repositories, all held): peak traced {peak / 1e6:.2f} MB; "
          f"{(peak - args.max_file_bytes - 1) / 1e6:.2f} MB beyond one file's read buffer "
          f"({(args.max_file_bytes + 1) / 1e6:.1f} MB); its own texts {own / 1e6:.2f} MB, the input's "
          f"{text_bytes / 1e6:.2f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repos", type=int, default=16, help="repositories for the ray-vs-local throughput")
    parser.add_argument("--plan_sizes", default="40,400", help="input sizes for the planning pass")
    parser.add_argument("--scorer", choices=("tiny", "embedded"), default="tiny",
                        help="the refine scorer: the tests' tiny Llama or the embedded SmolLM2-135M")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (3 repositories; planning 10,40)")
    options = parser.parse_args()
    repos, sizes = options.repos, sorted(int(s) for s in options.plan_sizes.split(","))
    if options.quick:
        repos, sizes = 3, [10, 40]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    work = Path(tempfile.mkdtemp(prefix="retrace-bench-scale-"))
    try:
        scorer = scorer_model(work, options.scorer)
        print(f"throughput: {repos} repositories + 1 held out, structural policy and proposer, scorer "
              f"{options.scorer} ({scorer})")
        throughput(work, repos, scorer)
        print(f"planning pass: {' -> '.join(map(str, sizes))} repositories")
        planning(work, sizes)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
