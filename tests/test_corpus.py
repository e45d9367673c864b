"""feedparser's own corpus (2,107 one-behaviour files) through aggregator's parse path, and its
745 hostile HTML cases through parse -> store -> publish, with our output read back.

The corpus lives outside the project, at ``../shared/corpora/feedparser-tests`` from the
project's root; these tests skip when it is absent (a clone outside this workplace), and fail
when it is absent under ``CI=true`` (``tests/corpora.py``).
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import pytest
from active_content import active_content
from corpora import FEEDPARSER_TESTS, corpus

from aggregator.config.outputs import OutputConfig
from aggregator.config.schema import AppConfig
from aggregator.config.sources import SourceConfig
from aggregator.errors import ParseError
from aggregator.models import CommentData, EntryData, SourceUpdate
from aggregator.parse.comment_feed import parse_comments
from aggregator.parse.feed import parse_feed
from aggregator.publish.publisher import Publisher
from aggregator.storage import Storage

# All of feedparser's corpus, through parse and publish: `make test-fast` leaves these out.
pytestmark = pytest.mark.slow

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
BASE = "http://127.0.0.1:8097/"
_HEADER = re.compile(r"^Header:\s*([\w-]+):\s*(.*)$", re.MULTILINE)


def corpus_files(folder: str = "") -> list[Path]:
    """The corpus's feed files under ``folder`` (skips, or fails under CI, without it)."""
    return sorted(
        path
        for path in (corpus(FEEDPARSER_TESTS) / folder).rglob("*")
        if path.is_file() and path.suffix in (".xml", ".json")
    )


def headers_of(content: bytes) -> dict[str, str]:
    """The HTTP headers a corpus file asks for in its description comment."""
    head = content[:2048].decode("latin-1")
    return {name.lower(): value.strip() for name, value in _HEADER.findall(head)}


def test_the_corpus_is_complete() -> None:
    assert len(corpus_files()) == 2107
    assert len(corpus_files("wellformed/sanitize")) == 745


def test_every_corpus_file_parses_or_is_one_parse_error() -> None:
    """All 2,107 files, in-process: a FeedData or a one-line ParseError, nothing else."""
    failures = []
    parsed = 0
    root = corpus(FEEDPARSER_TESTS)
    for path in corpus_files():
        content = path.read_bytes()
        try:
            parse_feed(content, headers_of(content), BASE + path.name, now=NOW)
            parse_comments(content, headers_of(content), BASE + path.name, now=NOW)
            parsed += 1
        except ParseError as error:
            if "\n" in str(error):
                failures.append(f"{path.relative_to(root)}: multi-line error {error!r}")
        except Exception as error:  # the point of the test: nothing else may escape
            failures.append(f"{path.relative_to(root)}: {type(error).__name__}: {error}")
    assert not failures, "\n".join(failures[:20])
    assert parsed > 2000


# -- the sanitize cases, end to end ----------------------------------------------------------


def html_fields(parsed: Any) -> list[str]:
    """Every HTML string in a feedparser result read with sanitizing off."""
    found: list[str] = []
    for part in [parsed.feed, *parsed.entries]:
        for key in ("content",):
            found += [c.get("value", "") for c in part.get(key, [])]
        for key in ("summary_detail", "subtitle_detail", "title_detail", "rights_detail"):
            detail = part.get(key)
            if detail and "html" in (detail.get("type") or ""):
                found.append(detail.get("value", ""))
    return found


def store_corpus(storage: Storage, files: list[Path]) -> list[SourceConfig]:
    """Every file as one source; every file's comments in one thread (one comment feed, since
    publishing writes, and fsyncs, three files per thread)."""
    sources = []
    comments: list[CommentData] = []
    with storage.transaction():
        storage.sync_sources(
            ((f"s{index:04d}", BASE + path.name) for index, path in enumerate(files)), NOW
        )
        for index, path in enumerate(files):
            name = f"s{index:04d}"
            content = path.read_bytes()
            url = BASE + path.name
            try:
                feed = parse_feed(content, headers_of(content), url, now=NOW)
                found = parse_comments(content, headers_of(content), url, now=NOW)
            except ParseError:
                continue
            state = storage.get_source(name)
            storage.store_entries(state, feed.entries, NOW)
            storage.update_source(state.id, SourceUpdate(title=feed.title, link=feed.link))
            sources.append(SourceConfig(name=name, url=url, comments=True))
            comments += [replace(c, key=f"{name}:{c.key}") for c in found]
        storage.sync_sources([("thread", BASE + "thread")], NOW)
        thread = storage.get_source("thread")
        storage.store_entries(thread, [EntryData(key="t", title="t", link=BASE + "t")], NOW)
        entry = storage.list_threads(thread.id, None)[0]
        storage.store_comments(entry.entry_id, entry.public_id, comments, NOW)
    sources.append(SourceConfig(name="thread", url=BASE + "thread", comments=True))
    return sources


def test_sanitize_cases_publish_no_active_content(tmp_path: Path) -> None:
    files = corpus_files("wellformed/sanitize")
    database = tmp_path / "corpus.db"
    with Storage(database) as storage:
        sources = store_corpus(storage, files)
        assert len(sources) == len(files) + 1
        assert storage.count("comments") > 500  # the files with an entry
        config = AppConfig(
            database=database,
            public_dir=tmp_path / "public",
            sources=tuple(sources),
            outputs=(OutputConfig(name="all", limit=10_000),),
        )
        written = Publisher(config, storage).publish()
    assert written
    findings: list[str] = []
    published = sorted((tmp_path / "public" / "feeds").rglob("*.*"))
    assert len(published) >= 9, "the output, its comment feed and latest comments"
    for path in published:
        raw = path.read_bytes()
        if path.suffix == ".json":
            document = json.loads(raw)
            for item in document["items"]:
                for key in ("content_html", "summary"):
                    findings += [f"{path.name}: {f}" for f in active_content(item.get(key) or "")]
            continue
        parsed = feedparser.parse(raw, sanitize_html=False, resolve_relative_uris=False)
        assert not parsed.bozo, f"{path}: our own output is ill-formed: {parsed.bozo_exception}"
        for fragment in html_fields(parsed):
            findings += [f"{path.name}: {f}" for f in active_content(fragment)]
        lowered = raw.lower()
        for tag in (b"<script", b"<iframe", b"<object", b"<embed", b"<form"):
            assert tag not in lowered, f"{path}: {tag!r} as markup of the feed itself"
    assert not findings, "\n".join(sorted(set(findings))[:30])


def test_the_scanner_finds_active_content() -> None:
    """The check above would see an attack if one got through."""
    assert active_content('<a href=" jav&#x09;ascript:alert(1)">x</a>')
    assert active_content('<img src="data:image/svg+xml,..." onerror="x">')
    assert active_content('<p style="width: expression(alert(1))">x</p>')
    assert active_content("<svg><script>alert(1)</script></svg>")
    assert active_content('<form action="/"><input></form>')
    assert not active_content('<p><a href="https://example.org/">fine</a><img src="/x.png"></p>')
