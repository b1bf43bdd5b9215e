"""The model's side of a repo-fix task: a multi-turn Read / Edit / Write / RunTests loop over a workspace.

Every episode starts from the task statement (the failing tests and their output, the file list) and
the tool protocol; each turn the model gives one action, the action is applied to the episode's own
workspace (a dict of files; the sandbox gets a fresh copy whenever tests run) and its result comes
back as the next user message. All unfinished episodes advance together, one `engine.chat` call
per turn, so an engine batches across tasks. An episode ends on `<done/>`, after `max_turns` replies,
or when the next prompt would no longer fit the model's context; then the tests run once more, the
repository's own tests restored, and the episode is scored on its FAIL_TO_PASS and PASS_TO_PASS tests.
A turn whose request failed for good fails the whole task (`RequestsFailed`): an episode that lost a
reply cannot be scored.
"""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from retrace.evaluation.repofix.generate import RepoFixTask
from retrace.evaluation.repofix.protocol import ActionError, apply_action, parse_action
from retrace.evaluation.repofix.repos import Repository
from retrace.evaluation.repofix.testrun import TestRun, run_tests
from retrace.evaluation.tasks import raise_on_failures
from retrace.llm import SamplingParams

if TYPE_CHECKING:
    from retrace.llm.engine import Engine

MAX_FAILURES_SHOWN = 5


@cache
def template(name: str) -> str:
    return resources.files("retrace.evaluation.repofix").joinpath("prompts", f"{name}.prompt").read_text(
        encoding="utf-8")


@dataclass(frozen=True)
class LoopSettings:
    max_turns: int = 8
    max_observation_chars: int = 6000
    test_timeout_s: float = 5.0
    params: SamplingParams = SamplingParams(max_new_tokens=1024)


@dataclass
class Episode:
    task: RepoFixTask
    repo: Repository
    workspace: dict[str, str]
    messages: list[dict[str, str]]
    turns: int = 0
    end_reason: str = ""
    actions: Counter = field(default_factory=Counter)
    steps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return bool(self.end_reason)


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[... {len(text) - limit} more characters not shown ...]"


def file_list(repo: Repository, workspace: dict[str, str]) -> str:
    rows = []
    for path in sorted(workspace):
        role = " (test, read-only)" if path in repo.test_paths else ""
        rows.append(f"- {path}: {len(workspace[path].splitlines())} lines{role}")
    return "\n".join(rows)


def failures_text(tests: list[str], outputs: dict[str, str], limit: int) -> str:
    shown = [f"--- {test}\n{outputs.get(test, '(no output)').rstrip()}" for test in tests[:MAX_FAILURES_SHOWN]]
    if len(tests) > MAX_FAILURES_SHOWN:
        shown.append(f"(and {len(tests) - MAX_FAILURES_SHOWN} more failing tests)")
    return _clip("\n".join(shown), limit)


def task_statement(task: RepoFixTask, repo: Repository, settings: LoopSettings) -> str:
    tests = list(task.fail_to_pass)
    return template("task").format(
        repo=repo.name, file_list=file_list(repo, task.workspace(repo)), failing_count=len(tests),
        test_count=len(tests) + len(task.pass_to_pass), failing_tests="\n".join(f"- {t}" for t in tests),
        failure_output=failures_text(tests, task.failure_outputs, settings.max_observation_chars))


def test_report(run: TestRun, expected: list[str], limit: int) -> str:
    """What `<run_tests/>` shows: counts over the task's tests, then the failing ones with their output."""
    failing = run.failing_among(expected)
    section = ""
    if run.problems:
        section = "Problems:\n" + "\n".join(run.problems) + "\n"
    if failing:
        section += "Failing tests:\n" + failures_text(failing, run.outputs, limit)
    return template("test_report").format(test_count=len(expected), passed_count=len(expected) - len(failing),
                                          failing_count=len(failing), failing_section=section).rstrip()


def start_episode(task: RepoFixTask, repo: Repository, settings: LoopSettings) -> Episode:
    messages = [{"role": "system", "content": template("system").strip()},
                {"role": "user", "content": task_statement(task, repo, settings)}]
    return Episode(task, repo, task.workspace(repo), messages)


