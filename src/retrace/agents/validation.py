"""Validation of a policy's replies: a model's text is kept only when it reads as a grounded engineering note.

Small chat models fail in a few recognisable ways, measured on SmolLM2-135M (issue 13): they restate the
instruction ("In 3 to 5 sentences, think aloud about how you will implement types.py ..."), run into the
token limit mid-sentence, loop ("The server uses the WSGI protocol." three times); reasoning models wrap
their answer in a `<think>` scratchpad. `review_reply` names the first such fault, or returns the text to
keep, repaired where a repair is safe: a closed scratchpad is stripped (`scratchpad_stripped`), and a reply
cut by the token limit keeps its complete sentences when they are at least half of it (`trimmed`).

Before the checks, two more repairs: leading lines that restate the instruction are dropped
(`heading_dropped`: "In two sentences, think aloud before you write util.py:" on a line of its own, then the
answer), and a reply that goes on past the sentences the request asks for (`request.sentences`) is cut there
(`cut`): the checks judge what is kept.

Reasons, in the order they are checked (the first that applies is the one counted):
`thinking` (an unclosed `<think>`, or nothing but scratchpad), `too_short`, `code_block` (a fenced block,
or a line that opens with a code keyword and a name), `markup`, `pastes_code` (a line of the real file, or a
run of its words: `request.code_ngrams`), `list` (two list items in a Think, report or plan description),
`fragment` (opens mid-sentence: "for the project's ..."), then the sentences that add nothing are dropped
(`prune_sentences`: `uninformative` when none is left), `too_long`, `restates_prompt` (a sentence restating an
instruction sentence, fuzzily; or a reply adding fewer than NOVEL_MIN_WORDS words of its own to the
instruction it answers, quoting it, or talking about its own length), `repeats_plan` (a Think or report that
says its file's plan entry again, `request.echo_of`), `echoes_prompt` (a prompt line of 30+
characters copied verbatim, the file's facts included, or a sentence of 30+ characters found verbatim in the
prompt), `repetition` (a loop), `ungrounded` (names none of the request's anchors), `wrong_language` (names
a programming language that is neither the project's nor in the prompt: "Python" in a JavaScript project),
`truncated` (cut by the token limit, and not enough complete sentences to keep), `unfinished` (what is kept
does not end a sentence: "It defines these types:", a heading, a list item).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from retrace.agents.languages import foreign_languages
from retrace.agents.pruning import NAME_FIELDS, drop_restated_heading, prune_sentences, restates
from retrace.data.text_checks import (
    ENDS_A_SENTENCE,
    SENTENCE_BREAK,
    content_words,
    grounding_terms,
    known_terms,
    loops_by_coverage,
    plain_prose,
    repeats_a_phrase,
    repeats_an_earlier_sentence,
    sentences,
    speaks_as_the_chat,
    speaks_to_you,
    stutters,
    without_handed_back_clause,
    words,
)

if TYPE_CHECKING:
    from retrace.agents.policies import PolicyRequest

# A reply also restates when it says nothing beyond the instruction it answers (the prompt's last paragraph,
# its names filled in): fewer than NOVEL_MIN_WORDS content words of its own ("The requirements for email must
# be met.", "Concurrent must be implemented in two sentences."), or when it quotes the instruction's
# `starting with "..."` (SmolLM2: 'I read _base.py before writing thread.py, starting with "I read" to ...'), or
# talks about its own length or the task's numbering ("To meet the requirements of concurrent in 2 sentences, I
# added ...", "To plan entry 3 of 5, I'll provide a step-by-step guide on how to write process.py.").
NOVEL_MIN_WORDS = 2
# repetition: a sentence of REPEAT_MIN_WORDS+ words said twice, two sentences of REPEAT_MIN_CONTENT+ content
# words sharing REPEAT_SIMILARITY of them (Jaccard: "The script will use json.dump to dump the data to a
# file. The script will also use dump to dump the data to a file."), or word n-grams (retrace.data.text_checks)
# that occur more than once covering REPEAT_COVERAGE of a reply of REPEAT_MIN_REPLY_WORDS+ words.
REPEAT_MIN_WORDS = 4
REPEAT_MIN_CONTENT = 5
REPEAT_SIMILARITY = 0.8
# ... or a sentence of REPEAT_SUBSET_MIN_CONTENT+ content words that an earlier sentence already said all of ("This
# is a project that requires concurrent to run. The project must have concurrent to run.": quickstart, 2026-12-03)
REPEAT_SUBSET_MIN_CONTENT = 3
# ... or any phrase of REPEAT_PHRASE_WORDS words said twice (retrace.data.text_checks.repeats_a_phrase): in a
# note of one or two sentences that is a loop starting ("defines a class called CommandHelp and defines a class
# called CommandHelp").
# truncated: a reply cut by the token limit is kept up to its last complete sentence only when that keeps
# TRIM_MIN_SHARE of its characters (the cut lost a fragment, not the substance) and still names an anchor.
TRIM_MIN_SHARE = 0.5

ECHO_MIN_LINE_CHARS = 30
THRICE_MAX_SENTENCES = 2
# A Think is the sub-agent talking to itself: "you" outside quotes is the chat talking to its user ("To write a
# custom encoder, you can use ...", "In the code, you implement a JSONDecoder class": SmolLM2, quickstart)
THINK_KINDS = ("think_read", "think_write")
# the texts whose first sentence is the answer (it opens with their subject: "The project x must", "I read y
# first because", "z.py ..."); the Think before a Write may go on from a dropped first sentence
ANSWER_FIRST_KINDS = ("requirements", "purpose", "report", "think_read")
# a Think, report or plan description is prose: two list items or more are a list (the system prompt: no lists)
LIST_KINDS = ("purpose", "think_read", "think_write", "report")
_LIST_ITEM = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s", re.M)
# a reply that opens with a lower-case function word continues a sentence it never began ("for the project's
# lib/help.js is to include ...": commander, 2026-12-04)
_FRAGMENT_START = re.compile(r"^\W*(?:for|and|or|but|of|to|in|on|with|is|are|was|which|that|as|by)\b")
# a Think or report whose content words overlap its file's plan entry by this much (Jaccard) says it again
REPEAT_PLAN_SIMILARITY = 0.75


_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?=\s)")  # a cut reply's last "." may be half of "parser.py"
_LIST_NUMBER = re.compile(r"(?:^|\n)[\s#*>-]*\d+[.)]$")  # "2." (or "# 2.") opening a list item ends no sentence
_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")
_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.S | re.I)
_SENTENCE_COUNT = re.compile(r"\b(?:in|with|of)\s+(?:one|two|three|four|five|\d)\s+sentences?\b"
                             r"|\bentry \d+ of \d+", re.I)  # or the delegation's numbering: talk about the task
# A line that opens with a code keyword and a name is code, not prose ("def lib.suggestSimilar.js").
_CODE_LINE = re.compile(r"^\s*(?:def|class|function|import|const|let|var|func|fn|pub|public|private|package|"
                        r"#include|#define)\s+[\w.$<>*&]+(?:\s*[(={:;<]|\s*$)", re.M)
_WORDLESS_ITEM = re.compile(r"^[\s\d.)#*>-]*$")  # a last line of list numbers only ("2. 3.") ends nothing


@dataclass(frozen=True)
class Verdict:
    """What `review_reply` decided: the text to keep, or why there is none."""

    text: str                       # the reply as kept (scratchpad stripped, trimmed); "" when rejected
    reason: str | None = None       # why the reply is unusable; None when `text` is usable
    repairs: tuple[str, ...] = ()   # "scratchpad_stripped", "trimmed": what was cut from a kept reply


def instruction_text(template: str, system: str = "") -> str:
    """The instructions a request's prompt gives: the system prompt and the template, placeholders blanked.

    What fills the placeholders (the file's path, its facts) is what a reply must talk about, so it is
    left out of what a reply may not restate.
    """
    return f"{system}\n{_PLACEHOLDER.sub(' ', template)}"


_OPENER = re.compile(r'starting with "([^"]+)"')


def instruction_of(prompt: str) -> str:
    """A rendered prompt's instruction: its last paragraph."""
    return prompt.strip().rsplit("\n\n", 1)[-1]


def opener(prompt: str) -> str:
    """The words a prompt's instruction asks the reply to start with; "" when none."""
    found = _OPENER.search(instruction_of(prompt))
    return found.group(1) if found else ""


def says_nothing(text: str, prompt: str, framing: str = "") -> bool:
    """Whether `text` adds fewer than NOVEL_MIN_WORDS content words to the prompt's framing (its first sentence,
    the role: 'You are writing thread.py in the Python project "concurrent"', its last paragraph, the
    instruction, and `framing`, the fixed words of a delegation it hands on), quotes the instruction or talks
    about its own length."""
    instruction = instruction_of(prompt)
    if 'starting with "' in instruction and re.search(r"starting with [\"“]", text) or _SENTENCE_COUNT.search(text):
        return True
    if any(f'"{quoted}' in text for quoted in re.findall(r'"([^"]{8,})"', instruction)):
        return True  # quotes the instruction: 'The file starts with a line that says "To write package.json, I".'
    head = opener(prompt).split()[:2]  # two words: not a bare file name
    if len(head) == 2 and re.search(rf'["“]{re.escape(" ".join(head))}\b', text, re.I):
        return True  # quotes its opener for another file: '... you might describe it as "I read index.js first'
    role = sentences(prompt.strip())[0] if prompt.strip() else ""
    return len(content_words(text) - content_words(f"{role}\n{instruction}\n{framing}")) < NOVEL_MIN_WORDS


def repeats(text: str, earlier: str) -> bool:
    """Whether `text` says again what `earlier` (its file's plan entry, already in the document) said: their
    content words overlap by REPEAT_PLAN_SIMILARITY (Jaccard). SmolLM2 reports "lib/argument.js is a
    JavaScript project that uses the command-line interface to manage command-line arguments." after that very
    plan entry (0.80); a report that names what later files use shares far less (under 0.5 in the runs read)."""
    said, before = content_words(text), content_words(earlier)
    return bool(said) and len(said & before) >= REPEAT_PLAN_SIMILARITY * len(said | before)


def loops(text: str) -> bool:
    """Whether `text` repeats itself: a sentence said twice (or nearly, or opening as an earlier one does: "The
    code is written ..." three times in one Think), or repeated n-grams over much of it."""
    seen: set[tuple[str, ...]] = set()
    said_before: list[frozenset[str]] = []
    said_sentences = sentences(text)
    for n, sentence in enumerate(said_sentences):
        key = tuple(words(sentence))
        if stutters(sentence) or repeats_an_earlier_sentence(sentence, said_sentences[:n]):
            return True
        if len(key) >= REPEAT_MIN_WORDS:
            if key in seen:
                return True
            seen.add(key)
        content = content_words(sentence)
        if len(content) >= REPEAT_SUBSET_MIN_CONTENT and any(content <= other for other in said_before):
            return True
        if len(content) >= REPEAT_MIN_CONTENT and any(
                len(content & other) >= REPEAT_SIMILARITY * len(content | other) for other in said_before):
            return True
        if len(content) >= REPEAT_SUBSET_MIN_CONTENT:
            said_before.append(content)
    said = words(text)
    return repeats_a_phrase(said) or loops_by_coverage(said)


def says_a_word_thrice(text: str, request: PolicyRequest) -> bool:
    """Whether a short note (THRICE_MAX_SENTENCES sentences) says a word of 5+ letters three times that is not
    one of its names ("a single-in-respective element ... a single-in-respective module ... a single file":
    SmolLM2's report of esm.mjs, commander 2026-12-04)."""
    if len(sentences(text)) > THRICE_MAX_SENTENCES:
        return False
    names = [*request.anchors, *(request.fields.get(field, "") for field in NAME_FIELDS)]
    own = {w.lower() for name in names for w in re.findall(r"[A-Za-z]+", name)}
    counts: dict[str, int] = {}
    for word in re.findall(r"[A-Za-z]{5,}", text.lower()):
        if word not in own:
            counts[word] = counts.get(word, 0) + 1
    return any(n >= 3 for n in counts.values())


def echoes(text: str, prompt: str) -> bool:
    """Whether `text` copies the prompt: a whole prompt line, or a sentence found in it, of 30+ characters."""
    if any(len(line.strip()) >= ECHO_MIN_LINE_CHARS and line.strip() in text for line in prompt.splitlines()):
        return True
    flat = " ".join(prompt.split())
    return any(len(s) >= ECHO_MIN_LINE_CHARS and " ".join(s.split()) in flat for s in sentences(text))


def strip_scratchpad(text: str) -> str | None:
    """`text` without its `<think>...</think>` blocks; None when a scratchpad is left open.

    A chat template that opens the scratchpad itself (Qwen3's, DeepSeek-R1's) gives a reply that only
    closes it: everything up to the last `</think>` is scratchpad.
    """
    stripped = _THINK_BLOCK.sub(" ", text)
    closing = stripped.lower().rfind("</think>")
    if closing != -1:
        stripped = stripped[closing + len("</think>"):]
    return None if "<think>" in stripped.lower() else stripped


def shares_code(text: str, code_ngrams: frozenset[tuple[str, ...]]) -> bool:
    """Whether `text` holds one of the code's word runs (whitespace-separated words, all of one length)."""
    if not code_ngrams:
        return False
    n = len(next(iter(code_ngrams)))
    said = text.split()
    return any(tuple(said[i:i + n]) in code_ngrams for i in range(len(said) - n + 1))


def grounded(text: str, anchors: list[str]) -> bool:
    lowered = text.lower()
    return not anchors or any(anchor.lower() in lowered for anchor in anchors)


def trim_to_sentence(text: str, anchors: list[str], min_chars: int) -> str | None:
    """A reply cut mid-sentence, up to its last complete sentence; None when too little would remain.

    Kept only when the complete sentences are TRIM_MIN_SHARE of the reply, at least `min_chars` long, and
    still name an anchor. A sentence ends where [.!?] is followed by a space: a cut reply's final "." may be
    the first half of "parser.py" or "3.10", so it does not count, nor does the "2." opening a list item.
    """
    ends = [m.end() for m in _SENTENCE_END.finditer(text) if not _LIST_NUMBER.search(text, 0, m.end())]
    if not ends:
        return None
    kept = text[:ends[-1]].strip()
    if len(kept) < max(min_chars, TRIM_MIN_SHARE * len(text.strip())) or not grounded(kept, anchors):
        return None
    return kept


def first_sentences(text: str, count: int) -> tuple[str, bool]:
    """(the first `count` sentences of `text`, whether it has that many complete ones).

    Small models answer, then go on (a second paragraph, a loop, a list): what was asked for is kept. A
    sentence ends as in `sentences` (a line break ends one too), and the last one counts as complete only
    when it ends there, not where the text stops.
    """
    ends: list[int] = []
    for m in SENTENCE_BREAK.finditer(text):
        piece = text[ends[-1] if ends else 0:m.start()]
        before = text[:m.start()].rstrip()
        # a list number ("1."), a lead-in ("as follows:") or a bare bullet ends no sentence
        if not any(c.isalnum() for c in piece) or _LIST_NUMBER.search(before) or before.endswith(":"):
            continue
        ends.append(m.end())
    if len(ends) < count:
        return text, False
    return text[:ends[count - 1]].strip(), True


def review_reply(text: str, request: PolicyRequest, prompt: str = "", *, instructions: str = "",
                 finish_reason: str | None = None, min_chars: int = 20, max_chars: int = 2000) -> Verdict:
    """The text to keep of a generated reply, or the first reason it is unusable (module docstring).

    `prompt` is the rendered prompt (no line of 30+ characters may be copied from it); `instructions` the
    prompt's instruction sentences (`instruction_text`; empty: restatement is not checked); `finish_reason`
    the engine's ("length": the reply hit the token limit).
    """
    repairs: list[str] = []
    stripped, formatted = plain_prose(text)
    if formatted:
        repairs.append("formatting_stripped")
    if "<think>" in stripped.lower() or "</think>" in stripped.lower():
        answer = strip_scratchpad(stripped)
        if answer is None or len(answer.strip()) < min_chars:
            return Verdict("", "thinking")
        stripped = answer.strip()
        repairs.append("scratchpad_stripped")
    if instructions:
        answer = drop_restated_heading(stripped, instructions)
        if answer != stripped:
            stripped = answer
            repairs.append("heading_dropped")
    if request.framing:  # a sentence made only of the delegation's fixed words ("It has nothing to read first.")
        framing = content_words(request.framing)
        handed_back = [s for s in sentences(stripped) if content_words(s) and content_words(s) <= framing]
        if handed_back and len(handed_back) < len(sentences(stripped)):
            for sentence in handed_back:
                stripped = stripped.replace(sentence, "", 1)
            stripped = " ".join(stripped.split(" ")).strip()
            repairs.append("framing_dropped")
    if len(stripped) < min_chars:
        return Verdict("", "too_short")
    # code is refused whole, before any sentence is dropped
    if "```" in stripped or _CODE_LINE.search(stripped):
        return Verdict("", "code_block")
    if "<|" in stripped or "</write>" in stripped or "<observation" in stripped:
        return Verdict("", "markup")
    if any(line in stripped for line in request.forbidden_lines) or shares_code(stripped, request.code_ngrams):
        return Verdict("", "pastes_code")
    answer = without_handed_back_clause(stripped)
    if answer != stripped:
        stripped = answer
        repairs.append("handed_back_cut")
    if request.kind in LIST_KINDS and len(_LIST_ITEM.findall(stripped)) >= 2:
        return Verdict("", "list")
    if _FRAGMENT_START.match(stripped):
        return Verdict("", "fragment")
    grounding, known = None, frozenset()
    names = tuple(request.fields.get(name, "") for name in NAME_FIELDS)
    if prompt and instructions:
        # the delegation's fixed words ("Plan entry 3 of 5. Implement ...") are framing, not material
        grounding = grounding_terms(prompt, f"{instructions}\n{request.framing}", names)
        # the plan entry is in the document already: a sentence of its words and unshown ones says nothing
        known = known_terms(f"{instructions}\n{request.framing}\n{request.echo_of}", names)
    answer, dropped = prune_sentences(stripped, instructions, grounding, open_tail=finish_reason == "length",
                                      plan_entry=request.echo_of, names=names,
                                      prompt=prompt.strip().rsplit("\n\n", 1)[0],  # not its instruction's opener
                                      own_voice=bool(instructions) and request.kind in THINK_KINDS,
                                      reads=request.fields.get("deps", "") if request.kind == "think_read" else "",
                                      known=known)
    # nothing left, or the answer's first sentence gone where it is the answer (what is left answers something
    # else: "I read lib/error.js first because it's already written. I added custom error types to meet the
    # requirements.", commander; 'The file "futures/: __init__.py" is a task that must be included in
    # concurrent.' after the requirements' own sentence went, quickstart, 2026-12-05)
    lost_answer = request.kind in ANSWER_FIRST_KINDS and dropped and not answer.startswith(sentences(stripped)[0])
    if dropped and (not answer or lost_answer):  # restating the prompt names that best where it does
        restated = {"restated", "prompt_talk", "chat_voice"} & set(dropped) or instructions and (
            says_nothing(stripped, prompt, request.framing) or speaks_as_the_chat(stripped))
        if "prompt_copied" in dropped and not restated:
            return Verdict("", "echoes_prompt")
        if "plan_copied" in dropped and not restated:
            return Verdict("", "repeats_plan")
        return Verdict("", "restates_prompt" if restated else "uninformative")
    if dropped:
        stripped = answer
        repairs.extend(f"{reason}_dropped" for reason in dropped)
    complete = False  # the reply holds all the sentences asked for, whatever the finish reason
    if request.sentences:
        answer, complete = first_sentences(stripped, request.sentences)
        if answer != stripped:
            stripped = answer
            repairs.append("cut")
    if len(stripped) < min_chars:
        return Verdict("", "too_short")
    if len(stripped) > max_chars:
        return Verdict("", "too_long")
    if instructions and (restates(stripped, instructions) or says_nothing(stripped, prompt, request.framing)
                         or speaks_as_the_chat(stripped) or request.kind in THINK_KINDS and speaks_to_you(stripped)):
        return Verdict("", "restates_prompt")
    if request.echo_of and repeats(stripped, request.echo_of):
        return Verdict("", "repeats_plan")
    if echoes(stripped, prompt):
        return Verdict("", "echoes_prompt")
    if loops(stripped) or says_a_word_thrice(stripped, request):
        return Verdict("", "repetition")
    if not grounded(stripped, request.anchors):
        return Verdict("", "ungrounded")
    if request.languages and foreign_languages(stripped, f"{request.languages}\n{prompt}"):
        return Verdict("", "wrong_language")
    if finish_reason == "length" and not complete:
        kept = trim_to_sentence(stripped, request.anchors, min_chars)
        if kept is None:
            return Verdict("", "truncated")
        stripped = kept
        repairs.append("trimmed")
    last_line = stripped.rsplit("\n", 1)[-1]
    if not ENDS_A_SENTENCE.search(stripped) or _LIST_NUMBER.search(stripped) or _WORDLESS_ITEM.search(last_line):
        return Verdict("", "unfinished")
    return Verdict(stripped, None, tuple(repairs))


def check_reply(text: str, request: PolicyRequest, prompt: str = "", *, instructions: str = "",
                finish_reason: str | None = None, min_chars: int = 20, max_chars: int = 2000) -> str | None:
    """Why a generated reply is unusable, or None when it is fine (`review_reply`'s reason)."""
    return review_reply(text, request, prompt, instructions=instructions, finish_reason=finish_reason,
                        min_chars=min_chars, max_chars=max_chars).reason
