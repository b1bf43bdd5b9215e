"""Run the replication and write its report.

Usage:
    # what `make replicate` runs: recipes/replication/{synthesize,train,evaluate}.yaml, seeds 0 and 1
    python -m retrace.replication --output_dir runs/replication

    # stage overrides are the scripts' own `--key value` flags, quoted as one string per stage
    python -m retrace.replication --output_dir runs/rep --seeds 0 \
        --train_args "--max_steps 4" --evaluate_args "--max_files 4"

    # rewrite report.md and the figures from a finished run (nothing is run)
    python -m retrace.replication --output_dir runs/replication --report_only
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from retrace.replication.pipeline import REPO_ROOT, ReplicationPlan, run_replication, split_args
from retrace.replication.report import build_report


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(prog="python -m retrace.replication", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default="runs/replication", help="where synth/, models/, eval/ and the report go")
    parser.add_argument("--recipes_dir", default=str(REPO_ROOT / "recipes" / "replication"),
                        help="folder holding synthesize.yaml, train.yaml and evaluate.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="training seeds (each arm once per seed)")
    parser.add_argument("--synthesize_args", default="", help="extra synthesize.py flags, one quoted string")
    parser.add_argument("--train_args", default="", help="extra train.py flags, one quoted string")
    parser.add_argument("--evaluate_args", default="", help="extra evaluate.py flags, one quoted string")
    parser.add_argument("--report_only", action="store_true", help="only rewrite the report from a finished run")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    plan = ReplicationPlan(Path(args.output_dir), Path(args.recipes_dir), list(args.seeds),
                           split_args(args.synthesize_args), split_args(args.train_args), split_args(args.evaluate_args))
    if not args.report_only:
        run_replication(plan)
    report = build_report(plan.output_dir)
    print(f"report: {report}")
    return report


if __name__ == "__main__":
    main()
