"""The HTML of one repository page: main agent, development order, graph notes, one episode per file.

Every piece of repository or model text goes through `esc` (HTML-escaped, quotes included) and is
placed as element text, never inside a script or an attribute that executes: a file holding
`</script><script>...` renders as those characters. Code is emitted plain with a `data-lang`; the
page's script highlights it only when its `<details>` is opened, so a big repository stays light.
"""

from __future__ import annotations

import html
import json
from pathlib import PurePosixPath
from typing import Any

from retrace.data.document import Segment
from retrace.data.records import Grounding
from retrace.data.trajectory import MAIN_AGENT, Step
from retrace.data.viewer.load import RepoView, StepView

# Observations longer than this go into their own collapsed block.
INLINE_OBSERVATION_CHARS = 400
# Written files up to this many lines are shown open inside their (collapsed) episode.
OPEN_PAYLOAD_LINES = 40

LANGUAGES = {
    ".py": "python", ".pyi": "python", ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript",
    ".jsx": "javascript", ".ts": "typescript", ".tsx": "typescript", ".go": "go", ".java": "java",
    ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".hpp": "cpp", ".rs": "rust", ".rb": "ruby",
    ".sh": "shell",
}

STEP_TITLES = {"requirements": "Requirements", "plan": "Plan", "delegate": "Delegate", "think": "Think",
               "read": "Read", "write": "Write", "report": "Report"}


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def anchor(index: int) -> str:
    return f"ep-{index}"


def language(path: str | None) -> str:
    return LANGUAGES.get(PurePosixPath(path or "").suffix.lower(), "text")


def badge(text: str, cls: str = "", title: str = "") -> str:
    title_attr = f' title="{esc(title)}"' if title else ""
    return f'<span class="badge {cls}"{title_attr}>{esc(text)}</span>'


def flag_attrs(seg: Segment) -> tuple[str, str]:
    """The CSS class and tooltip saying whether a segment carries loss."""
    if seg.train:
        return "seg trained", f"trained ({seg.kind})"
    return "seg masked", f"masked from the loss ({seg.kind})"


def render_segment(seg: Segment) -> str:
    """One document segment, styled by its loss flag; file contents fold away, small files stay open."""
    cls, title = flag_attrs(seg)
    attrs = f'data-kind="{esc(seg.kind)}" title="{esc(title)}"'
    lines = seg.text.count("\n") + (not seg.text.endswith("\n"))
    if seg.kind == "payload" or (seg.kind == "observation" and len(seg.text) > INLINE_OBSERVATION_CHARS):
        what = "the real file, written" if seg.kind == "payload" else "observation, the real file read"
        opened = " open" if seg.kind == "payload" and lines <= OPEN_PAYLOAD_LINES else ""
        return (f'<details class="code {cls}" {attrs}{opened}><summary>{esc(seg.path)} &middot; {what} &middot; '
                f'{lines} lines, {len(seg.text):,} chars</summary>'
                f'<pre><code data-lang="{language(seg.path)}">{esc(seg.text)}</code></pre></details>')
    return f'<pre class="{cls}" {attrs}>{esc(seg.text)}</pre>'


def who_wrote(meta: dict[str, Any]) -> str:
    """Badges for the step's author and why a model's text was replaced, when it was."""
    out = []
    if "source" in meta:
        out.append(badge(f"by {meta['source']}", "src", "who wrote this text (meta.source)"))
    if meta.get("fallback"):
        out.append(badge(f"fallback: {meta['fallback']}", "fallback",
                         "the model's reply was rejected for this reason and replaced by the structural text"))
    if meta.get("truncated"):
        out.append(badge("truncated", "truncated", "the observation was cut by the read budget"))
    return " ".join(out)


THEN = " \u2192 "  # joins per-iteration values


def _number(value: Any) -> str:
    """A statistic as shown: floats to 4 decimals; None or NaN (nothing searched) as a dash."""
    if value is None or value != value:
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else esc(value)


