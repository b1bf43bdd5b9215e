"""What each role's prompt holds, over real HTTP: the project's README and manifest for the requirements, the
requirements for the plan, the plan entry and the dependencies' reports for a sub-agent, the real file for the
Think before a Write; a JavaScript project is called JavaScript; faulty replies are refused, counted by reason.

The policy is the openai engine talking to the local test server (tests/openai_server.py); only the words
are scripted: each reply carries a marker naming what it is (`REPORT-lib/words.js`), so a later prompt that
holds it shows which texts the policy was shown.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from openai_server import FakeChatServer, prompt_material
from retrace_testing import ScriptedEngine
from test_policies import openai_policy

from retrace.agents import SimulationOptions, StructuralPolicy, simulate_repositories
from retrace.agents.policies import SENTENCE_STOPS, ChatPolicy
from retrace.repo import analyze_repository, ingest_local_dir
from retrace.repo.languages import CODE_LANGUAGES, TEXT_LANGUAGES

README = """# tally

[![build](https://ci.example/badge.svg)](https://ci.example)

Tally counts the words of text streams and prints the most frequent ones.

```js
const tally = require('tally');
```
"""
JS_FILES = {
    "README.md": README,
    "package.json": json.dumps({"name": "tally", "description": "Count words in text streams", "main": "index.js",
                                "dependencies": {"split2": "^4.0.0"}}, indent=2),
    "lib/words.js": "'use strict';\n\n/** Split text into lower-case words. */\nfunction splitWords(text) {\n"
                    "  return text.toLowerCase().split(/[^a-z0-9']+/).filter(Boolean);\n}\n\n"
                    "module.exports = { splitWords };\n",
    "lib/counter.js": "'use strict';\nconst { splitWords } = require('./words');\n\nclass Counter {\n"
                      "  constructor() {\n    this.counts = new Map();\n  }\n\n  add(text) {\n"
                      "    for (const word of splitWords(text)) this.counts.set(word, (this.counts.get(word) || 0) + 1);\n"
                      "  }\n}\n\nmodule.exports = { Counter };\n",
    "index.js": "'use strict';\nconst { Counter } = require('./lib/counter');\n\n"
                "module.exports = function tally(texts) {\n  const counter = new Counter();\n"
                "  texts.forEach((text) => counter.add(text));\n  return counter.counts;\n};\n",
}


def ingest(root: Path, name: str):
    """As a recipe ingests: every code and text language (the library default keeps Python only)."""
    return ingest_local_dir(root, name=name, languages=[*CODE_LANGUAGES, *TEXT_LANGUAGES])


def write_js_repo(root: Path) -> Path:
    for rel, text in JS_FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


KINDS = {  # the last line of each template names the request's kind and its subject
    "requirements": r"say what (\S+) must do",
    "purpose": r"describe what (\S+) does",
    "think_read": r"before writing (\S+), starting",
    "think_write": r'starting with "To write (\S+), I"',
    "report": r"describe what (\S+) offers",
}


def kind_of(prompt: str) -> tuple[str, str]:
    last = prompt.strip().rsplit("\n", 1)[-1]
    for kind, pattern in KINDS.items():
        if found := re.search(pattern, last):
            return kind, found.group(1)
    raise AssertionError(f"no template matches: {last!r}")


def marked_reply(body: dict) -> str:
    """A usable reply that says what it is: `PLAN-lib/words.js: ...`, `REPORT-lib/words.js: ...`."""
    kind, subject = kind_of(body["messages"][-1]["content"])
    marker = {"requirements": "REQ", "purpose": "PLAN", "think_read": "WHY", "think_write": "HOW",
              "report": "REPORT"}[kind]
    # each kind in its own words: a Think or report that said its plan entry again would be refused
    said = {"REQ": "counts the words of a text, step by step", "PLAN": "does its share of the counting",
            "WHY": "needs the splitter before it can tally anything", "HOW": "loops over the words and tallies each",
            "REPORT": "gives the files after it its names"}[marker]
    material = prompt_material(body["messages"][-1]["content"])  # and names something the prompt shows
    return f"{marker}-{subject}: {subject} {said}" + (f", with {material}." if material else ".")


def prompts_by_kind(server: FakeChatServer) -> dict[tuple[str, str], str]:
    found = {}
    for body in server.chat_requests:
        prompt = body["messages"][-1]["content"]
        found.setdefault(kind_of(prompt), prompt)
    return found


def simulate_over_http(root: Path, name: str, reply=marked_reply, **options):
    snapshot = ingest(root, name)
    graph = analyze_repository(snapshot)
    with FakeChatServer(reply=reply) as server:
        policy = openai_policy(server, concurrency=4)
        [traj] = simulate_repositories([(snapshot, graph)], policy, SimulationOptions(**options))
    return traj, graph, policy, server


def test_each_role_is_shown_what_it_builds_on(tmp_path):
    root = write_js_repo(tmp_path / "tally")
    traj, graph, policy, server = simulate_over_http(root, "tally")
    assert ("lib/counter.js", "lib/words.js") in graph.edges and ("index.js", "lib/counter.js") in graph.edges
    prompts = prompts_by_kind(server)
    # the main agent: the README as prose (no badge, no code block), the manifest, the tree, the graph
    requirements = prompts[("requirements", "tally")]
    assert "Tally counts the words of text streams" in requirements and "badge" not in requirements
    assert "require('tally')" not in requirements
    assert 'description "Count words in text streams"' in requirements and "dependencies split2" in requirements
    assert "lib/: counter.js, words.js" in requirements and "Most imported:" in requirements
    # the plan descriptions are written from the model's requirements, one entry each
    for path in traj.order:
        assert "REQ-tally" in prompts[("purpose", path)] and f"is {path}." in prompts[("purpose", path)]
    # a sub-agent: its delegation (with its plan entry, as the model wrote it) and its dependencies' reports
    why = prompts[("think_read", "lib/counter.js")]
    assert "PLAN-lib/counter.js" in why and "REPORT-lib/words.js" in why and "you use splitWords" in why
    how = prompts[("think_write", "lib/counter.js")]
    assert JS_FILES["lib/counter.js"].strip() in how  # the real file, whole: it is short
    assert "REPORT-lib/words.js" in how and "PLAN-lib/counter.js" in how
    assert "REPORT-lib/counter.js" in prompts[("think_write", "index.js")]
    # not its own plan entry: shown it, a small model says it again (the document holds it already)
    assert "PLAN-lib/words.js" not in prompts[("report", "lib/words.js")]
    # the report names the files that import it, and what they use
    assert "import it: lib/counter.js (for splitWords)." in prompts[("report", "lib/words.js")]
    assert "No other file of the project imports it." in prompts[("report", "index.js")]
    # every prompt names the project's language; none says Python
    for prompt in prompts.values():
        assert 'JavaScript project "tally"' in prompt and "Python" not in prompt
    assert traj.meta["languages"] == "JavaScript"


def test_the_plan_and_delegations_carry_the_models_descriptions(tmp_path):
    root = write_js_repo(tmp_path / "tally")
    traj, _, _, _ = simulate_over_http(root, "tally")
    [plan] = [s for s in traj.steps if s.kind == "plan"]
    assert plan.meta == {"source": "openai", "descriptions": {"openai": len(traj.order)}}
    assert [e.path for e in plan.plan.entries] == traj.order
    assert all(e.description.startswith(f"PLAN-{e.path}:") for e in plan.plan.entries)
    for step in (s for s in traj.steps if s.kind == "delegate"):
        assert f"PLAN-{step.path}:" in step.content and step.meta["source"] == "openai"
    assert traj.meta["text_sources"] == {"openai": len([s for s in traj.steps if s.kind not in ("read", "write")])}


def test_the_think_before_a_write_sees_the_start_of_a_long_file(tmp_path):
    root = write_js_repo(tmp_path / "tally")
    long_file = "".join(f"function step{i}(x) {{\n  return x + {i};\n}}\n" for i in range(200))
    (root / "lib" / "steps.js").write_text(long_file)
    traj, _, _, server = simulate_over_http(root, "tally", prompt_code_chars=300)
    how = prompts_by_kind(server)[("think_write", "lib/steps.js")]
    assert long_file[:250] in how and long_file[400:500] not in how and "[... 600 lines in all]" in how


def test_a_plan_mostly_written_from_fallbacks_says_structural(tmp_path):
    root = write_js_repo(tmp_path / "tally")

    def reply(body):
        kind, subject = kind_of(body["messages"][-1]["content"])
        return "ok" if kind == "purpose" and subject != "index.js" else marked_reply(body)

    traj, _, policy, _ = simulate_over_http(root, "tally", reply=reply)
    [plan] = [s for s in traj.steps if s.kind == "plan"]
    n = len(traj.order)
    assert plan.meta == {"source": "structural", "descriptions": {"openai": 1, "structural": n - 1},
                         "fallbacks": {"too_short": n - 1}}
    assert policy.counts["fallback:too_short"] == n - 1


def test_waves_batch_across_repositories_by_dependency_depth(tmp_path):
    """Wave 1: both requirements; wave 2: every plan description; wave 3: every report; wave 4: every Think."""
    roots = [write_js_repo(tmp_path / "a"), write_js_repo(tmp_path / "b")]
    items = [(s, analyze_repository(s)) for s in (ingest(r, r.name) for r in roots)]
    engine = ScriptedEngine(lambda conversation, params: marked_reply({"messages": conversation}))
    policy = ChatPolicy(engine, retries=0)
    waves = []
    write = policy.write
    policy.write = lambda requests: waves.append(Counter(r.kind for r in requests)) or write(requests)
    simulate_repositories(items, policy)
    n = len(items[0][1].dev_order)
    # counter.js and index.js import a file: they have a Think before their Reads
    assert waves == [{"requirements": 2}, {"purpose": 2 * n}, {"report": 2 * n}, {"think_read": 4, "think_write": 2 * n}]
    # one engine call per wave; plan descriptions and reports stop at their first full stop
    calls = [Counter(kind_of(c[-1]["content"])[0] for c in conversations) for conversations, _ in engine.calls]
    assert calls == waves
    assert [params.stop for _, params in engine.calls] == [(), SENTENCE_STOPS, SENTENCE_STOPS, ()]


def test_python_is_named_for_python_and_structural_text_names_the_language(tmp_path):
    root = write_js_repo(tmp_path / "tally")
    snapshot = ingest(root, "tally")
    [traj] = simulate_repositories([(snapshot, analyze_repository(snapshot))], StructuralPolicy())
    requirements = traj.steps[0].content
    assert "JavaScript project" in requirements and "Python" not in requirements


FAULTS = {  # what the model says about each file's Think before its Write, at temperature 0
    "lib/words.js": "lib/words.js starts with the split: return text.toLowerCase().split(/[^a-z0-9']+/).filter("
                    "Boolean); and nothing else.",                                       # pastes the real file
    "lib/counter.js": "lib/counter.js is a small Python class around a Map, so I write Counter first.",  # language
}  # index.js: its task, copied from the prompt (below)


def test_pasted_code_a_wrong_language_and_echoes_are_refused_and_counted(tmp_path):
    root = write_js_repo(tmp_path / "tally")

    def reply(body):
        kind, subject = kind_of(body["messages"][-1]["content"])
        if kind == "think_write" and body["temperature"] == 0:
            if subject == "index.js":  # echoes the prompt: what it read, copied
                return re.search(r"REPORT-lib/counter\.js: .*", body["messages"][-1]["content"]).group(0)
            return FAULTS.get(subject) or marked_reply(body)
        return marked_reply(body)

    traj, _, policy, _ = simulate_over_http(root, "tally", reply=reply)
    assert policy.counts["retry:pastes_code"] == policy.counts["retry:wrong_language"] == 1
    assert policy.counts["retry:echoes_prompt"] == 1 and policy.counts["recovered"] == 3
    thinks = [s for i, s in enumerate(traj.steps) if s.kind == "think" and traj.steps[i + 1].kind == "write"]
    assert all(s.content.startswith("HOW-") and s.meta["source"] == "openai" for s in thinks)


def test_a_null_content_from_a_reasoning_parser_is_an_empty_reply(tmp_path):
    with FakeChatServer(reply=lambda body: None) as server:
        policy = openai_policy(server, retries=0)
        root = write_js_repo(tmp_path / "tally")
        snapshot = ingest(root, "tally")
        [traj] = simulate_repositories([(snapshot, analyze_repository(snapshot))], policy)
    assert all(s.meta.get("fallback") == "too_short" for s in traj.steps if s.kind in ("think", "report"))
    assert policy.usage["requests"] == len(server.chat_requests) and "failed:malformed_json" not in policy.usage
    assert all(b["chat_template_kwargs"] == {"enable_thinking": False} for b in server.chat_requests)
