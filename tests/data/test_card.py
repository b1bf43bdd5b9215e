"""The dataset card: loadable with `datasets` through its configs, and its figures match the artifacts."""

from __future__ import annotations

import re
from pathlib import Path

import datasets
import pytest
import yaml
from synth_fixture import build_synth_output

from retrace.data import read_documents, read_trajectories
from retrace.data.card import write_dataset_card
from retrace.data.export import finish_export


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    out = build_synth_output(tmp_path_factory.mktemp("card"))
    write_dataset_card(out)
    return out


def front_matter(card: Path) -> dict:
    text = card.read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def table_row(card: Path, split: str) -> list[str]:
    """The cells of the Contents table's row for `split`."""
    rows = [line for line in card.read_text(encoding="utf-8").splitlines() if line.startswith(f"| {split} | ")]
    return [cell.strip().replace(",", "") for cell in rows[0].strip("|").split("|")]


def test_documents_load_as_json_with_the_segment_schema(synth, tmp_path):
    ds = datasets.load_dataset("json", data_files=str(synth / "documents" / "*" / "*.jsonl"), split="train",
                               cache_dir=str(tmp_path / "cache"))
    assert ds.num_rows == 1 and set(ds.column_names) >= {"repo", "segments", "meta"}
    row = ds[0]
    assert row["repo"] == "hostile<repo>&co"
    assert set(row["segments"][0]) == {"text", "train", "kind", "path"}
    [doc] = read_documents(synth / "documents")
    assert [s["text"] for s in row["segments"]] == [s.text for s in doc.segments]
    assert [s["train"] for s in row["segments"]] == [s.train for s in doc.segments]


def test_card_configs_load_every_split(synth, tmp_path):
    configs = {c["config_name"]: c for c in front_matter(synth / "README.md")["configs"]}
    assert set(configs) == {"documents", "raw_repos", "heldout", "heldout_raw_repos"}
    cache = str(tmp_path / "cache")
    docs = datasets.load_dataset(str(synth), "documents", split="train", cache_dir=cache)
    raw = datasets.load_dataset(str(synth), "raw_repos", split="train", cache_dir=cache)
    held = datasets.load_dataset(str(synth), "heldout", split="test", cache_dir=cache)
    assert (docs.num_rows, raw.num_rows, held.num_rows) == (1, 1, 1)
    assert raw[0]["meta"]["kind"] == "raw_repository" and held[0]["repo"] == "heldlib"
    assert datasets.load_dataset(str(synth), split="train", cache_dir=cache)[0]["meta"]["kind"] == "trajectory"


def test_card_counts_match_the_artifacts(synth):
    card = synth / "README.md"
    for split, base in (("train", synth), ("heldout", synth / "heldout")):
        trajs = read_trajectories(base / "trajectories")
        docs = read_documents(base / "documents")
        raws = read_documents(base / "baselines" / "raw_repos")
        chars = sum(len(d.text) for d in docs)
        trained = sum(len(s.text) for d in docs for s in d.segments if s.train)
        cells = table_row(card, split)
        assert cells[1:6] == [str(len(trajs)), str(sum(len(t.order) for t in trajs)), str(len(docs)),
                              str(len(raws)), str(chars)]
        assert cells[6] == f"{trained / chars:.1%}"
    text = card.read_text(encoding="utf-8")
    observation = [line for line in text.splitlines() if line.startswith("| observation |")][0]
    [doc] = read_documents(synth / "documents")
    masked = sum(len(s.text) for s in doc.segments if s.kind == "observation")
    assert observation.replace(",", "").startswith(f"| observation | 0 | {masked} |")
    assert "abc123-test" in text and "read_budget_chars: 40" in text  # provenance and recipe
    assert "| train | structural |" in text and "Token counts were not computed" in text


def test_token_counts_with_a_tokenizer(synth, tiny_llama_dir, tmp_path):
    from transformers import AutoTokenizer

    card = finish_export(synth, tokenizer=str(tiny_llama_dir), viewer=True)
    assert (synth / "viewer" / "index.html").is_file()
    tok = AutoTokenizer.from_pretrained(str(tiny_llama_dir))
    [doc] = read_documents(synth / "documents")
    want = sum(len(tok(s.text, add_special_tokens=False)["input_ids"]) for s in doc.segments if s.kind == "think")
    text = card.read_text(encoding="utf-8")
    think = re.search(r"^\| think \| [\d,]+ \| 0 \| ([\d,]+) \| 0 \|$", text, re.M)
    assert think and int(think.group(1).replace(",", "")) == want
    assert "tokens," in text and "trained (tokenizer" in text
    write_dataset_card(synth)  # leave the module's card as the other tests expect it
