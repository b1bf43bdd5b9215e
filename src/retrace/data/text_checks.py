"""Language-neutral checks of model-written prose, shared by the policy's validation and the proposer's.

Both the agents (policy replies) and refinement (proposals) refuse text that restates its prompt, speaks in
the chat's voice or loops, and strip chat formatting from the notes they keep; the rules live here once
because `refine` may not import `agents`.
"""

from __future__ import annotations

import re
from functools import lru_cache

# restates_prompt: a reply sentence restates an instruction sentence when they share at least
# RESTATE_MIN_SHARED content words (stems) and those make up RESTATE_REPLY_SHARE of the reply sentence's
# (it says little beyond the instruction) or RESTATE_INSTRUCTION_SHARE of the instruction sentence's (it
# copies most of it, whatever it adds). Names and facts never count against a reply: the instruction
# sentences come from the template with its placeholders blanked, so `types.py` is the reply's own content.
# Set on 84 SmolLM2-135M replies (wsgiref, json, http, logging): 5 shared words would miss "I'm about to
# write decoder.py ... It imports these files that are already written:", 3 would flag replies that only
# borrow the prompt's framing; a grounded answer that uses the instruction's words ("I need to read the
# headers.py and util.py files before writing handlers.") shares 5 of 8 (0.62) and of 10 (0.5), and passes.
RESTATE_MIN_SHARED = 4
RESTATE_REPLY_SHARE = 0.7
RESTATE_INSTRUCTION_SHARE = 0.6

