"""The repo-fix tool protocol: parse one action from a model reply and apply it to the workspace.

The tags follow the trajectory markup the trained models saw (`<read path="..."/>`, `<write path="...">`
... `</write>`), plus `<edit>` (replace one exact passage, so a fix need not rewrite a whole file),
`<run_tests/>` and `<done/>`. The first action tag in a reply is the action; text around it is ignored.
Paths are confined to the workspace: absolute paths, `..`, backslashes and NUL are refused, and so are
writes to the tests (which are restored before every run anyway), to `conftest.py` or
`sitecustomize.py` files and to the runner, so that nothing but the code under test can change.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

from retrace.evaluation.repofix.testrun import RUNNER_FILE

ACTIONS = ("read", "write", "edit", "run_tests", "done")
_TAG = re.compile(r"<(read|write|edit|run_tests|done)\b([^>]*?)(/?)>", re.DOTALL)
_ATTR = re.compile(r"""(\w+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s/>]+))""")
_PROTECTED_NAMES = ("conftest.py", "sitecustomize.py", "usercustomize.py", RUNNER_FILE)


class ActionError(ValueError):
    """A reply that is not a valid action, or an action the workspace refuses; its text is the feedback."""


@dataclass(frozen=True)
class Action:
    kind: str
    path: str = ""
    content: str = ""       # write: the whole new file
    old: str = ""           # edit: the passage to replace (must occur exactly once)
    new: str = ""
    lines: tuple[int, int] | None = None   # read: an optional 1-based inclusive line range


def _strip_block(text: str) -> str:
    """A block's body without the newline right after the opening tag (the one before the close stays)."""
    return text[1:] if text.startswith("\n") else text


def parse_action(reply: str) -> Action:
    """The first action in the reply; ActionError with a short explanation when there is none."""
    match = _TAG.search(reply)
    if match is None:
        raise ActionError("no action found: reply with one of <read path=\"...\"/>, <write path=\"...\">...</write>, "
                          "<edit path=\"...\"><old>...</old><new>...</new></edit>, <run_tests/> or <done/>")
    kind, attrs_text, self_closing = match.group(1), match.group(2), match.group(3)
    attrs = {m.group(1): next(g for g in m.groups()[1:] if g is not None) for m in _ATTR.finditer(attrs_text)}
    if kind in ("run_tests", "done"):
        return Action(kind)
    path = attrs.get("path", "")
    if not path:
        raise ActionError(f"<{kind}> needs a path attribute, e.g. <{kind} path=\"module.py\">")
    if kind == "read":
        lines = None
        if "lines" in attrs:
            found = re.fullmatch(r"(\d+)\s*-\s*(\d+)", attrs["lines"])
            if not found or int(found.group(1)) < 1 or int(found.group(2)) < int(found.group(1)):
                raise ActionError(f"<read lines=\"{attrs['lines']}\">: expected lines=\"FIRST-LAST\", e.g. 1-80")
            lines = (int(found.group(1)), int(found.group(2)))
        return Action("read", path, lines=lines)
    if self_closing:
        raise ActionError(f"<{kind} path=\"{path}\"/> has no content")
    body_start = match.end()
    close = reply.find(f"</{kind}>", body_start)
    if close == -1:
        raise ActionError(f"<{kind} path=\"{path}\"> is not closed with </{kind}>: nothing was changed "
                          "(was the reply cut short?)")
    body = reply[body_start:close]
    if kind == "write":
        return Action("write", path, content=_strip_block(body))
    old, new = re.search(r"<old>(.*?)</old>", body, re.DOTALL), re.search(r"<new>(.*?)</new>", body, re.DOTALL)
    if old is None or new is None:
        raise ActionError("<edit> needs <old>exact text</old> and <new>replacement</new> inside it")
    return Action("edit", path, old=_strip_block(old.group(1)), new=_strip_block(new.group(1)))


def confine(path: str) -> str:
    """The path as a clean workspace-relative posix path; ActionError when it could leave the workspace."""
    if not path or "\0" in path or "\\" in path or path.startswith(("/", "~")) or re.match(r"^[A-Za-z]:", path):
        raise ActionError(f"refused: {path!r} is not a relative path inside the workspace")
    parts = [part for part in PurePosixPath(path).parts if part != "."]
    if not parts or ".." in parts:
        raise ActionError(f"refused: {path!r} leaves the workspace")
    return "/".join(parts)


def read_view(path: str, text: str, lines: tuple[int, int] | None, max_chars: int) -> str:
    """The file (or the asked line range) as whole lines up to `max_chars`, saying which lines are shown."""
    all_lines = text.splitlines(keepends=True)
    first, last = lines if lines else (1, len(all_lines))
    last = min(last, len(all_lines))
    shown, size = [], 0
    for line in all_lines[first - 1:last]:
        if shown and size + len(line) > max_chars:
            break
        shown.append(line)
        size += len(line)
    body = "".join(shown)
    if body and not body.endswith("\n"):
        body += "\n"
    end = first + len(shown) - 1
    if lines is None and end == len(all_lines):
        return f"<file path=\"{path}\">\n{body}</file>"
    note = (f"\n(lines {first}-{end} of {len(all_lines)} shown; read more with lines=\"{end + 1}-...\")"
            if end < len(all_lines) else "")
    return f"<file path=\"{path}\" lines=\"{first}-{end}\">\n{body}</file>{note}"


def apply_action(action: Action, workspace: dict[str, str], test_paths: Mapping[str, str] | tuple[str, ...],
                 max_chars: int = 6000) -> str:
    """Carry out read/write/edit on `workspace` (a dict changed in place); returns what the model is told.

    run_tests and done are the caller's; ActionError for refused or impossible actions.
    """
    path = confine(action.path)
    if action.kind == "read":
        if path not in workspace:
            raise ActionError(f"no such file: {path}")
        return read_view(path, workspace[path], action.lines, max_chars)
    if path in test_paths or PurePosixPath(path).name in _PROTECTED_NAMES:
        raise ActionError(f"refused: {path} is read-only (tests and test configuration cannot be changed)")
    if action.kind == "write":
        if path not in workspace and not path.endswith(".py"):
            raise ActionError(f"refused: {path} does not exist and is not a .py file")
        workspace[path] = action.content
        return f"wrote {path} ({len(action.content.splitlines())} lines)"
    if action.kind == "edit":
        if path not in workspace:
            raise ActionError(f"no such file: {path}")
        count = workspace[path].count(action.old) if action.old else 0
        if count != 1:
            raise ActionError(f"edit refused: the <old> text occurs {count} times in {path}; it must occur exactly "
                              "once (copy it exactly, with enough lines to be unique)")
        workspace[path] = workspace[path].replace(action.old, action.new, 1)
        return f"edited {path}"
    raise ValueError(f"apply_action does not handle {action.kind}")
