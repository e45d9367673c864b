"""Tests for aggregator.select.dedupe: URL and title normalisation, choosing one copy per article."""

from __future__ import annotations

import random
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from factories import make_entry as stored_entry
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.provisional import urls

from aggregator.models import StoredEntry
from aggregator.select.dedupe import DedupedEntry, dedupe, normalize_title, normalize_url

T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)


def make_entry(source: str = "a", hours: float = 0, **fields: Any) -> StoredEntry:
    """An entry of ``source`` published ``hours`` after T0 (tests.factories builds it)."""
    published = {"published_at": T0 + timedelta(hours=hours)}
    fields = {"source_link": None, "first_seen_at": T0 + timedelta(days=1), **published, **fields}
    return stored_entry(source=source, **fields)


def kept_ids(result: list[DedupedEntry]) -> list[int]:
    return [item.entry.id for item in result]


# -- normalize_url ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTP://Example.COM/Path/", "http://example.com/Path"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("http://example.com:8080/a", "http://example.com:8080/a"),
        ("https://example.com/a#comments", "https://example.com/a"),
        ("https://example.com/", "https://example.com"),
        (
            "https://example.com/a?utm_source=rss&utm_medium=feed&id=7&fbclid=x&gclid=y",
            "https://example.com/a?id=7",
        ),
        ("https://example.com/a?mc_cid=1&mc_eid=2&ref=hn&b=2&a=1", "https://example.com/a?a=1&b=2"),
        ("https://example.com/a?UTM_Campaign=x", "https://example.com/a"),
        (
            "https://example.com/%7euser/%2f?q=%e2%82%ac",
            "https://example.com/~user/%2F?q=%E2%82%AC",
        ),
        ("https://user@Example.com:443/", "https://user@example.com"),
        ("https://[2001:DB8::1]:443/x", "https://[2001:db8::1]/x"),
        ("  https://example.com/a  ", "https://example.com/a"),
        ("tag:example.com,2024:post-1", "tag:example.com,2024:post-1"),
        ("", ""),
        ("example.com/a/", "example.com/a/"),  # not absolute: left alone
        ("https://example.com:/a/ /", "https://example.com/a"),
        ("https://example.com/%4%41", "https://example.com/J"),
    ],
)
def test_normalize_url(url: str, expected: str) -> None:
    assert normalize_url(url) == expected


def test_normalize_url_keeps_meaningful_query_order_independent() -> None:
    assert normalize_url("https://x.org/?b=2&a=1") == normalize_url("https://x.org/?a=1&b=2")
    assert normalize_url("https://x.org/?a=1") != normalize_url("https://x.org/?a=2")


# Fragments that stress the edges: escapes that decode into new escapes, empty ports, spaces.
url_bits = st.sampled_from(
    [*"%/:?#&=@[].aAfF019 _-~;+\t", "http://", "HTTPS://", "%2", "%4", "%41", "%7e", "%3A",
     ":80", ":443", "//", "utm_x=1", "\x00", "\u00e9"]
)  # fmt: skip


@settings(max_examples=1000, deadline=None)
@given(url=st.one_of(urls(), st.text(max_size=60), st.lists(url_bits, max_size=20).map("".join)))
def test_normalize_url_is_idempotent(url: str) -> None:
    once = normalize_url(url)
    assert normalize_url(once) == once


tracking = st.sampled_from(["utm_source=x", "utm_campaign=y", "fbclid=1", "gclid=2", "ref=rss"])


@settings(max_examples=200, deadline=None)
@given(url=urls(), extra=st.lists(tracking, max_size=3))
def test_tracking_parameters_never_matter(url: str, extra: list[str]) -> None:
    base = url.split("#")[0]
    tracked = base + ("&" if "?" in base else "?") + "&".join(extra) if extra else base
    assert normalize_url(tracked) == normalize_url(base)


# -- normalize_title ---------------------------------------------------------------------------------


def test_normalize_title() -> None:
    assert normalize_title("Don’t  Panic!") == normalize_title("don't panic") == "dont panic"
    assert normalize_title("  Breaking:\tNews — today ") == "breaking news today"
    assert normalize_title("ＦＵＬＬ width") == "full width"
    assert normalize_title("STRASSE") == normalize_title("straße")
    assert normalize_title("...") == ""
    assert normalize_title(None) == ""


@given(st.text(max_size=80))
def test_normalize_title_is_idempotent(title: str) -> None:
    once = normalize_title(title)
    assert normalize_title(once) == once


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=80))
def test_normalize_title_quick_path_for_ascii_is_the_general_rule(title: str) -> None:
    # The general rule, as normalize_title applies it to any text.
    text = unicodedata.normalize("NFKC", title).casefold()
    kept = "".join(c for c in text if unicodedata.category(c)[0] not in "PS")
    assert normalize_title(title) == " ".join(kept.split())


# -- dedupe ------------------------------------------------------------------------------------------


