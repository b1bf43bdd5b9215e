"""The main agent's plan as a fixed skeleton with editable descriptions: what plan search may change.

The plan (`retrace.agents.structural.plan_text`) is a header line and one line per kept file, in
development order: `N. path: description (needs dep, ...)`. The header, the numbers, the paths and the
`(needs ...)` suffixes come from the repository graph; only the descriptions are text a model wrote (the
policy's purposes). `PlanSkeleton` parses a plan into that skeleton and renders any candidate back
through it, so no rewrite can add, drop, rename or reorder a file: a proposer's reply only supplies new
descriptions, entry by entry, and an entry it leaves out keeps its incumbent description.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_DESCRIPTION_CHARS = 240  # a longer description is cut at a word boundary (one plan line stays one line)
NEEDS = " (needs "
# A reply line naming a file: optional number, optional backticks around the path, a colon or dash, the text.
_REPLY_LINE = re.compile(r"^\s*(?:[-*]\s*)?(?:\d+\s*[.)]\s*)?`?(?P<path>[^\s`:]+)`?"
                         r"\s*(?::|\s-|\s\u2013)\s*(?P<text>.*)$")


class PlanParseError(ValueError):
    """The plan does not have the skeleton's shape (header, then exactly the kept files in order)."""


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


@dataclass(frozen=True)
class PlanEntry:
    path: str
    description: str   # the model-written part
    needs: str         # the graph's " (needs a, b)" suffix, or ""


@dataclass(frozen=True)
class PlanSkeleton:
    header: str
    entries: tuple[PlanEntry, ...]

    @property
    def paths(self) -> list[str]:
        return [e.path for e in self.entries]

    @classmethod
    def parse(cls, text: str, order: list[str]) -> PlanSkeleton:
        """Split `text` along the known development `order`; PlanParseError when it does not round-trip."""
        lines = text.rstrip("\n").split("\n")
        if len(lines) != len(order) + 1:
            raise PlanParseError(f"plan has {len(lines) - 1} entry lines for {len(order)} files")
        known = set(order)
        entries = []
        for number, (line, path) in enumerate(zip(lines[1:], order), start=1):
            lead = f"{number}. {path}:"
            if not line.startswith(lead):
                raise PlanParseError(f"plan line {number} does not start with {lead!r}")
            rest = line[len(lead):].removeprefix(" ")
            needs = ""
            cut = rest.rfind(NEEDS)
            if cut >= 0 and rest.endswith(")"):
                deps = rest[cut + len(NEEDS):-1].split(", ")
                if all(d in known for d in deps):
                    rest, needs = rest[:cut], rest[cut:]
            entries.append(PlanEntry(path, rest, needs))
        skeleton = cls(lines[0], tuple(entries))
        if skeleton.render() != text.rstrip("\n"):
            raise PlanParseError("plan does not round-trip through its skeleton")
        return skeleton

    def render(self, descriptions: dict[str, str] | None = None) -> str:
        """The plan with `descriptions` (path -> text) in place of the skeleton's own, where given."""
        descriptions = descriptions or {}
        lines = [self.header]
        for number, entry in enumerate(self.entries, start=1):
            lines.append(f"{number}. {entry.path}: {descriptions.get(entry.path, entry.description)}{entry.needs}")
        return "\n".join(lines)

    def descriptions(self) -> dict[str, str]:
        return {e.path: e.description for e in self.entries}

    def apply(self, reply: str) -> str:
        """A proposer's reply rendered through the skeleton: its descriptions for the files it names.

        Lines that name no file of the plan are ignored; a description that repeats the entry's
        `(needs ...)` suffix loses it (the suffix is the graph's), and one holding code or markup is dropped.
        """
        by_path = {e.path: e for e in self.entries}
        found: dict[str, str] = {}
        for line in reply.splitlines():
            match = _REPLY_LINE.match(line)
            if not match or match["path"] not in by_path or match["path"] in found:
                continue
            entry = by_path[match["path"]]
            text = match["text"].strip()
            if entry.needs and text.endswith(entry.needs.strip()):
                text = text[:-len(entry.needs.strip())].rstrip()
            text = clean_description(text)
            if text:
                found[entry.path] = text
        return self.render(found)
