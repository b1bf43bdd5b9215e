"""Upload a packed synthesis output to the Hugging Face Hub: the Parquet shards and the dataset card, nothing else.

`python -m retrace.data.hub <output_dir> <user/name> [--public]` after a run packed with `parquet_shard_mb`,
or the recipe key `push_to_hub: user/name` (synthesize.py's finish step). Needs a Hub token
(`hf auth login` or `HF_TOKEN`).

Why `upload_folder`: in the pinned huggingface_hub (2.x) it is the large-folder upload: files are hashed
and sent through Xet while the folder is still being checked, large folders are committed in several
batches under the server's limits, and re-running the same call after an interruption resumes it
(committed files are skipped, uploaded chunks deduplicated). `upload_large_folder` of 0.x is gone.
The upload is restricted to exactly what the card's configs read (`allow_patterns`): the per-repository
JSONL files, budget records, viewer and logs stay local, and the repository stays under the Hub's
100k-file limit whatever the number of repositories.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

CARD = "README.md"


def card_configs(output_dir: str | Path) -> list[dict[str, Any]]:
    """The configs of the dataset card's YAML front matter ([] without a card)."""
    card = Path(output_dir) / CARD
    if not card.is_file():
        return []
    text = card.read_text(encoding="utf-8")
    if not text.startswith("---\n"):
        return []
    return yaml.safe_load(text.split("---\n")[1]).get("configs") or []


def upload_patterns(output_dir: str | Path) -> list[str]:
    """The card and the Parquet globs its configs read; a ValueError when the card does not point at shards."""
    patterns: list[str] = []
    for config in card_configs(output_dir):
        for data_files in config["data_files"]:
            paths = data_files["path"] if isinstance(data_files["path"], list) else [data_files["path"]]
            patterns += paths
    if not patterns or not all(p.startswith("data/") and p.endswith(".parquet") for p in patterns):
        raise ValueError(f"{output_dir}: the dataset card does not point at Parquet shards under data/; pack "
                         "the output first (parquet_shard_mb, e.g. 500) so that the Hub gets shards, not "
                         "one file per repository")
    return [CARD, *patterns]


def push_dataset_to_hub(output_dir: str | Path, repo_id: str, *, private: bool = True, token: str | None = None,
                        revision: str | None = None, commit_message: str | None = None) -> Any:
    """Create the Hub dataset `repo_id` if needed and upload the packed shards and the card; the commit info.

    `private` applies only when the repository is created. Resumable: run it again after an interruption.
    """
    from huggingface_hub import HfApi

    output_dir = Path(output_dir)
    patterns = upload_patterns(output_dir)
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    return api.upload_folder(repo_id=repo_id, folder_path=str(output_dir), repo_type="dataset", revision=revision,
                             allow_patterns=patterns,
                             commit_message=commit_message or f"retrace synthesis output {output_dir.name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m retrace.data.hub", description=__doc__.split("\n\n")[0])
    parser.add_argument("output_dir", help="a synthesis output directory packed with parquet_shard_mb")
    parser.add_argument("repo_id", help="the Hub dataset to upload to, user/name")
    parser.add_argument("--public", action="store_true", help="create the dataset public (default: private)")
    parser.add_argument("--revision", default=None, help="branch to commit to (default: main)")
    args = parser.parse_args(argv)
    try:
        info = push_dataset_to_hub(args.output_dir, args.repo_id, private=not args.public, revision=args.revision)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"uploaded {args.output_dir} to {getattr(info, 'commit_url', None) or args.repo_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
