"""A static HTML viewer for synthesis output: what each agent did, and what a trainer will learn from.

`python -m retrace.data.viewer <synth_output_dir> [--out DIR] [--max_repositories N]`; see docs/viewer.md.
"""

from retrace.data.viewer.site import write_viewer

__all__ = ["write_viewer"]
