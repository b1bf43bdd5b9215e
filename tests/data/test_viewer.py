"""The HTML viewer: pages for every repository, hostile content shown as text, loss flags from disk.

The Chromium tests load the pages in a real headless Chromium found on the machine (`$RETRACE_CHROMIUM`, else
`chromium`, `chromium-browser`, `google-chrome` or `google-chrome-stable` on PATH; skipped, saying so, without one):
the page's script must run to the end (`<body data-ready="1">`), highlight code, raise no error, and
no script from the repository may run.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest
from synth_fixture import DROPPED_THINK, HOSTILE_REPO, IMG, PWN, WEIRD_FILE, build_synth_output

from retrace.data import Document
from retrace.data.layout import artifact_path
from retrace.data.viewer import write_viewer

PAGE = artifact_path("train", "", HOSTILE_REPO, ".html").as_posix()  # train/<xx>/hostile_repo_co-<hash>.html
HELDOUT_PAGE = artifact_path("heldout", "", "heldlib", ".html").as_posix()


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    return build_synth_output(tmp_path_factory.mktemp("viewer"))


@pytest.fixture(scope="module")
def site(synth) -> Path:
    return write_viewer(synth).parent


class Elements(HTMLParser):
    """Start tags with their attributes, as a browser's parser sees them."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_index_and_pages_for_both_splits(site):
    index = (site / "index.html").read_text(encoding="utf-8")
    assert (site / PAGE).is_file() and (site / HELDOUT_PAGE).is_file()
    assert f'href="{PAGE}"' in index and f'href="{HELDOUT_PAGE}"' in index
    assert "hostile&lt;repo&gt;&amp;co" in index and "heldlib" in index
    assert "abc123-test" in index  # git revision from run_info.json
    page = (site / PAGE).read_text(encoding="utf-8")
    for expected in ("Main agent: requirements and plan", "Development order (6 files)", "Import cycles (1)",
                     "Broken edges (1)", 'class="legend"', "search log: 3 candidates", "1.2345", "accepted",
                     "incumbent_nll: 1.1000 \u2192 1.0123", "leak: ngram", "fallback: too_short", "by hf",
                     "truncated", "dropped by search: not in the document", DROPPED_THINK, "mean_nll_gain: 0.0877",
                     "not searched", "between: 1",
                     "grounding facts", "purpose: Helpers.", "line 4: def clamp(x, lo, hi)  # Clamp x into [lo, hi]."):
        assert expected in page, expected
    assert page.count('<details class="episode"') == 6
    assert 'open><summary><span class="num">' not in page  # episodes start collapsed


def test_hostile_content_renders_as_text(site):
    for rel in ("index.html", PAGE, HELDOUT_PAGE):
        text = (site / rel).read_text(encoding="utf-8")
        tags = Elements(text).tags
        assert [t for t, _ in tags].count("script") == 1, f"{rel}: only the viewer's own script"
        assert not [t for t, _ in tags if t == "img"], f"{rel}: an <img> from repository content"
        assert not any(k.startswith("on") for _, attrs in tags for k in attrs), f"{rel}: an event handler"
        assert "<script>document" not in text
    page = (site / PAGE).read_text(encoding="utf-8")
    assert "&lt;/script&gt;&lt;script&gt;document.body.setAttribute(&quot;data-pwned&quot;" in page
    assert "we&amp;ird&lt;b&gt;.py" in page and "<b>.py" not in page
    assert "I plan the engine. &lt;img src=x onerror=" in page  # model-written text escaped too


def test_segment_flags_come_from_the_document_on_disk(synth, tmp_path):
    doc_path = artifact_path(synth, "documents", HOSTILE_REPO)
    doc = Document.from_dict(json.loads(doc_path.read_text(encoding="utf-8")))
    page = (write_viewer(synth, tmp_path / "a").parent / PAGE).read_text(encoding="utf-8")
    shown = [a for t, a in Elements(page).tags if "seg" in (a.get("class") or "").split() and "data-kind" in a]
    body = [s for s in doc.segments if s.kind != "header"]
    assert [(a["data-kind"], "trained" in a["class"]) for a in shown] == [(s.kind, s.train) for s in body]
    assert any(not s.train for s in body) and any(s.train for s in body)
    # A document whose flags differ (a payload masked) is shown as it is on disk.
    first_payload = next(s for s in doc.segments if s.kind == "payload")
    first_payload.train = False
    doc_path.write_text(json.dumps(doc.to_dict()) + "\n", encoding="utf-8")
    try:
        page = (write_viewer(synth, tmp_path / "b").parent / PAGE).read_text(encoding="utf-8")
        assert 'class="code seg masked" data-kind="payload"' in page
        assert "document differs" not in page
        # A document whose text no longer matches the trajectory is flagged, not silently misdrawn.
        first_payload.text += "# edited\n"
        doc_path.write_text(json.dumps(doc.to_dict()) + "\n", encoding="utf-8")
        site = write_viewer(synth, tmp_path / "c").parent
        assert "document on disk differs from the trajectory" in (site / PAGE).read_text(encoding="utf-8")
        assert "document differs" in (site / "index.html").read_text(encoding="utf-8")
    finally:
        first_payload.train, first_payload.text = True, first_payload.text.removesuffix("# edited\n")
        doc_path.write_text(json.dumps(doc.to_dict()) + "\n", encoding="utf-8")


