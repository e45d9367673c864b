"""Where the shared corpora are, for the tests that read them in place.

The corpora live outside the project, at ``../shared/corpora/<name>`` from its root (read-only,
shared by every checkout of this workplace). A clone elsewhere has none: the tests that need one
skip with a message saying where it was looked for. Under ``CI=true`` they fail instead, so
that the equality tests that guard the fast parsers cannot switch off unnoticed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: The folder that holds the shared corpora.
SHARED = Path(__file__).resolve().parents[2] / "shared" / "corpora"
#: feedparser's own test files (2,107 one-behaviour documents).
FEEDPARSER_TESTS = "feedparser-tests"
#: 187 real feeds and 24 real blog pages captured by other projects.
REALWORLD = "realworld"


def in_ci() -> bool:
    """Whether this run is a CI run (``CI=true``, as CI services set it)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def corpus(name: str) -> Path:
    """The folder of the shared corpus ``name``.

    When it is absent the calling test is skipped, or fails under ``CI=true``; call it from
    a test or a fixture, not at import time.
    """
    path = SHARED / name
    if path.is_dir():
        return path
    message = f"the shared corpus {name!r} is not at {path}"
    if in_ci():
        pytest.fail(f"{message}; CI=true requires it", pytrace=False)
    pytest.skip(message)
