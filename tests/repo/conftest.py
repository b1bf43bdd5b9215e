"""Fixtures for the repository-grounding tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """RETRACE_CACHE in the test's temp dir: clones and extractions never touch the user's cache."""
    monkeypatch.setenv("RETRACE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"
