"""One recipe convention for the three entry scripts.

`--config recipe.yaml` supplies values, any key can be overridden on the command line as `--key value`,
and dataclass defaults fill the rest (CLI > YAML > default). Parsing is HfArgumentParser's: the YAML is
turned into the same `--key value` tokens a user would type, so YAML values get exactly the type checks
and conversions of command-line values. An `env:` block becomes environment variables. An unknown key,
a value of the wrong type or a missing path is one `RecipeError` naming the key and the recipe.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from transformers import HfArgumentParser


class RecipeError(ValueError):
    """A recipe or command line that cannot be used; the message names the key and the recipe."""


def path_field(default: Any = None, *, help: str = "", kind: str = "exists", **kwargs: Any) -> Any:
    """A dataclass field holding a path (or list of paths) that must exist when `kind == "exists"`.

    `kind="output"` marks an output location (created later, never checked).
    """
    metadata = {"help": help, "retrace_path": kind}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata, **kwargs)
    return field(default=default, metadata=metadata, **kwargs)


@dataclass
class Recipe:
    """What a run was configured with: saved beside every output."""

    path: str | None
    values: dict[str, Any]
    argv: list[str]


class _RaisingParser(HfArgumentParser):
    """argparse exits on error; we raise so the caller can name the recipe."""

    def error(self, message: str):  # noqa: D401 - argparse API
        raise RecipeError(message)

    @staticmethod
    def _parse_dataclass_field(parser: argparse.ArgumentParser, dc_field: dataclasses.Field):
        # HfArgumentParser passes field metadata to add_argument: hide our own key from argparse.
        if "retrace_path" in dc_field.metadata:
            dc_field = copy.copy(dc_field)
            dc_field.metadata = MappingProxyType({k: v for k, v in dc_field.metadata.items() if k != "retrace_path"})
        HfArgumentParser._parse_dataclass_field(parser, dc_field)


def _pop_config(argv: list[str]) -> tuple[str | None, list[str]]:
    rest, config = [], None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--config":
            if i + 1 >= len(argv):
                raise RecipeError("--config needs a path to a YAML recipe")
            config, i = argv[i + 1], i + 2
            continue
        if arg.startswith("--config="):
            config = arg.split("=", 1)[1]
        else:
            rest.append(arg)
        i += 1
    return config, rest


def _load_yaml(path: str) -> dict[str, Any]:
    if not Path(path).is_file():
        raise RecipeError(f"recipe not found: {path}")
    with open(path, encoding="utf-8") as handle:
        try:
            data = yaml.safe_load(handle) or {}
        except yaml.YAMLError as exc:
            raise RecipeError(f"recipe {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise RecipeError(f"recipe {path} must be a mapping of keys to values, got {type(data).__name__}")
    return data


def _to_tokens(key: str, value: Any, action: argparse.Action) -> list[str] | None:
    """The command-line tokens equivalent to `key: value`; None when it must be set as a default."""
    flag = f"--{key}"
    if value is None:
        return None
    if isinstance(value, list):
        if not value:
            return None
        if action.nargs not in ("+", "*"):
            raise RecipeError(f"key '{key}' takes a single value, got a list")
        return [flag, *[_scalar(key, item) for item in value]]
    if isinstance(value, dict):
        return [flag, json.dumps(value)]
    return [flag, _scalar(key, value)]


def _scalar(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        raise RecipeError(f"key '{key}' has a nested value that cannot be used here: {value!r}")
    return str(value)


def _dests(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {a.dest: a for a in parser._actions if a.dest != "help"}


def parse_recipe(dataclass_types: Sequence[type], argv: Sequence[str] | None = None) -> tuple[Any, ...]:
    """Parse `--config` YAML plus command-line overrides into instances of `dataclass_types`.

    Returns the dataclass instances followed by a `Recipe` describing what was resolved.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    config_path, cli = _pop_config(argv)
    where = f"recipe {config_path}" if config_path else "the command line"
    parser = _RaisingParser(list(dataclass_types))
    actions = _dests(parser)

    yaml_tokens: list[str] = []
    late_defaults: dict[str, Any] = {}
    if config_path:
        data = _load_yaml(config_path)
        env = data.pop("env", None) or {}
        if not isinstance(env, dict):
            raise RecipeError(f"key 'env' in recipe {config_path} must be a mapping")
        for name, value in env.items():
            os.environ[str(name)] = str(value)
        for key, value in data.items():
            if key not in actions:
                raise RecipeError(f"unknown key '{key}' in recipe {config_path}")
            try:
                tokens = _to_tokens(key, value, actions[key])
            except RecipeError as exc:
                raise RecipeError(f"{exc} (recipe {config_path})") from None
            if tokens is None:
                late_defaults[key] = value
            else:
                yaml_tokens += tokens
        # Type-check the recipe on its own first, so errors name the recipe rather than the CLI.
        try:
            parser.parse_known_args(yaml_tokens)
        except RecipeError as exc:
            raise RecipeError(f"{exc} (in recipe {config_path})") from None

    if "-h" in argv or "--help" in argv:  # every key, its type, default and help, then exit 0
        parser.print_help()
        raise SystemExit(0)
    for token in cli:
        if token.startswith("--") and token[2:].split("=", 1)[0] not in actions:
            name = token[2:].split("=", 1)[0]
            raise RecipeError(f"unknown key '{name}' on the command line (recipe {config_path or 'none'})")
    if late_defaults:
        parser.set_defaults(**late_defaults)
    try:
        namespace, unknown = parser.parse_known_args(yaml_tokens + cli)
    except RecipeError as exc:
        raise RecipeError(f"{exc} ({where})") from None
    if unknown:
        raise RecipeError(f"unexpected arguments {unknown} ({where})")

    outputs = []
    values: dict[str, Any] = {}
    for dtype in dataclass_types:
        keys = {f.name for f in dataclasses.fields(dtype) if f.init}
        kwargs = {k: v for k, v in vars(namespace).items() if k in keys}
        try:
            instance = dtype(**kwargs)
        except (TypeError, ValueError) as exc:
            raise RecipeError(f"{exc} ({where})") from exc
        _check_paths(instance, where)
        values.update(kwargs)
        outputs.append(instance)
    recipe = Recipe(path=config_path, values=_plain(values), argv=argv)
    return (*outputs, recipe)


def _check_paths(instance: Any, where: str) -> None:
    for f in dataclasses.fields(instance):
        if f.metadata.get("retrace_path") != "exists":
            continue
        value = getattr(instance, f.name)
        for item in value if isinstance(value, list) else [value]:
            if item in (None, ""):
                continue
            if not Path(os.path.expanduser(str(item))).exists():
                raise RecipeError(f"key '{f.name}': path does not exist: {item} ({where})")


def _plain(value: Any) -> Any:
    """A YAML-safe copy of resolved values (enums and paths become strings)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "value"):
        return _plain(value.value)
    return str(value)


def run_entry(main, *dataclass_types: type) -> None:
    """Run an entry script's `main(*configs, recipe)`, turning recipe errors into one line and exit 2."""
    try:
        main(*parse_recipe(dataclass_types))
    except RecipeError as exc:  # from parsing, or from a stage checking paths that earlier stages make
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