def render_search(search: Any) -> str:
    """A searched step's log (`SearchLog.to_dict()`, retrace.refine.search): candidates, their NLL, the accepted ones.

    Known fields get their own places; anything else is shown as JSON, so a newer log still renders.
    """
    if isinstance(search, list):
        search = {"candidates": search}
    if not isinstance(search, dict):
        return f'<pre class="search-raw">{esc(json.dumps(search, indent=1))}</pre>'
    candidates = search.get("candidates") or []
    badges, blocks = [], []
    for key, value in search.items():
        if key == "candidates":
            continue
        if isinstance(value, list) and all(isinstance(v, (int, float)) for v in value):
            badges.append(badge(f"{key}: {THEN.join(_number(v) for v in value) or '-'}", "info",
                                "per iteration, index 0 before search"))
        elif isinstance(value, str) and len(value) > 60 or isinstance(value, (list, dict)):
            text = value if isinstance(value, str) else json.dumps(value, indent=1, ensure_ascii=False)
            blocks.append(f"<details><summary>{esc(key)}</summary><pre>{esc(text)}</pre></details>")
        else:
            badges.append(badge(f"{key}: {_number(value)}", "fallback" if value is True else "info"))
    rows = []
    for i, cand in enumerate(candidates, 1):
        cand = cand if isinstance(cand, dict) else {"text": cand}
        accepted = cand.get("accepted")
        marks = badge("accepted", "accepted") if accepted else (badge("rejected", "rejected")
                                                                 if accepted is False else "")
        if cand.get("leak"):
            marks += " " + badge(f"leak: {cand['leak']}", "truncated", "refused by the leakage guard")
        known = {"text", "content", "nll", "score", "accepted", "leak", "iteration"}
        extra = ", ".join(f"{esc(k)} {_number(v)}" for k, v in cand.items() if k not in known)
        rows.append(f'<tr class="{"acc" if accepted else ""}"><td>{i}</td><td>{_number(cand.get("iteration", ""))}'
                    f'</td><td>{_number(cand.get("nll", cand.get("score", "")))}</td><td>{marks}</td>'
                    f'<td>{extra}</td><td><pre>{esc(cand.get("text", cand.get("content", "")))}</pre></td></tr>')
    table = ('<table><thead><tr><th>#</th><th>iteration</th><th>NLL</th><th></th><th>other</th><th>text</th>'
             f'</tr></thead><tbody>{"".join(rows)}</tbody></table>') if rows else ""
    return (f'<details class="search"><summary>search log: {len(candidates)} candidates</summary>'
            f'<p>{" ".join(badges)}</p>{"".join(blocks)}{table}</details>')


def render_step(view: StepView) -> str:
    step = view.step
    title = STEP_TITLES.get(step.kind, step.kind)
    if view.dropped:
        title += " (dropped by search: not in the document)"
    target = f" {esc(step.path)}" if step.path and step.kind in ("read", "write") else ""
    parts = [f'<div class="step k-{esc(step.kind)}"><div class="step-head"><span class="kind">{esc(title)}</span>'
             f'<span class="target">{target}</span> {who_wrote(step.meta)}</div>']
    parts.extend(render_segment(seg) for seg in view.segments)
    if view.dropped:
        parts.append(f'<pre class="dropped" title="not in the training document">{esc(step.content)}</pre>')
    if step.search is not None:
        log = step.search.to_dict()
        parts.append(render_search({k: v for k, v in log.items() if k == "candidates" or v not in (None, "", [], {})}))
    if step.grounding is not None:
        parts.append('<details class="facts"><summary>grounding facts</summary>'
                     f"<pre>{esc(grounding_text(step.grounding))}</pre></details>")
    parts.append("</div>")
    return "".join(parts)


def grounding_text(grounding: Grounding) -> str:
    """The analysis facts a Think may rely on, as plain lines: purpose, imports, calls, definitions."""
    lines = [f"file: {grounding.path} ({grounding.language or 'unknown language'}, {grounding.n_lines} lines)",
             f"purpose: {grounding.purpose or '-'}"]
    lines += [f"uses from {dep}: {', '.join(names) or 'the module'}" for dep, names in grounding.imported_names.items()]
    if grounding.external_imports:
        lines.append(f"imports: {', '.join(grounding.external_imports)}")
    if grounding.calls:
        lines.append(f"calls: {', '.join(grounding.calls)}")
    for d in grounding.definitions:
        doc = f"  # {d.doc}" if d.doc else ""
        lines.append(f"{'    ' if d.parent else ''}line {d.line}: {d.signature or d.name}{doc}")
    return "\n".join(lines)


