"""Reply validation: restated instructions, replies cut by the token limit, loops and `<think>` scratchpads.

The faulty replies are ones SmolLM2-135M wrote for the standard library's wsgiref, json and http (issue 13);
the grounded ones name the file's definitions and dependencies, as a policy's text must, and pass.
"""

from __future__ import annotations

import pytest

from retrace.agents.policies import PolicyRequest, load_prompt
from retrace.agents.structural import DELEGATION_FRAMING
from retrace.agents.validation import check_reply, instruction_text, review_reply

SYSTEM = load_prompt("system").strip()
TYPES_FACTS = "Classes: StartResponse(Protocol), InputStream(Protocol), ErrorStream(Protocol), FileWrapper(Protocol)"
WSGIREF_FILES = "Files: headers.py, util.py, handlers.py, simple_server.py, validate.py, types.py"
# the start of the standard library's wsgiref/types.py, as the Think before its Write is shown it
TYPES_CODE = '''"""WSGI-related types for static type checking"""

from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, Protocol, TypeAlias

__all__ = ["StartResponse", "WSGIEnvironment", "WSGIApplication", "InputStream", "ErrorStream", "FileWrapper"]

class StartResponse(Protocol):
    """start_response() callable as defined in PEP 3333"""'''


def instructions(kind: str) -> str:
    return instruction_text(load_prompt(kind), SYSTEM)


def request(kind: str = "think_write", path: str = "types.py", anchors: tuple[str, ...] = ("types", "StartResponse",
                                                                                        "InputStream", "headers"),
            echo_of: str = "", sentences: int = 0):
    fields = {"repo": "wsgiref", "languages": "Python", "path": path, "deps": "headers.py and util.py",
              "requirements": "A WSGI reference library.", "delegation": "Implement types.py: WSGI-related types.",
              "number": "3", "total": "7", "plan": "3. types.py: WSGI-related types.", "after": "", "audience": "",
              "read": "It needs no other file of the project.", "facts": f"{TYPES_FACTS}\n{WSGIREF_FILES}", "code": TYPES_CODE}
    template = load_prompt(kind)  # as the simulation fills them: only the template's own placeholders
    fields = {key: value for key, value in fields.items() if f"{{{key}}}" in template}
    return PolicyRequest(kind, fields, "structural", anchors=list(anchors), framing=DELEGATION_FRAMING,
                         echo_of=echo_of, sentences=sentences)


def review(text: str, kind: str = "think_write", finish_reason: str | None = "stop", judged: bool = True,
           **request_keys):
    """`review_reply` as the policy calls it; `judged=False`: without the instructions, so that neither
    restatement nor information is judged."""
    req = request(kind, **request_keys)
    prompt = load_prompt(kind).format(**req.fields).strip()
    return review_reply(text, req, prompt, instructions=instructions(kind) if judged else "",
                        finish_reason=finish_reason)


GROUNDED = [
    ("think_write", "I will implement types.py as four typing Protocols: StartResponse first, then InputStream and "
                    "ErrorStream, and FileWrapper last, since it takes a _Readable. They only use collections, types "
                    "and typing, so no file of the project is needed."),
    ("think_write", "types.py holds the WSGI types for static checking. StartResponse describes the start_response() "
                    "callable of PEP 3333, and InputStream the wsgi.input stream with read, readline and readlines."),
    # answers the instruction in its own words ("main pieces", "in order", "depends on"), with the file's facts
    ("think_write", "The main pieces of types.py, in order: StartResponse, InputStream, ErrorStream, then "
                    "FileWrapper, which uses _Readable; it depends on no file of the project, only on typing."),
    ("think_read", "I need to read headers.py and util.py before writing handlers.py, because BaseHandler builds "
                   "its response with Headers and calls guess_scheme and is_hop_by_hop from util.py."),
    ("think_read", "I need to read the headers.py and util.py files before writing handlers."),
    ("requirements", "The project wsgiref must provide a reference WSGI server, handlers and validation. headers.py "
                     "and util.py come first; handlers.py builds on them and simple_server.py serves an application."),
]


