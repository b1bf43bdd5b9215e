"""Every YAML recipe under recipes/ parses with the script it belongs to.

Which script: the file name says it (`synthesize*` -> synthesize.py, `evaluate*` -> evaluate.py,
anything else -> train.py). Each parse runs in its own process, because a training recipe that names
a DeepSpeed config switches transformers into ZeRO mode for the rest of the process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# accelerate configs and Ray Serve applications (recipes/serving/) are not retrace recipes
RECIPES = sorted(p for p in (ROOT / "recipes").rglob("*.yaml") if not {"accelerate", "serving"} & set(p.parts))

SECTIONS = {
    "synthesize": "from retrace.repo.sources import IngestArguments as A; from retrace.agents import "
                  "SimulationArguments as B; from retrace.data.export import ExportArguments as C; "
                  "from retrace.repo.parallel import ScaleArguments as D; from retrace.refine import RefineArguments as E; "
                  "from retrace.repo.budget import DocumentBudgetArguments as F; types = (A, F, B, E, C, D)",
    "evaluate": "from retrace.evaluation import EvaluationConfig as A, task_option_types; "
                "types = (A, *task_option_types())",
    "train": "from retrace.training import ModelArguments as A, DataArguments as B, RetraceTrainingArguments as C; "
             "types = (A, B, C)",
}


def script_of(recipe: Path) -> str:
    for name in ("synthesize", "evaluate"):
        if recipe.stem.startswith(name):
            return name
    return "train"


def test_there_are_recipes_for_every_script():
    assert {script_of(r) for r in RECIPES} == set(SECTIONS)


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: str(p.relative_to(ROOT)))
def test_recipe_parses(recipe):
    code = (f"{SECTIONS[script_of(recipe)]}\nimport sys\nfrom retrace.recipe import parse_recipe\n"
            "parsed = parse_recipe(types, sys.argv[1:])\nprint(sorted(parsed[-1].values)[:3])")
    # GPU recipes ask for bf16, which TrainingArguments refuses on a machine without a GPU.
    extra = ["--use_cpu", "true"] if "llama3" in recipe.parts[-2] and script_of(recipe) == "train" else []
    result = subprocess.run([sys.executable, "-c", code, "--config", str(recipe), *extra], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def test_the_paper_synthesis_writes_where_the_paper_training_recipes_read():
    """One synthesis run makes the three corpora the llama3-8b training recipes train on."""
    import yaml

    synth = yaml.safe_load((ROOT / "recipes" / "llama3-8b" / "synthesize_repo2agent_search.yaml").read_text())
    out = synth["output_dir"]
    assert synth["refine"] and synth["raw_baseline"]  # documents/, baselines/no_search and baselines/raw_repos
    expected = {"cpt_64k_zero3.yaml": f"{out}/documents", "cpt_64k_no_search.yaml": f"{out}/baselines/no_search",
                "cpt_64k_raw_repos.yaml": f"{out}/baselines/raw_repos"}
    for name, folder in expected.items():
        train = yaml.safe_load((ROOT / "recipes" / "llama3-8b" / name).read_text())
        repository_share = [m["path"] for m in train["mixture"].values() if "input_ids_field" not in m]
        assert repository_share == [folder], name
        assert synth["document_budget_tokens"] <= train["max_length"]


def test_the_served_policy_is_the_one_the_slurm_launch_points_synthesis_at():
    """recipes/serving/ serves the model id that slurm_synthesize.sh names, with as many replicas as it leaves
    out of the model workers; the launch script is valid bash."""
    import re

    import yaml

    serve = yaml.safe_load((ROOT / "recipes" / "serving" / "qwen3_8b_policy.yaml").read_text())
    (app,) = serve["applications"]
    assert app["import_path"] == "ray.serve.llm:build_openai_app"
    (llm,) = app["args"]["llm_configs"]
    script = (ROOT / "recipes" / "llama3-8b" / "slurm_synthesize.sh").read_text()
    assert f"--policy_model {llm['model_loading_config']['model_id']}" in script
    assert re.search(rf"POLICY_REPLICAS=\$\{{POLICY_REPLICAS:-{llm['deployment_config']['num_replicas']}\}}", script)
    assert "--executor ray" in script and "serving/qwen3_8b_policy.yaml" in script
    subprocess.run(["bash", "-n", str(ROOT / "recipes" / "llama3-8b" / "slurm_synthesize.sh")], check=True)