def test_cli_writes_default_and_chosen_folders(synth, tmp_path):
    run = [sys.executable, "-m", "retrace.data.viewer"]
    out = subprocess.run([*run, str(synth), "--out", str(tmp_path / "v")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "v" / "index.html").is_file() and (tmp_path / "v" / PAGE).is_file()
    bad = subprocess.run([*run, str(tmp_path / "nothing")], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "not a synthesis output directory" in bad.stderr


# --- real headless Chromium -------------------------------------------------------------------------------

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--enable-logging=stderr", "--v=0"]


CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> tuple[str | None, str]:
    """(a Chromium that runs, '') or (None, why not): `$RETRACE_CHROMIUM` first, else the usual names on PATH.

    A binary must answer `--version` (Ubuntu's `chromium-browser` can be a stub asking for the snap).
    """
    wanted = os.environ.get("RETRACE_CHROMIUM")
    candidates = [wanted] if wanted else list(CHROMIUM_NAMES)
    tried = []
    for name in candidates:
        path = shutil.which(name)
        if path is None:
            tried.append(f"{name} (not found)")
            continue
        try:
            version = subprocess.run([path, "--headless", "--no-sandbox", "--version"], capture_output=True,
                                     text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            tried.append(f"{path} ({exc.__class__.__name__})")
            continue
        if version.returncode == 0 and "chrom" in version.stdout.lower():
            return path, ""
        tried.append(f"{path} (--version exited {version.returncode})")
    where = "RETRACE_CHROMIUM" if wanted else "PATH"
    return None, (f"no usable Chromium for the viewer's browser tests on {where}: tried {', '.join(tried)}; "
                  "install one (e.g. `apt-get install chromium`, as .ci/run does) or set RETRACE_CHROMIUM to its path")


@pytest.fixture(scope="module")
def chromium() -> str:
    found, why = find_chromium()
    if found is None:
        pytest.skip(why)
    return found


def run_chromium(binary: str, profile: Path, url: str, *action: str) -> subprocess.CompletedProcess:
    return subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *action, url],
                          capture_output=True, text=True, timeout=180)


def png_pixels(data: bytes, max_rows: int = 800) -> tuple[int, int, list[bytes]]:
    """Width, height and the first `max_rows` unfiltered rows of an 8-bit, non-interlaced RGB(A) PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        header = struct.unpack(">IIBBBBB", chunk) if kind == b"IHDR" else header
        idat += chunk if kind == b"IDAT" else b""
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    bpp = 3 if colour == 2 else 4
    raw, stride, rows, prev = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
    for y in range(min(height, max_rows)):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, rows


@pytest.mark.parametrize("rel", ["index.html", PAGE + "#expand", HELDOUT_PAGE])
def test_pages_render_in_headless_chromium(chromium, site, tmp_path, rel):
    url = (site / rel.split("#")[0]).as_uri() + ("#" + rel.split("#")[1] if "#" in rel else "")
    shot = tmp_path / "shot.png"
    result = run_chromium(chromium, tmp_path / "profile", url, f"--screenshot={shot}", "--window-size=1280,2000")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Uncaught" not in result.stderr and "CONSOLE" not in result.stderr, result.stderr[-3000:]
    width, height, rows = png_pixels(shot.read_bytes())
    assert (width, height) == (1280, 2000) and shot.stat().st_size > 10_000
    sample = {row[x:x + 3] for row in rows[::10] for x in range(0, width * 3, 30)}
    assert len(sample) > 20, "the screenshot is (nearly) a single colour"

    dom = run_chromium(chromium, tmp_path / "profile", url, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-3000:]
    body = next(a for t, a in Elements(dom.stdout).tags if t == "body")
    assert body.get("data-ready") == "1", "the viewer's script did not run to the end"
    assert "data-js-error" not in body and "data-pwned" not in body
    if rel.startswith(PAGE):
        assert WEIRD_FILE.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in dom.stdout
        assert 'class="tk-kw"' in dom.stdout, "code in the opened episodes was not highlighted"
        assert PWN.replace("<", "&lt;").replace(">", "&gt;") in dom.stdout, "hostile code shown as text"
        assert IMG not in dom.stdout
    if rel == "index.html":
        assert HOSTILE_REPO.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") in dom.stdout
