"""Mixtures: trajectories + raw code + general text by weight or token budget, seeded, realised counts saved."""

from __future__ import annotations

import json
import sysconfig
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from retrace.training import (
    DataArguments,
    build_packed_dataset,
    parse_mixture,
    plan_budgets,
    select_documents,
)
from retrace.training.packing import IGNORE_INDEX


def _code_table(path: Path) -> Path:
    """Raw code as a parquet table with a `content` column: real files from the running Python's stdlib."""
    files = sorted((Path(sysconfig.get_paths()["stdlib"]) / "json").glob("*.py"))
    texts = [f.read_text()[:1500] for f in files]
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"content": texts, "path": [f.name for f in files]}), path)
    return path


def _text_table(path: Path, count: int = 40) -> Path:
    """General text as JSONL with a `text` column (no segments)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"text": f"Paragraph {i}. " + "The river runs past the old mill and on to the sea. " * (1 + i % 5)}
            for i in range(count)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def sources(tmp_path, documents_dir):
    return {"trajectories": str(documents_dir), "code": str(_code_table(tmp_path / "code" / "code.parquet")),
            "text": str(_text_table(tmp_path / "text" / "text.jsonl"))}


def test_selection_meets_budget_within_one_document_and_repeats_when_short():
    lengths = [5, 17, 3, 40, 11, 8, 25, 9]
    for budget in (1, 30, 60, 117):
        chosen = select_documents(lengths, budget, seed=1)
        assert 0 <= chosen.realised_tokens - budget < max(lengths[i] for i in chosen.indices)
        assert chosen.realised_tokens == sum(lengths[i] for i in chosen.indices)
        assert len(set(chosen.indices)) == len(chosen.indices)  # no repeat while the source suffices
    assert select_documents(lengths, 60, seed=1).indices == select_documents(lengths, 60, seed=1).indices
    assert select_documents(lengths, 60, seed=1).indices != select_documents(lengths, 60, seed=2).indices
    double = select_documents(lengths, 2 * sum(lengths) + 4, seed=0)
    assert double.passes > 2 and sorted(set(double.indices)) == list(range(len(lengths)))
    assert select_documents(lengths, None, seed=0).realised_tokens == sum(lengths)


def test_budget_plan_by_weight_total_or_scarcest_source():
    specs = parse_mixture({"a": {"path": "x", "weight": 3}, "b": {"path": "y", "weight": 1}})
    assert plan_budgets(specs, {"a": 10_000, "b": 10_000}, 400) == {"a": 300, "b": 100}
    # no total: the largest mixture in which no source repeats (b is scarce: 500 tokens = a quarter)
    assert plan_budgets(specs, {"a": 10_000, "b": 500}, None) == {"a": 1500, "b": 500}
    tokens = parse_mixture({"a": {"path": "x", "tokens": 70}, "b": {"path": "y", "tokens": 30}})
    assert plan_budgets(tokens, {"a": 1, "b": 1}, None) == {"a": 70, "b": 30}


@pytest.mark.parametrize("bad, message", [
    ({"a": {"path": "x", "weight": 1}, "b": {"path": "y"}}, "need a weight or a tokens budget"),
    ({"a": {"path": "x", "weight": 1}, "b": {"path": "y", "tokens": 5}}, "either by weight"),
    ({"a": {"path": "x", "dataset": "y"}}, "both 'path'"),
    ({"a": {"weight": 1}, "b": {"weight": 1}}, "only one source may stand for"),
    ({"a": {"path": "x", "wieght": 1}}, "unknown key"),
    ({"a": {"path": "x", "weight": -1}}, "positive"),
])
def test_bad_mixtures_are_refused_naming_the_source(bad, message):
    with pytest.raises(ValueError, match=message):
        DataArguments(mixture=json.dumps(bad))


def _mixture_args(sources, **sizes):
    entries = {"trajectories": {"path": sources["trajectories"]},
               "code": {"path": sources["code"], "text_field": "content"},
               "text": {"path": sources["text"], "text_field": "text"}}
    for name, size in sizes.items():
        entries[name].update(size)
    return entries


@pytest.mark.parametrize("by", ["weight", "tokens"])
def test_mixture_realised_counts_match_request_and_are_saved(tmp_path, sources, tokenizer, by):
    if by == "weight":
        mixture = _mixture_args(sources, trajectories={"weight": 0.5}, code={"weight": 0.3}, text={"weight": 0.2})
        args = DataArguments(mixture=mixture, mixture_total_tokens=1400, max_length=64, shuffle_seed=5)
        budgets = {"trajectories": 700, "code": 420, "text": 280}
    else:
        mixture = _mixture_args(sources, trajectories={"tokens": 900}, code={"tokens": 300}, text={"tokens": 250})
        args = DataArguments(mixture=mixture, max_length=64, shuffle_seed=5)
        budgets = {"trajectories": 900, "code": 300, "text": 250}
    dataset, stats = build_packed_dataset(args, tokenizer, tmp_path / "cache")
    longest = {"trajectories": 140, "code": 700, "text": 80}  # generous bounds on one document of each source
    for name, budget in budgets.items():
        entry = stats["sources"][name]
        assert entry["budget_tokens"] == budget
        assert 0 <= entry["tokens"] - budget < longest[name], (name, entry)
    assert stats["sources"]["trajectories"]["passes"] > 1  # three small documents repeat to fill 700+ tokens
    # what the stats say is what was packed: every non-pad token belongs to a chosen document
    assert stats["tokens"] == sum(e["tokens"] for e in stats["sources"].values())
    assert sum(len(row) for row in dataset["input_ids"]) - stats["pad_tokens"] == stats["tokens"]
    flat_labels = [t for row in dataset["labels"] for t in row]
    assert sum(t != IGNORE_INDEX for t in flat_labels) == stats["trained_tokens"]
    # plain text is trained whole; the trajectories keep their masked observations
    code, text, traj = (stats["sources"][n] for n in ("code", "text", "trajectories"))
    assert code["trained_tokens"] == code["tokens"] and text["trained_tokens"] == text["tokens"]
    assert traj["trained_tokens"] < traj["tokens"]
    cached = json.loads(next((tmp_path / "cache").glob("*/packing_stats.json")).read_text())
    assert cached["sources"] == stats["sources"]


def test_mixture_is_seeded_and_cached_by_its_spec(tmp_path, sources, tokenizer):
    def build(weight, seed=0):
        mixture = _mixture_args(sources, trajectories={"weight": weight}, code={"weight": 1}, text={"weight": 1})
        return build_packed_dataset(DataArguments(mixture=mixture, mixture_total_tokens=2400, max_length=32,
                                                  shuffle_seed=seed), tokenizer, tmp_path / "cache")
    first, _ = build(1)
    again, _ = build(1)
    assert first["input_ids"] == again["input_ids"]
    assert len(list((tmp_path / "cache").iterdir())) == 1
    _, heavier = build(2)
    assert heavier["sources"]["trajectories"]["tokens"] > heavier["sources"]["code"]["tokens"]
    reseeded, _ = build(1, seed=1)
    assert reseeded["input_ids"] != first["input_ids"]
    assert len(list((tmp_path / "cache").iterdir())) == 3


def test_pretokenised_source_and_untrained_text(tmp_path, tokenizer, documents_dir):
    ids_path = tmp_path / "ids" / "ids.parquet"
    ids_path.parent.mkdir()
    rows = [[100 + i, 200 + i, 300 + i] for i in range(10)]
    pq.write_table(pa.table({"input_ids": rows}), ids_path)
    text = _text_table(tmp_path / "text.jsonl", count=5)
    mixture = {"ids": {"path": str(ids_path), "input_ids_field": "input_ids", "tokens": 20},
               "context": {"path": str(text), "text_field": "text", "train": False, "tokens": 30}}
    dataset, stats = build_packed_dataset(DataArguments(mixture=mixture, max_length=16), tokenizer, tmp_path / "c")
    assert stats["sources"]["ids"]["tokens"] == 20  # 5 rows x (3 ids + EOS)
    assert stats["sources"]["context"]["trained_tokens"] == stats["sources"]["context"]["documents"]  # EOS only
    flat = [t for row in dataset["input_ids"] for t in row]
    documents = [row + [tokenizer.eos_token_id] for row in rows]
    assert sum(flat[i:i + 4] in documents for i in range(len(flat))) == 5  # the ids are used as given, +EOS


def test_documents_and_mixture_together_is_refused(tmp_path, documents_dir, tokenizer):
    args = DataArguments(documents=[str(documents_dir)], mixture={"a": {"path": str(documents_dir)}})
    with pytest.raises(ValueError, match="no mixture source reads the documents"):
        build_packed_dataset(args, tokenizer, tmp_path / "cache")
    cleared = DataArguments(documents=[""], mixture={"a": {"path": str(documents_dir)}})
    assert cleared.documents == [] and build_packed_dataset(cleared, tokenizer, tmp_path / "cache")[1]["documents"] == 3


def test_a_pathless_mixture_source_reads_the_documents_key(tmp_path, documents_dir, tokenizer):
    text = _text_table(tmp_path / "text.jsonl")
    args = DataArguments(documents=[str(documents_dir)], max_length=32, mixture_total_tokens=600,
                         mixture={"trajectories": {"weight": 1}, "text": {"path": str(text), "text_field": "text",
                                                                          "weight": 1}})
    _, stats = build_packed_dataset(args, tokenizer, tmp_path / "cache")
    assert stats["sources"]["trajectories"]["spec"]["path"] == [str(documents_dir)]
    assert stats["sources"]["trajectories"]["trained_tokens"] < stats["sources"]["trajectories"]["tokens"]
    with pytest.raises(ValueError, match="'documents' is empty"):
        build_packed_dataset(DataArguments(mixture={"t": {"weight": 1}}), tokenizer, tmp_path / "cache")


def test_dataset_sources_go_through_load_dataset(tmp_path, tokenizer):
    """The `dataset` kind (hub ids online) on what load_dataset takes offline: a dataset repository's
    directory layout (data/train-*.parquet), and a packaged builder with data_files; both mixed by weight,
    fingerprinted into the cache key (the data changes, the cache key changes)."""
    repo = tmp_path / "org--code-dataset"
    (repo / "data").mkdir(parents=True)
    _code_table(repo / "data" / "train-00000-of-00001.parquet")
    text = _text_table(tmp_path / "text.jsonl")
    mixture = {"code": {"dataset": str(repo), "split": "train", "text_field": "content", "weight": 1},
               "text": {"dataset": "json", "data_files": str(text), "text_field": "text", "weight": 1}}
    args = DataArguments(mixture=mixture, mixture_total_tokens=800, max_length=64, shuffle_seed=3)
    _, stats = build_packed_dataset(args, tokenizer, tmp_path / "cache")
    for name in ("code", "text"):
        assert 0 <= stats["sources"][name]["tokens"] - 400 < 700, stats["sources"][name]
        assert stats["sources"][name]["trained_tokens"] == stats["sources"][name]["tokens"]
    _text_table(text, count=41)  # the table changes: a new fingerprint, so the packs are rebuilt
    build_packed_dataset(args, tokenizer, tmp_path / "cache")
    assert len(list((tmp_path / "cache").iterdir())) == 2
