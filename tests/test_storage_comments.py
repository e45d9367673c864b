"""Storage of comments in a real SQLite file: insert, update in place, keep what a read lacks,
mark gone and bring back, and resume a stopped thread when its entry's count moves."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.models import CommentData, EntryData, ThreadUpdate
from aggregator.storage import Storage

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    with Storage(tmp_path / "aggregator.db") as opened:
        opened.sync_sources([("blog", "https://blog.example.org/feed/")], NOW)
        yield opened


def store_entry(storage: Storage, count: int | None = 3) -> int:
    entry = EntryData(
        key="post-1",
        guid="post-1",
        title="A post",
        link="https://blog.example.org/post-1/",
        comments_feed_url="https://blog.example.org/post-1/feed/",
        comment_count=count,
        content_hash="same",
    )
    with storage.transaction():
        storage.store_entries(storage.get_source("blog"), [entry], NOW)
    return storage.find_entry("post-1").id


def comment(key: str, text: str, **fields: object) -> CommentData:
    return CommentData(key=key, content=text, content_hash=f"hash of {text}", **fields)  # type: ignore[arg-type]


def store(storage: Storage, entry_id: int, comments: list[CommentData], at: datetime = NOW):
    with storage.transaction():
        return storage.store_comments(
            entry_id, storage.find_entry("post-1").public_id, comments, at
        )


def test_store_update_and_keep(storage: Storage) -> None:
    entry_id = store_entry(storage)
    page = [
        comment("comment-1", "one", author="A", number=1, published_at=NOW - 2 * H),
        comment(
            "comment-2", "two", author="B", number=2, parent_key="comment-1", published_at=NOW - H
        ),
    ]
    assert store(storage, entry_id, page).new == 2
    assert store(storage, entry_id, page).unchanged == 2
    entry = storage.find_entry("post-1")
    assert (entry.comment_count, entry.last_comment_at) == (2, NOW - H)

    # The same comments from a feed: edited text, but no number or parent. What it lacks is kept.
    feed = [comment("comment-2", "two, edited", author="B", published_at=NOW - H)]
    result = store(storage, entry_id, feed, NOW + H)
    assert (result.new, result.updated) == (0, 1)
    _, second = storage.list_comments(entry_id)
    assert (second.content, second.number, second.parent_public_id) == (
        "two, edited",
        2,
        storage.list_comments(entry_id)[0].public_id,
    )

    # The blog renumbers (an earlier comment was deleted): stored quietly, not a change.
    renumbered = [comment("comment-2", "two, edited", author="B", number=1, published_at=NOW - H)]
    assert store(storage, entry_id, renumbered).unchanged == 1
    assert [c.number for c in storage.list_comments(entry_id)] == [1, 1]


def test_gone_and_back(storage: Storage) -> None:
    entry_id = store_entry(storage)
    both = [comment("comment-1", "one"), comment("comment-2", "two")]
    store(storage, entry_id, both)
    with storage.transaction():
        assert storage.mark_comments_gone(entry_id, ["comment-2"], NOW + H) == 1
        assert storage.mark_comments_gone(entry_id, ["comment-2"], NOW + 2 * H) == 0
    first, second = storage.list_comments(entry_id)
    assert (first.gone_at, second.gone_at) == (NOW + H, None)
    assert storage.find_entry("post-1").comment_count == 2  # kept, and counted
    assert store(storage, entry_id, both).updated == 1  # back at the source
    assert storage.list_comments(entry_id)[0].gone_at is None


def test_a_stopped_thread_resumes_when_its_count_moves(storage: Storage) -> None:
    entry_id = store_entry(storage, count=3)
    source_id = storage.get_source("blog").id
    with storage.transaction():
        storage.update_thread(
            entry_id,
            ThreadUpdate(comments_stopped=1, comments_hint_polled=3, comments_next_poll_at=NOW),
        )
    store_entry(storage, count=3)
    assert storage.list_threads(source_id, None) == []
    assert [t.entry_id for t in storage.list_threads(source_id, None, include_stopped=True)] == [
        entry_id
    ]
    store_entry(storage, count=4)
    (thread,) = storage.list_threads(source_id, NOW - H)  # due at once
    assert (thread.comment_count_hint, thread.hint_at_last_poll) == (4, 3)
    assert storage.known_comments([entry_id]) == {}


def test_thread_summaries_count_date_and_notice_every_shown_change(storage: Storage) -> None:
    entry_id = store_entry(storage)
    page = [
        comment("comment-1", "one", author="A", number=1, published_at=NOW - 2 * H),
        comment("comment-2", "two", author="B", number=2, parent_key="comment-1"),
    ]
    store(storage, entry_id, page)
    summary = storage.list_thread_summaries([entry_id, 999])[entry_id]
    # comment-2 has no date: its first-seen time (NOW) is the newest.
    assert (summary.entry_id, summary.count, summary.last_at) == (entry_id, 2, NOW)
    assert storage.list_thread_summaries([]) == {}
    assert 999 not in storage.list_thread_summaries([entry_id, 999])

    def fingerprint() -> tuple[object, ...]:
        return storage.list_thread_summaries([entry_id])[entry_id].fingerprint

    seen = [fingerprint()]
    assert fingerprint() == seen[0]  # read again, nothing changed
    store(storage, entry_id, [comment("comment-2", "two, edited", number=2)])
    seen.append(fingerprint())
    # Renumbering is stored without marking the comment changed; the JSON Feed shows numbers.
    store(storage, entry_id, [comment("comment-2", "two, edited", number=3)])
    seen.append(fingerprint())
    with storage.transaction():
        storage.mark_comments_gone(entry_id, ["comment-2"], NOW + H)
    seen.append(fingerprint())
    assert len(set(seen)) == len(seen)
    assert storage.list_thread_summaries([entry_id])[entry_id].count == 2  # gone ones count


def test_comments_of_many_entries_in_one_read(storage: Storage) -> None:
    first = store_entry(storage)
    other = EntryData(key="post-2", guid="post-2", title="Another", content_hash="x")
    with storage.transaction():
        storage.store_entries(storage.get_source("blog"), [other], NOW)
    second = storage.find_entry("post-2")
    store(storage, first, [comment("c-2", "two", number=2), comment("c-1", "one", number=1)])
    with storage.transaction():
        storage.store_comments(second.id, second.public_id, [comment("c-9", "nine")], NOW)
    threads = storage.list_comments_of([second.id, first, 12345])
    assert threads == {
        first: storage.list_comments(first),
        second.id: storage.list_comments(second.id),
    }
    assert [c.key for c in threads[first]] == ["c-1", "c-2"]  # thread order


def test_known_comments_give_each_threads_numbers_newest_date_and_keys(
    storage: Storage,
) -> None:
    entry_id = store_entry(storage)
    store(
        storage,
        entry_id,
        [
            comment("comment-1", "one", number=1, published_at=NOW - 2 * H),
            comment("comment-2", "two", number=2, published_at=NOW - H),
            comment("comment-x", "undated"),
        ],
    )
    known = storage.known_comments([entry_id, entry_id + 1])
    assert list(known) == [entry_id]  # an entry without comments is left out
    numbers, newest, keys = known[entry_id]
    assert sorted(numbers, key=lambda n: (n is None, n)) == [1, 2, None]
    assert newest == NOW - H
    assert keys == {"comment-1", "comment-2", "comment-x"}


@given(st.text())
def test_public_ids_are_uuid5_of_the_namespace(name: str) -> None:
    """The fast uuid5 gives exactly what ``uuid.uuid5`` gives (ids must never change)."""
    from aggregator.storage.ids import _ID_NAMESPACE, uuid5_hex

    try:
        expected = uuid.uuid5(_ID_NAMESPACE, name).hex
    except UnicodeEncodeError:  # lone surrogates: both refuse them
        with pytest.raises(UnicodeEncodeError):
            uuid5_hex(name)
        return
    assert uuid5_hex(name) == expected
