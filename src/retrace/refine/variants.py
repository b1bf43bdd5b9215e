"""The no-search variant of a refined trajectory (the paper's "without search" ablation), from the same file.

Refinement keeps every searched step's pre-search text in `step.search.original` (a searched plan also its
record before search, `search.original_plan`) and every dropped Think in `meta.refine.dropped`, so exporting
the ablation needs no second simulation run.
"""

from __future__ import annotations

import copy

from retrace.data import Step, Trajectory


def no_search_trajectory(traj: Trajectory) -> Trajectory:
    """A copy of `traj` as it was before refinement: original Think texts (and plan), dropped Thinks restored.

    Search logs are removed; a trajectory that was never refined comes back as an unchanged copy.
    """
    out = copy.deepcopy(traj)
    refine_meta = out.meta.pop("refine", {}) or {}
    for record in sorted(refine_meta.get("dropped", []), key=lambda r: r["index"]):
        out.steps.insert(record["index"], Step.from_dict(record["step"]))
    for step in out.steps:
        if step.search is not None:
            step.content = step.search.original
            if step.search.original_plan is not None:
                step.plan = step.search.original_plan
            step.search = None
    return out


def is_refined(traj: Trajectory) -> bool:
    return "refine" in traj.meta
