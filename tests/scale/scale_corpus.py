"""Fixtures shared by the scale tests: a corpus of small generated packages, recipes parsed as the script does."""

from __future__ import annotations

from pathlib import Path

from retrace_testing import ROOT

RECIPE = str(ROOT / "recipes" / "quickstart" / "synthesize.yaml")
# Artifacts that name the run itself (output_dir, start time, host, the card quoting them), not its data.
NAMING_THE_RUN = {"run_info.json", "recipe.yaml", "README.md", "viewer/index.html"}


def make_corpus(root: Path, n_repos: int = 40, n_files: int = 25) -> list[str]:
    """Small Python packages with a chain of imports each: enough work that a kill lands mid-run."""
    specs = []
    for r in range(n_repos):
        repo = root / f"repo{r:02d}"
        pkg = repo / f"pkg{r}"
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text(f'"""Package {r}."""\n')
        for f in range(n_files):
            imports = f"from .mod{f - 1} import f{f - 1}\n" if f else ""
            body = "".join(f"def f{f}_{k}(x, y={k}):\n    \"\"\"Helper {k}.\"\"\"\n    return x * y + {r}\n\n"
                           for k in range(30))
            (pkg / f"mod{f}.py").write_text(f'"""Module {f} of repo {r}."""\n{imports}\n{body}def f{f}(x):\n'
                                            f"    return x + {f}\n")
        specs.append(str(repo))
    return specs


def tree(root: Path, ignore: set[str] = frozenset()) -> list[str]:
    """Every file under `root` (relative paths), except those that name the run and those in `ignore`."""
    return sorted(rel for p in root.rglob("*") if p.is_file()
                  and (rel := str(p.relative_to(root))) not in NAMING_THE_RUN | set(ignore))


def parse_synthesis_recipe(*argv: str):
    """The recipe sections synthesize.py passes to `run_synthesis`, parsed from the quickstart recipe + `argv`."""
    from retrace.agents import SimulationArguments
    from retrace.data.export import ExportArguments
    from retrace.recipe import parse_recipe
    from retrace.refine import RefineArguments
    from retrace.repo.budget import DocumentBudgetArguments
    from retrace.repo.parallel import ScaleArguments
    from retrace.repo.sources import IngestArguments

    *sections, _ = parse_recipe([IngestArguments, DocumentBudgetArguments, SimulationArguments, RefineArguments,
                                 ExportArguments, ScaleArguments], ["--config", RECIPE, *argv])
    return sections


def repository_artifacts(out: Path) -> list[Path]:
    """The files written for repositories (trajectories, documents, baselines, budget records), not the plan."""
    return [p for p in out.rglob("*") if p.is_file() and p.suffix in (".jsonl", ".json")
            and p.relative_to(out).parts[0] not in ("plan", "stats") and p.parent != out]
