"""Grounding for trajectories: ingest repositories, summarise files, order their development.

Model-free by design: nothing here knows agents, language models or trainers.
"""

from .analysis import ClassInfo, FileSummary, FunctionInfo, ImportInfo, summarize_python
from .graph import RepoGraph, analyze_repository, development_order, hierarchy_key
from .licenses import guess_license
from .modules import ModuleIndex
from .snapshot import IngestStats, RepoSnapshot, SourceFile, ingest_local_dir

__all__ = [
    "ClassInfo",
    "FileSummary",
    "FunctionInfo",
    "ImportInfo",
    "IngestStats",
    "ModuleIndex",
    "RepoGraph",
    "RepoSnapshot",
    "SourceFile",
    "analyze_repository",
    "development_order",
    "guess_license",
    "hierarchy_key",
    "ingest_local_dir",
    "summarize_python",
]
