"""What the policy is shown for each text: one `PolicyRequest` per text, built from the facts and earlier texts.

The main agent writes the requirements from the project's README, manifests, tree and import graph, then
one plan description per file given those requirements. A sub-agent sees the requirements, its plan entry
and delegation, what the sub-agents of its dependencies reported and, for the Think before its Write, the
real file it is about to write (cut to `prompt_code_chars`): it explains the reasoning that leads there,
and may not paste it (`forbidden_lines`, `code_ngrams`). Every request carries the structural text that
replaces an unusable reply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from retrace.agents import structural
from retrace.agents.facts import FileFacts, file_facts
from retrace.agents.languages import code_word_ngrams, forbidden_lines, language_phrase, project_languages
from retrace.agents.policies import SENTENCE_STOPS, PolicyReply, PolicyRequest
from retrace.agents.project import (
    GRAPH_FRAMING,
    about_text,
    graph_text,
    manifest_text,
    repo_overview,
    tree_text,
)
from retrace.repo import RepoGraph, RepoSnapshot

if TYPE_CHECKING:
    from retrace.agents.simulate import SimulationOptions

CODE_NGRAM_WORDS = 12  # a reply sharing this many consecutive words with the file's code pastes it
# The most sentences each template asks for (keep in step with prompts/*.prompt): a reply is cut there. The
# one-sentence texts that open with the file's name (plan descriptions, reports) also stop generating there.
SENTENCES = {"requirements": 2, "purpose": 1, "report": 1, "think_read": 1, "think_write": 2}


def cap(text: str, limit: int) -> str:
    """`text` cut to `limit` characters at a word boundary, marked with " ..."."""
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = text[: max(0, limit - 4)]
    return (cut.rsplit(None, 1)[0] if " " in cut else cut).rstrip() + " ..."


def _stem(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return name.split(".", 1)[0] or name


def _anchors(facts: FileFacts, *others: str) -> list[str]:
    """Words a grounded text about this file mentions: its name, its definitions, related files' names."""
    stems = [_stem(p) for p in [facts.path, *facts.deps, *others]]
    stems = [s for s in stems if s not in ("__init__", "index", "mod", "lib", "main")]
    parent = facts.path.rsplit("/", 2)[-2] if facts.path.count("/") else ""
    return stems + [facts.path] + ([parent] if parent else []) + [n for n in facts.defined_names if len(n) > 2]


@dataclass
class RepoWork:
    """One repository during the simulation: its facts, and the texts the policy has written so far."""

    snapshot: RepoSnapshot
    graph: RepoGraph
    facts: list[FileFacts]                 # in development order
    languages: str                         # "Python", "Go and C"
    dependents: dict[str, list[str]]       # path -> later files that import it
    texts: dict[str, str]                  # path -> the real file (and each file it reads from other parts)
    outside: dict[str, str] = field(default_factory=dict)  # a file read from another part -> its description
    replies: dict[tuple[str, str], PolicyReply] = field(default_factory=dict)  # (kind, path or "")
    guards: dict[str, dict] = field(default_factory=dict)   # path -> `code_guard`, computed once

    def __post_init__(self) -> None:
        self.by_path = {f.path: f for f in self.facts}
        self.numbers = {f.path: n for n, f in enumerate(self.facts, start=1)}

    @classmethod
    def build(cls, snapshot: RepoSnapshot, graph: RepoGraph) -> RepoWork:
        texts = {f.path: f.text for f in [*snapshot.readable, *snapshot.files]}
        # A sub-project's files from other parts of the repository exist already: readable from the start.
        outside = {f.path: file_facts(graph, f.path, set()).purpose for f in snapshot.readable}
        written: set[str] = set(outside)
        facts = []
        dependents: dict[str, list[str]] = {p: [] for p in [*outside, *graph.dev_order]}
        for path in graph.dev_order:
            one = file_facts(graph, path, written, texts[path])
            written.add(path)
            facts.append(one)
            for dep in one.deps:
                dependents[dep].append(path)
        return cls(snapshot, graph, facts, language_phrase(project_languages(graph)), dependents, texts, outside)

    def said(self, kind: str, path: str = "") -> str:
        """What was written for (kind, path), on one line."""
        return " ".join(self.replies[(kind, path)].text.split())

    def report_of(self, dep: str) -> str:
        """What a sub-agent knows of a file it reads: its author's report, or for a file of another part of
        the repository (written in another document), what that file is."""
        if dep in self.outside:
            return f"already in the repository, outside this part of it: {self.outside[dep]}"
        return self.said("report", dep)

    def delegation(self, facts: FileFacts) -> str:
        return structural.delegate_text(facts, self.said("purpose", facts.path), self.numbers[facts.path],
                                        len(self.facts))

    def code_guard(self, facts: FileFacts, options: SimulationOptions) -> dict:
        """The request keys that keep a text from pasting this file's code, and from naming other languages."""
        if facts.path not in self.guards:
            language, text = self.graph.files[facts.path].language, self.texts[facts.path]
            self.guards[facts.path] = {
                "forbidden_lines": forbidden_lines(text, language, options.min_forbidden_line_chars),
                "code_ngrams": code_word_ngrams(text, language, CODE_NGRAM_WORDS), "languages": self.languages}
        return self.guards[facts.path]

    def fields(self, file: FileFacts | None = None, **more: str) -> dict[str, str]:
        """A template's placeholders: the repository, its languages, the file's path, then `more`."""
        base = {"repo": self.snapshot.project, "languages": self.languages}
        if file is not None:
            base["path"] = file.path
        return {**base, **more}