_STOPWORD_TEXT = """
a an the and or but nor of to in on at for with by as from into onto about over under than then so too very
it its this that these those there here is are was were be been being am has have had do does did done
i me my we our us you your they them their he she his her ll ve re
how what why which who whom when where whether
will would shall should can could may might must not no yes
all any each some such own same other more most few only just also again once first
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())

_WORD = re.compile(r"[a-z0-9_]+(?:\.[a-z0-9_]+)*")
SENTENCE_BREAK = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n+")

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


# A stutter: inside one sentence, a phrase of STUTTER_PHRASE_WORDS words (STUTTER_MIN_CONTENT+ of them content
# words: "a Python module" twice is plain, if poor, prose) said twice, or content words said twice in a row
# inside a clause (one of STUTTER_MIN_WORD_CHARS+ letters, or a pair: "option parser option parser"), or the
# same name on both sides of "and"/"or". SmolLM2 on commander (2026-12-04): "the command-line interface
# command-line interface server", "choose between command-line parsing options and command-line parsing
# options", "command-line-option-parser-client-client".
STUTTER_PHRASE_WORDS = 3
STUTTER_MIN_CONTENT = 3
STUTTER_MIN_WORD_CHARS = 4
_CONJUNCTIONS = frozenset({"and", "or"})
# A loop across sentences: a phrase of REPEAT_PHRASE_WORDS words said twice in a short note (the policy's one to
# three sentences: "defines a class called CommandHelp and defines a class called CommandHelp"), or of
# REPEAT_PHRASE_WORDS_LONG in a longer proposal ("This class is not defined, so I created a class
# InvalidStateError ... This class is not defined, so I created a class _Waiter"), where five words said twice
# are often plain prose ("to a list of iterables", "create a custom module that": SmolLM2, quickstart).
REPEAT_PHRASE_WORDS = 5
REPEAT_PHRASE_WORDS_LONG = 8


def repeats_a_phrase(text_words: list[str], n: int = REPEAT_PHRASE_WORDS) -> bool:
    """Whether a phrase of `n` words occurs twice in `text_words`."""
    phrases = [tuple(text_words[i:i + n]) for i in range(len(text_words) - n + 1)]
    return len(set(phrases)) < len(phrases)


def stutters(sentence: str) -> bool:
    """Whether one sentence repeats a content phrase, or content words back to back (thresholds above)."""
    said = words(sentence)
    content = [w not in STOPWORDS and len(w) > 1 for w in said]
    # back to back inside one clause: a name after its label ("lib/words.js: lib/words.js does ...") is no stutter
    if any(_back_to_back(words(clause)) for clause in _CLAUSE_BREAK.split(sentence)):
        return True
    for n in (1, 2, 3):  # "A and A": the same name on both sides of a conjunction
        for i in range(len(said) - 2 * n):
            left, right = said[i:i + n], said[i + n + 1:i + 2 * n + 1]
            if said[i + n] in _CONJUNCTIONS and left == right and any(content[i:i + n]):
                return True
    n = STUTTER_PHRASE_WORDS
    phrases = [tuple(said[i:i + n]) for i in range(len(said) - n + 1) if sum(content[i:i + n]) >= STUTTER_MIN_CONTENT]
    return len(set(phrases)) < len(phrases)


_CLAUSE_BREAK = re.compile(r"[:;,()\"“”]|\s[-–—]\s")


def _back_to_back(clause_words: list[str]) -> bool:
    """A content word of STUTTER_MIN_WORD_CHARS+ letters, or a pair of content words, said twice in a row."""
    content = [w not in STOPWORDS and len(w) > 1 for w in clause_words]
    for i in range(1, len(clause_words)):
        word = clause_words[i]
        if word == clause_words[i - 1] and content[i] and len(word) >= STUTTER_MIN_WORD_CHARS:
            return True
        if i >= 3 and clause_words[i - 3:i - 1] == clause_words[i - 1:i + 1] and all(content[i - 1:i + 1]):
            return True
    return False


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
    r"^\W*(?:so,? )?(?:you|you're|you'll|your|sure)\b|"
    r"^\W*here(?:'s| is) (?:a |an |the |my )?(?:possible |short |rewritten |brief |quick )?"
    r"(?:response|answer|reply|reasoning|breakdown|summary|explanation|overview)\b|"
    r"\byou(?:'re| are) (?:referring|asking|talking)\b|"  # "The code you're referring to is ..." (commander)
    r"\bthe above (?:question|prompt|task)\b|^\W*the user\b|"
    # the delegation said back as an order ('Implement "lib/argument.js" to build on ...': commander, 2026-12-04;
    # "Implement a custom JSON type ...", "Design a command line interface ...", "Create a new option with the
    # specified flags ...", "Follow the above instructions ...": commander, 2026-12-05)
    r"^\W*(?:implement|design|create|write|define|build|add|make|follow|use|read)\s+"
    r"(?:[\"'`“]?[\w./-]+\.\w+\b|an?\s|the\s)|"
    r"\brewrit(?:e|ten|ing) (?:the |this |my )?(?:reasoning|explanation|script|note|version|passage|file|text|think)\b|"
    # the user's file ("I will take a look at your lib/argument.js": SmolLM2 on commander, 2026-12-03)
    r"\byour (?:own )?(?:code|files?|project|module|repository|script|[\w/-]+\.[a-z]{1,4}\b)", re.I)
# the system prompt's words about how to write, said back ("I will first document myself in plain English")
# ("I will first document myself in plain English", "a solution that does not require any code": commander)
# A rewrite that talks about the text it rewrites, or its length ("The original reasoning is a bit verbose",
# "This carefully crafted explanation is the only output", "it is written in 2 to 8 sentences": SmolLM2
# proposals, quickstart 2026-12-03), is commentary, not reasoning.
_STYLE_TALK = re.compile(r"\bplain english\b|\bengineering notes?\b|\bno code blocks?\b|"
                         r"\b(?:require|need|write|use)s? (?:no|any) code\b|\b\d+ to \d+ sentences\b|"
                         r"\bthe original (?:reasoning|response|version|text|explanation)\b|"
                         r"\bwithout (?:writing|using|any) (?:any )?code\b|\bclear and concise\b|"
                         r"\bthis (?:\w+ )?(?:crafted )?(?:explanation|response|rewrite)\b|"
                         # telling someone what they need to do, anywhere ("To create the temporary file, you need
                         # to run ...": requirements), or calling the work "the task" ("The task involves creating
                         # ...", "In this task, I added ...": SmolLM2 in the quickstart, 2026-12-04)
                         r"\byou(?:'ll| will)? (?:need|have|must|should) to\b|"
                         r"\b(?:the|this) task (?:involves|is to|requires|at hand)\b|\bin this task\b|"
                         # a tutor's voice ("I will start by explaining the basics of options": commander)
                         r"\bexplain(?:ing)? (?:the basics|what \w+ (?:is|are))\b|"
                         # narrating the note to its readers ("I'll start by explaining that I'll create a class
                         # ... I'll mention the possibility of future-related exceptions to the readers of the
                         # file": SmolLM2's futures/_base.py, quickstart 2026-12-05)
                         r"\bexplain(?:ing)? that\b|\bto the readers?\b|\bthe readers? of\b|"
                         # the note talking about itself ("I'm dedicating two sentences to documenting the
                         # code", "I mentioned that I read the index.js first": commander, 2026-12-04)
                         r"\b(?:one|two|three|four|five|\d) sentences?\b|\bI (?:mentioned|said|noted) that\b", re.I)


# "you" anywhere outside quoted names: the chat talking to its user, never an engineer's note to themself.
# Technical English's impersonal "you" after a verb of enabling is what the code lets its user do, not the chat
# ("This class allows you to create a custom error class": SmolLM2 on commander's lib/error.js, 2026-12-05).
_SECOND_PERSON = re.compile(r"\byou(?:'re|'ll|'ve|'d|r|rs|rself)?\b", re.I)
_QUOTED = re.compile(r"`[^`]*`|\"[^\"]*\"")
_IMPERSONAL_YOU = re.compile(r"\b(?:allow|let|enable|help|permit)(?:s|ing|ed)?\s+you\b", re.I)
# a sentence's end: the last character of a finished text
ENDS_A_SENTENCE = re.compile(r"[.!?][\"')\]`*]*\Z")


def speaks_to_you(text: str) -> bool:
    """Whether `text` addresses a "you" outside quotes, other than the impersonal "allows you to"."""
    return bool(_SECOND_PERSON.search(_IMPERSONAL_YOU.sub("", _QUOTED.sub("", text))))


def speaks_as_the_chat(text: str) -> bool:
    """Whether the first sentence of `text` is in the prompt's voice (second person, the chat's framing), or
    the text repeats the system prompt's words on how to write."""
    first = sentences(text.strip())
    return bool(first) and bool(_CHAT_VOICE.search(first[0])) or bool(_STYLE_TALK.search(text))


