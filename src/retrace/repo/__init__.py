"""Grounding for trajectories: ingest repositories, summarise files, order their development.

Model-free by design: nothing here knows agents, language models or trainers.
"""

from .analysis import ClassInfo, FileSummary, FunctionInfo, ImportInfo
from .filters import FilterArguments
from .graph import RepoGraph, analyze_repository, development_order, file_kind, hierarchy_key, placement_key
from .lang import summarize_file
from .lang.python import summarize_python
from .licenses import guess_license
from .modules import ModuleIndex
from .parallel import ScaleArguments, analyze_in_workers, shard_of
from .snapshot import IngestStats, RepoSnapshot, SourceFile, build_snapshot, ingest_local_dir
from .sources import SOURCE_KINDS, IngestArguments, ingest_sources, parse_source

__all__ = [
    "SOURCE_KINDS",
    "FilterArguments",
    "IngestArguments",
    "ScaleArguments",
    "analyze_in_workers",
    "build_snapshot",
    "ingest_sources",
    "parse_source",
    "shard_of",
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
