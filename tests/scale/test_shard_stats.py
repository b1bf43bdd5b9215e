"""Statistics across shards: each shard writes its own file; the finish step merges them once.

Two shards writing into one output directory end with the stats.json an unsharded run writes (but for
the number of shards it names): counts summed over the shards' files, token distributions recomputed
from the records on disk. No shard writes stats.json before every shard is done.
"""

from __future__ import annotations

import json

from scale_corpus import make_corpus, parse_synthesis_recipe

from retrace.synthesis import run_synthesis
from retrace.synthesis.stats import merge_counts


def synthesize(out, specs, *extra: str) -> None:
    run_synthesis(*parse_synthesis_recipe(
        "--policy_backend", "structural", "--refine", "false", "--viewer", "false", "--sources", *specs,
        "--heldout_sources", specs[0], "--output_dir", str(out), "--repos_per_batch", "2",
        "--document_budget_tokens", "3000", *extra), progress=False)


def test_merge_counts_sums_counts_and_keeps_what_cannot_be_summed():
    shard0 = {"repos_written": 2, "text_sources": {"structural": 10}, "mode": "drop", "report": "a.json",
              "ratio": 0.5, "dropped": {"x": "contaminated"}}
    shard1 = {"repos_written": 3, "text_sources": {"structural": 4, "fallback:empty": 1}, "mode": "drop",
              "report": "b.json", "ratio": 0.25, "dropped": {"y": "contaminated"}}
    assert merge_counts([shard0, shard1]) == {
        "repos_written": 5, "text_sources": {"structural": 14, "fallback:empty": 1}, "mode": "drop",
        "report": ["a.json", "b.json"], "ratio": 0.75, "dropped": {"x": "contaminated", "y": "contaminated"}}
    assert merge_counts([shard0]) == shard0


def test_two_shards_finish_with_the_unsharded_stats(tmp_path):
    specs = make_corpus(tmp_path / "corpus", n_repos=6, n_files=4)
    whole, sharded = tmp_path / "whole", tmp_path / "sharded"
    synthesize(whole, specs)
    expected = json.loads((whole / "stats.json").read_text())
    assert expected["splits"]["train"]["documents"]["repositories"] == 6

    synthesize(sharded, specs, "--num_shards", "2", "--shard_index", "0")
    assert (sharded / "stats" / "shard-00000-of-00002.json").is_file()
    assert not (sharded / "stats.json").exists(), "a shard never writes the run's stats alone"
    synthesize(sharded, specs, "--num_shards", "2", "--shard_index", "1")  # the last shard runs the finish step
    merged = json.loads((sharded / "stats.json").read_text())
    assert merged.pop("shards") == 2 and expected.pop("shards") == 1
    assert merged == expected
    shard_files = [json.loads((sharded / "stats" / f"shard-0000{i}-of-00002.json").read_text()) for i in range(2)]
    assert all(s["complete"] for s in shard_files)
    assert sum(s["splits"]["train"]["repositories"] for s in shard_files) == 6

    (sharded / "stats.json").unlink()  # `finish: only` rebuilds it from the shards' files, writing nothing else
    synthesize(sharded, specs, "--num_shards", "2", "--finish", "only")
    assert json.loads((sharded / "stats.json").read_text()) == {"shards": 2, **expected}
