"""Repo-fix: SWE-smith-style procedural bugs in real repositories, fixed by the model in a tool loop.

`mutations` makes the bugs, `generate` keeps those the tests catch, `agent` runs the model's episodes
through the `protocol`, and `task` is the `repo_fix` evaluation task.
"""

from retrace.evaluation.repofix.mutations import MUTATION_KINDS, Mutant, mutant_at, mutate
from retrace.evaluation.repofix.task import REPO_FIX, RepoFixOptions

__all__ = ["MUTATION_KINDS", "REPO_FIX", "Mutant", "RepoFixOptions", "mutant_at", "mutate"]
