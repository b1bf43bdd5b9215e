"""The model proposer: what its prompts carry, diverse candidates, clean replies, on a scripted engine and over
real HTTP (tests/openai_server.py); the whole search runs with a scripted scorer."""

from __future__ import annotations

import re

import pytest
from openai_server import FakeChatServer
from refine_trajectory import APP, APP_FACTS, REQUIREMENTS, UTIL_REPORT, ScriptedScorer, make_trajectory
from retrace_testing import ScriptedEngine

from retrace.refine import (
    ChatProposer,
    HotSpan,
    ProposalRequest,
    RefineArguments,
    build_proposer,
    clean_reply,
    refine_trajectories,
)
from retrace.refine.proposers import load_prompt

ANGLES = [line for line in load_prompt("angles").splitlines() if line.strip() and not line.startswith("#")]


def angle_of(conversation) -> int:
    return next(i for i, angle in enumerate(ANGLES) if angle in conversation[-1]["content"])


# each names something the prompt shows (a sentence that names nothing of it is dropped)
LINES = ["First I settle the imports of {name}.", "Then the running total goes into an Accumulator.",
         "Numbers from the command line become floats before they are added.", "Last, the hypotenuse comes from hypot.",
         "Every helper stays private; only main is public."]


def by_angle(conversation, params) -> str:
    """A rewrite that follows its angle: angle k gives k + 1 lines (the scripted scorer prefers more lines)."""
    path = re.search(r"implement `([^`]+)`|before writing `([^`]+)`", conversation[-1]["content"])
    name = path.group(1) or path.group(2)
    return "\n".join(line.format(name=name) for line in LINES[:angle_of(conversation) + 1])


def search(proposer, **keys):
    args = RefineArguments(refine=True, refine_max_context_tokens=128, **keys)
    scorer = ScriptedScorer()
    out, stats = refine_trajectories([make_trajectory()], args, proposer, scorer)
    return out[0], stats, scorer


def user_prompts(engine: ScriptedEngine) -> list[str]:
    return [conversation[-1]["content"] for conversations, _ in engine.calls for conversation in conversations]


def test_both_thinks_of_a_writing_sub_agent_are_searched_with_what_it_knows():
    engine = ScriptedEngine(by_angle)
    traj, stats, scorer = search(ChatProposer(engine))
    logs = [s.search for s in traj.steps if s.search is not None]
    assert [(log.kind, log.target_path) for log in logs] == [("think", "util.py"), ("think_read", "app.py"),
                                                             ("think", "app.py")]
    # the Think before the Read is scored through the Read, its observation and the next Think, onto app.py
    read_think = scorer.begun[1]
    assert read_think["path"] == "app.py" and '<read path="util.py"/>' in read_think["between"]
    assert read_think["between"].endswith('<write path="app.py">\n') and "<think>\nNow I write `app.py`" in \
        read_think["between"]
    prompts = user_prompts(engine)
    read_prompts = [p for p in prompts if "about to read" in p]
    write_prompts = [p for p in prompts if "just before writing `app.py`" in p]
    assert read_prompts and write_prompts
    for prompt in read_prompts + write_prompts:
        assert REQUIREMENTS in prompt
        assert "2. app.py: Command line entry point that sums its arguments. (needs util.py)" in prompt
        assert f"- `util.py`: {UTIL_REPORT}" in prompt  # what the sub-agent read: its author's report
        assert "def main(argv): Sum the numbers given" in prompt  # the grounding facts
        assert "acc = Accumulator()" not in prompt and "acc.add(float(arg))" not in prompt  # never the code
    assert "`app.py` builds on `util.py`; I read it first." in read_prompts[0]  # the incumbent
    assert "Now I write `app.py`: the entry point." in write_prompts[0]
    assert "Rewrite this reasoning" in prompts[0] and "no code" in prompts[0]
    assert stats.summary.accepted > 0


def test_candidates_of_a_request_take_different_angles_and_differ():
    engine = ScriptedEngine(by_angle)  # greedy: only the prompt can make two candidates differ
    traj, _, _ = search(ChatProposer(engine, seed=3), refine_iterations=2)
    conversations, params = engine.calls[0]
    assert len(conversations) == 2 and params.n == 1 and params.temperature == 0.0 and params.seed == 1003
    assert [angle_of(c) for c in conversations] == [0, 1]
    assert [angle_of(c) for c in engine.calls[1][0]] == [2, 3]  # the next iteration: new angles
    assert engine.calls[1][1].seed == 2003
    log = traj.steps[3].search
    texts = [c.text for c in log.candidates]
    assert len(texts) == 4 and len(set(texts)) == 4
    assert [c.iteration for c in log.candidates] == [0, 0, 1, 1]


