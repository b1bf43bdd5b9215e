"""The leakage guard, the structural proposer and the recipe arguments: pure logic, no model (the chat
proposer: test_chat_proposer.py)."""

from __future__ import annotations

import pytest
from refine_trajectory import APP, APP_FACTS, UTIL, UTIL_FACTS, make_trajectory
from retrace_testing import ScriptedEngine

from retrace.data import Definition, Grounding, trajectory_to_document
from retrace.llm import RequestsFailed
from retrace.refine import (
    ChatProposer,
    HotSpan,
    LeakGuard,
    ProposalRequest,
    RefineArguments,
    StructuralProposer,
    build_proposer,
)
from retrace.refine.step_scorer import think_block


def test_guard_catches_pasted_code_and_copied_lines():
    guard = LeakGuard(UTIL)
    assert guard.check("I write it:\n" + UTIL).reason == "ngram"
    lines = "Plan:\nself.total += value\nreturn math.sqrt(a * a + b * b)\nthen done"
    assert guard.check(lines, UTIL_FACTS).reason == "lines"  # short lines, no 12-word run, mostly copied


def test_guard_allows_facts_and_prose():
    guard = LeakGuard(UTIL)
    request = ProposalRequest("calc", "util.py", "Now I write `util.py`.", "Now I write `util.py`.", UTIL_FACTS,
                              0, 10)
    for text in StructuralProposer().candidates(request):
        assert not guard.check(text, UTIL_FACTS).leaked, text
    # A long docstring sentence is a fact: allowed with facts, a 12-word copy without them.
    doc = "- def add(self, value): Add one value to the running total and return the new total."
    assert not guard.check(doc, UTIL_FACTS).leaked
    assert LeakGuard(UTIL, ngram=8).check(doc).reason == "ngram"


def test_structural_proposer_is_deterministic_grounded_and_builds_on_the_incumbent():
    proposer = StructuralProposer()
    request = ProposalRequest("calc", "app.py", "Now I write `app.py`.", "Now I write `app.py`.", APP_FACTS, 0, 2)
    first = proposer.propose([request])[0]
    assert first == proposer.propose([request])[0] and len(first) == 2
    assert all(text.startswith("Now I write `app.py`.") for text in first)
    assert "def main(argv)" in first[0] and "`util.py`" in "".join(proposer.candidates(request))
    later = ProposalRequest("calc", "app.py", first[0], request.original, APP_FACTS, 1, 2, tried={first[1]})
    second = proposer.propose([later])[0]
    assert second and all(text.startswith(first[0]) for text in second[:1]) and first[1] not in second
    hot = ProposalRequest("calc", "util.py", "x", "x", UTIL_FACTS, 0, 1, hot_spans=[HotSpan(19, "...", 9.0)])
    assert "`def hypot(a, b)`, near line 19" in proposer.propose([hot])[0][0]


def scripted(replies: list) -> ScriptedEngine:
    """The model's words in turn (None: a request that failed for good)."""
    words = iter(replies * 10)
    return ScriptedEngine(lambda conversation, params: next(words), temperature=0.7)


def test_a_failed_proposer_request_stops_the_search_naming_the_server():
    backend = scripted([None])
    proposer = ChatProposer(backend)
    request = ProposalRequest("calc", "app.py", "a", "a", APP_FACTS, 0, 2)
    with pytest.raises(RequestsFailed, match="proposer: 2 of 2 requests .* failed after retries"):
        proposer.propose([request])  # a Think left unsearched for a dead server would be degraded data
    assert proposer.usage["failed:scripted"] == 2 and not proposer.counts["proposed"]


def test_builder_and_arguments():
    assert isinstance(build_proposer(RefineArguments()), StructuralProposer)
    assert isinstance(build_proposer(RefineArguments(proposer_backend="openai"), engine=scripted(["x"])),
                      ChatProposer)
    with pytest.raises(ValueError, match="key 'proposer_backend': unknown engine 'nope'"):
        RefineArguments(proposer_backend="nope")
    with pytest.raises(ValueError, match="key 'scorer_backend': 'structural'"):
        RefineArguments(scorer_backend="structural")
    with pytest.raises(ValueError, match="key 'scorer_temperature'"):
        RefineArguments(scorer_temperature=0.5)
    with pytest.raises(ValueError, match="refine_iterations"):
        RefineArguments(refine_iterations=0)


def test_think_block_matches_the_document_markup():
    doc = trajectory_to_document(make_trajectory())
    thinks = [s.text for s in doc.segments if s.kind == "think"]
    assert thinks[0] == think_block("Now I write `util.py`: small numeric helpers.")
    assert think_block("a\n") == think_block("a")
    assert APP and UTIL


def test_guard_exempts_bare_signatures_and_what_the_original_said():
    payload = "class Cookie:\n    def __init__(self, version, name, value, port, port_specified, domain, domain_specified,\n" \
              "                 domain_initial_dot, path, path_specified, secure, expires, discard):\n        pass\n"
    facts = Grounding("cookies.py", definitions=[Definition(
        "method", "__init__", "def __init__(self, version, name, value, port, port_specified, domain, "
        "domain_specified, domain_initial_dot, path, path_specified, secure, expires, discard)", "", 2, "Cookie")])
    think = "methods: __init__(self, version, name, value, port, port_specified, domain, domain_specified, " \
            "domain_initial_dot, path, path_specified, secure, expires, discard)"
    guard = LeakGuard(payload)
    assert guard.check(think).leaked and not guard.check(think, facts).leaked
    prose = "A handler for logging to a set of files, which switches from one file to the next one"
    logged = LeakGuard("class H:\n    '''Handler for logging to a set of files, which switches from one file to the"
                       " next one when full.'''\n")
    assert logged.check(prose + "\nMore.").leaked
    assert not logged.check(prose + "\nMore.", allowed=prose).leaked


def test_guard_catches_one_long_payload_line_quoted_in_prose():
    """SmolLM2, shown wsgiref/validate.py's hardest lines, quoted one; 11 words and one line passed both rules."""
    payload = ("# (c) 2005 Ian Bicking and contributors; written for Paste (http://pythonpaste.org)\n"
               "import re\nimport sys\n")
    quoted = ("- line 2: # (c) 2005 Ian Bicking and contributors; written for Paste (http://pythonpaste.org)\n\n"
              "The first sentence explains that this action is about the implementation of a behavior.")
    guard = LeakGuard(payload)
    assert guard.check(quoted).reason == "span"
    assert not guard.check(quoted, allowed=quoted).leaked  # the original Think said it: nothing new copied
    assert not guard.check("I import re and sys, then check the environ dict the server passes.").leaked