@pytest.mark.parametrize("kind,text", GROUNDED)
def test_grounded_replies_that_use_the_files_names_and_facts_pass(kind, text):
    verdict = review(text, kind)
    assert (verdict.reason, verdict.text, verdict.repairs) == (None, text, ())


@pytest.mark.parametrize("text", [
    # SmolLM2's whole Think of types.py: the instruction, one comma dropped
    'Think aloud in two sentences, starting with "To write types.py, I".',
    # paraphrased, the file's name filled in: it says nothing the instruction did not
    "I will think aloud about types.py in two sentences.",
    # the prompt's role line, restated (SmolLM2's futures/process.py)
    'You\'re writing types.py in the Python project "wsgiref".',
    # quoting the instruction (SmolLM2's package.json)
    'To write types.py, I write a JSON file. The file starts with a line that says "To write types.py, I".',
    # talking about the task's numbering (SmolLM2's futures/process.py)
    "To plan entry 3 of 7, I'll provide a step-by-step guide on how to write types.py.",
    # talking about its own length (SmolLM2's requirements of concurrent)
    "To meet the requirements of types.py in 2 sentences, I added a few extra requirements to StartResponse.",
    # the instruction's opening, quoted (SmolLM2: 'I read _base.py before writing thread.py, starting with "I read"')
    'To write types.py, I begin, starting with "To write types.py, I" as the task says.',
    # the system prompt restated
    "As a senior software engineer reconstructing how this code base was developed, I look at types.py.",
    # the prompt's voice passed on (SmolLM2's simple_server.py and scanner.py, 2026-12-03)
    'You\'re writing types.py in the Python project "wsgiref_2.3.3" using the Python WSGI protocol StartResponse.',
    "To write types.py, you need to implement a StartResponse protocol that takes the status and headers.",
    # a chat preamble that answers the prompt instead of speaking (SmolLM2's decoder.py, 2026-12-03)
    'Here\'s a possible response to the above question: "I read types.py first for its StartResponse protocol.',
    # the chat's framing reported (SmolLM2's commander index.js, 2026-12-03)
    'The user has mentioned "I read types.py before" for the StartResponse protocol.',
    # the user's file, and the system prompt's words on style said back (SmolLM2's commander lib/argument.js
    # and lib/help.js, 2026-12-03)
    "To write types.py, I will take a look at your types.py and build StartResponse from it.",
    # a chat preamble and the chat's addressee (SmolLM2's commander lib/argument.js and index.js, 2026-12-03)
    "Here's a breakdown of types.py's job: it defines StartResponse and InputStream for WSGI servers.",
    "The code you're referring to is the StartResponse protocol in types.py.",
    "To write types.py, I will propose a StartResponse protocol that does not require any code.",
])
def test_restated_instructions_are_caught_fuzzily(text):
    assert review(text).reason == "restates_prompt"


@pytest.mark.parametrize("text", [
    "types.py comes next. I'm thinking aloud about why I read these before writing handlers.",  # inflected
    # most of the instruction, whatever is added (as SmolLM2 wrote for server.py)
    "When in one sentence, think aloud about why you read them before writing server.py, but when you do it, you do "
    "so with a mix of imagination and exact code.",
])
def test_restatement_of_the_think_read_instruction_is_caught(text):
    assert review(text, "think_read").reason == "restates_prompt"


@pytest.mark.parametrize("text", [
    # the delegation handed back (SmolLM2's typings/esm.d.mts of commander, 2026-12-03): "already written; read
    # them first" is the main agent's instruction, not the sub-agent's reason
    "I read the `headers.py` and `util.py` first, and they're already written.",
    "I read headers.py and util.py first: they are already written and I build on them.",
])
def test_a_think_that_hands_its_delegation_back_says_nothing(text):
    assert review(text, "think_read").reason == "restates_prompt"


