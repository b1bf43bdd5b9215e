"""The sentences of a policy's reply that add nothing, dropped before the reply is judged whole.

A small model's note often mixes a usable sentence with ones that only say back the instruction, talk about
the prompt ("The first 5 lines of lib/argument.js are ..."), copy the file's plan entry, name nothing the
prompt shows ("The code meets the requirements.") or name again what the sentence before named. Dropping
those sentences keeps the model's own words where they carry information, instead of throwing the whole
reply away for one of them; `validation.review_reply` then judges what is left (a reply with nothing left
is refused: `restates_prompt`, `repeats_plan` or `uninformative`). Information is judged by terms
(`retrace.data.text_checks.informative`), not phrasing.
"""

from __future__ import annotations

import re
from functools import lru_cache

from retrace.data.text_checks import (
    ENDS_A_SENTENCE,
    GENERIC_TERMS,
    content_words,
    copies_a_run,
    informative,
    repeats_an_earlier_sentence,
    restates_sentence,
    sentence_pieces,
    sentences,
    speaks_as_the_chat,
    speaks_to_you,
    talks_about_the_prompt,
    terms,
    unsupported,
)

# a sentence of COPY_MIN_TERMS+ terms, COPY_SHARE of them from its file's plan entry, says it back ("To write
# futures/thread.py, I'll need to implement a thread pool for concurrent execution." after the entry "... implements
# a thread pool for concurrent execution.": two terms, the project's name not counted; quickstart 2026-12-05)
COPY_MIN_TERMS = 2
COPY_SHARE = 0.8
# The placeholders that only name things (the file, the project, its languages, the files read): a sentence
# that names nothing else the prompt showed adds no information (retrace.data.text_checks.informative).
NAME_FIELDS = ("path", "repo", "languages", "deps")


@lru_cache(maxsize=64)
def _instruction_sentences(instructions: str) -> tuple[frozenset[str], ...]:
    return tuple(c for c in map(content_words, sentences(instructions)) if c)


def restates(text: str, instructions: str) -> bool:
    """Whether a sentence of `text` restates a sentence of `instructions`
    (`retrace.data.text_checks.restates_sentence`)."""
    targets = _instruction_sentences(instructions)
    for sentence in sentences(text):
        said = content_words(sentence)
        for target in targets:
            if restates_sentence(said, target):
                return True
    return False


def copies(sentence: str, source: str, names: tuple[str, ...] = ()) -> bool:
    """Whether `sentence` is made of `source`'s words: COPY_MIN_TERMS+ terms (not generic, not `names`),
    COPY_SHARE of them in `source` (its plan entry, said back: 'This is a subset of JavaScript syntax
    (ECMA-262 3rd edition) that allows for easy data serialization.' after the entry said just that, SmolLM2
    in the quickstart; 'The 5 files in lib/argument.js are a JavaScript project that uses command-line
    interfaces to manage command-line arguments.' on commander, 2026-12-04)."""
    said = terms(sentence) - terms(" ".join([*names, *GENERIC_TERMS]))
    return len(said) >= COPY_MIN_TERMS and len(said & terms(source)) >= COPY_SHARE * len(said)


_READ_FIRST = re.compile(r"^\W*I(?: have)? read (.+?) (?:first|before)\b")
_PATH = re.compile(r"[\w./-]+\.\w+")


def reads_other_files(sentence: str, reads: str) -> bool:
    """Whether `sentence` says "I read X first" of files X other than `reads` (the dependencies' phrase)."""
    said = _READ_FIRST.match(sentence)
    return bool(said) and set(_PATH.findall(said.group(1))) != set(_PATH.findall(reads))


def prune_sentences(text: str, instructions: str, grounding: frozenset[str] | None, open_tail: bool = False,
                    plan_entry: str = "", names: tuple[str, ...] = (), prompt: str = "",
                    own_voice: bool = False, reads: str = "", known: frozenset[str] = frozenset(),
                    ) -> tuple[str, list[str]]:
    """`text` without the sentences that add nothing, and why each was dropped: `restated` (an instruction
    said back), `prompt_talk` (about the prompt's view of the file: "The first 5 lines of lib/argument.js
    are ..."), `uninformative` (names none of the `grounding` terms: "The code meets the requirements.";
    None: not judged), `unsupported` (most of its terms, less the `known` ones, not among the `grounding`
    terms: vague or made up, `text_checks.unsupported`), `said_again` (names no term the sentences before it did not: "The class
    ProcessPoolExecutor is defined in futures/process.py." after "... defines a class named
    ProcessPoolExecutor."), `plan_copied` (with `plan_entry`: a sentence that `copies` it), `prompt_copied`
    (with `prompt`: a run of PROMPT_RUN_WORDS words of it, `text_checks.copies_a_run`), `chat_voice` (with
    `own_voice`, a Think's note to itself: a sentence that speaks to "you" or as the chat, giving an order),
    `other_files` (with `reads`, the files a Think before the Reads reads: a sentence saying it read others
    first, "I read lib/argument.js first because ..." in lib/argument.js's own Think, `reads_other_files`). The first sentence
    can go too; a lead-in (ending in ":"), a list number and an
    unfinished tail are left to `review_reply`, which judges what is kept."""
    kept: list[str] = []
    pieces: list[str] = []
    dropped: list[str] = []
    found = sentence_pieces(text)
    for n, (sentence, gap) in enumerate(found):
        if not sentence.strip():
            pieces.append(gap if pieces else "")
            continue
        last_open = n == len(found) - 1 and (open_tail or not ENDS_A_SENTENCE.search(sentence.strip()))
        if last_open or sentence.rstrip().endswith(":") or not re.search(r"[A-Za-z]{2}", sentence):
            pieces.append(sentence + gap)  # the token limit's tail, a lead-in, a list number: judged later
            continue
        new_terms = grounding is not None and terms(sentence) & grounding - terms(" ".join(kept))
        if instructions and restates(sentence, instructions):
            dropped.append("restated")
        elif plan_entry and copies(sentence, plan_entry, names):
            dropped.append("plan_copied")
        elif prompt and copies_a_run(sentence, prompt):
            dropped.append("prompt_copied")
        elif reads and reads_other_files(sentence, reads):
            dropped.append("other_files")
        elif own_voice and (speaks_to_you(sentence) or speaks_as_the_chat(sentence)):
            dropped.append("chat_voice")
        elif talks_about_the_prompt(sentence):
            dropped.append("prompt_talk")
        elif grounding is not None and not informative(sentence, grounding):
            dropped.append("uninformative")
        elif grounding is not None and unsupported(sentence, grounding, known):
            dropped.append("unsupported")
        elif grounding is not None and kept and not new_terms and not repeats_an_earlier_sentence(sentence, kept):
            dropped.append("said_again")  # names only what the sentences before it named (a loop stays: refused)
        else:
            kept.append(sentence)
            pieces.append(sentence + gap)
    return "".join(pieces).strip(), dropped


def drop_restated_heading(text: str, instructions: str) -> str:
    """`text` without its leading lines that restate an instruction ("In two sentences, think aloud before you
    write util.py:" on a line of its own, then the answer): a heading, not the answer. Unchanged when nothing
    would be left."""
    lines = text.split("\n")
    while len(lines) > 1 and (not lines[0].strip() or restates(lines[0], instructions)):
        lines = lines[1:]
    return "\n".join(lines).strip()
