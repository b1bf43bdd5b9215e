"""The finish step's Parquet shards: every record once, in order, loadable with `datasets`; and the Hub upload
restricted to the shards and the card (HfApi's network methods replaced, nothing reaches the network)."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
import yaml
from toy_export import write_toy_output

from retrace.data.export import ExportArguments, finish_export
from retrace.data.layout import DOCUMENTS, TRAJECTORIES, artifact_files, iter_jsonl
from retrace.data.pack import BATCH_ROWS, pack_artifacts

TRAIN = [f"owner{i % 3}/repo-{i}" for i in range(40)] + ["a/b", "a_b", "A_B"]
HELDOUT = ["held/one", "held/two"]


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    return write_toy_output(tmp_path_factory.mktemp("pack") / "synth", TRAIN, HELDOUT, size=40)


def records(folder: Path) -> list[dict]:
    return [record for _, _, record in iter_jsonl(artifact_files(folder))]


def front_matter(out: Path) -> dict:
    return yaml.safe_load((out / "README.md").read_text(encoding="utf-8").split("---\n")[1])


def test_shards_hold_every_record_once_in_order_and_load_by_config(synth, tmp_path):
    card = finish_export(synth, parquet_shard_mb=0.02)  # ~20 KB of JSON per shard: several shards
    packed = {c["config_name"]: c["data_files"][0] for c in front_matter(synth)["configs"]}
    assert set(packed) == {"documents", "raw_repos", "no_search", "trajectories", "heldout", "heldout_raw_repos",
                           "heldout_no_search", "heldout_trajectories"}
    shards = sorted((synth / "data" / "documents").iterdir())
    assert len(shards) > 2 and [p.name for p in shards] == [f"train-{i:05d}-of-{len(shards):05d}.parquet"
                                                            for i in range(len(shards))]
    assert packed["documents"] == {"split": "train", "path": f"data/documents/train-*-of-{len(shards):05d}.parquet"}
    assert packed["heldout"]["split"] == "test" and "data/heldout/test-" in packed["heldout"]["path"]
    assert all(pq.ParquetFile(p).metadata.row_group(0).num_rows <= BATCH_ROWS for p in shards)

    cache = str(tmp_path / "cache")
    documents = datasets.load_dataset(str(synth), "documents", split="train", cache_dir=cache)
    expected = records(synth / DOCUMENTS)
    assert [row["repo"] for row in documents] == [r["repo"] for r in expected]  # each once, file-name order
    assert sorted(documents["repo"]) == sorted(TRAIN)
    for row, record in zip(documents, expected):
        assert row["segments"] == record["segments"] and json.loads(row["meta"]) == record["meta"]
    trajectories = datasets.load_dataset(str(synth), "trajectories", split="train", cache_dir=cache)
    [first] = [r for r in records(synth / TRAJECTORIES) if r["repo"] == trajectories[0]["repo"]]
    assert json.loads(trajectories[0]["steps"]) == first["steps"] and trajectories[0]["order"] == first["order"]
    heldout = datasets.load_dataset(str(synth), "heldout", split="test", cache_dir=cache)
    assert sorted(heldout["repo"]) == HELDOUT
    assert datasets.load_dataset(str(synth), split="train", cache_dir=cache).num_rows == len(TRAIN)  # the default
    assert "`trajectories` config" in card.read_text(encoding="utf-8")
    for folder in (p for p in synth.rglob("*") if p.is_dir()):
        assert sum(1 for _ in folder.iterdir()) < 10_000


def test_packing_is_deterministic_and_replaces_old_shards(synth, tmp_path):
    first = pack_artifacts(synth, 0.05)
    contents = {path: (synth / path).read_bytes() for paths in first.values() for path in paths}
    assert pack_artifacts(synth, 0.05) == first
    assert {path: (synth / path).read_bytes() for path in contents} == contents  # byte-identical
    one = pack_artifacts(synth, 100)  # another size: one shard each, the old ones gone
    assert one["documents"] == ["data/documents/train-00000-of-00001.parquet"]
    assert [p.name for p in (synth / "data" / "documents").iterdir()] == ["train-00000-of-00001.parquet"]
    assert not [p for p in (synth / "data").iterdir() if p.name.startswith(".")]  # no staging left behind
    finish_export(synth)  # not packing: the card reads the JSONL files again
    documents = {c["config_name"]: c for c in front_matter(synth)["configs"]}["documents"]
    assert documents["data_files"][0]["path"] == "documents/*/*.jsonl"
    assert datasets.load_dataset(str(synth), "documents", split="train",
                                 cache_dir=str(tmp_path / "c")).num_rows == len(TRAIN)


class RecordingHub:
    """HfApi's two network methods, replaced: what they were asked to do is kept, nothing is sent."""

    def __init__(self, monkeypatch):
        from huggingface_hub import HfApi

        self.calls: list[tuple[str, dict]] = []
        monkeypatch.setattr(HfApi, "create_repo", lambda api, repo_id, **kw: self.calls.append(
            ("create_repo", {"repo_id": repo_id, **kw})))
        monkeypatch.setattr(HfApi, "upload_folder", lambda api, **kw: self.calls.append(("upload_folder", kw)))


