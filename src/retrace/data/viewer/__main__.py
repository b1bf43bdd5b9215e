"""Command line: `python -m retrace.data.viewer <synth_output_dir> [--out DIR] [--max_repositories N]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from retrace.data.viewer.site import write_viewer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m retrace.data.viewer", description=__doc__)
    parser.add_argument("output_dir", help="a synthesis output directory (holds trajectories/ and documents/)")
    parser.add_argument("--out", default=None, help="where to write the pages (default: <output_dir>/viewer)")
    parser.add_argument("--max_repositories", type=int, default=1000,
                        help="show a stable sample of at most this many repositories (0: all)")
    args = parser.parse_args(argv)
    if not (Path(args.output_dir) / "trajectories").is_dir() and not (Path(args.output_dir) / "heldout").is_dir():
        print(f"error: {args.output_dir} has no trajectories/ or heldout/: not a synthesis output directory",
              file=sys.stderr)
        return 2
    index = write_viewer(args.output_dir, args.out, args.max_repositories)
    print(f"wrote {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
