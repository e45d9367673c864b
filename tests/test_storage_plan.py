"""The pure decisions of storing a poll (aggregator.storage.plan), without a database: rows as
``Storage._rows`` reads them, entries and comments as the parsers give them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aggregator.models import CommentData, EntryData
from aggregator.storage.ids import comment_public_id, entry_public_id
from aggregator.storage.plan import (
    CommentRenumber,
    CommentUpdate,
    EntryInsert,
    EntryUpdate,
    plan_comments,
    plan_entries,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
STAMP = "2024-05-01T12:00:00+00:00"


def entry_row(row_id: int, key: str, **fields: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": row_id,
        "key": key,
        "title": f"Post {row_id}",
        "content_hash": f"h{row_id}",
        "comment_count_hint": None,
        "comments_hint_polled": None,
    }
    row.update(fields)
    return row


def test_new_changed_and_unchanged_entries_are_told_apart_by_content_hash() -> None:
    rows = [entry_row(1, "https://ex.org/1"), entry_row(2, "https://ex.org/2")]
    entries = [
        EntryData(key="https://ex.org/1", title="Post 1", content_hash="h1"),
        EntryData(key="https://ex.org/2", title="Post 2, edited", content_hash="h2-new"),
        EntryData(key="https://ex.org/3", title="Post 3", content_hash="h3"),
    ]
    plan = plan_entries("blog", rows, entries, set(), NOW)
    assert plan.stamp == STAMP and plan.renames == []
    assert [type(w) for w in plan.writes] == [EntryUpdate, EntryUpdate, EntryInsert]
    assert [w.changed for w in plan.writes if isinstance(w, EntryUpdate)] == [False, True]
    insert = plan.writes[2]
    assert isinstance(insert, EntryInsert)
    assert insert.public_id == entry_public_id("blog", "https://ex.org/3")
    assert (plan.new, plan.updated, plan.unchanged, plan.moved) == (1, 1, 1, 0)


def test_sort_at_is_the_publication_time_unless_it_is_in_the_future() -> None:
    past = EntryData(key="p", title="p", published_at=NOW - timedelta(days=2))
    future = EntryData(key="f", title="f", published_at=NOW + timedelta(days=30))
    undated = EntryData(key="u", title="u")
    plan = plan_entries("blog", [], [past, future, undated], set(), NOW)
    # Inserted last item first, so that ties on sort_at list the document's first item first.
    assert [(w.entry.key, w.sort_at) for w in plan.writes if isinstance(w, EntryInsert)] == [
        ("u", STAMP),
        ("f", STAMP),
        ("p", "2024-04-29T12:00:00+00:00"),
    ]


def test_the_first_copy_of_a_key_wins_and_pruned_keys_stay_out() -> None:
    entries = [
        EntryData(key="a", title="first copy", content_hash="1"),
        EntryData(key="a", title="second copy", content_hash="2"),
        EntryData(key="gone", title="pruned", content_hash="3"),
    ]
    plan = plan_entries("blog", [], entries, {"gone"}, NOW)
    assert [(w.entry.key, w.entry.title) for w in plan.writes] == [("a", "first copy")]


def test_a_row_under_an_alternate_key_is_renamed_and_updated_not_stored_again() -> None:
    rows = [entry_row(7, "guid:old", title="Shared title")]
    entries = [
        EntryData(key="link:x", title="Other", alternate_keys=("guid:old",), content_hash="h7"),
        EntryData(
            key="link:y", title="Shared title", alternate_keys=("guid:old",), content_hash="h7"
        ),
    ]
    plan = plan_entries("blog", rows, entries, set(), NOW)
    # Of two claimants the one with the row's title wins; the other is new.
    assert plan.renames == [(7, "link:y")]
    assert [(type(w).__name__, w.entry.key) for w in plan.writes] == [
        ("EntryUpdate", "link:y"),
        ("EntryInsert", "link:x"),
    ]
    # The caller's rows are not changed.
    assert rows[0]["key"] == "guid:old"


def test_no_rename_while_an_entry_of_the_document_has_the_key() -> None:
    rows = [entry_row(1, "old")]
    entries = [
        EntryData(key="new", title="t", alternate_keys=("old",)),
        EntryData(key="old", title="t", content_hash="h1"),
    ]
    plan = plan_entries("blog", rows, entries, set(), NOW)
    assert plan.renames == []
    assert [type(w) for w in plan.writes] == [EntryUpdate, EntryInsert]


def test_a_moved_comment_count_makes_the_thread_due_unless_it_was_polled_at_that_count() -> None:
    rows = [
        entry_row(1, "a", comment_count_hint=3, comments_hint_polled=3),
        entry_row(2, "b", comment_count_hint=3, comments_hint_polled=5),
        entry_row(3, "c", comment_count_hint=3, comments_hint_polled=3),
        entry_row(4, "d", comment_count_hint=3, comments_hint_polled=None),
    ]
    entries = [
        EntryData(key="a", title="", content_hash="h1", comment_count=4),  # moved
        EntryData(key="b", title="", content_hash="changed", comment_count=5),  # polled at 5
        EntryData(key="c", title="", content_hash="h3", comment_count=3),  # same
        EntryData(key="d", title="", content_hash="h4"),  # no count in the feed
    ]
    plan = plan_entries("blog", rows, entries, set(), NOW)
    assert [w.count_moved for w in plan.writes if isinstance(w, EntryUpdate)] == [
        True,
        False,
        False,
        False,
    ]
    assert plan.moved == 1


def comment_row(row_id: int, key: str, **fields: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": row_id,
        "key": key,
        "content_hash": f"c{row_id}",
        "gone_at": None,
        "number": row_id,
        "content": f"<p>comment {row_id}</p>",
        "author": "Ann",
    }
    row.update(fields)
    return row


def test_comments_new_edited_back_renumbered_and_unchanged() -> None:
    rows = [
        comment_row(1, "comment-1"),
        comment_row(2, "comment-2"),
        comment_row(3, "comment-3", gone_at="2024-04-01T00:00:00+00:00"),
        comment_row(4, "comment-4"),
    ]
    published = NOW - timedelta(hours=1)
    comments = [
        CommentData(key="comment-1", content="<p>comment 1</p>", content_hash="c1", number=1),
        CommentData(key="comment-2", content="<p>edited</p>", content_hash="c2-new", number=2),
        CommentData(key="comment-3", content="<p>comment 3</p>", content_hash="c3", number=3),
        CommentData(key="comment-4", content="<p>comment 4</p>", content_hash="c4", number=3),
        CommentData(
            key="comment-5", content="<p>new</p>", content_hash="c5", published_at=published
        ),
        CommentData(key="comment-5", content="<p>copy</p>", content_hash="c5b"),
    ]
    plan = plan_comments(9, "entrypub", rows, comments, NOW)
    assert (len(plan.inserts), plan.updated, plan.unchanged) == (1, 2, 2)
    updates = [w for w in plan.writes if isinstance(w, CommentUpdate)]
    # An edit records the earlier text; a comment that came back unchanged does not.
    assert [(u.row["id"], u.revise) for u in updates] == [(2, True), (3, False)]
    assert [w for w in plan.writes if isinstance(w, CommentRenumber)] == [CommentRenumber(4, 3)]
    insert = plan.inserts[0]
    assert insert[:6] == (
        9,
        "comment-5",
        comment_public_id("entrypub", "comment-5"),
        STAMP,
        "2024-05-01T11:00:00+00:00",
        STAMP,
    )
    assert insert[6 + 3] == "<p>new</p>"  # the first copy of the key wins


def test_a_comment_under_its_previous_key_is_renamed() -> None:
    rows = [comment_row(1, "old-rule-key")]
    comments = [
        CommentData(
            key="comment-1",
            content="<p>comment 1</p>",
            content_hash="c1",
            number=1,
            alternate_keys=("old-rule-key",),
        )
    ]
    plan = plan_comments(9, "entrypub", rows, comments, NOW)
    assert plan.renames == [(1, "comment-1")]
    assert (plan.inserts, plan.updated, plan.unchanged) == ([], 0, 1)
