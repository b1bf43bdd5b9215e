"""A small hand-made trajectory with its typed records (grounding, plan), shared by the refine tests."""

from __future__ import annotations

from retrace.data import Definition, Grounding, Plan, PlanEntry, Step, Trajectory

UTIL = '''"""Small numeric helpers."""

import math


class Accumulator:
    """Keeps a running total of the values it is given."""

    def __init__(self, start=0):
        self.total = start

    def add(self, value):
        """Add one value to the running total and return the new total."""
        self.total += value
        return self.total


def hypot(a, b):
    """Length of the hypotenuse of a right triangle with legs a and b."""
    return math.sqrt(a * a + b * b)
'''

APP = '''"""Command line entry point that sums its arguments."""

import sys

from util import Accumulator, hypot


def main(argv):
    """Sum the numbers given on the command line and print the total and a hypotenuse."""
    acc = Accumulator()
    for arg in argv:
        acc.add(float(arg))
    print(acc.total, hypot(3, 4))
    return 0
'''


def _definitions(items):
    return [Definition(k, n, s, d, line, p) for k, n, s, d, line, p in items]


UTIL_FACTS = Grounding(
    path="util.py", language="python", purpose="Small numeric helpers.", deps=[], imported_names={},
    external_imports=["math"], calls=["math.sqrt"], n_lines=21,
    definitions=_definitions([
        ("class", "Accumulator", "class Accumulator", "Keeps a running total of the values it is given.", 6, None),
        ("method", "__init__", "def __init__(self, start=0)", "", 9, "Accumulator"),
        ("method", "add", "def add(self, value)", "Add one value to the running total and return the new total.",
         12, "Accumulator"),
        ("function", "hypot", "def hypot(a, b)", "Length of the hypotenuse of a right triangle with legs a and b.",
         18, None),
    ]),
)
APP_FACTS = Grounding(
    path="app.py", language="python", purpose="Command line entry point that sums its arguments.", deps=["util.py"],
    imported_names={"util.py": ["Accumulator", "hypot"]}, external_imports=["sys"],
    calls=["Accumulator", "acc.add", "float", "hypot", "print"], n_lines=14,
    definitions=_definitions([
        ("function", "main", "def main(argv)",
         "Sum the numbers given on the command line and print the total and a hypotenuse.", 7, None),
    ]),
)


# The simulation's plan (retrace.agents.simulate): a Plan record, its rendering the plan step's text.
PLAN_RECORD = Plan([PlanEntry("util.py", "Small numeric helpers."),
                    PlanEntry("app.py", "Command line entry point that sums its arguments.", ("util.py",))])
PLAN = PLAN_RECORD.render()
REQUIREMENTS = "A tiny calculator that sums command line numbers."
UTIL_REPORT = "Done: `util.py` provides `Accumulator`, `hypot`."


def make_trajectory(repo: str = "calc") -> Trajectory:
    steps = [
        Step("main", "requirements", None, REQUIREMENTS),
        Step("main", "plan", None, PLAN, plan=PLAN_RECORD),
        Step("main", "delegate", "util.py", "Implement `util.py`."),
        Step("util.py", "think", None, "Now I write `util.py`: small numeric helpers.", grounding=UTIL_FACTS),
        Step("util.py", "write", "util.py", UTIL),
        Step("util.py", "report", "util.py", UTIL_REPORT),
        Step("main", "delegate", "app.py", "Implement `app.py`."),
        Step("app.py", "think", None, "`app.py` builds on `util.py`; I read it first."),
        Step("app.py", "read", "util.py", UTIL),
        Step("app.py", "think", None, "Now I write `app.py`: the entry point.", grounding=APP_FACTS),
        Step("app.py", "write", "app.py", APP),
        Step("app.py", "report", "app.py", "Done: `app.py` is written."),
    ]
    return Trajectory(repo=repo, source=f"test:{repo}", order=["util.py", "app.py"], steps=steps, meta={})


class ScriptedScorer:
    """A StepScorer stand-in: NLL = 1.0 without Think, else 3.0 - 0.1 per line of the Think (never below 1.0 here)."""

    def __init__(self):
        self.tokens_forwarded = self.unique_tokens = 0
        self.seconds = 0.0
        self.begun: list[dict] = []  # the arguments of every `begin`

    def begin(self, prefix_text, path, payload, incumbent, between=None):
        self.begun.append({"prefix": prefix_text, "path": path, "incumbent": incumbent, "between": between})
        return type("Step", (), {"target_ids": [0] * 10, "token_lines": [], "payload": payload,
                                 "context_tokens": 7})()

    def fits(self, step, think):
        return True

    def think_ids(self, text):
        return [] if text is None else text.split()

    def count_tokens(self, text):
        return len(text.split())

    def score(self, step, thinks):
        from retrace.llm.scoring import TargetScore

        return [TargetScore(10 * (1.0 if t is None else 3.0 - 0.1 * len(t.splitlines())), 10) for t in thinks]
