"""RULER samples: fitted to the SmolLM2 tokenizer's length, answers recoverable from the prompt text alone.

Every property is checked against the prompt string as the model reads it, by parsing it
independently of the generators (needles, the vt chain, word counts).
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
from transformers import AutoTokenizer

from retrace.evaluation.ruler import (
    TASK_NAMES,
    LengthError,
    PromptFormat,
    RulerOptions,
    build_sample,
    build_samples,
    filler_texts,
    load_sources,
    string_match_all,
)
from retrace.llm import embedded_model_dir

NEEDLE = re.compile(r"One of the special magic (\w+) for ([\w-]+) is: ([\w-]+)\.")


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(embedded_model_dir())


@pytest.fixture(scope="module")
def sources():
    return load_sources()


@pytest.fixture(scope="module", params=["chat", "base"])
def prompt_format(request, tokenizer):
    return PromptFormat.for_tokenizer(tokenizer, request.param)


def _last_turn(prompt: str, marker: str) -> str:
    """The part of the prompt from the last occurrence of `marker` (skips a worked example before it)."""
    at = prompt.rfind(marker)
    assert at >= 0, f"{marker!r} not in prompt"
    return prompt[at:]


@pytest.mark.parametrize("task", TASK_NAMES)
def test_every_task_lands_within_two_percent_and_never_over(task, prompt_format, sources, tokenizer):
    built = 0
    for length in (256, 512, 1024, 4096):
        try:
            sample = build_sample(task, length, 0, 0, sources, prompt_format)
        except LengthError as exc:
            # Only a length shorter than the task's fixed text may be refused, and never 1k or more.
            assert length < 1024 and "needs at least" in str(exc), (length, exc)
            continue
        built += 1
        measured = len(tokenizer(sample.prompt, add_special_tokens=True)["input_ids"])
        assert measured == sample.prompt_tokens
        assert 0.98 * length <= measured + sample.max_new_tokens <= length, (length, measured)
        assert sample.total_tokens == measured + sample.max_new_tokens
    assert built >= 2


@pytest.mark.parametrize("task", [t for t in TASK_NAMES if t.startswith("niah")])
def test_niah_answers_are_exactly_the_needles_of_the_asked_keys(task, prompt_format, sources):
    for index in range(3):
        sample = build_sample(task, 1024, index, 7, sources, prompt_format)
        needles = NEEDLE.findall(sample.prompt)
        question = re.findall(r"for (.+?) mentioned in the text above\?", sample.prompt)[-1]
        keys = [k.strip() for k in re.split(r", and |, ", question)]
        found = [value for _, key, value in needles if key in keys]
        assert sorted(found) == sorted(sample.answers)
        assert len(found) == {"niah_multivalue": 4, "niah_multiquery": 4}.get(task, 1)
        assert string_match_all(" and ".join(sample.answers), sample.answers) == 1.0
        if task in ("niah_multikey_2", "niah_multikey_3"):
            assert len(needles) > 5  # the filler is made of distractor needles with other keys
        if task == "niah_multikey_1":
            assert len({key for _, key, _ in needles}) == 4


def test_needle_kinds_follow_the_task(prompt_format, sources):
    uuid = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
    single_3 = build_sample("niah_single_3", 1024, 0, 0, sources, prompt_format)
    assert uuid.match(single_3.answers[0])
    multikey_3 = build_sample("niah_multikey_3", 1024, 0, 0, sources, prompt_format)
    assert all(uuid.match(key) for _, key, _ in NEEDLE.findall(multikey_3.prompt)[:-1])
    single_2 = build_sample("niah_single_2", 1024, 0, 0, sources, prompt_format)
    assert re.fullmatch(r"\d{7}", single_2.answers[0])
    assert " ".join(sources.essay_words[:30]) in single_2.prompt  # essay filler from the wheel
    single_1 = build_sample("niah_single_1", 1024, 0, 0, sources, prompt_format)
    assert single_1.prompt.count(sources.noise) >= 20 and "Paul" not in single_1.prompt


def _resolve(name: str, direct: dict[str, str], copies: dict[str, str]) -> str | None:
    """The number `name` ends up holding by following `VAR a = VAR b` links (None on a cycle or dead end)."""
    seen = set()
    while name in copies and name not in seen:
        seen.add(name)
        name = copies[name]
    return direct.get(name)


def test_needles_sit_at_their_drawn_depths(prompt_format, sources):
    depths = []
    for index in range(6):
        sample = build_sample("niah_single_2", 2048, index, 0, sources, prompt_format)
        opening = "afterwards you will be asked for the number.\n"
        start = sample.prompt.index(opening) + len(opening)
        end = sample.prompt.rindex("\nWhat is the special magic number")
        needle = NEEDLE.search(sample.prompt).start()
        (depth,) = sample.meta["depths"]
        assert abs((needle - start) / (end - start) - depth / 100) < 0.05, (index, depth)
        depths.append(depth)
    assert len(set(depths)) > 3


def test_vt_answer_is_the_chain_resolved_from_the_prompt(prompt_format, sources):
    for index in range(3):
        sample = build_sample("vt", 1024, index, 3, sources, prompt_format)
        turn = _last_turn(sample.prompt, "Memorize the chain")
        value = re.search(r"assigned the value (\d+) in the text above\?", turn).group(1)
        direct = dict(re.findall(r"VAR ([A-Z]+) = (\d+)", turn))
        copies = dict(re.findall(r"VAR ([A-Z]+) = VAR ([A-Z]+)", turn))

        chain = {name for name in set(direct) | set(copies) if _resolve(name, direct, copies) == value}
        assert chain == set(sample.answers) and len(chain) == 5
        example_value = re.findall(r"assigned the value (\d+) in the text above\?", sample.prompt)[0]
        assert example_value != value  # the worked example's chain is another one


def test_cwe_answers_are_the_most_common_words_of_the_list(prompt_format, sources):
    for length, (common, uncommon) in ((1024, (6, 1)), (4096, (30, 3))):
        sample = build_sample("cwe", length, 0, 0, sources, prompt_format)
        turn = _last_turn(sample.prompt, "Below is a numbered list")
        listing = turn[:turn.index("Question:")]
        entries = re.findall(r"(\d+)\. ([a-z]+)", listing)
        assert [int(n) for n, _ in entries] == list(range(1, len(entries) + 1))
        counts = Counter(word for _, word in entries)
        top = [word for word, _ in counts.most_common(10)]
        assert set(top) == set(sample.answers)
        assert {counts[w] for w in sample.answers} == {common}
        assert {c for w, c in counts.items() if w not in sample.answers} == {uncommon}


@pytest.mark.parametrize("length", [256, 1024, 4096])
def test_fwe_answers_are_the_three_most_frequent_coded_words(length, prompt_format, sources):
    sample = build_sample("fwe", length, 0, 0, sources, prompt_format)
    turn = _last_turn(sample.prompt, "Read the coded text")
    coded = turn[turn.index("\n") + 1:turn.index("\nQuestion:")].split()
    counts = Counter(w for w in coded if w != "...")
    assert counts.most_common(1)[0][1] < coded.count("...")  # the dots are the noise of rank 1
    ranked = counts.most_common()
    assert {w for w, _ in ranked[:3]} == set(sample.answers)
    assert len(ranked) == 3 or ranked[2][1] > ranked[3][1]


def test_samples_are_determined_by_seed_task_length_and_index(tokenizer, sources):
    first = PromptFormat.for_tokenizer(tokenizer, "chat")
    again = PromptFormat.for_tokenizer(AutoTokenizer.from_pretrained(embedded_model_dir()), "chat")
    for task in TASK_NAMES:
        a = build_sample(task, 1024, 1, 5, sources, first)
        b = build_sample(task, 1024, 1, 5, sources, again)
        assert (a.prompt, a.answers) == (b.prompt, b.answers)
        assert build_sample(task, 1024, 1, 6, sources, first).prompt != a.prompt
        assert build_sample(task, 1024, 2, 5, sources, first).prompt != a.prompt
    assert first.fingerprint() == again.fingerprint()
    assert PromptFormat.for_tokenizer(tokenizer, "base").fingerprint() != first.fingerprint()
    # A cell's samples do not depend on the other tasks and lengths asked for.
    both = build_samples(RulerOptions(ruler_tasks=["vt", "fwe"], ruler_lengths=[512, 1024], ruler_samples=2),
                         sources, first, 5)[0]
    alone = build_samples(RulerOptions(ruler_tasks=["fwe"], ruler_lengths=[1024], ruler_samples=2),
                          sources, first, 5)[0]
    assert [s.prompt for s in both if s.task == "fwe" and s.length == 1024] == [s.prompt for s in alone]


def test_wrapping_and_answer_prefix(tokenizer, sources):
    chat = build_sample("niah_single_2", 512, 0, 0, sources, PromptFormat.for_tokenizer(tokenizer, "chat"))
    assert chat.prompt.startswith("<|im_start|>")
    assert chat.prompt.endswith("<|im_start|>assistant\nThe special magic number for "
                                f"{chat.prompt.split('for ')[-1]}")
    assert chat.prompt.endswith("mentioned in the text above is")
    base = build_sample("niah_single_2", 512, 0, 0, sources, PromptFormat.for_tokenizer(tokenizer, "base"))
    assert "<|im_start|>" not in base.prompt and base.prompt.endswith("mentioned in the text above is")
    bare = build_sample("niah_single_2", 512, 0, 0, sources,
                        PromptFormat.for_tokenizer(tokenizer, "base", answer_prefix=False))
    assert bare.prompt.endswith("mentioned in the text above?")
    cwe = build_sample("cwe", 1024, 0, 0, sources, PromptFormat.for_tokenizer(tokenizer, "chat"))
    assert cwe.prompt.count("<|im_start|>assistant") == 2  # the worked example is an earlier exchange


def test_too_short_lengths_and_missing_chat_template_are_clear_errors(tokenizer, sources):
    fmt = PromptFormat.for_tokenizer(tokenizer, "chat")
    with pytest.raises(LengthError, match="needs at least"):
        build_sample("cwe", 512, 0, 0, sources, fmt)
    with pytest.raises(LengthError, match="no room"):
        build_sample("niah_single_1", 128, 0, 0, sources, fmt)

    class NoTemplate:
        chat_template = None

    with pytest.raises(ValueError, match="ruler_prompt_style"):
        PromptFormat.for_tokenizer(NoTemplate(), "chat")
    assert PromptFormat.for_tokenizer(NoTemplate(), "auto").chat is False


def test_filler_texts_are_the_wheel_essays():
    essays = filler_texts()
    assert len(essays) == 49 and sum(len(e.split()) for e in essays) > 100_000  # ~112k words
    with_lists = filler_texts(include_word_lists=True)
    assert with_lists[:49] == essays and len(with_lists) == 52
    assert "abacus" in with_lists[49].split("\n")