# Information: a sentence of a note carries some when it names a term of the material its prompt shows (the
# facts, the real file, the README, earlier notes: the prompt less its instruction words and less the names it
# fills in for the file, the project and its languages) that is not a word for a kind of thing (GENERIC_TERMS).
# This judges what a sentence adds rather than how it is phrased: SmolLM2's "The code meets the requirements.",
# "This is where the magic happens." and "It's simple, efficient, and has no moralities." (quickstart and
# commander, 2026-12-04) name nothing the prompt showed. A term is a word of 3+ letters, identifiers split at
# underscores, dots and case changes ("CommanderError": commander, error, commandererror), stemmed.
_GENERIC_TEXT = """
file module project code function class method script library package program source line lines
implement implementation write writing written create build use make provide offer define contain allow
need main simple custom way work part get set call
python javascript typescript java golang rust cpp node
"""
GENERIC_TERMS = frozenset(_GENERIC_TEXT.split())
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_CASE_PART = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
# Talk about the prompt rather than the code: the view it gives of the file ("The first 5 lines of the
# lib/argument.js file are ...", "The file starts with a blank line": SmolLM2, 2026-12-04) or its parts.
_PROMPT_TALK = re.compile(r"\b(?:the )?first (?:\d+|few|two|three|five|ten) (?:lines|files)\b|\bthe first line\b|"
                          # ("This line is a single line of code that defines a class ...": quickstart)
                          r"\bthis line\b|\blines? of code\b|\bcode snippet\b|"
                          r"\b(?:file|code) (?:starts|begins) (?:like this|with)\b|\bas (?:shown|given) above\b|"
                          r"\bthe (?:analysis|prompt|instructions?|delegation|plan entry)\b|"
                          # the facts' own vocabulary for the tree and the graph ("Concurrent.py is one of the
                          # existing files in concurrent.", "... script, which is imported by 1 files.", "It is
                          # built on the foundation that concurrent is already implemented.": quickstart 2026-12-05)
                          r"\bone of the (?:existing |other )?files\b|\bimported by \d+ files?\b|"
                          r"\b(?:is|are) already (?:implemented|written|in the repository)\b|"
                          # the prompt's parts as the code's ("I'll focus on the section on headers", "The code is
                          # in the `FIRST_COMPLETED` section.", "because of the in-repo import": quickstart 2026-12-05)
                          r"\bthe section on\b|\b(?:is|are) in the [`'\"][\w.]+[`'\"] section\b|"
                          r"\bin-repo(?:sitory)? imports?\b", re.I)