def test_duplicate_and_unusable_replies_are_dropped_and_counted():
    replies = iter(["The running total of the numbers goes into an Accumulator.", "The running total of the numbers goes into an Accumulator.",
                    "```python\nx = 1\n```", "<think>I should be careful"] * 20)
    proposer = ChatProposer(ScriptedEngine(lambda conversation, params: next(replies)))
    request = ProposalRequest("calc", "app.py", "Now I write it.", "Now I write it.", APP_FACTS, 0, 4)
    assert proposer.propose([request]) == [["The running total of the numbers goes into an Accumulator."]]
    assert proposer.counts["duplicate"] == 1 and proposer.counts["unusable:code_block"] == 1
    assert proposer.counts["unusable:scratchpad"] == 1 and proposer.counts["proposed"] == 1
    tried = ProposalRequest("calc", "app.py", "x", "x", APP_FACTS, 0, 2,
                            tried={"The running total of the numbers goes into an Accumulator."})
    assert proposer.propose([tried]) == [[]]


def test_surprisal_guidance_shows_the_hardest_lines():
    engine = ScriptedEngine(by_angle)
    request = ProposalRequest("calc", "app.py", "Now I write it.", "Now I write it.", APP_FACTS, 0, 1,
                              hot_spans=[HotSpan(11, "acc.add(float(arg))", 7.5)])
    ChatProposer(engine).propose([request])
    [prompt] = user_prompts(engine)
    assert "hardest to anticipate" in prompt and "- line 11: acc.add(float(arg))" in prompt
    plain = ScriptedEngine(by_angle)
    ChatProposer(plain).propose([ProposalRequest("calc", "app.py", "a", "a", APP_FACTS, 0, 1)])
    assert "hardest" not in user_prompts(plain)[0]


@pytest.mark.parametrize(("reply", "finish", "expected", "problem"), [
    ("<think>Let me plan this.</think>\nI start with the parser, then the writer.", "stop",
     "I start with the parser, then the writer.", None),
    ("Let me plan.</think>I start with the parser, then the writer.", "stop",
     "I start with the parser, then the writer.", None),
    ("<think>Still thinking about the parser and the", "length", "", "scratchpad"),
    ("Here is the rewritten reasoning:\nI start with the parser of the headers. Then the writer, which", "length",
     "I start with the parser of the headers.", None),
    ("I start with the parser of the headers. It reads the first line, then the", "stop",
     "I start with the parser of the headers.", None),
    ("First the parser:\n```python\ndef parse(): ...\n```", "stop", "", "code_block"),
    ("I write <write path=\"a.py\"> next, then the tests.", "stop", "", "markup"),
    ("Fine.", "stop", "", "too_short"),
    # the chat's voice instead of the engineer's (SmolLM2's rewrites of validate.py and handlers.py, 2026-12-03)
    ("Sure, I can re-write the reasoning to explain how you will implement validate.py in 3-8 sentences.", "stop",
     "", "restates_prompt"),
    ("The plan is to rewrite the script to use a single file for the server and the gateway.", "stop", "",
     "restates_prompt"),
    ("I check servers against the WSGI specification: validate.py wraps the application.", "stop",
     "I check servers against the WSGI specification: validate.py wraps the application.", None),
    # chat formatting (SmolLM2's rewrites of headers.py and thread.py): the rule and bold markers go
    ("---\n\n**Plan.** I start with the parser of the `__init__` headers.", "stop",
     "I start with the parser of the `__init__` headers.", None),  # "Plan." is a fragment
    ("no sentence ever ends here because the model ran out of tokens before", "length", "", "truncated"),
    # SmolLM2's accepted rewrites in a replication run (2026-12-03): the chat's preamble and voice, a heading,
    # the prompt's outline as a list, a numbered list with a signature
    ("Here's a rewritten version of the original passage with a clear and concise explanation:\n\nIn the "
     "project's nits, you'll need to write a new file, process.py, which defines ProcessPoolExecutor.", "stop", "",
     "restates_prompt"),
    ("Explanation:\n\nI start with the parser of the headers, then the writer.", "stop",
     "I start with the parser of the headers, then the writer.", None),
    ("So you said that the two files to be read in `headers.py` are the parser and the writer.", "stop", "",
     "restates_prompt"),
    ("What I import:\n- from outside the repository: `collections`, `logging`\n- class Future(Exception): Base "
     "class.", "stop", "", "list"),
    ("1. Server.py: a simple XML-RPC server.\n2. def list_public_methods(obj): Returns a list.", "stop", "", "list"),
    # SmolLM2's proposals in the quickstart (2026-12-03): fragments only, talk about the original or its length
    ("project\n\nfeature\n\n#Preliminaries\n\n#1.\n\n#2.\n\n#3.\n\n#", "length", "", "too_short"),
    ("The original reasoning is a bit verbose and can be clarified with clear explanation.", "stop", "",
     "restates_prompt"),
    ("The plan is to create a module with a Python package. This carefully crafted explanation is the only output "
     "of the last message.", "stop", "", "restates_prompt"),
    ("The first sentence explains that this action is written in 2 to 8 sentences.", "stop", "", "restates_prompt"),
    ("I explain my reasoning in a clear and concise style, without writing code, in a single sentence.", "stop", "",
     "restates_prompt"),
    # the chat talking to its user, anywhere in the reply; a quoted name may hold the word
    ("The files are few. When you're building `concurrent.py`, the first part of the file is the imports.", "stop",
     "", "second_person"),
    # the rewriting task said back (SmolLM2's accepted rewrite of futures/_base.py, quickstart 2026-12-04)
    ("The plan is to rewrite the file to create a custom class that manages the future state.", "stop", "",
     "restates_prompt"),
    # a phrase said twice in one sentence (SmolLM2 on commander, 2026-12-04)
    ("I write the option parser option parser first, since the help text reads it.", "stop", "", "repetition"),
    # a template said again with other names, and the work called "the task" (SmolLM2, quickstart 2026-12-04)
    ("I add the waiters. This class is not defined, so I created a class InvalidStateError to be defined. This "
     "class is not defined, so I created a class _Waiter in the base class.", "stop", "", "repetition"),
    ("The task involves creating the futures file from the base classes and the waiters.", "stop", "",
     "restates_prompt"),
    ("I set `you_know` first, then the handlers read it.", "stop", "I set `you_know` first, then the handlers read it.",
     None),
])
def test_replies_are_cleaned(reply, finish, expected, problem):
    cleaned = clean_reply(reply, finish)
    assert (cleaned.text, cleaned.problem) == (expected, problem)


