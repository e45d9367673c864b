"""The publisher's polling hints as parse.py reads them from real feed files.

Each file under ``tests/data/feeds/hints/`` tests one behaviour (its header comment says
which); the expected hints sit beside it as ``<name>.json``. Files are discovered by name.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aggregator.parse.feed import parse_feed

HINTS = Path(__file__).parent / "data" / "feeds" / "hints"
CASES = sorted(p for p in HINTS.iterdir() if p.suffix != ".json")


@pytest.mark.parametrize("path", CASES, ids=[p.name for p in CASES])
def test_feed_hints(path: Path) -> None:
    expected = json.loads(path.with_suffix(".json").read_text())
    feed = parse_feed(path.read_bytes())
    assert feed.entries, "the feed itself must still be read"
    assert feed.ttl_minutes == expected["ttl_minutes"]
    assert feed.update_period_seconds == expected["update_period_seconds"]
    assert feed.skip_hours == frozenset(expected["skip_hours"])
    assert feed.skip_days == frozenset(expected["skip_days"])


def test_every_case_has_its_expectations() -> None:
    assert CASES
    for path in CASES:
        assert path.with_suffix(".json").exists(), path.name
