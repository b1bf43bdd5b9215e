"""Reading a proposer's plan reply into the Plan record, the proposers' plan rewrites, and the structural
proposer's depth: pure logic, no model."""

from __future__ import annotations

import pytest
from refine_trajectory import APP_FACTS, PLAN, PLAN_RECORD, UTIL_FACTS, make_trajectory
from retrace_testing import ScriptedEngine

from retrace.data import trajectory_to_document
from retrace.refine import (
    ChatProposer,
    PlanRequest,
    ProposalRequest,
    RefineArguments,
    StructuralProposer,
    apply_reply,
    plan_block,
    reply_descriptions,
)

ORDER = ["util.py", "app.py"]
FACTS = {"util.py": UTIL_FACTS, "app.py": APP_FACTS}


def entries(plan: str) -> list[str]:
    """The file list as tests/agents/test_simulate.py reads it: every line after the header."""
    return [line.split(". ", 1)[1].split(":", 1)[0] for line in plan.splitlines()[1:]]


def plan_request(incumbent: str = PLAN, tried=(), n: int = 2, iteration: int = 0) -> PlanRequest:
    return PlanRequest("calc", "A tiny calculator.", apply_reply(PLAN_RECORD, incumbent), PLAN, FACTS, iteration, n,
                       set(tried))


def test_a_reply_changes_only_the_descriptions_of_the_record():
    assert PLAN_RECORD.render() == PLAN and PLAN_RECORD.paths == ORDER
    reply = ("Here is the plan:\n2. `app.py`: reads numbers and prints the sum (needs util.py)\n"
             "3. extra.py: a file that is not in the graph\n1. util.py - keeps a total\n"
             "1. util.py: a second line for the same file is ignored\n0. setup.py: nope")
    assert reply_descriptions(PLAN_RECORD, reply) == {"util.py": "keeps a total",
                                                      "app.py": "reads numbers and prints the sum"}
    rendered = apply_reply(PLAN_RECORD, reply)
    assert rendered.paths == ORDER and rendered.entries[1].needs == ("util.py",)  # the graph's, untouched
    assert rendered.render().splitlines() == [PLAN_RECORD.header, "1. util.py: keeps a total",
                                              "2. app.py: reads numbers and prints the sum (needs util.py)"]
    # code or markup in a description is dropped (the incumbent's stays); a file left out keeps its own
    assert apply_reply(PLAN_RECORD, "1. util.py: ```x = 1```\n") == PLAN_RECORD
    assert apply_reply(PLAN_RECORD, "2. app.py: see </plan> here") == PLAN_RECORD
    long = apply_reply(PLAN_RECORD, "1. util.py: " + "word " * 200).render().splitlines()[1]
    assert long.startswith("1. util.py: word word") and len(long) < 260


def test_plan_block_matches_the_document_markup():
    [segment] = [s.text for s in trajectory_to_document(make_trajectory()).segments if s.kind == "plan"]
    assert segment == plan_block(PLAN)


def test_structural_plan_variants_are_grounded_deterministic_and_keep_the_files():
    proposer = StructuralProposer()
    request = plan_request()
    every = proposer.propose_plans([plan_request(n=100)])[0]
    assert every == proposer.propose_plans([plan_request(n=100)])[0] and len(every) >= 20
    for text in every:
        assert entries(text) == ORDER and text.splitlines()[0] == PLAN.splitlines()[0]
        assert text.endswith("(needs util.py)")
        assert "self.total" not in text and "math.sqrt(a" not in text  # facts only, never bodies
    first = proposer.propose_plans([request])[0]
    assert first[0].splitlines()[1] == "1. util.py: Small numeric helpers; provides `Accumulator`, `hypot`"
    # built on an accepted incumbent, a clause it has is not proposed again
    later = proposer.propose_plans([plan_request(first[0], n=100)])[0]
    assert later and all(t.count("; provides ") == 2 for t in later if "; provides " in t)
    assert not any(t.count("provides") > 2 for t in later)


def test_structural_proposers_still_propose_at_the_third_iteration():
    """3 iterations x 2 candidates: new candidates remain whether or not earlier ones were accepted."""
    proposer = StructuralProposer()
    for accept in (False, True):
        think = ProposalRequest("calc", "util.py", "Now I write `util.py`.", "Now I write `util.py`.", UTIL_FACTS, 0, 2)
        plan = plan_request()
        for iteration in range(3):
            think.iteration = plan.iteration = iteration
            [proposed], [planned] = proposer.propose([think]), proposer.propose_plans([plan])
            assert len(proposed) == 2 and len(planned) == 2, (accept, iteration)
            think.tried |= set(proposed)
            plan.tried |= set(planned)
            if accept:
                think.incumbent = proposed[0]
                plan = plan_request(planned[0], tried=plan.tried)


def test_chat_proposer_rewrites_plans_from_facts_through_the_skeleton():
    words = iter(["1. util.py: numeric helpers with a running total\n2. app.py: the command line sum\n3. x.py: y",
                  "```python\nprint(1)\n```"])
    backend = ScriptedEngine(lambda conversation, params: next(words), temperature=0.7)
    [out] = ChatProposer(backend).propose_plans([plan_request()])
    assert len(out) == 1  # the code-block reply is unusable
    rendered = apply_reply(PLAN_RECORD, out[0]).render()
    assert entries(rendered) == ORDER and rendered.endswith("2. app.py: the command line sum (needs util.py)")
    [(conversations, params)] = backend.calls
    assert len(conversations) == 1 and params.n == plan_request().n
    system, user = conversations[0]
    assert "plans" in system["content"] and "never code" in system["content"]
    assert PLAN in user["content"] and "A tiny calculator." in user["content"]
    assert "defines Accumulator, hypot" in user["content"] and "self.total" not in user["content"]


def test_plan_arguments_are_checked():
    assert RefineArguments().refine_plan is False
    for key in ("refine_plan_target_files", "refine_plan_target_tokens", "refine_plan_window_tokens"):
        with pytest.raises(ValueError, match=key):
            RefineArguments(**{key: 0})
