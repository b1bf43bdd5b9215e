"""Repo-fix tasks end to end in the sandbox: mutants really fail, originals really pass, agents are scored.

The agents here are doubles for a model's words only (scripted replies); the tests, the sandbox, the
task generation and the scoring are the real ones.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from retrace.evaluation.repofix.agent import LoopSettings, run_episodes, score_episode, start_episode
from retrace.evaluation.repofix.generate import GenerationSettings, generate_tasks
from retrace.evaluation.repofix.repos import directory_repository, load_repository
from retrace.evaluation.repofix.task import PreparedRepoFix, RepoFixOptions, evaluate_tasks, select_tasks
from retrace.evaluation.repofix.testrun import run_tests
from retrace.llm import Reply, RequestsFailed, Usage

KINDS = ("operation_change", "flip_operator", "remove_conditional", "if_else_invert", "class_rm_funcs")
SETTINGS = GenerationSettings(kinds=KINDS, tasks_per_kind=1, max_attempts_per_kind=8, seed=0)

CALC = {
    "calc/__init__.py": "from calc.ops import clamp, mean\n",
    "calc/ops.py": ("def clamp(x, lo, hi):\n    if x < lo:\n        return lo\n    if x > hi:\n        return hi\n"
                    "    return x\n\n\ndef mean(values):\n    total = 0\n    for v in values:\n        total += v\n"
                    "    return total / len(values)\n"),
    "tests/test_ops.py": ("from calc import clamp, mean\n\n\ndef test_clamp_low():\n    assert clamp(-5, 0, 10) == 0\n\n\n"
                          "def test_clamp_high():\n    assert clamp(50, 0, 10) == 10\n\n\n"
                          "def test_clamp_inside():\n    assert clamp(5, 0, 10) == 5\n\n\n"
                          "def test_mean():\n    assert mean([1, 2, 3, 6]) == 3\n"),
}


class ScriptedChat:
    """A double for a model's words: `script(conversation) -> reply` (None: the request failed for good);
    the replies are real `Reply`s."""

    name = "scripted"
    backend = "scripted"
    tokenizer = None
    max_model_len = None

    def __init__(self, script):
        self.script = script
        self.usage = Usage()
        self.calls = 0

    def chat(self, conversations, params, desc=""):
        self.calls += 1
        texts = [self.script(conversation) for conversation in conversations]
        return [Reply.failure("http_500") if text is None else Reply((text,), ("stop",)) for text in texts]

    def complete(self, prompts, params, desc=""):
        raise AssertionError("repo_fix only chats")

    def describe(self):
        return {"backend": "scripted"}


def oracle(repo):
    """Reads the first source, writes every source back as it was in the original, runs the tests, done."""
    plan = [f"Let me look.\n<read path=\"{repo.source_paths[0]}\"/>"]
    plan += [f"<write path=\"{path}\">\n{repo.files[path]}</write>" for path in repo.source_paths]
    plan += ["<run_tests/>", "<done/>"]

    def script(conversation):
        return plan[sum(m["role"] == "assistant" for m in conversation)]
    return script


@pytest.fixture(scope="module")
def textwrap_tasks(tmp_path_factory):
    repo = load_repository("stdlib:textwrap")
    task_set = generate_tasks([repo], SETTINGS, tmp_path_factory.mktemp("cache"))
    return repo, task_set


def test_generated_mutants_fail_and_originals_pass(textwrap_tasks):
    repo, task_set = textwrap_tasks
    assert {t.kind for t in task_set.tasks} == set(KINDS)
    original = run_tests(repo, repo.files)
    assert not original.problems and original.passed == set(original.outcomes) and len(original.passed) > 50
    for task in task_set.tasks:
        assert task.fail_to_pass and task.pass_to_pass
        assert set(task.fail_to_pass) | set(task.pass_to_pass) <= original.passed
        mutated = run_tests(repo, task.workspace(repo))
        assert mutated.failing_among(task.fail_to_pass) == list(task.fail_to_pass), task.task_id
        assert mutated.failing_among(task.pass_to_pass) == [], task.task_id
        assert task.mutated_source != repo.files[task.path] and task.failure_outputs.keys() == set(task.fail_to_pass)
    counts = task_set.counts["stdlib:textwrap"]
    assert counts["tests_baseline"] == len(original.passed)
    assert all(tally.get("kept", 0) == 1 for tally in counts["candidates"].values())


def test_task_set_is_cached_by_its_settings(textwrap_tasks, tmp_path):
    repo, task_set = textwrap_tasks
    again = generate_tasks([repo], SETTINGS, Path(task_set.cache_path).parent)
    assert again.from_cache and again.tasks == task_set.tasks
    other = dataclasses.replace(SETTINGS, kinds=("flip_operator",), seed=1)
    fresh = generate_tasks([repo], other, tmp_path)
    assert not fresh.from_cache and fresh.cache_path != task_set.cache_path and {t.kind for t in fresh.tasks} == {
        "flip_operator"}


def _prepared(repo, tasks):
    return PreparedRepoFix({repo.name: repo}, list(tasks), {}, "", False)


def test_oracle_agent_resolves_every_task(textwrap_tasks):
    repo, task_set = textwrap_tasks
    options = RepoFixOptions(repofix_max_turns=6)
    prepared = _prepared(repo, task_set.tasks)
    engine = ScriptedChat(oracle(repo))
    result = evaluate_tasks(engine, prepared, options, seed=0)
    assert result.metrics == {"resolved": 1.0, "fail_to_pass": 1.0, "pass_to_pass": 1.0}
    assert engine.calls == 4  # every episode advanced together, one batched call per turn
    for record in result.records:
        assert record["end_reason"] == "done" and record["actions"] == {"read": 1, "write": 1, "run_tests": 1,
                                                                         "done": 1}
        assert record["diff_from_original"] == ""
    assert result.details["per_kind"] == {k: {"tasks": 1, "resolved": 1} for k in KINDS}


def test_do_nothing_and_chatty_agents_resolve_nothing(textwrap_tasks):
    repo, task_set = textwrap_tasks
    prepared = _prepared(repo, task_set.tasks)
    done = evaluate_tasks(ScriptedChat(lambda c: "<done/>"), prepared, RepoFixOptions(), seed=0)
    assert done.metrics == {"resolved": 0.0, "fail_to_pass": 0.0, "pass_to_pass": 1.0}
    chatty = evaluate_tasks(ScriptedChat(lambda c: "I am not sure what to do."), prepared,
                            RepoFixOptions(repofix_max_turns=2), seed=0)
    assert chatty.metrics["resolved"] == 0.0
    assert all(r["end_reason"] == "max_turns" and r["actions"] == {"invalid": 2} for r in chatty.records)


def test_a_lost_reply_fails_the_task_instead_of_playing_an_empty_turn(textwrap_tasks):
    repo, task_set = textwrap_tasks
    replies = {1: f"<read path=\"{repo.source_paths[0]}\"/>", 2: None}

    def script(conversation):
        return replies[sum(m["role"] == "user" for m in conversation)]
    with pytest.raises(RequestsFailed, match=r"lost turn 2: 1 of 1 requests to the scripted engine failed "
                                             r"after retries \(http_500: 1\)") as caught:
        evaluate_tasks(ScriptedChat(script), _prepared(repo, task_set.tasks[:1]), RepoFixOptions(), seed=0,
                       desc="lost")
    assert (caught.value.failed, caught.value.requests, caught.value.reasons) == (1, 1, {"http_500": 1})


def test_escapes_and_test_edits_are_refused_and_cannot_help(textwrap_tasks):
    repo, task_set = textwrap_tasks
    task = task_set.tasks[0]
    test_path = repo.test_paths[0]
    attacks = iter([f"<write path=\"../{task.path}\">\n{repo.files[task.path]}</write>",
                    f"<write path=\"/tmp/{task.path}\">\n{repo.files[task.path]}</write>",
                    f"<write path=\"{test_path}\">\nimport unittest\n</write>",
                    "<run_tests/>"])
    settings = LoopSettings(max_turns=4)
    episode = start_episode(task, repo, settings)
    run_episodes(ScriptedChat(lambda c: next(attacks)), [episode], settings, "attack")
    observations = [m["content"] for m in episode.messages[3::2]]
    assert "refused" in observations[0] and "refused" in observations[1] and "read-only" in observations[2]
    assert episode.workspace == task.workspace(repo)
    record = score_episode(episode, settings)
    assert not record["resolved"] and record["actions"] == {"refused": 3, "run_tests": 1}


def test_run_tests_observation_lists_the_failing_tests(textwrap_tasks):
    repo, task_set = textwrap_tasks
    task = task_set.tasks[0]
    settings = LoopSettings(max_turns=3)
    episode = start_episode(task, repo, settings)
    run_episodes(ScriptedChat(lambda c: "<run_tests/>"), [episode], settings, "tests")
    report = episode.messages[3]["content"]
    total = len(task.fail_to_pass) + len(task.pass_to_pass)
    assert f"Ran {total} tests: {len(task.pass_to_pass)} passed, {len(task.fail_to_pass)} failed." in report
    assert task.fail_to_pass[0] in report and "Turn 2 of 3" in report


def test_pytest_directory_repository_round_trip(tmp_path):
    for path, text in CALC.items():
        (tmp_path / "calc_project" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "calc_project" / path).write_text(text)
    repo = directory_repository(str(tmp_path / "calc_project"))
    assert repo.framework == "pytest" and repo.test_paths == ("tests/test_ops.py",)
    assert set(repo.source_paths) == {"calc/__init__.py", "calc/ops.py"}
    settings = GenerationSettings(kinds=("flip_operator",), tasks_per_kind=2, max_attempts_per_kind=4)
    task_set = generate_tasks([repo], settings, None)
    assert task_set.tasks and all(t.path == "calc/ops.py" for t in task_set.tasks)
    for task in task_set.tasks:
        assert all(t.startswith("tests/test_ops.py::") for t in task.fail_to_pass + task.pass_to_pass)
    result = evaluate_tasks(ScriptedChat(oracle(repo)), _prepared(repo, task_set.tasks), RepoFixOptions(), seed=0)
    assert result.metrics["resolved"] == 1.0


def test_select_tasks_deals_round_robin_over_kinds(textwrap_tasks):
    _, task_set = textwrap_tasks
    chosen = select_tasks(task_set.tasks, 3)
    assert len(chosen) == 3 and len({t.kind for t in chosen}) == 3
    assert select_tasks(task_set.tasks, 0) == task_set.tasks


@pytest.mark.parametrize("key, value, message", [
    ("repofix_kinds", ["flip_operator", "typo"], "unknown kinds"),
    ("repofix_repos", ["github:foo/bar"], "stdlib:NAME or dir:PATH"),
    ("repofix_max_turns", 0, "at least 1"),
    ("repofix_test_framework", "nose", "auto, unittest or pytest"),
])
def test_options_name_the_bad_key(key, value, message):
    with pytest.raises(ValueError, match=f"key '{key}'.*{message}"):
        RepoFixOptions(**{key: value})


def test_unknown_repositories_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match="no pure-Python module"):
        load_repository("stdlib:no_such_module")
    (tmp_path / "lib.py").write_text("X = 1\n")
    with pytest.raises(ValueError, match="needs Python sources and tests"):
        load_repository(f"dir:{tmp_path}")