def test_push_uploads_only_the_shards_and_the_card(synth, monkeypatch):
    from huggingface_hub.utils import filter_repo_objects

    hub = RecordingHub(monkeypatch)
    finish_export(synth, parquet_shard_mb=0.02, push_to_hub="someone/retrace-toy")
    (create, created), (upload, uploaded) = hub.calls
    assert (create, created) == ("create_repo", {"repo_id": "someone/retrace-toy", "repo_type": "dataset",
                                                 "private": True, "exist_ok": True})
    assert upload == "upload_folder" and uploaded["repo_id"] == "someone/retrace-toy"
    assert uploaded["repo_type"] == "dataset" and Path(uploaded["folder_path"]) == synth
    every_file = [p.relative_to(synth).as_posix() for p in synth.rglob("*") if p.is_file()]
    sent = set(filter_repo_objects(every_file, allow_patterns=uploaded["allow_patterns"]))
    shards = {p.relative_to(synth).as_posix() for p in (synth / "data").rglob("*.parquet")}
    assert sent == shards | {"README.md"} and len(shards) > 8
    configs = front_matter(synth)["configs"]
    assert all(any(Path(s).match(c["data_files"][0]["path"]) for s in sent) for c in configs)


def test_push_needs_a_packed_output(tmp_path, monkeypatch):
    from retrace.data.hub import main, push_dataset_to_hub

    hub = RecordingHub(monkeypatch)
    out = write_toy_output(tmp_path / "synth", ["x/y"])
    finish_export(out)
    with pytest.raises(ValueError, match="pack"):
        push_dataset_to_hub(out, "someone/x")
    assert main([str(out), "someone/x"]) == 2 and hub.calls == []
    with pytest.raises(ValueError, match="key 'push_to_hub'"):
        ExportArguments(push_to_hub="someone/x")
    with pytest.raises(ValueError, match="key 'parquet_shard_mb'"):
        ExportArguments(parquet_shard_mb=-1)


def test_training_reads_the_hashed_files_and_the_shards_alike(synth, tmp_path):
    from retrace.training.sources import SourceSpec, load_source_rows, source_files

    pack_artifacts(synth, 0.02)
    rows = {}
    for kind, path in (("jsonl", synth / DOCUMENTS), ("parquet", synth / "data" / "documents")):
        spec = SourceSpec(name=kind, path=str(path))
        assert len(source_files(spec)) == (len(TRAIN) if kind == "jsonl" else len(list(path.iterdir())))
        rows[kind] = load_source_rows(spec, tmp_path / kind).to_dict()
    assert rows["parquet"] == rows["jsonl"] and len(rows["jsonl"]["texts"]) == len(TRAIN)