def take_turn(episode: Episode, reply: str, settings: LoopSettings) -> None:
    """Apply the reply's action and append the observation (or end the episode on `<done/>`)."""
    episode.turns += 1
    episode.messages.append({"role": "assistant", "content": reply})
    expected = [*episode.task.fail_to_pass, *episode.task.pass_to_pass]
    try:
        action = parse_action(reply)
    except ActionError as error:  # not an action at all
        action, result = None, str(error)
        episode.actions["invalid"] += 1
        step = {"turn": episode.turns, "action": "invalid", "error": result}
    if action is not None:
        if action.kind == "done":
            episode.actions["done"] += 1
            episode.end_reason = "done"
            episode.steps.append({"turn": episode.turns, "action": "done"})
            return
        step = {"turn": episode.turns, "action": action.kind, "path": action.path}
        try:
            if action.kind == "run_tests":
                run = run_tests(episode.repo, episode.workspace, timeout_s=settings.test_timeout_s)
                result = test_report(run, expected, settings.max_observation_chars)
            else:
                result = apply_action(action, episode.workspace, episode.repo.test_paths,
                                      settings.max_observation_chars)
            episode.actions[action.kind] += 1
        except ActionError as error:  # a well-formed action the workspace refuses
            result = str(error)
            episode.actions["refused"] += 1
            step["refused"] = result
    episode.steps.append(step)
    if episode.turns >= settings.max_turns:
        episode.end_reason = "max_turns"
        return
    episode.messages.append({"role": "user", "content": template("observation").format(
        result=_clip(result, settings.max_observation_chars), turn=episode.turns + 1,
        max_turns=settings.max_turns).strip()})


def prompt_tokens(engine: Engine, messages: list[dict[str, str]]) -> int | None:
    """The conversation's length in the model's tokens, or None when the tokenizer cannot tell."""
    tokenizer = getattr(engine, "tokenizer", None)
    if tokenizer is None or getattr(tokenizer, "chat_template", None) is None:
        return None
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
    return len(ids["input_ids"])


def fits(engine: Engine, episode: Episode, settings: LoopSettings) -> bool:
    limit = getattr(engine, "max_model_len", None)
    if not limit:
        return True
    length = prompt_tokens(engine, episode.messages)
    return length is None or length + settings.params.max_new_tokens <= limit


def run_episodes(engine: Engine, episodes: list[Episode], settings: LoopSettings, desc: str) -> None:
    """Advance every episode to its end, one batched chat call per turn.

    Raises `RequestsFailed` when a turn's request failed for good (naming the server).
    """
    for turn in range(settings.max_turns):
        active = [e for e in episodes if not e.finished]
        for episode in active:
            if not fits(engine, episode, settings):
                episode.end_reason = "context_full"
        active = [e for e in active if not e.finished]
        if not active:
            break
        replies = engine.chat([e.messages for e in active], settings.params, desc=f"{desc} turn {turn + 1}")
        raise_on_failures(replies, engine, f"{desc} turn {turn + 1}")  # a lost reply: no episode to score
        for episode, reply in zip(active, replies):
            take_turn(episode, reply.texts[0] if reply.texts else "", settings)


def score_episode(episode: Episode, settings: LoopSettings) -> dict[str, Any]:
    """The final test run over the episode's workspace: resolved, and the FAIL/PASS_TO_PASS shares."""
    task = episode.task
    run = run_tests(episode.repo, episode.workspace, timeout_s=settings.test_timeout_s)
    passed = run.passed
    f2p = sum(t in passed for t in task.fail_to_pass)
    p2p = sum(t in passed for t in task.pass_to_pass)
    original = episode.repo.files[task.path]
    diff = "".join(difflib.unified_diff(original.splitlines(True), episode.workspace.get(task.path, "").splitlines(True),
                                        f"original/{task.path}", f"final/{task.path}", n=1))
    return {"task_id": task.task_id, "repo": task.repo, "kind": task.kind, "path": task.path, "unit": task.unit,
            "mutation": task.description, "resolved": f2p == len(task.fail_to_pass) and p2p == len(task.pass_to_pass),
            "fail_to_pass_passed": f2p, "fail_to_pass_total": len(task.fail_to_pass),
            "pass_to_pass_passed": p2p, "pass_to_pass_total": len(task.pass_to_pass),
            "turns": episode.turns, "end_reason": episode.end_reason or "max_turns",
            "actions": dict(episode.actions), "steps": episode.steps, "final_problems": run.problems,
            "diff_from_original": _clip(diff, 4000),
            "replies": [_clip(m["content"], 2000) for m in episode.messages if m["role"] == "assistant"]}
