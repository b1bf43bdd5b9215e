"""Run a workspace's tests and print one outcome per test id: executed in the sandbox, never imported.

Reads its settings as JSON on stdin: {"nonce", "framework": "unittest" | "pytest", "targets",
"own_modules", "max_output_chars"}. The workspace is the current directory; it goes first on
sys.path and the workspace's own top-level modules are evicted from sys.modules first (the runner's
own imports may have loaded a stdlib module of the same name), so the tests import the workspace's
code, which is checked after loading. The last stdout line starting with the nonce holds the results:
{"tests": {id: {"outcome", "output"}}, "problems": [...]}. The nonce, unknown to the code under test
until it runs, keeps test output from passing for the results line by accident.
"""

import io
import json
import os
import sys
import traceback


def _clip(text, limit):
    return text if len(text) <= limit else text[:limit // 2] + "\n[... clipped ...]\n" + text[-limit // 2:]


def _evict(own_modules):
    for name in list(sys.modules):
        if name.split(".")[0] in own_modules:
            del sys.modules[name]


def _check_origins(own_modules, root):
    """Own modules that were imported from somewhere other than the workspace (a shadowing problem)."""
    problems = []
    for name in own_modules:
        module = sys.modules.get(name)
        origin = getattr(module, "__file__", None) or ""
        if module is not None and origin and not os.path.realpath(origin).startswith(root + os.sep):
            problems.append(f"module {name} was imported from {origin}, not from the workspace")
    return problems


def run_unittest(targets, own_modules, root, limit):
    import unittest

    tests = {}

    class Recorder(unittest.TestResult):
        def _record(self, test, outcome, err=None):
            text = self._exc_info_to_string(err, test) if err else ""
            previous = tests.get(test.id())
            if previous and previous["outcome"] in ("failed", "error"):  # a failed subtest stays failed
                return
            tests[test.id()] = {"outcome": outcome, "output": _clip(text.replace(root + os.sep, ""), limit)}

        def addSuccess(self, test):
            super().addSuccess(test)
            if test.id() not in tests:
                self._record(test, "passed")

        def addFailure(self, test, err):
            super().addFailure(test, err)
            self._record(test, "failed", err)

        def addError(self, test, err):
            super().addError(test, err)
            self._record(test, "error", err)

        def addSkip(self, test, reason):
            super().addSkip(test, reason)
            self._record(test, "skipped")

        def addExpectedFailure(self, test, err):
            super().addExpectedFailure(test, err)
            self._record(test, "passed")

        def addUnexpectedSuccess(self, test):
            super().addUnexpectedSuccess(test)
            self._record(test, "failed")

        def addSubTest(self, test, subtest, err):
            super().addSubTest(test, subtest, err)
            if err is not None:
                failed = issubclass(err[0], test.failureException)
                self._record(test, "failed" if failed else "error", err)

    suite = unittest.TestSuite()
    for target in targets:
        suite.addTests(unittest.defaultTestLoader.loadTestsFromName(target))
    problems = _check_origins(own_modules, root)
    result = Recorder()
    result.buffer = True  # a test's prints go into its failure text, not onto the results channel
    suite.run(result)
    return tests, problems


def run_pytest(targets, own_modules, root, limit):
    import pytest

    tests = {}

    class Recorder:
        def pytest_runtest_logreport(self, report):
            text = _clip(str(report.longrepr or "").replace(root + os.sep, ""), limit)
            if report.when == "call" or report.outcome != "passed":
                previous = tests.get(report.nodeid)
                if previous and previous["outcome"] != "passed":
                    return
                outcome = {"passed": "passed", "skipped": "skipped"}.get(report.outcome, "failed")
                if report.when != "call" and report.outcome == "failed":
                    outcome = "error"
                tests[report.nodeid] = {"outcome": outcome, "output": text}

        def pytest_collectreport(self, report):
            if report.failed:
                tests[f"{report.nodeid}::<collection>"] = {
                    "outcome": "error", "output": _clip(str(report.longrepr).replace(root + os.sep, ""), limit)}

    args = ["-q", "-p", "no:cacheprovider", "--rootdir", root, "-o", "addopts=", "--capture=sys", *targets]
    with open(os.devnull, "w") as quiet:
        real_stdout, sys.stdout = sys.stdout, quiet
        try:
            pytest.main(args, plugins=[Recorder()])
        finally:
            sys.stdout = real_stdout
    return tests, _check_origins(own_modules, root)


def main():
    settings = json.loads(sys.stdin.read())
    nonce = settings.pop("nonce")
    results_channel = sys.stdout
    root = os.path.realpath(os.getcwd())
    if root not in sys.path:
        sys.path.insert(0, root)
    own = list(settings["own_modules"])
    _evict(own)
    run = run_pytest if settings["framework"] == "pytest" else run_unittest
    try:
        tests, problems = run(settings["targets"], own, root, int(settings["max_output_chars"]))
    except BaseException:  # the runner itself failed: say so on the results line
        buffer = io.StringIO()
        traceback.print_exc(file=buffer)
        tests, problems = {}, ["test runner failed:\n" + buffer.getvalue().replace(root + os.sep, "")]
    results_channel.write("\n" + nonce + json.dumps({"tests": tests, "problems": problems}) + "\n")
    results_channel.flush()


if __name__ == "__main__":
    main()
