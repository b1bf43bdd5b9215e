"""Write the viewer: one static page per repository and split, and an index page.

Pages are self-contained (the CSS and script are inlined from the package's template files, nothing
is fetched), so the folder can be copied anywhere and opened from disk. Each page is written
atomically; a repository is read, rendered and released before the next, so memory stays at one
repository whatever the size of the run.

A run of 300k repositories is not read page by page: the viewer shows a sample of at most
`max_repositories` (the recipe's `viewer_max_repositories`), the ones whose `split/file name` has the
smallest SHA-256, so the same repositories are shown on every run and a repository once shown stays
shown until ones with smaller hashes arrive. Pages sit under the artifacts' hashed subfolders
(`<split>/<xx>/<name>.html`), and pages of repositories no longer in the sample are removed.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import json
import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from retrace.atomic import write_text
from retrace.data.layout import artifact_files
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
    href = repo.page
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


def render_index(output_dir: Path, rows: list[str], total: int | None = None) -> str:
    table = ('<table class="index" id="repos"><thead><tr><th>split</th><th>repository</th><th>source</th>'
             "<th>files</th><th>steps</th><th>document chars</th><th>Raw-Repos chars</th><th>trained share</th>"
             f"<th>cycles</th><th>text sources</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")
    empty = "" if rows else '<p class="warning">No trajectories found under this directory.</p>'
    total = len(rows) if total is None else total
    sample = (f"<p class=muted>A sample of {len(rows):,} of {total:,} repositories, chosen by a stable hash of "
              "their names (viewer_max_repositories).</p>" if total > len(rows) else "")
    return (f"<header><h1>retrace trajectories</h1><p class=muted>{esc(output_dir)}</p>{run_summary(output_dir)}"
            f'{sample}{LEGEND}<p><input type="search" id="filter" placeholder="filter repositories"></p></header>'
            f"{empty}{table}")


def _sample_key(split: str, traj_path: Path) -> str:
    return hashlib.sha256(f"{split}/{traj_path.name}".encode()).hexdigest()


def sample_trajectories(output_dir: str | Path, max_repositories: int | None) -> tuple[list[tuple[str, Path]], int]:
    """The `(split, trajectory file)` pairs the viewer shows, in split then file-name order, and how many exist.

    At most `max_repositories` (None or 0: all): those with the smallest hash (see the module docstring),
    chosen while streaming the file names, so memory holds the sample, not the run.
    """
    total = 0

    def every() -> Iterator[tuple[str, int, Path]]:
        nonlocal total
        for rank, split in enumerate(SPLITS):
            for traj_path in trajectory_files(output_dir, split):
                total += 1
                yield split, rank, traj_path

    if max_repositories:
        chosen = heapq.nsmallest(max_repositories, every(), key=lambda item: _sample_key(item[0], item[2]))
    else:
        chosen = list(every())
    chosen.sort(key=lambda item: (item[1], item[2].name))
    return [(split, path) for split, _, path in chosen], total


def write_viewer(output_dir: str | Path, out_dir: str | Path | None = None, max_repositories: int | None = None) -> Path:
    """Render a sample of at most `max_repositories` repositories of both splits (None or 0: every one) under
    `out_dir` (default `<output_dir>/viewer`); the index path."""
    output_dir = Path(output_dir)
    out = Path(out_dir) if out_dir is not None else output_dir / "viewer"
    rows, written = [], set()
    chosen, total = sample_trajectories(output_dir, max_repositories)
    for split, traj_path in chosen:
        repo = load_repo(output_dir, split, traj_path)
        body = render_repo_body(repo, "../" * repo.page.count("/") + INDEX)
        write_text(out / repo.page, page(f"{repo.trajectory.repo} - retrace", body))
        written.add(out / repo.page)
        rows.append(index_row(repo))
    for split in SPLITS:  # pages of repositories no longer shown (another sample, a removed repository)
        for stale in set(artifact_files(out / split, ".html")) - written:
            stale.unlink()
    index = out / INDEX
    write_text(index, page("retrace trajectories", render_index(output_dir, rows, total)))
    return index
