"""What a proposer's reply must be to become a candidate: prose reasoning, whole sentences, no code.

A chat model's reply is cleaned before the search sees it: a reasoning model's `<think>...</think>`
scratchpad is removed (an unclosed one makes the reply unusable), a leading "Here is the rewritten
reasoning:" line is dropped, a reply holding a code fence, document markup or lines of code is refused (a
Think is prose; the leakage guard then checks what is left against the real code). Fragments (two words
or fewer: "#1.", "project"), sentences that restate an instruction of the prompt, talk about the prompt or
name nothing it shows (`text_checks.informative`) or little of what they name (`text_checks.unsupported`), and sentences that repeat an earlier one are dropped (a
reply that is mostly repetition is refused: a loop), and a reply that does not end a sentence (cut by the token limit, or trailing off) is
cut back to its last full sentence. Measured on SmolLM2-135M rewriting wsgiref and json Thinks: it restates
the instruction ("Rewrite this reasoning so that it explains how to implement `__init__.py` ..."), loops
("The code is not shown to you." four times) and writes unfenced code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from retrace.data.text_checks import (
    REPEAT_PHRASE_WORDS_LONG,
    RESTATE_MIN_SHARED,
    content_words,
    informative,
    loops_by_coverage,
    plain_prose,
    repeats_a_phrase,
    repeats_an_earlier_sentence,
    restates_sentence,
    speaks_as_the_chat,
    speaks_to_you,
    stutters,
    talks_about_the_prompt,
    unsupported,
)
from retrace.data.text_checks import sentences as split_sentences
from retrace.data.text_checks import words as word_list

MIN_REPLY_CHARS = 30
# A sentence restates an instruction by retrace.data.text_checks.restates_sentence (the policy's thresholds).
REPEAT_MIN_WORDS = 4   # a sentence of this many words said again is a repeat
FRAGMENT_MAX_WORDS = 2  # a "sentence" of this many words or fewer is a fragment and dropped ("#1.", "project")
# A loop: word 4-grams occurring more than once cover half of a reply of 16+ words.
CODE_MIN_LINES = 2     # this many code-like lines make a reply code

_SCRATCHPAD = re.compile(r"<think>.*?</think>", re.S)
_PREAMBLE = re.compile(r"^(?:sure|okay|ok)?[,.!]?\s*(?:here(?:'s| is| are)\b[^\n]*|(?:the |my )?(?:rewritten|new|"
                       r"revised|improved|updated)\s+(?:reasoning|plan|version)[^\n]*|explanation|reasoning|answer|"
                       r"response):\s*\n", re.I)
# A list item: a Think is prose (the system prompt: "no lists"); a rewrite in items copies the prompt's outline
# ("What I import:\n- from outside the repository: ...", "1. Server.py: ... 2. def list_public_methods(obj): ...")
_LIST_ITEM = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s")
LIST_MAX_ITEMS = 1
# A Think is the engineer talking to themself: "you" anywhere (outside quoted names) is the chat talking to its
# user. Of SmolLM2's scored proposals in the quickstart (2026-12-03) the four with "you" were all chat: "Your
# task is to read this file", "When you're building `concurrent.py`", "You may reproduce or modify this code".
_MARKUP = re.compile(r"</|<\||<(?:write|read|think|plan|observation|subagent|repository)\b")
_CODE_LINE = re.compile(r"^\s*(?:def \w+\(|class \w+[(:]|import \w|from [\w.]+ import |return\b|@\w+|"
                        r"(?:if|for|while|elif|try|except|with)\b[^.]*:\s*$|[\w.\[\]]+\s*[-+*/]?=\s*[\w\"'(\[{])")
# A sentence ends at . ! or ? (possibly followed by closing quotes or brackets) before whitespace or the end.
_SENTENCE_END = re.compile(r"[.!?][\"')\]`*]*(?=\s|$)")
_ENDS_SENTENCE = re.compile(r"[.!?][\"')\]`*]*\Z")
_SPLIT = re.compile(r"(\n+|(?<=[.!?])[ \t]+)")


@dataclass(frozen=True)
class CleanReply:
    """The usable text of a reply, or why there is none (`problem`); `cut` when it lost an unfinished tail,
    `dropped` the sentences removed as restatements or repeats."""

    text: str
    problem: str | None = None   # scratchpad | code_block | markup | code | list | repetition | restates_prompt |
    #                              second_person | truncated | too_short
    cut: bool = False
    dropped: int = 0


def instruction_sentences(texts: Iterable[str]) -> list[frozenset[str]]:
    """The content words of each sentence of prompt templates (placeholders blanked): what a reply must not
    restate. Names filled into the placeholders never count against a reply."""
    found = []
    for text in texts:
        for sentence in _SPLIT.split(re.sub(r"\{\w+\}", " ", text))[::2]:
            words = content_words(sentence)
            if len(words) >= RESTATE_MIN_SHARED:  # shorter ones could never be restated
                found.append(words)
    return found


def clean_reply(text: str, finish_reason: str | None = None, *, prose: bool = True,
                instructions: list[frozenset[str]] = (), grounding: frozenset[str] | None = None,
                known: frozenset[str] = frozenset()) -> CleanReply:
    """Clean one reply (see the module). `prose=False` (a plan's numbered lines) skips the sentence rules;
    `instructions` (`instruction_sentences` of the prompt's templates) are what a sentence must not restate;
    `grounding` (`text_checks.grounding_terms` of the prompt) what a sentence must name one of (None: not
    judged), and most of whose terms beyond the `known` ones (`text_checks.known_terms`) it must name
    (`text_checks.unsupported`: vague or made up)."""
    if "</think>" in text:  # a chat template that opens the scratchpad itself leaves only its end
        text = _SCRATCHPAD.sub("", text)
        text = text.rsplit("</think>", 1)[-1]
    if "<think>" in text:
        return CleanReply("", "scratchpad")
    text = _PREAMBLE.sub("", plain_prose(text)[0], count=1).strip()
    if "```" in text:
        return CleanReply("", "code_block")
    if _MARKUP.search(text):
        return CleanReply("", "markup")
    if not prose:
        return CleanReply(text, None if len(text) >= MIN_REPLY_CHARS else "too_short")
    if sum(bool(_CODE_LINE.match(line)) for line in text.splitlines()) >= CODE_MIN_LINES:
        return CleanReply("", "code")
    if sum(bool(_LIST_ITEM.match(line)) for line in text.splitlines()) > LIST_MAX_ITEMS:
        return CleanReply("", "list")
    if _loops(text):
        return CleanReply("", "repetition")
    text, dropped, repeats, sentences = _drop_sentences(text, instructions, grounding, known)
    if repeats and repeats * 2 >= sentences or repeats_a_phrase(word_list(text), REPEAT_PHRASE_WORDS_LONG):  # a sentence said again is
        return CleanReply("", "repetition")  # dropped; a phrase said again in what is left is a loop
    if not text and dropped or speaks_as_the_chat(text):
        return CleanReply("", "restates_prompt")
    if speaks_to_you(text):
        return CleanReply("", "second_person")
    if not text:  # fragments only ("project\n\nfeature\n\n#Preliminaries\n\n#1.\n\n#2.")
        return CleanReply("", "too_short")
    cut = False
    if finish_reason == "length" or not _ENDS_SENTENCE.search(text):
        ends = list(_SENTENCE_END.finditer(text))
        if not ends:
            return CleanReply("", "truncated")
        cut = ends[-1].end() < len(text)
        text = text[:ends[-1].end()].rstrip()
    if len(text) < MIN_REPLY_CHARS:
        return CleanReply("", "too_short")
    return CleanReply(text, None, cut, dropped)


def _drop_sentences(text: str, instructions: list[frozenset[str]], grounding: frozenset[str] | None = None,
                    known: frozenset[str] = frozenset()) -> tuple[str, int, int, int]:
    """The text without restating, repeated, prompt-talking and uninformative sentences; (text, dropped, of
    which repeats, sentences). A sentence repeats when it says an earlier one again, opens as one does or shares
    a phrase of five words with one ("A simple WSGI (PEP 3333) Server" twice: SmolLM2, quickstart)."""
    parts = _SPLIT.split(text)
    kept, seen, dropped, repeats, sentences = [], set(), 0, 0, 0
    said: list[str] = []
    for i in range(0, len(parts), 2):
        sentence, separator = parts[i], parts[i + 1] if i + 1 < len(parts) else ""
        if not sentence.strip():
            kept.append(separator if kept else "")
            continue
        sentences += 1
        key = " ".join(re.findall(r"\w+", sentence.lower()))
        words = content_words(sentence)
        if len(re.findall(r"[A-Za-z]{2,}", sentence)) <= FRAGMENT_MAX_WORDS:
            sentences -= 1  # not a sentence: dropped, not counted as one restated
            continue
        if len(key.split()) >= REPEAT_MIN_WORDS and key in seen or repeats_an_earlier_sentence(sentence, said):
            dropped, repeats = dropped + 1, repeats + 1
            continue
        seen.add(key)
        if any(restates_sentence(words, inst) for inst in instructions) or talks_about_the_prompt(sentence) or (
                grounding is not None and (not informative(sentence, grounding) or
                                           unsupported(sentence, grounding, known))):
            dropped += 1
            continue
        said.append(sentence)
        kept.append(sentence + separator)
    return "".join(kept).strip(), dropped, repeats, sentences


def _loops(text: str) -> bool:
    if any(stutters(sentence) for sentence in split_sentences(text)):
        return True
    return loops_by_coverage(re.findall(r"\w+", text.lower()))