@pytest.mark.parametrize("kind,text,kept,repair", [
    # the third sentence of SmolLM2's requirements of concurrent (quickstart, 2026-12-04): orders about a
    # file the prompt never showed
    ("think_write", "types.py declares StartResponse. It wraps the stream in InputStream. To create the temporary "
                    "file, one needs to run Python's built-in concurrent module.",
     "types.py declares StartResponse. It wraps the stream in InputStream.", "uninformative_dropped"),
    # the system prompt's words on style (SmolLM2 on commander, 2026-12-03), then an answer
    ("think_write", "To write types.py, I will first document myself in plain English. StartResponse is a Protocol.",
     "StartResponse is a Protocol.", "chat_voice_dropped"),
    # content-free sentences (SmolLM2, quickstart 2026-12-04): nothing the prompt showed is named
    ("think_write", "To write types.py, I declare StartResponse first. The code meets the requirements.",
     "To write types.py, I declare StartResponse first.", "uninformative_dropped"),
    ("think_write", "To write types.py, I start with a TypeAlias for WSGIEnvironment. This is where the magic happens.",
     "To write types.py, I start with a TypeAlias for WSGIEnvironment.", "uninformative_dropped"),
    # the prompt's view of the file, not the file (SmolLM2 on commander, 2026-12-04)
    ("think_write", "The first 5 lines of the types.py file are a docstring and imports. StartResponse comes first.",
     "StartResponse comes first.", "prompt_talk_dropped"),
    # the view of the file and a sentence that names nothing new (SmolLM2's futures/process.py, quickstart
    # 2026-12-04: "This line is a single line of code that defines a class named ProcessPoolExecutor.")
    ("think_write", "This line of code defines StartResponse as a Protocol. StartResponse is what handlers.py "
                    "calls to start a response.", "StartResponse is what handlers.py calls to start a response.",
     "prompt_talk_dropped"),
    ("think_write", "To write types.py, I declare StartResponse as a Protocol. The Protocol StartResponse is "
                    "declared in types.py.", "To write types.py, I declare StartResponse as a Protocol.",
     "said_again_dropped"),
    # its plan entry, said back after an answer (SmolLM2's json __init__.py, quickstart 2026-12-04)
    ("think_write", "To write types.py, I type the start_response() callable first. These are the WSGI-specific "
                    "types for handling HTTP requests.", "To write types.py, I type the start_response() callable "
                    "first.", "plan_copied_dropped"),
    # two terms, both the plan entry's (SmolLM2's futures/thread.py, quickstart 2026-12-05: "I'll need to
    # implement a thread pool for concurrent execution." after the entry said just that)
    ("think_write", "To write types.py, I'll need WSGI-specific types. StartResponse types the start_response() "
                    "callable.", "StartResponse types the start_response() callable.", "plan_copied_dropped"),
    # the prompt's parts taken for the code's (SmolLM2 in the quickstart, 2026-12-05)
    ("think_write", "StartResponse types the start_response() callable. The code is in the `InputStream` section.",
     "StartResponse types the start_response() callable.", "prompt_talk_dropped"),
    ("think_write", "StartResponse types the start_response() callable. I'll focus on the section on InputStream.",
     "StartResponse types the start_response() callable.", "prompt_talk_dropped"),
    # narrating the note to its readers (SmolLM2's futures/_base.py, quickstart 2026-12-05)
    ("think_write", "StartResponse types the start_response() callable. I'll mention the possibility of a "
                    "TracebackType to the readers of the file.", "StartResponse types the start_response() "
                    "callable.", "chat_voice_dropped"),
    # an instruction said back after the answer
    ("think_read", "The server needs StartResponse. Think aloud about why you read them before writing the server, "
                   "in one sentence.", "The server needs StartResponse.", "restated_dropped"),
])
def test_a_sentence_that_restates_or_adds_nothing_is_dropped_and_the_rest_kept(kind, text, kept, repair):
    verdict = review(text, kind, echo_of=TYPES_PLAN)
    assert (verdict.reason, verdict.text, verdict.repairs) == (None, kept, (repair,))


def test_a_reply_of_sentences_that_add_nothing_is_uninformative():
    assert review("To write types.py, I write the code. The code meets the requirements.").reason == "uninformative"
    # the same sentence is informative where the prompt shows what it names
    assert review("To write types.py, I write the code. It types the StartResponse callable of PEP 3333.").text == (
        "It types the StartResponse callable of PEP 3333.")


