"""The repo-fix tool protocol: replies parse to one action; paths and tests are guarded."""

from __future__ import annotations

import pytest

from retrace.evaluation.repofix.protocol import ActionError, apply_action, confine, parse_action

TESTS = ("test_mod.py",)


def workspace():
    return {"mod.py": "def f(x):\n    return x + 1\n\n\ndef g(x):\n    return x + 1\n", "test_mod.py": "import mod\n",
            "pkg/util.py": "VALUE = 1\n"}


def test_first_action_in_the_reply_is_taken():
    action = parse_action('I will look first.\n<read path="mod.py"/>\nthen <run_tests/>')
    assert (action.kind, action.path, action.lines) == ("read", "mod.py", None)
    assert parse_action("<run_tests/>").kind == "run_tests"
    assert parse_action("All fixed. <done/>").kind == "done"
    assert parse_action("<read path='pkg/util.py' lines=\"2-5\"/>").lines == (2, 5)
    assert parse_action("<read path=mod.py>").path == "mod.py"


def test_write_and_edit_bodies():
    write = parse_action('<write path="mod.py">\ndef f(x):\n    return x\n</write>')
    assert write.content == "def f(x):\n    return x\n"
    edit = parse_action('<edit path="mod.py">\n<old>\n    return x + 1\n</old>\n<new>\n    return x - 1\n</new>\n</edit>')
    assert (edit.old, edit.new) == ("    return x + 1\n", "    return x - 1\n")


@pytest.mark.parametrize("reply, message", [
    ("I think the bug is in f.", "no action found"),
    ("<read/>", "needs a path"),
    ('<write path="mod.py">\ndef f(x):\n', "not closed"),
    ('<edit path="mod.py"><old>x</old></edit>', "<old>exact text</old> and <new>"),
    ('<read path="mod.py" lines="9-2"/>', "FIRST-LAST"),
])
def test_malformed_replies_explain_themselves(reply, message):
    with pytest.raises(ActionError, match=message):
        parse_action(reply)


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside.py", "pkg/../../x.py", "~/.bashrc", "a\\..\\b.py",
                                  "C:/x.py", "bad\0.py", "", "./.."])
def test_paths_that_could_leave_the_workspace_are_refused(path):
    with pytest.raises(ActionError, match="refused"):
        confine(path)


@pytest.mark.parametrize("path", ["../escape.py", "/tmp/escape.py", "pkg/../../escape.py"])
def test_write_escape_attempts_change_nothing(path):
    files = workspace()
    before = dict(files)
    with pytest.raises(ActionError, match="refused"):
        apply_action(parse_action(f'<write path="{path}">\nprint(1)\n</write>'), files, TESTS)
    assert files == before


def test_tests_and_test_configuration_are_read_only():
    files = workspace()
    for path in ("test_mod.py", "conftest.py", "pkg/conftest.py", "sitecustomize.py", "__repofix_runner__.py"):
        with pytest.raises(ActionError, match="read-only"):
            apply_action(parse_action(f'<write path="{path}">\nx = 1\n</write>'), files, TESTS)
    assert files == workspace()


def test_read_write_and_edit_apply_to_the_workspace():
    files = workspace()
    shown = apply_action(parse_action('<read path="./mod.py" lines="4-6"/>'), files, TESTS)
    assert shown == '<file path="mod.py" lines="4-6">\n\ndef g(x):\n    return x + 1\n</file>'
    assert "wrote pkg/new.py" in apply_action(parse_action('<write path="pkg/new.py">\nY = 2\n</write>'), files, TESTS)
    assert files["pkg/new.py"] == "Y = 2\n"
    with pytest.raises(ActionError, match="not a .py file"):
        apply_action(parse_action('<write path="notes.txt">\nhi\n</write>'), files, TESTS)
    with pytest.raises(ActionError, match="occurs 2 times"):  # ambiguous: both functions have the line
        apply_action(parse_action('<edit path="mod.py"><old>return x + 1</old><new>return x</new></edit>'), files, TESTS)
    edit = '<edit path="mod.py"><old>def g(x):\n    return x + 1</old><new>def g(x):\n    return x + 2</new></edit>'
    assert apply_action(parse_action(edit), files, TESTS) == "edited mod.py"
    assert files["mod.py"].endswith("def g(x):\n    return x + 2\n") and "return x + 1" in files["mod.py"]
    with pytest.raises(ActionError, match="no such file"):
        apply_action(parse_action('<read path="missing.py"/>'), files, TESTS)


def test_long_files_are_shown_in_whole_lines_with_the_range_said():
    files = {"big.py": "".join(f"x{i} = {i}\n" for i in range(1, 201))}
    shown = apply_action(parse_action('<read path="big.py"/>'), files, TESTS, max_chars=100)
    assert shown.startswith('<file path="big.py" lines="1-13">\nx1 = 1\n') and "x13 = 13\n</file>" in shown
    assert shown.endswith('(lines 1-13 of 200 shown; read more with lines="14-...")')
    tail = apply_action(parse_action('<read path="big.py" lines="195-400"/>'), files, TESTS, max_chars=100)
    assert tail == '<file path="big.py" lines="195-200">\n' + "".join(f"x{i} = {i}\n" for i in range(195, 201)) + "</file>"