def group_episodes(steps: list[StepView]) -> tuple[list[StepView], dict[str, list[StepView]], list[StepView]]:
    """Main-agent steps before the first delegation, each file's episode (delegate first), the rest."""
    before: list[StepView] = []
    after: list[StepView] = []
    episodes: dict[str, list[StepView]] = {}
    for view in steps:
        step = view.step
        if step.agent == MAIN_AGENT and step.kind == "delegate" and step.path:
            episodes.setdefault(step.path, []).append(view)
        elif step.agent != MAIN_AGENT:
            episodes.setdefault(step.agent, []).append(view)
        else:
            (after if episodes else before).append(view)
    return before, episodes, after


def add_dropped(episodes: dict[str, list[StepView]], meta: dict[str, Any]) -> None:
    """Thinks the search dropped (`meta.refine.dropped`) go back into their episode: before its Reads (a Think
    searched as `think_read`) or its Write."""
    for record in (meta.get("refine") or {}).get("dropped") or []:
        data = record.get("step") or {}
        if data.get("agent") not in episodes:
            continue
        step = Step.from_dict(data)
        views = episodes[step.agent]
        before = "read" if step.search is not None and step.search.kind == "think_read" else "write"
        at = next((i for i, v in enumerate(views) if v.step.kind in (before, "write")), len(views))
        views.insert(at, StepView(step, [], dropped=True))


def episode_summary(index: int, path: str, views: list[StepView]) -> str:
    kinds = [v.step.kind for v in views]
    sources = sorted({str(v.step.meta["source"]) for v in views if "source" in v.step.meta})
    payload = next((v.step.content for v in views if v.step.kind == "write"), "")
    bits = [f'<span class="num">{index}.</span> <span class="path">{esc(path)}</span>',
            badge(f"{kinds.count('read')} reads"), badge(f"{payload.count(chr(10))} lines")]
    bits += [badge(s, "src") for s in sources]
    if any(v.step.meta.get("fallback") for v in views):
        bits.append(badge("fallback", "fallback"))
    if any(v.step.meta.get("truncated") for v in views):
        bits.append(badge("truncated read", "truncated"))
    if any(v.step.search is not None for v in views):
        bits.append(badge("searched", "info"))
    return " ".join(bits)


def render_graph_notes(meta: dict[str, Any]) -> str:
    cycles = meta.get("cycles") or []
    broken = meta.get("broken_edges") or []
    failures = meta.get("parse_failures") or []
    if not (cycles or broken or failures):
        return '<p class="muted">No import cycles, no broken edges, no parse failures.</p>'
    out = []
    if cycles:
        items = "".join(f"<li>{' &harr; '.join(esc(p) for p in cycle)}</li>" for cycle in cycles)
        out.append(f"<h3>Import cycles ({len(cycles)})</h3><ul>{items}</ul>")
    if broken:
        items = "".join(f"<li><code>{esc(edge[0])}</code> &rarr; <code>{esc(edge[1])}</code></li>"
                        if isinstance(edge, (list, tuple)) and len(edge) == 2 else f"<li>{esc(edge)}</li>"
                        for edge in broken)
        out.append(f"<h3>Broken edges ({len(broken)})</h3><ul>{items}</ul>"
                   '<p class="muted">Imports the development order could not honour: the first file imports '
                   "the second, which is written later.</p>")
    if failures:
        items = "".join(f"<li>{esc(f if isinstance(f, str) else json.dumps(f))}</li>" for f in failures)
        out.append(f"<h3>Parse failures ({len(failures)})</h3><ul>{items}</ul>")
    return "".join(out)


def render_order(order: list[str], index_of: dict[str, int], cycle_files: set[str]) -> str:
    items = []
    for path in order:
        mark = " " + badge("cycle", "fallback", "part of an import cycle") if path in cycle_files else ""
        link = f'<a href="#{anchor(index_of[path])}">{esc(path)}</a>' if path in index_of else esc(path)
        items.append(f"<li>{link}{mark}</li>")
    return f'<ol class="order">{"".join(items)}</ol>'


