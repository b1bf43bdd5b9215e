"""Artifact formats (trajectories, documents) and their export. Knows no trainer and no model."""

from retrace.data.document import (
    Document,
    Segment,
    raw_repository_document,
    read_documents,
    trajectory_to_document,
)
from retrace.data.records import Candidate, Definition, Grounding, Plan, PlanEntry, SearchLog
from retrace.data.trajectory import (
    MAIN_AGENT,
    STEP_KINDS,
    Step,
    Trajectory,
    iter_trajectories,
    read_trajectories,
)

__all__ = [
    "Candidate", "Definition", "Grounding", "Plan", "PlanEntry", "SearchLog",
    "MAIN_AGENT", "STEP_KINDS", "Document", "Segment", "Step", "Trajectory", "raw_repository_document",
    "iter_trajectories", "read_documents", "read_trajectories", "trajectory_to_document",
]
