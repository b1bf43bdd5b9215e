"""How an APTBench answer is read and judged: the published harness's rules, and the log-likelihood deviation.

Published (TencentYoutuResearch/APTBench `code/predict.py` at the pinned revision), applied to the reply
stripped of surrounding whitespace:
- multiple choice: asterisks removed, the answer is the first letter at a word start that is followed by
  ")" or a newline (`\\b([A-Za-z])[\\)\\n]`), compared with `answer`; none found is wrong.
- action: when the reply has a newline, the text before it, then before its first ";"; a reply without
  a newline is taken whole (the harness splits at ";" only after a newline). Stripped, it must equal
  `target_cmd` exactly.

Log-likelihood (retrace's deviation, for prompts longer than the model's context): the prompt ends with
"(" (the templates end "... is ("), so each choice letter with its ")" is scored as the continuation, and
the choice with the lowest summed negative log-likelihood is the answer (ties: the earlier letter).
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from typing import Any

CHOICE_ANSWER = re.compile(r"\b([A-Za-z])[\)\n]")


def extract_choice(reply: str) -> str | None:
    """The chosen letter of a multiple-choice reply by the published rule, or None when there is none."""
    match = CHOICE_ANSWER.search(reply.strip().replace("*", ""))
    return match.group(1) if match else None


def extract_command(reply: str) -> str:
    """The next shell command of an action reply by the published rule."""
    reply = reply.strip()
    if "\n" in reply:
        reply = reply.split("\n")[0].split(";")[0]
    return reply.strip()


def choice_letters(choices: str) -> list[str]:
    """The option letters of a `choices` text: "(A)", then "(B)" after it, and so on while the next is found.

    A letter quoted inside a snippet is counted only when it comes in order after the previous option, so a
    stray "(B)" in option A's code can at worst end the list early; a few published items list fewer options
    than their answer letter (the task's details count them).
    """
    letters: list[str] = []
    position = 0
    for letter in string.ascii_uppercase:
        found = choices.find(f"({letter})", position)
        if found < 0:
            break
        letters.append(letter)
        position = found + 3
    return letters


def continuation(letter: str) -> str:
    """What follows the prompt's "(" when the model answers `letter`: the letter and its ")"."""
    return f"{letter})"


def choose_by_loglik(engine: Any, prompt_ids: Sequence[int], letters: Sequence[str]) -> tuple[str | None, dict[str, float]]:
    """The letter whose continuation has the lowest NLL after the prompt, and each letter's NLL in nats.

    The prompt (ids without special tokens; the engine adds its own) is forwarded once and every
    continuation scored after it; prompt plus continuation must fit the engine's positions.
    """
    if not letters:
        return None, {}
    state = engine.encode_prefix(list(prompt_ids))
    rows = [([], engine.encode_target(continuation(letter))) for letter in letters]
    scores = engine.score_after_prefix(state, rows)
    nlls = {letter: score.nll_sum for letter, score in zip(letters, scores)}
    return min(letters, key=lambda letter: nlls[letter]), nlls


def judge(subtask_multiple_choice: bool, reply: str, target: str) -> tuple[str | None, bool]:
    """(extracted answer, correct) for a generated reply under the published rule of its subtask."""
    predicted = extract_choice(reply) if subtask_multiple_choice else extract_command(reply)
    return predicted, predicted is not None and predicted == target