def render_repo_body(repo: RepoView, index_href: str) -> str:
    traj = repo.trajectory
    meta = traj.meta
    before, episodes, after = group_episodes(repo.steps)
    add_dropped(episodes, meta)
    ordered = [p for p in traj.order if p in episodes] + [p for p in episodes if p not in traj.order]
    index_of = {path: i for i, path in enumerate(ordered, 1)}
    cycle_files = {p for cycle in meta.get("cycles") or [] for p in cycle}
    sources = ", ".join(f"{esc(k)}: {v}" for k, v in sorted((meta.get("text_sources") or {}).items()))
    facts = [("split", esc(repo.split)), ("source", esc(traj.source)),
             ("revision", esc(meta.get("revision") or "-")), ("licence", esc(meta.get("license") or "-")),
             ("files", len(traj.order)), ("steps", len(traj.steps)),
             ("document", f"{repo.document_chars:,} chars"),
             ("trained share", f"{repo.trained_share:.1%} of characters"),
             ("Raw-Repos baseline", f"{repo.raw_chars:,} chars" if repo.raw_chars is not None else "-"),
             ("text sources", sources or "-")]
    if meta.get("repository"):  # a sub-project (docs/documents.md): its repository, and what it reads of the rest
        reads = meta.get("reads_from_other_parts") or []
        facts[1:1] = [("part of", esc(meta["repository"])),
                      ("reads from other parts", ", ".join(f"<code>{esc(p)}</code>" for p in reads) or "-")]
    refine_stats = (meta.get("refine") or {}).get("stats")
    if isinstance(refine_stats, dict):
        facts.append(("search", " ".join(badge(f"{k}: {_number(v)}", "info")
                                         for k, v in refine_stats.items() if not isinstance(v, (list, dict)))))
    skipped = (meta.get("refine") or {}).get("skipped") or {}  # Thinks not searched, by reason (window, between)
    if skipped:
        facts.append(("not searched", " ".join(badge(f"{esc(k)}: {v}", "info") for k, v in sorted(skipped.items()))))
    kinds = "".join(f"<tr><td>{esc(k)}</td><td>{t:,}</td><td>{m:,}</td></tr>" for k, (t, m) in repo.kind_chars.items())
    parts = [
        f'<header><nav><a href="{esc(index_href)}">&larr; all repositories</a>'
        '<span class="tools"><button type="button" data-act="expand">expand all</button>'
        '<button type="button" data-act="collapse">collapse all</button></span></nav>'
        f"<h1>{esc(traj.repo)}</h1>{LEGEND}</header>",
        '<section class="facts-grid"><table class="kv">'
        + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in facts) + "</table>"
        '<table class="kinds"><thead><tr><th>segment kind</th><th>trained chars</th><th>masked chars</th></tr>'
        f"</thead><tbody>{kinds}</tbody></table></section>",
    ]
    if repo.mismatch:
        parts.append(f'<p class="warning">Shown from the trajectory\'s own flattening: {esc(repo.mismatch)}.</p>')
    parts.append('<section id="main-agent"><h2>Main agent: requirements and plan</h2>'
                 + "".join(render_step(v) for v in before) + "</section>")
    parts.append(f'<section id="order"><h2>Development order ({len(traj.order)} files)</h2>'
                 + render_order(traj.order, index_of, cycle_files) + "</section>")
    parts.append('<section id="graph"><h2>Cycles and broken edges</h2>' + render_graph_notes(meta) + "</section>")
    episode_html = []
    for path in ordered:
        views = episodes[path]
        episode_html.append(f'<details class="episode" id="{anchor(index_of[path])}">'
                            f"<summary>{episode_summary(index_of[path], path, views)}</summary>"
                            + "".join(render_step(v) for v in views) + "</details>")
    parts.append(f'<section id="episodes"><h2>Sub-agent episodes ({len(ordered)})</h2>{"".join(episode_html)}</section>')
    if after:
        parts.append('<section id="main-after"><h2>Main agent, after the episodes</h2>'
                     + "".join(render_step(v) for v in after) + "</section>")
    return "".join(parts)


LEGEND = ('<p class="legend">'
          '<span><span class="seg trained">trained</span> carries loss: Think, plan, actions, the written file</span>'
          '<span><span class="seg masked">masked</span> read but not trained on: Read results, tool acknowledgements'
          '</span><span><span class="badge src">by structural</span> who wrote a text</span>'
          '<span><span class="badge fallback">fallback: reason</span> model reply replaced</span>'
          '<span><span class="badge truncated">truncated</span> read cut by the budget</span></p>')
