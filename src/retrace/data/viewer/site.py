"""Write the viewer: one static page per repository and split, and an index page.

Pages are self-contained (the CSS and script are inlined from the package's template files, nothing
is fetched), so the folder can be copied anywhere and opened from disk. Each page is written
atomically; a repository is read, rendered and released before the next, so memory stays at one
repository whatever the size of the run.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

from retrace.atomic import write_text
from retrace.data.viewer.load import SPLITS, RepoView, load_repo, trajectory_files
from retrace.data.viewer.page import LEGEND, badge, esc, render_repo_body

INDEX = "index.html"


def template(name: str) -> str:
    return resources.files("retrace.data.viewer").joinpath("templates", name).read_text(encoding="utf-8")


def fill(text: str, values: dict[str, str]) -> str:
    """Substitute `{{name}}` placeholders in one pass, so inserted content is never re-expanded."""
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], text)


def page(title: str, body: str) -> str:
    """A whole HTML document; only the page's own script may run (its hash is the CSP's one allowance)."""
    script = template("viewer.js")
    script_hash = "sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    return fill(template("page.html"), {"title": esc(title), "css": template("viewer.css"), "js": script,
                                        "script_hash": script_hash, "body": body})


def index_row(repo: RepoView) -> str:
    traj = repo.trajectory
    sources = " ".join(badge(f"{k} {v}", "src") for k, v in sorted((traj.meta.get("text_sources") or {}).items()))
    href = f"{repo.split}/{repo.name}.html"
    status = badge("document differs", "fallback", repo.mismatch) if repo.mismatch else ""
    cycles = len(traj.meta.get("cycles") or [])
    return (f'<tr><td>{esc(repo.split)}</td><td><a href="{esc(href)}">{esc(traj.repo)}</a> {status}</td>'
            f"<td>{esc(traj.source)}</td><td class=n>{len(traj.order)}</td><td class=n>{len(traj.steps)}</td>"
            f"<td class=n>{repo.document_chars:,}</td>"
            f"<td class=n>{'-' if repo.raw_chars is None else f'{repo.raw_chars:,}'}</td>"
            f"<td class=n>{repo.trained_share:.1%}</td><td class=n>{cycles}</td><td>{sources}</td></tr>")


def run_summary(output_dir: Path) -> str:
    """Where the run came from: git revision and the per-split counts of stats.json, when present."""
    lines = []
    info_path = output_dir / "run_info.json"
    if info_path.is_file():
        info: dict[str, Any] = json.loads(info_path.read_text(encoding="utf-8"))
        lines.append(f"git revision <code>{esc(info.get('git_revision') or '-')}</code>, "
                     f"recipe <code>{esc(info.get('recipe_path') or '-')}</code>, {esc(info.get('time') or '')}")
    stats_path = output_dir / "stats.json"
    if stats_path.is_file():
        splits = json.loads(stats_path.read_text(encoding="utf-8")).get("splits", {})
        for split, s in splits.items():
            skipped = ", ".join(f"{esc(k)} {v}" for k, v in (s.get("skipped") or {}).items()) or "none"
            lines.append(f"{esc(split)}: {s.get('repos_kept', '?')} of {s.get('repos_seen', '?')} repositories, "
                         f"{s.get('files_kept', '?')} of {s.get('files_seen', '?')} files kept (skipped: {skipped})")
    return "".join(f"<p class=muted>{line}</p>" for line in lines)


def render_index(output_dir: Path, rows: list[str]) -> str:
    table = ('<table class="index" id="repos"><thead><tr><th>split</th><th>repository</th><th>source</th>'
             "<th>files</th><th>steps</th><th>document chars</th><th>Raw-Repos chars</th><th>trained share</th>"
             f"<th>cycles</th><th>text sources</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")
    empty = "" if rows else '<p class="warning">No trajectories found under this directory.</p>'
    return (f"<header><h1>retrace trajectories</h1><p class=muted>{esc(output_dir)}</p>{run_summary(output_dir)}"
            f'{LEGEND}<p><input type="search" id="filter" placeholder="filter repositories"></p></header>'
            f"{empty}{table}")


def write_viewer(output_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Render every repository of both splits under `out_dir` (default `<output_dir>/viewer`); the index path."""
    output_dir = Path(output_dir)
    out = Path(out_dir) if out_dir is not None else output_dir / "viewer"
    rows = []
    for split in SPLITS:
        for traj_path in trajectory_files(output_dir, split):
            repo = load_repo(output_dir, split, traj_path)
            body = render_repo_body(repo, f"../{INDEX}")
            write_text(out / split / f"{repo.name}.html", page(f"{repo.trajectory.repo} - retrace", body))
            rows.append(index_row(repo))
    index = out / INDEX
    write_text(index, page("retrace trajectories", render_index(output_dir, rows)))
    return index