def test_a_sentence_mostly_of_words_the_prompt_never_showed_is_dropped_as_vague_or_made_up():
    # SmolLM2's whole Think of types.py (quickstart, 2026-12-05): of its own terms only "checking" is shown
    vague = ("To write types.py, I'll use a very thorough set of constructs to ensure that I'm checking for the "
             "presence of a certain thing.")
    assert review(vague).reason in ("uninformative", "restates_prompt")
    grounded = "It types the StartResponse callable of PEP 3333, then InputStream with TypeAlias."
    verdict = review(f"{vague} {grounded}")
    assert (verdict.reason, verdict.text, verdict.repairs) == (None, grounded, ("unsupported_dropped",))
    # a report made up around one shown word (SmolLM2's futures/_base.py: "detachable multiplexor")
    assert review("types.py allows futures to be used for future-bound parallelism, providing a detachable "
                  "multiplexor that can handle multiple concurrent Protocols.", "report").reason == "uninformative"
    # the plan entry's words are already in the document: they support nothing (SmolLM2's wsgiref __init__.py,
    # 2026-12-05, after the entry "__init__.py is a WSGI (PEP 3333) reference library ...")
    aspect = ("To write types.py, I'd like to add an important aspect: the ability to understand and adjust the "
              "WSGI types of PEP 3333 for static checking.")
    assert review(aspect).text == aspect
    assert review(aspect, echo_of="types.py holds the WSGI types of PEP 3333 for static checking.").reason == \
        "uninformative"
    # reasoning in the model's own words stays where a quarter of them are the file's
    own = "I keep StartResponse and InputStream as Protocols so that any server's callables match them structurally."
    assert review(own).text == own


def test_the_delegations_already_written_clause_is_cut():
    # SmolLM2's Think before lib/option.js (commander, 2026-12-04)
    verdict = review("To write types.py, I type FileWrapper with TracebackType, which is already written.")
    assert (verdict.reason, verdict.text, verdict.repairs) == (
        None, "To write types.py, I type FileWrapper with TracebackType.", ("handed_back_cut",))


def test_a_think_that_orders_its_own_file_restates_the_delegation():
    # SmolLM2's think before lib/help.js (commander, 2026-12-04): the main agent's order, said back
    ordered = 'Implement "headers.py" to build on "util.py" and encourage the StartResponse protocol.'
    assert review(ordered, "think_read").reason == "restates_prompt"
    # ... or without the file's name (SmolLM2's json __init__.py, quickstart 2026-12-04)
    assert review("Implement a custom StartResponse type in types.py using InputStream.",
                  "think_read").reason == "restates_prompt"
    # an engineer's plan that happens to start with the verb is not the order
    assert review("Implementing StartResponse first lets headers.py and util.py share its types.",
                  "think_read").reason is None


TYPES_PLAN = "Types.py is a Python module that defines the WSGI-specific types for handling HTTP requests."


@pytest.mark.parametrize("kind,text,reason", [
    # its plan entry said again, word for word or nearly (SmolLM2's json and commander reports, 2026-12-03)
    ("report", "types.py is a Python module that defines the WSGI-specific types for handling HTTP requests.",
     "repeats_plan"),
    ("think_read", "The project's types.py: this is a Python module that defines WSGI-specific types for HTTP "
                   "requests.", "repeats_plan"),
    # what the file gives the files after it, in its own words: kept
    ("report", "types.py gives handlers.py the StartResponse and InputStream protocols its methods are typed "
               "with.", None),
])
def test_a_text_that_says_its_plan_entry_again_is_refused(kind, text, reason):
    assert review(text, kind, echo_of=TYPES_PLAN).reason == reason


def test_a_sentence_of_the_delegations_fixed_words_is_dropped():
    """SmolLM2's zoneinfo _tzpath.py Think (2026-12-03) ended with the delegation's "It has nothing to read
    first.": that sentence goes, the answer stays."""
    verdict = review("To write types.py, I define StartResponse and InputStream as Protocols. It has nothing to "
                     "read first.")
    assert verdict.reason is None and verdict.repairs == ("framing_dropped",)
    assert verdict.text == "To write types.py, I define StartResponse and InputStream as Protocols."


