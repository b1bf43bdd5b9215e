"""Throughput of repository analysis against tree-sitter parsing alone, on the stdlib's `Lib/`.

    python bench/analysis_throughput.py [--sizes 100,1000,all] [--repeats 2] [--no-tests]

Files: every .py under the running interpreter's `Lib/` (sysconfig "stdlib") except
`site-packages`, test directories included unless --no-tests (so "all" is ~1,800 files on 3.11).
Each top-level package directory is analysed as one repository; the top-level modules together
form one more ("stdlib"). Files are read and decoded once, untimed (ingest is not measured here:
it is file-system work, not analysis). Then, for each size N, over the first N files (units in
name order, the last unit cut at N):
1. parse alone: `Parser.parse` of each file's bytes, nothing else;
2. analysis: `analyze_repository` on in-memory snapshots (summaries of every file, module index,
   import resolution, edges, cycles, development order).
Times are this process's CPU time (`time.process_time`; the work is single-threaded), so other
load on a shared machine does not count; each pass runs --repeats times, alternating, and the
fastest run counts. Reported per size: seconds and ms/file of both, analysis s/MB, and the
analysis rate as a share of the parse-alone rate (goal: >= 0.5). Across sizes, time per file should
stay flat (linear time); the first files are not the last ones (Lib/test files hold more calls per
line), so the share and s/MB, which correct for content, are the fairer comparison.
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

try:
    from retrace.repo import RepoSnapshot, SourceFile, analyze_repository
except ImportError:  # running from a checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from retrace.repo import RepoSnapshot, SourceFile, analyze_repository

TEST_DIR_NAMES = {"test", "tests", "idle_test"}
ALWAYS_SKIPPED = {"site-packages", "__pycache__"}


def _skip_dir(name: str, include_tests: bool) -> bool:
    return name.startswith(".") or name in ALWAYS_SKIPPED or (not include_tests and name in TEST_DIR_NAMES)


def collect(lib: str, include_tests: bool) -> list[tuple[str, str, str]]:
    """(unit, path inside the unit, text) for every decodable .py file, in a fixed order."""
    found = []
    for entry in sorted(os.scandir(lib), key=lambda e: e.name):
        if entry.is_file() and entry.name.endswith(".py"):
            found.append(("stdlib", entry.name, entry.path))
    for name in sorted(os.listdir(lib)):
        root = os.path.join(lib, name)
        if not os.path.isdir(root) or os.path.islink(root) or _skip_dir(name, include_tests):
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not _skip_dir(d, include_tests))
            for filename in sorted(f for f in filenames if f.endswith(".py")):
                full = os.path.join(dirpath, filename)
                if os.path.isfile(full) and not os.path.islink(full):
                    found.append((name, os.path.relpath(full, root).replace(os.sep, "/"), full))
    files = []
    for unit, rel, full in found:
        try:
            files.append((unit, rel, Path(full).read_bytes().decode("utf-8")))
        except (OSError, UnicodeDecodeError):
            continue  # the same files go to both passes
    return files


def parse_alone(files: list[tuple[str, str, str]], parser: tree_sitter.Parser) -> float:
    blobs = [text.encode("utf-8") for _, _, text in files]  # encoding is part of neither pass
    start = time.process_time()
    for blob in blobs:
        parser.parse(blob)
    return time.process_time() - start


def analysis(files: list[tuple[str, str, str]]) -> tuple[float, int, int]:
    """(seconds, edges, cycles) of analysing `files` grouped into one snapshot per unit."""
    units: dict[str, list[SourceFile]] = {}
    for unit, rel, text in files:
        units.setdefault(unit, []).append(SourceFile(rel, "python", text))
    snapshots = [RepoSnapshot(unit, "bench", None, None, "", sources) for unit, sources in units.items()]
    edges = cycles = 0
    start = time.process_time()
    for snapshot in snapshots:
        graph = analyze_repository(snapshot)
        edges += len(graph.edges)
        cycles += len(graph.cycles)
    return time.process_time() - start, edges, cycles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100,1000,all", help="comma-separated file counts, 'all' for every file")
    parser.add_argument("--repeats", type=int, default=2, help="runs per measurement; the fastest counts")
    parser.add_argument("--no-tests", action="store_true", help="leave out test directories")
    args = parser.parse_args()

    lib = sysconfig.get_paths()["stdlib"]
    files = collect(lib, include_tests=not args.no_tests)
    megabytes = sum(len(text) for _, _, text in files) / 1e6
    print(f"Python {sys.version.split()[0]} stdlib at {lib}: {len(files)} files, {megabytes:.1f} MB")
    sizes = []
    for size in args.sizes.split(","):
        n = len(files) if size.strip() == "all" else min(int(size), len(files))
        if n not in sizes:
            sizes.append(n)

    ts_parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_python.language()))
    analysis(files[:5])  # build parsers and queries once, as a long run would
    print(f"{'files':>6} {'MB':>5} {'parse s':>8} {'analysis s':>10} {'parse ms/file':>14} "
          f"{'analysis ms/file':>17} {'analysis s/MB':>13} {'rate share':>10}  edges  cycles")  # fmt: skip
    rows = []
    for n in sizes:
        subset = files[:n]
        size_mb = sum(len(text) for _, _, text in subset) / 1e6
        parse_s = analysis_s = float("inf")
        for _ in range(max(1, args.repeats)):
            parse_s = min(parse_s, parse_alone(subset, ts_parser))
            seconds, edges, cycles = analysis(subset)
            analysis_s = min(analysis_s, seconds)
        share = parse_s / analysis_s  # analysis files/s over parse-alone files/s
        rows.append((n, analysis_s / n))
        print(f"{n:>6} {size_mb:>5.1f} {parse_s:>8.2f} {analysis_s:>10.2f} {1e3 * parse_s / n:>14.2f} "
              f"{1e3 * analysis_s / n:>17.2f} {analysis_s / size_mb:>13.2f} {share:>10.2f}  {edges:>5}  {cycles:>6}")  # fmt: skip
    if len(rows) > 1:
        (n0, per0), (n1, per1) = rows[0], rows[-1]
        print(f"scaling: {n1 / n0:.1f}x the files took {per1 / per0 * n1 / n0:.1f}x the time "
              f"(time per file x{per1 / per0:.2f}; 1.00 is linear)")  # fmt: skip
    print(f"goal: analysis rate >= 0.5 of parse-alone rate; got {share:.2f} on {n} files")


if __name__ == "__main__":
    main()