def test_same_guid_keeps_the_earliest() -> None:
    late = make_entry("b", hours=2, guid="tag:site,2024:1")
    early = make_entry("a", hours=1, guid="tag:site,2024:1")
    result = dedupe([late, early])
    assert kept_ids(result) == [early.id]
    (duplicate,) = result[0].duplicates
    assert (duplicate.source_name, duplicate.reason, duplicate.public_id) == (
        "b",
        "guid",
        late.public_id,
    )
    assert result[0].also_in == ("b",)


def test_guids_that_are_not_uris_are_only_unique_within_a_feed() -> None:
    entries = [make_entry("a", guid="1234"), make_entry("b", guid="1234")]
    assert len(dedupe(entries)) == 2


def test_same_link_after_normalising() -> None:
    first = make_entry("a", hours=0, link="https://news.example/story/?utm_source=a")
    second = make_entry("b", hours=5, link="http://NEWS.example:80/story#top")
    third = make_entry("c", hours=9, guid="https://news.example/story")
    result = dedupe([third, second, first])
    assert kept_ids(result) == [first.id]
    assert [(d.source_name, d.reason) for d in result[0].duplicates] == [
        ("b", "link"),
        ("c", "link"),
    ]


def test_same_title_from_different_sources_within_a_day() -> None:
    first = make_entry("a", hours=0, title="Ceasefire announced in Gaza")
    second = make_entry("b", hours=23, title="CEASEFIRE announced in Gaza!")
    too_late = make_entry("c", hours=25, title="Ceasefire announced in Gaza")
    result = dedupe([first, second, too_late])
    assert kept_ids(result) == [first.id, too_late.id]
    assert [(d.source_name, d.reason) for d in result[0].duplicates] == [("b", "title")]


def test_same_title_from_the_same_source_is_not_a_copy() -> None:
    entries = [make_entry("a", hours=h, title="Open thread") for h in (0, 1, 2)]
    assert len(dedupe(entries)) == 3


def test_title_copy_goes_to_the_earliest_entry_of_another_source() -> None:
    a1 = make_entry("a", hours=0, title="Open thread")
    a2 = make_entry("a", hours=1, title="Open thread")
    b1 = make_entry("b", hours=2, title="Open thread")
    a3 = make_entry("a", hours=3, title="Open thread")
    result = dedupe([a1, a2, b1, a3])
    by_id = {item.entry.id: item for item in result}
    assert set(by_id) == {a1.id, a2.id, a3.id}
    assert [d.public_id for d in by_id[a1.id].duplicates] == [b1.public_id]


def test_title_window_expires_old_entries() -> None:
    a1 = make_entry("a", hours=0, title="Daily briefing")
    b1 = make_entry("b", hours=30, title="Daily briefing")
    c1 = make_entry("c", hours=40, title="Daily briefing")
    result = dedupe([a1, b1, c1])
    assert kept_ids(result) == [a1.id, b1.id]
    assert [d.source_name for d in result[1].duplicates] == ["c"]


def test_empty_titles_are_not_compared() -> None:
    assert len(dedupe([make_entry("a", title=""), make_entry("b", title="!!!")])) == 2


def test_undated_entries_use_first_seen() -> None:
    seen_first = make_entry("a", published_at=None, first_seen_at=T0, guid="urn:x:1")
    published_later = make_entry("b", hours=3, guid="urn:x:1")
    assert kept_ids(dedupe([published_later, seen_first])) == [seen_first.id]


def test_output_keeps_input_order_of_kept_entries() -> None:
    entries = [make_entry(source, hours=h) for source, h in (("a", 3), ("b", 1), ("c", 2))]
    assert kept_ids(dedupe(entries)) == [entry.id for entry in entries]
    assert dedupe([]) == []


sources = st.sampled_from(["a", "b", "c"])
shared_links = st.sampled_from(
    ["https://x.org/1", "https://x.org/2?utm_source=z", "http://x.org/1/"]
)
entry_specs = st.tuples(
    sources,
    st.integers(0, 60),
    st.sampled_from(["Big news", "big  NEWS!", "Other", "Third story"]),
    st.none() | shared_links,
    st.none() | st.sampled_from(["urn:g:1", "urn:g:2", "7"]),
)


@settings(max_examples=200, deadline=None)
@given(specs=st.lists(entry_specs, max_size=12), seed=st.integers(0, 2**32))
def test_dedupe_is_deterministic_and_accounts_for_every_entry(specs, seed) -> None:
    entries = [
        make_entry(source, hours=hours, title=title, link=link, guid=guid)
        for source, hours, title, link, guid in specs
    ]
    result = dedupe(entries)
    shuffled = random.Random(seed).sample(entries, len(entries))
    again = dedupe(shuffled)
    summary = {item.entry.id: sorted(d.public_id for d in item.duplicates) for item in result}
    assert summary == {
        item.entry.id: sorted(d.public_id for d in item.duplicates) for item in again
    }
    listed = [item.entry.public_id for item in result]
    listed += [d.public_id for item in result for d in item.duplicates]
    assert sorted(listed) == sorted(entry.public_id for entry in entries)
    for item in result:
        for duplicate in item.duplicates:
            copy = next(entry for entry in entries if entry.public_id == duplicate.public_id)
            assert copy.published_at >= item.entry.published_at
