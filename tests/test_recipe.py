"""The one recipe convention: CLI > YAML > default, and one clear error for bad input."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from retrace.recipe import RecipeError, parse_recipe, path_field

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Args:
    name: str = "default"
    steps: int = 3
    rate: float = 0.5
    enabled: bool = False
    sources: list[str] = field(default_factory=lambda: ["a"])
    data: str | None = path_field(None, help="must exist")


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return str(path)


def test_precedence_cli_over_yaml_over_default(tmp_path):
    recipe = write(tmp_path, "steps: 7\nrate: 0.25\nsources: [x, y]\n")
    args, info = parse_recipe([Args], ["--config", recipe, "--rate", "0.125"])
    assert (args.name, args.steps, args.rate, args.sources) == ("default", 7, 0.125, ["x", "y"])
    assert info.values["rate"] == 0.125 and info.path == recipe


def test_bool_and_list_overrides(tmp_path):
    recipe = write(tmp_path, "enabled: true\nsources: []\n")
    args, _ = parse_recipe([Args], ["--config", recipe])
    assert args.enabled is True and args.sources == []
    args, _ = parse_recipe([Args], ["--config", recipe, "--enabled", "false", "--sources", "p", "q"])
    assert args.enabled is False and args.sources == ["p", "q"]


def test_env_block_sets_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("RETRACE_TEST_ENV", raising=False)
    recipe = write(tmp_path, "env:\n  RETRACE_TEST_ENV: hello\nsteps: 1\n")
    parse_recipe([Args], ["--config", recipe])
    import os

    assert os.environ["RETRACE_TEST_ENV"] == "hello"


@pytest.mark.parametrize(("yaml_text", "cli", "needle"), [
    ("bogus_key: 1\n", [], "unknown key 'bogus_key' in recipe"),
    ("steps: 1\n", ["--bogus_key", "1"], "unknown key 'bogus_key' on the command line"),
    ("steps: many\n", [], "--steps: invalid int value: 'many' (in recipe"),
    ("steps: [1, 2]\n", [], "key 'steps' takes a single value"),
    ("data: /no/such/path\n", [], "key 'data': path does not exist: /no/such/path"),
])
def test_bad_input_names_key_and_recipe(tmp_path, yaml_text, cli, needle):
    recipe = write(tmp_path, yaml_text)
    with pytest.raises(RecipeError) as info:
        parse_recipe([Args], ["--config", recipe, *cli])
    assert needle in str(info.value)
    assert "recipe" in str(info.value)


def test_missing_recipe_and_non_mapping(tmp_path):
    with pytest.raises(RecipeError, match="recipe not found"):
        parse_recipe([Args], ["--config", str(tmp_path / "nope.yaml")])
    with pytest.raises(RecipeError, match="must be a mapping"):
        parse_recipe([Args], ["--config", write(tmp_path, "- 1\n- 2\n")])


def test_entry_script_bogus_key_is_one_line_error():
    result = subprocess.run(
        [sys.executable, "synthesize.py", "--config", "recipes/quickstart/synthesize.yaml", "--bogus_key", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "bogus_key" in lines[0], result.stderr


@pytest.mark.parametrize("script", ["synthesize.py", "train.py", "evaluate.py"])
def test_help_lists_the_keys_and_exits_zero(script):
    run = subprocess.run([sys.executable, script, "--help"], cwd=Path(__file__).resolve().parents[1],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "usage:" in run.stdout and "--output_dir" in run.stdout