PART_OF = "This part of {repo} is developed on its own: the files below. The rest of {repo} already exists."
# the requirements prompt's fixed words around its facts: naming them says nothing of the project ('I've made
# some minor changes to make "Concurrent.py" compatible with the existing concurrent.', after "The rest of
# concurrent already exists.": SmolLM2, quickstart 2026-12-05)
REQUIREMENTS_FRAMING = f"{PART_OF.format(repo='')} Files {GRAPH_FRAMING}"


def requirements_request(work: RepoWork, options: SimulationOptions) -> PolicyRequest:
    """The main agent's first text: the requirements, from the README, manifests, tree and import graph."""
    source, about = about_text(work.snapshot, work.graph)
    sections = []
    if about:
        sections.append(f"About the project ({source}): {cap(about, options.prompt_readme_chars)}")
    manifests = manifest_text(work.snapshot)
    if manifests:
        sections.append(f"Manifest:\n{cap(manifests, options.prompt_facts_chars)}")
    if work.snapshot.part_of:
        sections.append(PART_OF.format(repo=work.snapshot.project))
    sections.append(f"Files ({len(work.facts)}):\n{cap(tree_text(work.graph), options.prompt_facts_chars)}")
    sections.append(graph_text(work.graph))
    overview = repo_overview(work.snapshot, work.graph)
    anchors = [work.snapshot.project, *(_stem(p) for p in work.graph.dev_order)]
    return PolicyRequest("requirements", work.fields(facts="\n".join(sections)),
                         structural.requirements_text(overview), anchors=anchors, languages=work.languages,
                         sentences=SENTENCES["requirements"], framing=REQUIREMENTS_FRAMING)


def purpose_request(work: RepoWork, facts: FileFacts, options: SimulationOptions) -> PolicyRequest:
    """A plan description: what the file does for the project, given the requirements and its definitions."""
    summary = work.graph.files[facts.path]
    lines = []
    if summary.docstring:
        lines.append(f"Its docstring: {cap(' '.join(summary.docstring.split()), 240)}")
    definitions = "; ".join(facts.classes + facts.functions)
    lines.append(f"It defines: {cap(definitions, options.prompt_facts_chars)}" if definitions else
                 f"It defines no class or function ({facts.n_lines} lines).")
    if facts.deps:
        lines.append(f"It imports: {', '.join(facts.deps)}.")
    users = work.dependents[facts.path]
    if users:
        lines.append(f"Imported later by: {', '.join(users[:6])}.")
    fields = work.fields(facts, requirements=cap(work.said("requirements"), options.prompt_context_chars),
                         number=str(work.numbers[facts.path]), total=str(len(work.facts)), facts="\n".join(lines))
    return PolicyRequest("purpose", fields, structural.purpose_text(facts), anchors=_anchors(facts, *users),
                         sentences=SENTENCES["purpose"], stop=SENTENCE_STOPS, **work.code_guard(facts, options))