# The delegation's framing said back as a clause ("This module is built on top of lib/error.js, which is already
# written.": commander): cut, the rest of the sentence kept.
_ALREADY_WRITTEN = re.compile(r",?\s+(?:which|that) (?:is|are|was|were|has been|have been) already written\b", re.I)
# A later sentence repeats an earlier one when both open with the same OPENING_WORDS words ("The code is written
# ..." three times in one Think) or share a phrase of `phrase_words` words.
OPENING_WORDS = 4


def terms(text: str) -> frozenset[str]:
    """The stems of `text`'s words of 3+ letters (not stopwords), identifiers also split into their parts."""
    found = set()
    for token in _IDENTIFIER.findall(text):
        for part in {token, *_CASE_PART.findall(token)}:
            word = part.lower()
            if len(word) >= 3 and word not in STOPWORDS:
                found.add(stem(word))
    return frozenset(found)


def grounding_terms(prompt: str, instructions: str, names: tuple[str, ...] = ()) -> frozenset[str]:
    """The terms a sentence may carry as information: the prompt's, less its instructions', less `names` (the
    file's path, the project, the languages: a sentence naming only those says nothing about them), less
    GENERIC_TERMS."""
    return terms(prompt) - known_terms(instructions, names)


def informative(sentence: str, grounding: frozenset[str]) -> bool:
    """Whether `sentence` names at least one of the `grounding` terms."""
    return bool(terms(sentence) & grounding)


def known_terms(instructions: str, names: tuple[str, ...] = ()) -> frozenset[str]:
    """The terms that are information neither way: the instructions' (and framing's), `names`, GENERIC_TERMS."""
    return terms(instructions) | terms(" ".join(names)) | _generic_stems()


@lru_cache(maxsize=1)
def _generic_stems() -> frozenset[str]:
    return terms(" ".join(GENERIC_TERMS))


# A sentence with UNSUPPORTED_MIN_TERMS+ terms of its own, under SUPPORTED_MIN_SHARE of them shown in the prompt,
# is vague or made up. SmolLM2 on the quickstart, 2026-12-05: "To write types.py, I'll use a very thorough set
# of constructs to ensure that I'm checking for the presence of a certain thing." (1 of 7), "... providing a
# detachable multiplexor that can handle multiple concurrent threads." (1 of 8), "The project wsgiref must start
# by validating the input data to be able to use it to generate sgefire." (1 of 6), "... a Python function that
# validates a response when the server is unable to accept data due to encryption issues." (1 of 10). Shorter
# sentences are left alone: "mod5.py reads the settings file first and checks every key." names 1 of 5.
UNSUPPORTED_MIN_TERMS = 6
SUPPORTED_MIN_SHARE = 0.2


