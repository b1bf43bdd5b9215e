"""What plan search may change: the descriptions of the main agent's `Plan` record, read from a proposer's reply.

The plan step carries its `Plan` (retrace.data.records): the header, the files in development order and
their `(needs ...)` come from the repository graph; only the descriptions are text a model wrote. A
candidate is that record with new descriptions, rendered by `Plan.render`, so no rewrite can add, drop,
rename or reorder a file. The only parsing left is of a proposer's free-text reply (`reply_descriptions`):
lines naming a file of the plan give it a new description; an entry the reply leaves out keeps its own.
"""

from __future__ import annotations

import re

from retrace.data import Plan
from retrace.data.records import NEEDS

MAX_DESCRIPTION_CHARS = 240  # a longer description is cut at a word boundary (one plan line stays one line)
# A reply line naming a file: optional number, optional backticks around the path, a colon or dash, the text.
_REPLY_LINE = re.compile(r"^\s*(?:[-*]\s*)?(?:\d+\s*[.)]\s*)?`?(?P<path>[^\s`:]+)`?"
                         r"\s*(?::|\s-|\s\u2013)\s*(?P<text>.*)$")


def plan_block(text: str) -> str:
    """The plan step as the document renders it (retrace.data.document's markup; a test keeps them equal)."""
    body = text if text.endswith("\n") or not text else text + "\n"
    return f"<plan>\n{body}</plan>\n"


def clean_description(text: str) -> str:
    """One line of prose: whitespace collapsed, cut at a word boundary; "" when it holds code or markup."""
    text = " ".join(text.split())
    if "```" in text or "</" in text or "<plan>" in text or "<think>" in text:
        return ""
    if len(text) > MAX_DESCRIPTION_CHARS:
        cut = text.rfind(" ", 0, MAX_DESCRIPTION_CHARS)
        text = text[:cut if cut > 0 else MAX_DESCRIPTION_CHARS].rstrip(" ,;:")
    return text


def reply_descriptions(plan: Plan, reply: str) -> dict[str, str]:
    """The new descriptions a proposer's reply gives the files of `plan` (path -> text).

    Lines that name no file of the plan, and a second line for the same file, are ignored; a description
    that repeats the entry's `(needs ...)` suffix loses it (the suffix is the graph's), and one holding code
    or markup is dropped.
    """
    by_path = {e.path: e for e in plan.entries}
    found: dict[str, str] = {}
    for line in reply.splitlines():
        match = _REPLY_LINE.match(line)
        if not match or match["path"] not in by_path or match["path"] in found:
            continue
        entry = by_path[match["path"]]
        text = match["text"].strip()
        needs = f"{NEEDS.lstrip()}{', '.join(entry.needs)})" if entry.needs else ""  # the graph's suffix
        if needs and text.endswith(needs):
            text = text[:-len(needs)].rstrip()
        text = clean_description(text)
        if text:
            found[entry.path] = text
    return found


def apply_reply(plan: Plan, reply: str) -> Plan:
    """`plan` with the descriptions `reply` gives (see `reply_descriptions`); the files never change."""
    return plan.with_descriptions(reply_descriptions(plan, reply))
