"""The leakage guard: a Think that copies the code it precedes is rejected before it is scored.

Likelihood search rewards any text that makes the payload likely, and nothing makes it likelier than the
payload itself; without this guard the search degenerates into pasting the answer. Two rules, either one
rejects (both on the Think text after the grounded facts are blanked out, see below):

- n-gram rule: the Think shares `ngram` consecutive whitespace-separated words with the payload (default
  12: longer than any sentence of prose is likely to share with code by chance, shorter than a pasted
  function). Words, not model tokens, so the rule does not depend on the scorer's tokenizer.
- line rule: of the Think's substantial lines (at least `MIN_LINE_CHARS` characters once stripped), at
  least 2 and more than `line_share` appear verbatim (stripped) as lines of the payload.
- span rule: a long payload line (at least `SPAN_MIN_CHARS` characters once stripped) appears verbatim
  anywhere in the Think. Surprisal guidance shows the proposer the payload's hardest lines; SmolLM2 quoted
  one ("- line 2: # (c) 2005 Ian Bicking and contributors; written for Paste (http://pythonpaste.org)", 11
  words, under the n-gram rule, one line, under the line rule) and the search accepted it.

Allowed facts: the signatures (with or without their `def`/`class` keyword), names and first docstring
sentences of the `Grounding`'s definitions and its purpose are what the analysis gives every agent
(docs/formats.md); a Think may state them word for word. They are replaced by a separator before both
rules, so a long signature alone never counts as a leak, while a body pasted around it still does.
Likewise anything the original (pre-search) Think already said is allowed: it passed the simulation's own
checks, and a rewrite that keeps it copies nothing new; its word n-grams and lines are exempt.
"""

from __future__ import annotations

from dataclasses import dataclass

from retrace.data import Grounding

MIN_LINE_CHARS = 12
SPAN_MIN_CHARS = 30  # prose shares no line this long with code by chance
KEYWORDS = ("def ", "class ", "async def ")
SEPARATOR = "\n\u241e\n"  # not a word of any payload: n-grams never span a blanked fact


@dataclass(frozen=True)
class LeakCheck:
    leaked: bool
    reason: str = ""  # "ngram" | "lines" | "span" | ""


def allowed_fact_strings(facts: Grounding | list[Grounding] | None) -> list[str]:
    """The strings a Think may copy verbatim: signatures, names and docstring sentences of the definitions.

    A list of groundings (the plan's: one per file) allows the strings of each.
    """
    found = []
    for one in ([facts] if isinstance(facts, Grounding) else facts or []):
        found.append(one.purpose)
        for item in one.definitions:
            signature = item.signature
            found += [signature, signature.split(" ", 1)[-1] if signature.startswith(KEYWORDS) else "", item.doc]
    # Longest first, so a signature is blanked before a shorter string inside it.
    return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)


def _blank_facts(text: str, facts: Grounding | list[Grounding] | None) -> str:
    for fact in allowed_fact_strings(facts):
        text = text.replace(fact, SEPARATOR)
    return text


def _ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


class LeakGuard:
    """Checks candidate Thinks against one payload; the payload's n-grams and lines are indexed once."""

    def __init__(self, payload: str, *, ngram: int = 12, line_share: float = 0.3):
        self.ngram = ngram
        self.line_share = line_share
        self.payload_ngrams = _ngrams(payload.split(), ngram)
        self.payload_lines = {line.strip() for line in payload.splitlines() if len(line.strip()) >= MIN_LINE_CHARS}
        self.long_lines = sorted(line for line in self.payload_lines if len(line) >= SPAN_MIN_CHARS)

    def check(self, think: str, facts: Grounding | list[Grounding] | None = None,
              allowed: str = "") -> LeakCheck:
        """Whether `think` copies the payload; `allowed` is text it may repeat (the original Think)."""
        text, allowed = _blank_facts(think, facts), _blank_facts(allowed, facts)
        exempt = {g for part in allowed.split(SEPARATOR) for g in _ngrams(part.split(), self.ngram)}
        for part in text.split(SEPARATOR):
            if (_ngrams(part.split(), self.ngram) & self.payload_ngrams) - exempt:
                return LeakCheck(True, "ngram")
        exempt_lines = {line.strip() for line in allowed.splitlines()}
        lines = [line.strip() for line in text.splitlines() if len(line.strip()) >= MIN_LINE_CHARS]
        copied = sum(line in self.payload_lines and line not in exempt_lines for line in lines)
        if lines and copied >= 2 and copied / len(lines) > self.line_share:
            return LeakCheck(True, "lines")
        if any(line in text and line not in allowed for line in self.long_lines):
            return LeakCheck(True, "span")
        return LeakCheck(False)
