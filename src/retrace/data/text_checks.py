"""Language-neutral checks of model-written prose, shared by the policy's validation and the proposer's.

Both the agents (policy replies) and refinement (proposals) refuse text that loops and strip chat
formatting from the notes they keep; the rules live here once because `refine` may not import `agents`.
"""

from __future__ import annotations

import re

REPEAT_NGRAM = 4            # word n-grams compared
REPEAT_COVERAGE = 0.5       # share of the words inside a repeated n-gram that makes a loop
REPEAT_MIN_REPLY_WORDS = 16  # shorter texts are never judged by coverage


def loops_by_coverage(words: list[str]) -> bool:
    """Whether at least half of `words` lie inside word 4-grams that occur more than once."""
    if len(words) < REPEAT_MIN_REPLY_WORDS:
        return False
    grams = [tuple(words[i:i + REPEAT_NGRAM]) for i in range(len(words) - REPEAT_NGRAM + 1)]
    counts: dict[tuple[str, ...], int] = {}
    for gram in grams:
        counts[gram] = counts.get(gram, 0) + 1
    covered: set[int] = set()
    for i, gram in enumerate(grams):
        if counts[gram] > 1:
            covered.update(range(i, i + REPEAT_NGRAM))
    return len(covered) >= REPEAT_COVERAGE * len(words)


# Chat formatting that is not part of an engineer's note: rule lines ("---"), bold markers ("**bold**") and
# heading marks ("## Plan"). Inline code (`name`) and underscores (`__init__`) stay: notes quote names.
_RULE_LINE = re.compile(r"^[ \t]*(?:-{3,}|\*{3,}|_{3,}|={3,})[ \t]*$\n?", re.M)
_EMPHASIS = re.compile(r"\*\*")
_HEADING_MARK = re.compile(r"^[ \t]*#{1,6}[ \t]+", re.M)


def plain_prose(text: str) -> tuple[str, bool]:
    """`text` without chat formatting (rule lines, emphasis markers, heading marks); whether any was removed."""
    plain = _HEADING_MARK.sub("", _EMPHASIS.sub("", _RULE_LINE.sub("", text))).strip()
    return plain, plain != text.strip()


# The prompt speaks to the model ("You are writing thread.py ...", "Rewrite this reasoning ..."); a note that
# opens in that voice, tells someone what they need to do, answers "the above question", reports what "the
# user" said, or talks about rewriting itself speaks about the chat, not as the engineer.
_CHAT_VOICE = re.compile(
    r"^\W*(?:you|you're|you'll|your|sure)\b|\byou (?:need|have|must|should) to\b|"
    r"^\W*here(?:'s| is) (?:a |an |the |my )?(?:possible |short |rewritten )?(?:response|answer|reply|reasoning)\b|"
    r"\bthe above (?:question|prompt|task)\b|^\W*the user\b|"
    r"\brewrit(?:e|ten|ing) (?:the |this |my )?(?:reasoning|explanation|script|note)\b", re.I)


def speaks_as_the_chat(first_sentence: str) -> bool:
    """Whether a reply's first sentence is in the prompt's voice (second person, the chat's framing)."""
    return bool(_CHAT_VOICE.search(first_sentence))
