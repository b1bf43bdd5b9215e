"""Grounding for trajectories: ingest repositories, summarise files, order their development.

Model-free by design: nothing here knows agents, language models or trainers.
"""

from .analysis import ClassInfo, FileSummary, FunctionInfo, ImportInfo
from .graph import RepoGraph, analyze_repository, development_order, file_kind, hierarchy_key, placement_key
from .lang import summarize_file
from .lang.python import summarize_python
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
    "file_kind",
    "guess_license",
    "hierarchy_key",
    "ingest_local_dir",
    "placement_key",
    "summarize_file",
    "summarize_python",
]