def test_formatting_is_stripped_and_counted():
    verdict = review("---\n\nThe **StartResponse** protocol in types.py declares how a server starts a response.")
    assert verdict.reason is None and verdict.repairs[0] == "formatting_stripped"
    assert verdict.text == "The StartResponse protocol in types.py declares how a server starts a response."


def test_an_instruction_restated_as_a_heading_is_dropped_and_the_answer_kept():
    answer = "The code uses typing to declare the StartResponse protocol."
    verdict = review(f'Think aloud in two sentences, starting with "To write types.py, I":\n\n{answer}')
    assert (verdict.reason, verdict.text, verdict.repairs) == (None, answer, ("heading_dropped",))
    # a heading with nothing after it is no answer: restated
    assert review("I think aloud in two sentences about writing types.py.").reason == "restates_prompt"


def test_a_reply_that_goes_on_past_the_sentences_asked_is_cut_there():
    """SmolLM2 answers in one sentence, then loops; asked for one sentence, the one is kept, and it is complete
    even when the loop ran into the token limit."""
    first = "Futures/thread.py is a module that lets threads run tasks concurrently with InputStream."
    text = first + " It's used to create a thread pool." * 3 + " It's used to"
    req = request("purpose")
    req.sentences = 1
    prompt = load_prompt("purpose").format(**req.fields).strip()
    verdict = review_reply(text, req, prompt, instructions=instructions("purpose"), finish_reason="length")
    # the loop's sentences name nothing the prompt shows, so they go before the cut
    assert (verdict.reason, verdict.text) == (None, first) and verdict.repairs[-1] == "cut"
    req.sentences = 2  # two asked: the second is the loop's first, and it is kept
    assert review_reply(text, req, prompt, finish_reason="length").text == first + " It's used to create a thread pool."


@pytest.mark.parametrize("text", [
    "To execute a WSGI server, the requirements for types.py must be met:\n\n1.",  # SmolLM2, cut after 2 "sentences"
    # a list that trails off in numbers (SmolLM2's requirements of wsgiref, quickstart 2026-12-04)
    "types.py must do this:\n1. Every StartResponse must be typed as a Protocol.\n2. 3.",
    "To write types.py, I'd plan to implement the following:\n\n1. StartResponse",
    "types.py declares these Protocols:\n* \n* \n*",
])
def test_a_lead_in_a_list_number_or_a_bullet_is_not_a_sentence(text):
    req = request("requirements")  # where a list is allowed (in a Think it is refused: `list`)
    req.sentences = 2
    prompt = load_prompt("requirements").format(**req.fields).strip()
    assert review_reply(text, req, prompt, finish_reason="stop").reason == "unfinished"


@pytest.mark.parametrize("text", [
    "Here is the plan for types.py:\n\ndef types.StartResponse\n\nIt declares StartResponse first.",  # SmolLM2
    "types.py starts with its imports.\nimport typing\nThen StartResponse.",
    "types.py needs StartResponse.\nclass InputStream(Protocol):",
])
def test_a_line_of_code_is_a_code_block(text):
    assert review(text).reason == "code_block"


def test_restatement_needs_instructions():
    text = "types.py comes next. I'm thinking aloud about why I read these before writing handlers."
    assert check_reply(text, request("think_read")) is None  # no instructions given: not checked


def test_a_verbatim_copy_of_a_facts_line_still_echoes_the_prompt():
    assert review(f"It defines: {TYPES_FACTS}.", "report").reason == "echoes_prompt"


def test_a_reply_cut_by_the_token_limit_keeps_its_complete_sentences_when_they_are_most_of_it():
    text = ("types.py declares StartResponse as a Protocol. InputStream and ErrorStream follow with their read "
            "and write methods. Then the")
    verdict = review(text, finish_reason="length")
    assert verdict.reason is None and verdict.repairs == ("trimmed",)
    assert verdict.text == text.rsplit(" Then", 1)[0] and verdict.text.endswith("methods.")
    assert review(text, finish_reason="stop").reason == "unfinished"  # stopped mid-sentence by itself