def test_restated_instructions_loops_and_unfenced_code_are_dropped():
    instructions = ChatProposer(ScriptedEngine(by_angle)).instructions
    restated = "Rewrite this reasoning so that it explains how to implement `__init__.py` for the module."
    assert clean_reply(restated, "stop", instructions=instructions).problem == "restates_prompt"
    kept = clean_reply(f"{restated} I re-export the names of the modules below it.", "stop", instructions=instructions)
    assert (kept.text, kept.dropped) == ("I re-export the names of the modules below it.", 1)
    assert clean_reply("The code is not shown to you here. " * 4, "length").problem == "repetition"
    once = ("I parse the header first, line by line. The body follows once the blank line is seen, and errors "
            "stop the loop. Each value is decoded before it is stored.")
    repeated = clean_reply(f"{once}\nI parse the header first, line by line.", "stop")
    assert (repeated.text, repeated.dropped) == (once, 1)
    assert clean_reply("def parse(data):\n    return data.split()\nresult = parse(text)", "stop").problem == "code"


def test_plan_replies_keep_their_lines():
    reply = "1. util.py: numeric helpers\n2. app.py: the command line sum"
    assert clean_reply(reply, "stop", prose=False).text == reply


def test_the_proposer_over_http_sees_the_context_and_its_replies_are_cleaned():
    seen = []

    def reply(body):
        seen.append(body)
        k = angle_of(body["messages"])
        if k == 1:
            return "```python\nprint('code')\n```"  # angle 1 comes once per Think (iteration 0)
        return (f"<think>scratch {k}</think>I read the Accumulator the earlier file gives me.\n"
                f"Then angle {k} shapes how the total is summed.")

    with FakeChatServer(reply=reply) as server:
        args = RefineArguments(proposer_backend="openai", proposer_base_url=server.base_url,
                               proposer_model=server.model, proposer_api_key_env="")
        proposer = build_proposer(args, seed=0)
        traj, stats, _ = search(proposer)
    assert isinstance(proposer, ChatProposer) and proposer.name == "openai"
    assert len(seen) == 3 * 3 * 2  # 3 Thinks x 3 iterations x 2 candidates, one conversation each
    user = [body["messages"][-1]["content"] for body in seen]
    assert all(REQUIREMENTS in u and "Rewrite this reasoning" in u for u in user)
    assert any("about to read" in u and "(needs util.py)" in u for u in user)
    assert not any(line.strip() in u for u in user for line in APP.splitlines()[9:] if len(line.strip()) > 12)
    candidates = [c.text for s in traj.steps if s.search for c in s.search.candidates]
    assert candidates and not any("<think>" in c or "scratch" in c or "```" in c for c in candidates)
    assert proposer.counts["unusable:code_block"] == 3 and stats.summary.accepted > 0
    assert proposer.usage["proposer:proposed"] == proposer.counts["proposed"]


