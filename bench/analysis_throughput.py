"""Throughput of repository analysis against tree-sitter parsing alone, on the stdlib's `Lib/`.

    python bench/analysis_throughput.py [--limit N] [--include-tests]

Files: every .py under the running interpreter's `Lib/` (sysconfig "stdlib"), except
`site-packages` and, unless --include-tests, directories named `test`, `tests` or `idle_test`.
Each top-level package directory is analysed as one repository; the top-level modules together
form one more ("stdlib"). Both passes run in the same process over the same files, after an
untimed read that warms the OS page cache:
1. parse alone: read bytes + `Parser.parse`, nothing else;
2. full analysis: `ingest_local_dir` + `analyze_repository` (summaries, module index, edges, order).
Reported: files/s of each and full/parse-alone ratio of wall time (how many times slower the full
analysis is than the parse it cannot avoid).
"""

from __future__ import annotations

import argparse
import os
import sys
import sysconfig
import time
from pathlib import Path

import tree_sitter
import tree_sitter_python
from tqdm import tqdm

try:
    from retrace.repo import IngestStats, analyze_repository, ingest_local_dir
except ImportError:  # running from a checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from retrace.repo import IngestStats, analyze_repository, ingest_local_dir

TEST_DIR_NAMES = {"test", "tests", "idle_test"}
ALWAYS_SKIPPED = {"site-packages", "__pycache__"}


def _skip_dir(name: str, include_tests: bool) -> bool:
    return name.startswith(".") or name in ALWAYS_SKIPPED or (not include_tests and name in TEST_DIR_NAMES)


def discover_units(lib: str, include_tests: bool) -> list[tuple[str, str]]:
    """(unit name, directory) pairs: one per top-level package dir, and "stdlib" for the modules."""
    units = [("stdlib", lib)]
    for name in sorted(os.listdir(lib)):
        path = os.path.join(lib, name)
        if os.path.isdir(path) and not os.path.islink(path) and not _skip_dir(name, include_tests):
            units.append((name, path))
    return units


def unit_exclude(unit: str, include_tests: bool):
    """The ingest filter for a unit: the "stdlib" unit keeps only top-level files."""

    def exclude(rel: str) -> bool:
        if rel.endswith("/"):
            return unit == "stdlib" or _skip_dir(rel.rstrip("/").rsplit("/", 1)[-1], include_tests)
        return False

    return exclude


def unit_files(unit: str, root: str, include_tests: bool) -> list[str]:
    """The .py files of one unit (absolute paths), for the parse-alone pass."""
    if unit == "stdlib":
        files = [e.path for e in sorted(os.scandir(root), key=lambda e: e.name) if e.name.endswith(".py")]
    else:
        files = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not _skip_dir(d, include_tests))
            files += [os.path.join(dirpath, f) for f in sorted(filenames) if f.endswith(".py")]
    return [f for f in files if os.path.isfile(f) and not os.path.islink(f)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="whole units until at least N files")
    parser.add_argument("--include-tests", action="store_true", help="also analyse test directories")
    args = parser.parse_args()

    lib = sysconfig.get_paths()["stdlib"]
    units, files = [], []
    for unit, root in discover_units(lib, args.include_tests):
        if args.limit and len(files) >= args.limit:
            break  # whole units only, so both passes see exactly the same files
        units.append((unit, root))
        files += unit_files(unit, root, args.include_tests)
    total_bytes = sum(len(Path(f).read_bytes()) for f in files)  # untimed: warms the page cache
    print(f"Python {sys.version.split()[0]} stdlib at {lib}: {len(files)} files, {total_bytes / 1e6:.1f} MB")

    ts_parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_python.language()))
    start = time.perf_counter()
    for path in tqdm(files, desc="parse alone", unit="file"):
        with open(path, "rb") as handle:
            ts_parser.parse(handle.read())
    parse_s = time.perf_counter() - start

    stats = IngestStats()
    ingest_s = graph_s = 0.0
    analysed = edges = cycles = 0
    with tqdm(total=len(files), desc="full analysis", unit="file") as progress:
        for unit, root in units:
            t0 = time.perf_counter()
            snapshot = ingest_local_dir(
                root, name=unit, stats=stats, exclude=unit_exclude(unit, args.include_tests)
            )
            t1 = time.perf_counter()
            ingest_s += t1 - t0
            if snapshot is None:
                continue
            graph = analyze_repository(snapshot)
            graph_s += time.perf_counter() - t1
            analysed += len(graph.files)
            edges += len(graph.edges)
            cycles += len(graph.cycles)
            progress.update(len(graph.files))
    full_s = ingest_s + graph_s

    print(f"parse alone:   {len(files)} files in {parse_s:.2f}s = {len(files) / parse_s:,.0f} files/s")
    print(
        f"full analysis: {analysed} files in {full_s:.2f}s = {analysed / full_s:,.0f} files/s "
        f"(ingest {ingest_s:.2f}s, summarise+graph {graph_s:.2f}s)"
    )
    print(f"ratio full/parse-alone (time per file): {(full_s / analysed) / (parse_s / len(files)):.2f}x")
    print(f"{len(units)} units, {edges} in-repo edges, {cycles} cycles; ingest stats: {stats.to_dict()}")


if __name__ == "__main__":
    main()