@pytest.mark.parametrize("text", [
    "types.py declares StartResponse as a Protocol and then InputStream with read and readline and readlines and",
    "types.py is small. It declares StartResponse as a Protocol, then InputStream with read, readline, readlines "
    "and __iter__, then ErrorStream with flush, write and",   # the complete part is under half
    "It holds the types. types.py declares StartResponse and InputStream as Protocols, with the methods",
    # ^ kept part names no anchor
])
def test_a_reply_cut_mid_sentence_with_too_little_to_keep_is_truncated(text):
    assert review(text, finish_reason="length").reason == "truncated"


def test_a_full_stop_at_the_very_end_of_a_cut_reply_is_not_trusted():
    """At the limit, a final "." may be half of "parser.py" (SmolLM2's json requirements ended "- parser.")."""
    listing = "The types.py requirements consist of files such as:\n- encoder.py\n- scanner.py\n- parser."
    assert review(listing, "requirements", finish_reason="length").reason == "truncated"
    text = "types.py declares StartResponse as a Protocol. Then InputStream and ErrorStream."
    verdict = review(text, finish_reason="length")
    assert (verdict.text, verdict.repairs) == ("types.py declares StartResponse as a Protocol.", ("trimmed",))
    assert review(text, finish_reason="stop").text == text
    numbered = "types.py has two parts:\n\n1. StartResponse declares the start_response() callable.\n\n2. The"
    assert review(numbered, "requirements", finish_reason="length").text == numbered.rsplit("\n\n2.", 1)[0]
    assert review(numbered, finish_reason="length").reason == "list"  # a Think is prose


@pytest.mark.parametrize("text", [
    "The server uses the Python WSGI protocol to handle requests. " * 3 + "It serves types.py.",
    "I'm ready to help with types.py. What's the tool you're using to validate JSON? What's the tool you're using to "
    "validate JSON? What's the",
    "types.py declares the headers and the headers declare the types and the headers declare the types and the "
    "headers declare the types and the headers declare the types",
    # two sentences nearly the same (SmolLM2's Think of json's __init__.py)
    "I will write types.py with a JSON file named `json.json`. The script will use the `json.dump` function to dump "
    "the JSON data to a file. The script will also use the `dump` function to dump the JSON data to a file. The",
    "The project's requirements are to create a Python library for types.py parsing and data storage. The "
    "project's code is to use the Python 2.7.1 Python 3.10. The project's requirements are to create a JSON-based "
    "data storage system. The project's code is to use the Python",
    # a phrase said twice in one sentence (SmolLM2's think before lib/help.js)
    "The main entry point is types.py, which defines a class called StartResponse and defines a class called "
    "StartResponse.",
    # a sentence that says nothing the one before did not (SmolLM2's requirements of concurrent, quickstart)
    "types.py is a project that requires concurrent to run. The project must have concurrent to run.",
    # a phrase or a word said twice in one sentence (SmolLM2 on commander, 2026-12-04)
    "types.py is the command-line interface command-line interface server for StartResponse.",
    "types.py defines a StartResponse client-client that lets one choose between parsing options and parsing "
    "options.",
    # the same name on both sides of "and" (SmolLM2's requirements of concurrent, quickstart 2026-12-04)
    'types.py must include the files "futures/: __init__.py" and "futures/: __init__.py".',
])
def test_loops_are_caught(text):
    # a loop that ran into the cap: the loop (judged alone: no sentence is dropped as adding nothing first)
    assert review(text, finish_reason="length", judged=False).reason == "repetition"
    assert review(text, finish_reason="length").reason is not None


def test_names_said_more_than_once_are_not_a_loop():
    text = ("types.py defines StartResponse. StartResponse.__call__ takes the status and the headers; InputStream "
            "and ErrorStream wrap wsgi.input and wsgi.errors, and FileWrapper takes a _Readable and a block size. "
            "InputStream.read and InputStream.readline read bytes.")
    assert review(text).reason is None
    parallel = ("types.py gives InputStream the read, readline and readlines methods of wsgi.input. It gives "
                "ErrorStream the flush, write and writelines methods of wsgi.errors.")  # same shape, other words
    assert review(parallel).reason is None


