"""BFCL's prompting mode for models without native function calling, as the conversation a model reads.

BFCL's default prompt configuration (`ret_fmt=python`, no tool-call tag, function docs as JSON,
plaintext, classic style) resolves to `templates/system.prompt`, which we keep verbatim, including
its quirks (no space after the persona sentence, two spaces before "You SHOULD NOT"), so a model sees
the text it would see under BFCL. The functions are dumped with `json.dumps(indent=4)` after BFCL's
language hint is appended to each description; the system prompt goes first, or in front of a
question's own system message.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from importlib import resources
from typing import Any

from retrace.evaluation.bfcl.data import BFCLQuestion

PYTHON_HINT = " Note that the provided function is in Python 3 syntax."
PROMPT_CONFIG = "ret_fmt=python&tool_call_tag=False&func_doc_fmt=json&prompt_fmt=plaintext&style=classic"


@lru_cache(maxsize=1)
def system_template() -> str:
    return resources.files("retrace.evaluation.bfcl").joinpath("templates").joinpath("system.prompt").read_text(
        encoding="utf-8")


def function_docs(functions: list[dict[str, Any]]) -> str:
    """The function list as BFCL shows it: descriptions with the Python hint, JSON with 4-space indent."""
    hinted = copy.deepcopy(functions)
    for function in hinted:
        function["description"] = function.get("description", "") + PYTHON_HINT
    return json.dumps(hinted, indent=4)


def system_prompt(functions: list[dict[str, Any]]) -> str:
    return system_template().replace("{functions}", function_docs(functions))


def conversation(question: BFCLQuestion) -> list[dict[str, str]]:
    """The first (only) turn of `question` with BFCL's system prompt in front."""
    if len(question.question) != 1:
        raise ValueError(f"{question.id}: {len(question.question)} turns; only single-turn categories are supported")
    messages = [{"role": m["role"], "content": m["content"]} for m in question.question[0]]
    system = system_prompt(question.functions)
    if messages and messages[0]["role"] == "system":
        messages[0]["content"] = system + "\n\n" + messages[0]["content"]
    else:
        messages.insert(0, {"role": "system", "content": system})
    return messages
