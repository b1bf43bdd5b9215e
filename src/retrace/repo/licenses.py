"""Guess a repository's licence from the text of its LICENSE/COPYING file.

A guess, not a legal finding: it exists so snapshots can carry a licence field that filters and
dataset cards can use. An SPDX identifier in the file wins; otherwise a few well-known phrases are
matched; otherwise the first non-empty line is returned as-is (truncated). Repositories without a
licence file fall back to the SPDX headers of their source files.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Iterable

_SPDX = re.compile(r"SPDX-License-Identifier:\s*([A-Za-z0-9.+\-() ]+?)\s*(?:\*/|-->|$)", re.MULTILINE)

# (license id, phrases that must all occur in the upper-cased text); first match wins.
_PHRASES: list[tuple[str, tuple[str, ...]]] = [
    ("AGPL-3.0", ("GNU AFFERO GENERAL PUBLIC LICENSE",)),
    ("LGPL-3.0", ("GNU LESSER GENERAL PUBLIC LICENSE", "VERSION 3")),
    ("LGPL-2.1", ("GNU LESSER GENERAL PUBLIC LICENSE",)),
    ("GPL-3.0", ("GNU GENERAL PUBLIC LICENSE", "VERSION 3")),
    ("GPL-2.0", ("GNU GENERAL PUBLIC LICENSE", "VERSION 2")),
    ("Apache-2.0", ("APACHE LICENSE", "VERSION 2.0")),
    ("MPL-2.0", ("MOZILLA PUBLIC LICENSE", "2.0")),
    ("PSF-2.0", ("PYTHON SOFTWARE FOUNDATION LICENSE",)),
    ("MIT", ("PERMISSION IS HEREBY GRANTED, FREE OF CHARGE",)),
    ("ISC", ("PERMISSION TO USE, COPY, MODIFY, AND/OR DISTRIBUTE THIS SOFTWARE",)),
    ("BSD-3-Clause", ("REDISTRIBUTION AND USE IN SOURCE AND BINARY FORMS", "NEITHER THE NAME")),
    ("BSD-2-Clause", ("REDISTRIBUTION AND USE IN SOURCE AND BINARY FORMS",)),
    ("Unlicense", ("THIS IS FREE AND UNENCUMBERED SOFTWARE RELEASED INTO THE PUBLIC DOMAIN",)),
    ("CC0-1.0", ("CC0 1.0 UNIVERSAL",)),
]


def guess_license(text: str) -> str | None:
    """Return an SPDX-like id for a licence text, else its first non-empty line, else None."""
    match = _SPDX.search(text)
    if match:
        return match.group(1).strip()
    upper = " ".join(text.upper().split())
    for license_id, phrases in _PHRASES:
        if all(phrase in upper for phrase in phrases):
            return license_id
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:100]
    return None


LICENSE_FILE_PREFIXES = ("license", "licence", "copying")
SPDX_HEAD_CHARS = 2_000


def is_license_file(path: str) -> bool:
    """A root-level LICENSE*, LICENCE* or COPYING* file (any case, any extension)."""
    return "/" not in path and path.lower().startswith(LICENSE_FILE_PREFIXES)


def license_from_headers(texts: Iterable[str]) -> str | None:
    """The most common `SPDX-License-Identifier` in the heads of source files (ties: first seen), or None."""
    counts: collections.Counter = collections.Counter()
    for text in texts:
        match = _SPDX.search(text[:SPDX_HEAD_CHARS])
        if match:
            counts[match.group(1).strip()] += 1
    return counts.most_common(1)[0][0] if counts else None