def test_a_closed_scratchpad_is_stripped_and_the_answer_validated():
    answer = "types.py declares StartResponse and InputStream as typing Protocols, in that order."
    verdict = review(f"<think>\nThe user wants a note. Mention the protocols.\n</think>\n\n{answer}")
    assert (verdict.reason, verdict.text, verdict.repairs) == (None, answer, ("scratchpad_stripped",))
    # a template that opens the scratchpad itself (Qwen3): the reply only closes it
    assert review(f"The user wants a note.\n</think>\n\n{answer}").text == answer
    # what remains is validated like any reply
    restated = 'Think aloud in two sentences, starting with "To write types.py, I".'
    assert review(f"<think>hm</think>{restated}").reason == "restates_prompt"


@pytest.mark.parametrize("text,finish", [
    ("<think>\nThe user wants a note about types.py. First I should list the protocols, then", "length"),
    ("<think>The user wants a note about types.py.</think>", "stop"),
    ("<think>a</think> types.py declares StartResponse. <think>and then", "length"),
])
def test_an_unclosed_or_bare_scratchpad_is_thinking(text, finish):
    assert review(text, finish_reason=finish).reason == "thinking"


@pytest.mark.parametrize("kind,text,reason", [
    # SmolLM2 on commander (2026-12-04): a Think in bullets, one that opens mid-sentence, a tutor's voice
    ("think_write", "* types.py declares StartResponse.\n* InputStream follows it.", "list"),
    ("think_read", "for the project's types.py is to include StartResponse built on the idea of headers.py.",
     "fragment"),
    ("think_write", "To write types.py, I will start by explaining the basics of StartResponse and InputStream.",
     "restates_prompt"),
])
def test_lists_fragments_and_a_tutors_voice_are_refused(kind, text, reason):
    assert review(text, kind).reason == reason


def test_a_clause_copied_from_the_prompt_is_dropped():
    """SmolLM2 on commander (2026-12-04): three Thinks carried '..., which is a module that allows you to define
    classes and functions.' from a dependency's report shown in their prompts."""
    req = request("think_write")
    req.fields["read"] = "You have read:\n- headers.py: a module that allows you to define classes and functions."
    prompt = load_prompt("think_write").format(**req.fields).strip()
    text = ("To write types.py, I type StartResponse as a Protocol. It builds on headers.py, a module that allows "
            "you to define classes and functions.")
    verdict = review_reply(text, req, prompt, instructions=instructions("think_write"), finish_reason="stop")
    assert (verdict.reason, verdict.text, verdict.repairs) == (
        None, "To write types.py, I type StartResponse as a Protocol.", ("prompt_copied_dropped",))


@pytest.mark.parametrize("kind,text,reason", [
    ("think_write", "To write types.py, I'm dedicating two sentences to documenting StartResponse.", "restates_prompt"),
    ("think_read", "I mentioned that I read headers.py first, before StartResponse.", "restates_prompt"),
    # a word said three times in one note (SmolLM2's report of esm.mjs, commander 2026-12-04)
    ("report", "types.py is a single-in-respective element that defines a single-in-respective StartResponse in a "
               "single file.", "repetition"),
])
def test_a_note_about_itself_or_saying_a_word_thrice_is_refused(kind, text, reason):
    assert review(text, kind).reason == reason


def test_quoting_the_instructions_opening_restates_it():
    # SmolLM2 on commander (2026-12-04): 'I wrote the following snippet, "I read lib/argument.js first because ...'
    text = 'I wrote this note, "I read headers.py and util.py first because StartResponse is typed there.'
    assert review(text, "think_read").reason == "restates_prompt"


