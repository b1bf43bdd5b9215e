"""A small hand-made trajectory with grounding facts, shared by the refine tests."""

from __future__ import annotations

from retrace.data import Step, Trajectory

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
    return [{"kind": k, "name": n, "signature": s, "doc": d, "line": line, "parent": p} for k, n, s, d, line, p in items]


UTIL_FACTS = {
    "purpose": "Small numeric helpers.", "deps": [], "imported_names": {}, "external_imports": ["math"],
    "calls": ["math.sqrt"], "n_lines": 21,
    "definitions": _definitions([
        ("class", "Accumulator", "class Accumulator", "Keeps a running total of the values it is given.", 6, None),
        ("method", "__init__", "def __init__(self, start=0)", "", 9, "Accumulator"),
        ("method", "add", "def add(self, value)", "Add one value to the running total and return the new total.",
         12, "Accumulator"),
        ("function", "hypot", "def hypot(a, b)", "Length of the hypotenuse of a right triangle with legs a and b.",
         18, None),
    ]),
}
APP_FACTS = {
    "purpose": "Command line entry point that sums its arguments.", "deps": ["util.py"],
    "imported_names": {"util.py": ["Accumulator", "hypot"]}, "external_imports": ["sys"],
    "calls": ["Accumulator", "acc.add", "float", "hypot", "print"], "n_lines": 14,
    "definitions": _definitions([
        ("function", "main", "def main(argv)",
         "Sum the numbers given on the command line and print the total and a hypotenuse.", 7, None),
    ]),
}


# The simulation's plan format (retrace.agents.structural.plan_text): header, one line per file in order.
PLAN = ("Implementation plan (one sub-agent per file, in this order):\n1. util.py: Small numeric helpers.\n"
        "2. app.py: Command line entry point that sums its arguments. (needs util.py)")


def make_trajectory(repo: str = "calc") -> Trajectory:
    steps = [
        Step("main", "requirements", None, "A tiny calculator that sums command line numbers."),
        Step("main", "plan", None, PLAN),
        Step("main", "delegate", "util.py", "Implement `util.py`."),
        Step("util.py", "think", None, "Now I write `util.py`: small numeric helpers.", {"facts": UTIL_FACTS}),
        Step("util.py", "write", "util.py", UTIL),
        Step("util.py", "report", "util.py", "Done: `util.py` provides `Accumulator`, `hypot`."),
        Step("main", "delegate", "app.py", "Implement `app.py`."),
        Step("app.py", "think", None, "`app.py` builds on `util.py`; I read it first."),
        Step("app.py", "read", "util.py", UTIL),
        Step("app.py", "think", None, "Now I write `app.py`: the entry point.", {"facts": APP_FACTS}),
        Step("app.py", "write", "app.py", APP),
        Step("app.py", "report", "app.py", "Done: `app.py` is written."),
    ]
    return Trajectory(repo=repo, source=f"test:{repo}", order=["util.py", "app.py"], steps=steps, meta={})