def unsupported(sentence: str, grounding: frozenset[str], known: frozenset[str]) -> bool:
    """Whether most of what `sentence` says is not in its prompt: UNSUPPORTED_MIN_TERMS+ terms that are not
    `known` (`known_terms`), under SUPPORTED_MIN_SHARE of them among the `grounding` terms."""
    own = terms(sentence) - known
    return len(own) >= UNSUPPORTED_MIN_TERMS and len(own & grounding) < SUPPORTED_MIN_SHARE * len(own)


def talks_about_the_prompt(sentence: str) -> bool:
    return bool(_PROMPT_TALK.search(sentence))


def without_handed_back_clause(text: str) -> str:
    """`text` with ", which is already written" (the delegation's framing said back) cut out."""
    return _ALREADY_WRITTEN.sub("", text)


# A clause copied from the prompt: a run of PROMPT_RUN_WORDS words found in it ("..., which is a module that
# allows you to define classes and functions." from a dependency's report, in three Thinks after it: commander)
PROMPT_RUN_WORDS = 8


def copies_a_run(sentence: str, prompt: str, n: int = PROMPT_RUN_WORDS) -> bool:
    """Whether `sentence` holds a run of `n` words of `prompt`."""
    said, shown = words(sentence), words(prompt)
    runs = {tuple(shown[i:i + n]) for i in range(len(shown) - n + 1)}
    return any(tuple(said[i:i + n]) in runs for i in range(len(said) - n + 1))


def sentence_pieces(text: str) -> list[tuple[str, str]]:
    """(sentence, the break after it) for each sentence of `text`, cut as `sentences` cuts: joined back they
    give `text` again."""
    parts = re.split(f"({SENTENCE_BREAK.pattern})", text)
    return [(parts[i], parts[i + 1] if i + 1 < len(parts) else "") for i in range(0, len(parts), 2)]


def repeats_an_earlier_sentence(sentence: str, earlier: list[str], phrase_words: int = REPEAT_PHRASE_WORDS) -> bool:
    """Whether `sentence` opens as one of `earlier` does (OPENING_WORDS words) or shares a phrase of
    `phrase_words` words with one of them."""
    said = words(sentence)
    opening = said[:OPENING_WORDS]
    phrases = {tuple(said[i:i + phrase_words]) for i in range(len(said) - phrase_words + 1)}
    for other in earlier:
        before = words(other)
        if len(opening) == OPENING_WORDS and before[:OPENING_WORDS] == opening:
            return True
        if any(tuple(before[i:i + phrase_words]) in phrases for i in range(len(before) - phrase_words + 1)):
            return True
    return False


def sentences(text: str) -> list[str]:
    """`text` cut at sentence ends ([.!?] then a space) and at line breaks; empty pieces dropped."""
    return [s.strip() for s in SENTENCE_BREAK.split(text) if s and s.strip()]


def words(text: str) -> list[str]:
    """Lower-cased words; a dotted name (`types.py`, `os.path`) is one word."""
    return _WORD.findall(text.lower())


def stem(word: str) -> str:
    """A crude stem, so that inflections match ("thinking"/"think", "files"/"file"); names are left whole."""
    if not word.isalpha():
        return word
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[:-len(suffix)]
            break
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


def content_words(text: str) -> frozenset[str]:
    """The stems of the words that carry meaning: no stopwords, no single letters (digits are kept: "3 to 5")."""
    return frozenset(stem(w) for w in words(text) if w not in STOPWORDS and (len(w) > 1 or w.isdigit()))


def restates_sentence(said: frozenset[str], instruction: frozenset[str]) -> bool:
    """Whether a sentence's content words `said` restate an instruction sentence's (thresholds above)."""
    shared = len(said & instruction)
    return shared >= RESTATE_MIN_SHARED and (shared >= RESTATE_REPLY_SHARE * len(said)
                                             or shared >= RESTATE_INSTRUCTION_SHARE * len(instruction))