def test_a_think_that_speaks_to_you_is_the_chats_voice():
    # SmolLM2's Thinks of encoder.py and decoder.py (quickstart, 2026-12-04)
    assert review("In the code, you implement StartResponse as a Protocol with InputStream.").reason == \
        "restates_prompt"
    # a report may say what a module lets its user do
    assert review("types.py lets you type StartResponse and InputStream for handlers.py.", "report").reason is None


def test_quoting_the_opener_for_another_file_restates_it():
    # SmolLM2 on commander's esm.mjs (2026-12-05): '... you might describe it as "I read index.js first because
    # I was already reading it first".' while the instruction's opener named other files
    text = 'Of StartResponse, I would say "I read handlers.py first because it is already there".'
    assert review(text, "think_read").reason == "restates_prompt"


def test_a_thinks_sentence_to_you_is_dropped_and_the_impersonal_you_kept():
    # SmolLM2 on commander's lib/error.js (2026-12-05): 'This class allows you to create a custom error class'
    # is what the code lets its user do; "you can" is the chat talking to its user, dropped from the note
    kept = review("To write types.py, I type StartResponse as a Protocol. It allows you to type the callable "
                  "of PEP 3333 that InputStream readers use.")
    assert kept.reason is None, kept
    verdict = review("To write types.py, I type StartResponse as a Protocol. Then you can type InputStream the same "
                     "way for readline.")
    assert (verdict.reason, verdict.text, verdict.repairs) == (
        None, "To write types.py, I type StartResponse as a Protocol.", ("chat_voice_dropped",))


@pytest.mark.parametrize("text", [
    # what was left of SmolLM2's Thinks on commander (2026-12-05) once the "you" sentences were dropped
    "Design a StartResponse protocol that can accept and respond to InputStream readers.",
    "Create a new StartResponse with the specified headers, and then read InputStream.",
])
def test_a_think_that_gives_an_order_is_the_chats_voice(text):
    assert review(text).reason == "restates_prompt"
    verdict = review(f"To write types.py, I type StartResponse as a Protocol. {text}")
    assert (verdict.text, verdict.repairs) == ("To write types.py, I type StartResponse as a Protocol.",
                                               ("chat_voice_dropped",))


def test_a_one_sentence_answer_whose_sentence_is_dropped_is_refused():
    # SmolLM2's Think before lib/argument.js's Reads (commander, 2026-12-05): the answer says nothing, and the
    # sentence after it answers another question
    text = ("I read headers.py and util.py first because they are already written. I added StartResponse to "
            "types.py to meet the requirements.")
    assert review(text, "think_read").reason == "restates_prompt"  # "already written" is the delegation's framing
    # ... or names files it does not read first
    text = "I read types.py first because StartResponse is there. I read handlers.py first because it is written."
    assert review(text, "think_read").reason == "uninformative"
    kept = review("I read headers.py and util.py first because StartResponse takes their Headers. I read types.py "
                  "first because it is written.", "think_read")
    assert (kept.text, kept.repairs) == (
        "I read headers.py and util.py first because StartResponse takes their Headers.", ("other_files_dropped",))


def test_requirements_whose_own_sentence_is_dropped_are_refused():
    # SmolLM2's requirements of concurrent (quickstart, 2026-12-05): its "The project ... must" sentence said
    # nothing, and what followed talked about the prompt's file list
    text = ("The project wsgiref must be met. The file StartResponse is a task that must be included in "
            "wsgiref.")
    assert review(text, "requirements").reason == "uninformative"


@pytest.mark.parametrize("sentence", [
    # SmolLM2's requirements and plan entry of concurrent (quickstart, 2026-12-05): the facts' file tree and
    # import counts talked about, and the delegation's "already written" as the point
    "Concurrent.py is one of the existing files in wsgiref.",
    "It runs the StartResponse script, which is imported by 1 files.",
    "It is built on the foundation that StartResponse is already implemented.",
])
def test_talk_about_the_facts_tree_and_counts_is_dropped(sentence):
    verdict = review(f"The project wsgiref must serve StartResponse to WSGI handlers. {sentence}", "requirements")
    assert (verdict.text, verdict.repairs) == ("The project wsgiref must serve StartResponse to WSGI handlers.",
                                               ("prompt_talk_dropped",))