def test_a_proposal_loses_sentences_that_name_nothing_the_prompt_shows_or_repeat_a_phrase():
    """SmolLM2's accepted rewrite of wsgiref's __init__.py (quickstart, 2026-12-04) said "A simple WSGI (PEP
    3333) Server" twice with "This is where the magic happens." between: only the first sentence carries
    anything."""
    from retrace.data.text_checks import grounding_terms

    prompt = "Requirements: a WSGI (PEP 3333) reference library with a simple server.\nRewrite this reasoning."
    grounding = grounding_terms(prompt, "Rewrite this reasoning.", ("wsgiref", "__init__.py"))
    reply = ("To write __init__.py, I'll start by creating a simple WSGI (PEP 3333) Server. This is where the magic "
             "happens. A simple WSGI (PEP 3333) Server is created using the module.")
    cleaned = clean_reply(reply, "stop", grounding=grounding)
    assert (cleaned.text, cleaned.problem, cleaned.dropped) == (
        "To write __init__.py, I'll start by creating a simple WSGI (PEP 3333) Server.", None, 2)
    assert clean_reply("This is where the magic happens. It all works out.", "stop",
                       grounding=grounding).problem == "restates_prompt"


def test_a_proposal_loses_sentences_made_mostly_of_words_the_prompt_never_showed():
    """SmolLM2's accepted rewrite of concurrent's one-line __init__.py (quickstart, 2026-12-05) fumbled with a
    question mark: a sentence that names one shown term among eight of its own."""
    from retrace.data.text_checks import grounding_terms, known_terms

    instructions, names = "Rewrite this reasoning.", ("concurrent", "__init__.py")
    prompt = f"Facts: __init__.py holds module-level definitions only (1 line).\n{instructions}"
    grounding, known = grounding_terms(prompt, instructions, names), known_terms(instructions, names)
    kept = "To write __init__.py, I keep its module-level definitions on one line."
    reply = (f"{kept} I first fumble with the file, but instead of listing the definitions I use a question mark "
             "to indicate that I need them.")
    cleaned = clean_reply(reply, "stop", grounding=grounding, known=known)
    assert (cleaned.text, cleaned.problem, cleaned.dropped) == (kept, None, 1)
    # a sentence in the model's own words that names what the prompt shows stays
    own = f"{kept} Each definition stays module-level, so importing __init__.py runs that line only."
    assert clean_reply(own, "stop", grounding=grounding, known=known).text == own


def test_the_plan_entrys_words_support_no_sentence_of_a_proposal():
    """A sentence of its plan entry's words and words nowhere shown says nothing new: dropped as unsupported."""
    vague = "I want a clever command line entry point that sums arguments, in a nice clean elegant style somehow."
    grounded = "The running total of the numbers goes into an Accumulator."
    proposer = ChatProposer(ScriptedEngine(lambda conversation, params: f"{grounded} {vague}"))
    ask = ProposalRequest("calc", "app.py", "Now I write it.", "Now I write it.", APP_FACTS, 0, 1)
    assert proposer.propose([ask]) == [[f"{grounded} {vague}"]]
    entry = "2. app.py: command line entry point that sums its arguments."
    assert proposer.propose([ProposalRequest("calc", "app.py", "Now I write it.", "Now I write it.", APP_FACTS, 0,
                                             1, plan_entry=entry)]) == [[grounded]]


def test_a_prefilled_proposer_continues_each_thinks_opener():
    """`refine_prefill_opener`: every rewrite starts as the policy's Thinks do, and the engine continues it (a
    rewrite of the Think before the Reads that no longer says why it reads was SmolLM2's, quickstart
    2026-12-05)."""

    def continuation(conversation, params):
        assert conversation[-2]["role"] == "user" and conversation[-1]["role"] == "assistant"
        return " the running total goes into an Accumulator from util.py."

    engine = ScriptedEngine(continuation)
    proposer = build_proposer(RefineArguments(refine=True, refine_prefill_opener=True), engine=engine)
    traj, _, _ = search(proposer)
    openers = {c[-1]["content"] for conversations, _ in engine.calls for c in conversations}
    assert openers == {"To write util.py, I", "I read util.py first because", "To write app.py, I"}
    texts = {c.text for s in traj.steps if s.search for c in s.search.candidates}
    assert "I read util.py first because the running total goes into an Accumulator from util.py." in texts
    assert all(text.startswith(("To write util.py, I ", "I read util.py first because ", "To write app.py, I "))
               for text in texts)
