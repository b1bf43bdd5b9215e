"""The viewer at scale: a sample of at most N repositories, the same on every run, and the index says so."""

from __future__ import annotations

from pathlib import Path

from toy_export import write_toy_output

from retrace.data.layout import artifact_files
from retrace.data.viewer import write_viewer

REPOS = [f"owner/repo-{i}" for i in range(12)]


def pages(site: Path) -> set[str]:
    return {p.relative_to(site).as_posix() for split in ("train", "heldout") for p in artifact_files(site / split, ".html")}


def test_a_stable_sample_with_the_index_saying_so(tmp_path):
    out = write_toy_output(tmp_path / "synth", REPOS, heldout=["held/one", "held/two"])
    index = write_viewer(out, max_repositories=5)
    site = index.parent
    shown = pages(site)
    assert len(shown) == 5
    text = index.read_text(encoding="utf-8")
    assert "A sample of 5 of 14 repositories" in text
    assert all(f'href="{page}"' in text for page in shown)
    page = (site / sorted(shown)[0]).read_text(encoding="utf-8")
    assert 'href="../../index.html"' in page  # pages sit in hashed subfolders: the way back is two up

    assert write_viewer(out, max_repositories=5) == index and pages(site) == shown  # same sample again
    write_viewer(out, max_repositories=3)
    assert pages(site) < shown and len(pages(site)) == 3  # a smaller sample is a subset; old pages removed

    write_toy_output(out, ["owner/late-arrival"])
    write_viewer(out, max_repositories=0)
    assert len(pages(site)) == 15 and "A sample of" not in index.read_text(encoding="utf-8")