def _plan_line(work: RepoWork, path: str) -> str:
    return f"{work.numbers[path]}. {path}: {work.said('purpose', path)}"


def think_read_request(work: RepoWork, facts: FileFacts, options: SimulationOptions) -> PolicyRequest:
    """Why the sub-agent reads its dependencies: their plan entries, what it uses of them, their reports."""
    per_dep = max(120, options.prompt_context_chars // max(1, len(facts.deps)))
    reads = []
    for dep in facts.deps:
        names = facts.imported_names.get(dep)
        uses = f" (you use {', '.join(names[:6])})" if names else ""
        said = (f"It is {work.report_of(dep)}" if dep in work.outside else
                f"Its author reported: {work.report_of(dep)}")
        reads.append(f"- {dep}{uses}. {cap(said, per_dep)}")
    fields = work.fields(facts, requirements=cap(work.said("requirements"), options.prompt_context_chars),
                         delegation=work.delegation(facts), facts="\n".join(reads),
                         deps=language_phrase(facts.deps))
    return PolicyRequest("think_read", fields, structural.think_read_text(facts),
                         anchors=_anchors(facts, *facts.deps), sentences=SENTENCES["think_read"],
                         framing=structural.DELEGATION_FRAMING, echo_of=work.said("purpose", facts.path),
                         **work.code_guard(facts, options))


def _code_shown(work: RepoWork, facts: FileFacts, chars: int) -> str:
    """The real file as a prompt shows it: whole, or its first `chars` characters to a line's end, marked."""
    code = work.texts[facts.path]
    if len(code) <= chars:
        return code
    return code[:chars].rsplit("\n", 1)[0] + f"\n[... {len(code.splitlines())} lines in all]"


def think_write_request(work: RepoWork, facts: FileFacts, options: SimulationOptions) -> PolicyRequest:
    """The Think before the Write: the real file (cut), what the sub-agent read, its task."""
    if facts.deps:
        per_dep = max(120, options.prompt_context_chars // len(facts.deps))
        read = "You have read:\n" + "\n".join(f"- {dep}: {cap(work.report_of(dep), per_dep)}"
                                              for dep in facts.deps)
    else:
        read = "It needs no other file of the project."
    fields = work.fields(facts, delegation=work.delegation(facts), read=read,
                         code=_code_shown(work, facts, options.prompt_code_chars))
    return PolicyRequest("think_write", fields, structural.think_write_text(facts), anchors=_anchors(facts),
                         sentences=SENTENCES["think_write"], framing=structural.DELEGATION_FRAMING,
                         echo_of=work.said("purpose", facts.path), **work.code_guard(facts, options))


def report_request(work: RepoWork, facts: FileFacts, options: SimulationOptions) -> PolicyRequest:
    """The sub-agent's report: what the file it wrote gives the files after it (named from the graph, with what
    they use)."""
    users = work.dependents[facts.path]
    if users:
        uses = []
        for user in users[:6]:
            names = work.by_path[user].imported_names.get(facts.path)
            uses.append(f"{user} (for {', '.join(names[:4])})" if names else user)
        more = f" and {len(users) - 6} more" if len(users) > 6 else ""
        after = f"Files written after it import it: {language_phrase(uses)}{more}."
        audience = language_phrase(users[:3]) + (" and the others" if len(users) > 3 else "")
    else:
        after = "No other file of the project imports it."
        audience = "the project"
    defined = ", ".join(facts.defined_names) or f"no class or function ({facts.n_lines} lines)"
    # the file it has just written (half the Think's share: a report is one sentence), not its plan entry: shown
    # the entry, a small model says it again (SmolLM2 on commander, 2026-12-05: 6 of 7 reports refused as
    # repeats_plan); shown only its names, it has nothing to say of them (all but 1 of 7 refused as uninformative)
    fields = work.fields(facts, facts=cap(defined, options.prompt_facts_chars), after=after, audience=audience,
                         code=_code_shown(work, facts, options.prompt_code_chars // 2))
    return PolicyRequest("report", fields, structural.report_text(facts, users), anchors=_anchors(facts, *users),
                         sentences=SENTENCES["report"], stop=SENTENCE_STOPS, echo_of=work.said("purpose", facts.path),
                         **work.code_guard(facts, options))
