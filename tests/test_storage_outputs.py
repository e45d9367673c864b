"""Tests for aggregator.storage.outputs and migration 0002_search: full-text search kept in
step with entries and comments, candidate queries, and the SQL half of output selection.

Every test uses a real SQLite file in tmp_path.
"""

from __future__ import annotations

import sqlite3
import tempfile
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlite_utils import Database

from aggregator.config.schema import AppConfig
from aggregator.errors import StorageError
from aggregator.models import CandidateQuery, CommentData, EntryData, SourceUpdate, StoredEntry
from aggregator.select.chooser import OutputChooser
from aggregator.storage import Storage
from aggregator.storage import outputs as queries
from aggregator.storage.functions import register_functions
from aggregator.storage.outputs import check_search_query
from aggregator.storage.rows import format_time
from aggregator.storage.schema import migrations

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


def entry(key: str, hours: float = 0, **fields: Any) -> EntryData:
    values: dict[str, Any] = {
        "key": key,
        "title": f"Entry {key}",
        "link": f"https://example.org/{key}",
        "published_at": NOW - timedelta(hours=hours),
        "content_hash": f"{key}-{fields.get('content')}-{fields.get('title')}",
    }
    values.update(fields)
    return EntryData(**values)


def store(storage: Storage, source: str, *entries: EntryData) -> None:
    storage.sync_sources([(source, f"https://{source}.example/feed")], NOW)
    state = storage.get_source(source)
    with storage.transaction():
        storage.store_entries(state, entries, NOW)


def entry_id(storage: Storage, key: str) -> int:
    return int(storage.db.execute("SELECT id FROM entries WHERE key = ?", (key,)).fetchone()[0])


def comment(key: str, content: str, hours: float = 0, **fields: Any) -> CommentData:
    return CommentData(
        key=key,
        content=content,
        published_at=NOW - timedelta(hours=hours),
        content_hash=f"{key}-{content}",
        **fields,
    )


def add_comments(storage: Storage, key: str, *comments: CommentData) -> None:
    number = entry_id(storage, key)
    public = storage.db.execute("SELECT public_id FROM entries WHERE id = ?", (number,))
    with storage.transaction():
        storage.store_comments(number, public.fetchone()[0], comments, NOW)


def candidates(storage: Storage, **query: Any) -> list[str]:
    return [e.key for page in storage.iter_candidates(CandidateQuery(**query)) for e in page]


def search(storage: Storage, text: str) -> list[str]:
    return sorted(candidates(storage, search=text))


@pytest.fixture()
def storage(tmp_path: Path) -> Storage:
    with Storage(tmp_path / "aggregator.db") as opened:
        yield opened


# -- migration 0002_search ---------------------------------------------------------------------


def test_migration_from_the_initial_schema_indexes_what_is_stored(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = Database(sqlite3.connect(str(path)))
    migrations.apply(db, stop_before="0002_search")
    stamp = format_time(NOW)
    db.execute("INSERT INTO sources (name, url, created_at) VALUES ('a', 'x', ?)", (stamp,))
    db.execute(
        "INSERT INTO entries (source_id, key, public_id, title, content, first_seen_at, "
        "sort_at, changed_at, content_hash, categories) VALUES "
        "(1, 'k', 'p', 'Old title', '<p>An <b>older</b> body</p>', ?, ?, ?, 'h', '[\"tagged\"]')",
        (stamp, stamp, stamp),
    )
    db.execute(
        "INSERT INTO comments (entry_id, key, public_id, content, first_seen_at, sort_at, "
        "changed_at, content_hash) VALUES (1, 'c', 'pc', '<p>zebra crossing</p>', ?, ?, ?, 'h')",
        (stamp, stamp, stamp),
    )
    db.conn.commit()
    db.close()
    with Storage(path) as storage:
        applied = [m.name for m in migrations.applied(storage.db)]
        assert applied[:2] == ["0001_initial", "0002_search"]
        assert search(storage, "older") == ["k"]  # HTML became text
        assert search(storage, "category: tagged") == ["k"]
        assert search(storage, "zebra") == ["k"]  # through its comment


def test_a_new_database_gets_every_migration(storage: Storage) -> None:
    assert [m.name for m in migrations.applied(storage.db)] == [
        "0001_initial",
        "0002_search",
        "0003_daemon",
        "0004_search_queue",
        "0009_poll_log",
        "0010_discussions",
        "0012_comment_items",
        "0013_comment_history_alerts",
        "0015_pruned_entries",
        "0016_podcast",
        "0017_full_text",
        "0018_websub",
        "0019_discussion_cache",
        "0020_webmention_counts",
    ]


def test_read_only_storage_reads_and_never_writes(tmp_path: Path) -> None:
    path = tmp_path / "aggregator.db"
    with Storage(path) as storage:
        store(storage, "alpha", entry("a"))
    before = path.read_bytes()
    with Storage(path, read_only=True) as storage:
        assert candidates(storage) == ["a"]
        with pytest.raises(StorageError, match="readonly"):
            store(storage, "alpha", entry("b"))
    assert path.read_bytes() == before


def test_read_only_storage_refuses_a_database_with_missing_migrations(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = Database(sqlite3.connect(str(path)))
    migrations.apply(db, stop_before="0002_search")
    db.close()
    # Every migration after the first is named, in order (the later ones too, whatever they are).
    with pytest.raises(
        StorageError, match="migrations are missing: 0002_search, 0003_daemon, 0004_search_queue, "
    ):
        Storage(path, read_only=True)
    with pytest.raises(StorageError, match="cannot open"):
        Storage(tmp_path / "missing.db", read_only=True)
    assert not (tmp_path / "missing.db").exists()


# -- the index follows every write -------------------------------------------------------------


def test_search_follows_inserts_updates_and_deletes(storage: Storage) -> None:
    store(storage, "a", entry("1", content="<p>Kurdish <em>forces</em></p>", author="Ann"))
    assert search(storage, "kurdish") == ["1"]
    assert search(storage, "author: ann") == ["1"]
    store(storage, "a", entry("1", content="<p>Turkish forces</p>", author="Ann"))
    assert search(storage, "kurdish") == []
    assert search(storage, "turkish") == ["1"]
    add_comments(storage, "1", comment("c1", "<p>What about Tanf?</p>", author="Bo"))
    assert search(storage, "tanf") == ["1"]
    add_comments(storage, "1", comment("c1", "<p>What about Deraa?</p>", author="Bo"))
    assert search(storage, "tanf") == []
    assert search(storage, "deraa") == ["1"]
    with storage.transaction():
        storage.db.execute("DELETE FROM sources")  # entries and comments go by cascade
    for table in ("entries_fts", "comments_fts"):
        assert storage.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0


def test_rows_written_in_a_transaction_are_indexed_when_it_commits(storage: Storage) -> None:
    with storage.transaction():
        store(storage, "a", entry("1", content="<p>Kurdish forces</p>"))
        add_comments(storage, "1", comment("c1", "<p>What about Tanf?</p>"))
        # Queued, not yet indexed: 0004_search_queue indexes once per transaction.
        assert storage.db.execute("SELECT count(*) FROM search_queue").fetchone()[0] == 2
        add_comments(storage, "1", comment("c1", "<p>What about Deraa?</p>"))  # changed again
    assert storage.db.execute("SELECT count(*) FROM search_queue").fetchone()[0] == 0
    assert search(storage, "kurdish") == ["1"]
    assert search(storage, "tanf") == []
    assert search(storage, "deraa") == ["1"]
    assert storage.db.execute("SELECT count(*) FROM comments_fts").fetchone()[0] == 1


def test_a_rolled_back_transaction_leaves_neither_rows_nor_index_behind(storage: Storage) -> None:
    store(storage, "a", entry("1", content="<p>Kurdish forces</p>"))
    with pytest.raises(RuntimeError), storage.transaction():
        add_comments(storage, "1", comment("c1", "<p>What about Tanf?</p>"))
        store(storage, "a", entry("1", content="<p>Turkish forces</p>"))
        raise RuntimeError("killed")
    assert search(storage, "kurdish") == ["1"]
    assert search(storage, "tanf") == search(storage, "turkish") == []
    assert storage.db.execute("SELECT count(*) FROM search_queue").fetchone()[0] == 0
    # The next transaction indexes what it writes, and only that.
    add_comments(storage, "1", comment("c2", "<p>Deraa</p>"))
    assert search(storage, "deraa") == ["1"]
    assert storage.db.execute("SELECT count(*) FROM comments_fts").fetchone()[0] == 1


def test_a_connection_without_search_leaves_rows_queued_until_a_search(tmp_path: Path) -> None:
    """Polls of a configuration without ``search`` rules do not build the index; the first
    search (from any connection) indexes the queue, so it finds everything stored."""
    path = tmp_path / "deferred.db"
    with Storage(path, index_search=False) as poller:
        store(poller, "a", entry("1", content="<p>Kurdish forces</p>"))
        add_comments(poller, "1", comment("c1", "<p>What about Tanf?</p>"))
        add_comments(poller, "1", comment("c1", "<p>What about Deraa?</p>"))  # changed
        assert poller.db.execute("SELECT count(*) FROM search_queue").fetchone()[0] == 2
        assert poller.db.execute("SELECT count(*) FROM comments_fts").fetchone()[0] == 0
    with Storage(path) as publisher:
        assert search(publisher, "deraa") == ["1"]
        assert search(publisher, "tanf") == []
        assert search(publisher, "kurdish") == ["1"]
        assert publisher.db.execute("SELECT count(*) FROM search_queue").fetchone()[0] == 0
        assert publisher.db.execute("SELECT count(*) FROM comments_fts").fetchone()[0] == 1
        assert set(publisher.search_hits("deraa", [entry_id(publisher, "1")])) == {
            entry_id(publisher, "1")
        }


def test_indexing_the_queue_waits_for_a_poll_in_progress(tmp_path: Path) -> None:
    """The publisher indexes while pollers write: it waits for the write lock, never fails."""
    path = tmp_path / "busy.db"
    with Storage(path, index_search=False) as poller, Storage(path) as publisher:
        store(poller, "a", entry("1", content="<p>Kurdish forces</p>"))
        poller.db.execute("BEGIN IMMEDIATE")  # a poll's transaction holds the write lock
        indexed = threading.Event()

        def search_now() -> None:
            publisher.ensure_search_index()
            indexed.set()

        searcher = threading.Thread(target=search_now)
        searcher.start()
        assert not indexed.wait(0.3), "indexing must wait for the poll's transaction"
        poller.db.execute("COMMIT")
        searcher.join(10)
        assert indexed.is_set()
        assert search(publisher, "kurdish") == ["1"]


def test_writes_outside_a_storage_transaction_are_indexed_at_once(tmp_path: Path) -> None:
    # Other connections (bulk loads, the sqlite3 shell with the functions registered) keep
    # the per-row triggers of 0002_search.
    path = tmp_path / "aggregator.db"
    with Storage(path) as storage:
        store(storage, "a", entry("1"))
    connection = sqlite3.connect(path)
    register_functions(connection)
    stamp = format_time(NOW)
    connection.execute(
        "INSERT INTO comments (entry_id, key, public_id, content, first_seen_at, sort_at, "
        "changed_at, content_hash) VALUES (1, 'c', 'pc', '<p>zebra crossing</p>', ?, ?, ?, 'h')",
        (stamp, stamp, stamp),
    )
    connection.execute("UPDATE entries SET title = 'Okapi'")
    connection.commit()
    connection.close()
    with Storage(path, read_only=True) as storage:
        assert search(storage, "zebra") == search(storage, "okapi") == ["1"]
        assert storage.db.execute("SELECT count(*) FROM search_queue").fetchone()[0] == 0


def test_migration_0004_keeps_the_index_of_an_existing_database(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    connection = sqlite3.connect(path)
    register_functions(connection)  # 0002's triggers index what an older version stored
    db = Database(connection)
    migrations.apply(db, stop_before="0004_search_queue")
    stamp = format_time(NOW)
    db.execute("INSERT INTO sources (name, url, created_at) VALUES ('a', 'x', ?)", (stamp,))
    db.execute(
        "INSERT INTO entries (source_id, key, public_id, title, first_seen_at, sort_at, "
        "changed_at, content_hash) VALUES (1, 'k', 'p', 'Okapi', ?, ?, ?, 'h')",
        (stamp, stamp, stamp),
    )
    db.conn.commit()
    db.close()
    with Storage(path) as storage:
        assert "0004_search_queue" in [m.name for m in migrations.applied(storage.db)]
        assert search(storage, "okapi") == ["k"]
        add_comments(storage, "k", comment("c1", "<p>zebra</p>"))
        assert search(storage, "zebra") == ["k"]
        store(storage, "a", entry("k", title="Giraffe"))
        assert search(storage, "okapi") == []
        assert search(storage, "giraffe") == ["k"]


def test_markup_is_not_searchable_but_text_is(storage: Storage) -> None:
    html = '<p>See <a href="https://zzz.example/">the report</a><script>hidden()</script></p>'
    store(storage, "a", entry("1", content=html))
    assert search(storage, "report") == ["1"]
    assert search(storage, "zzz") == []
    assert search(storage, "href") == []
    assert search(storage, "hidden") == []


def test_search_is_case_and_accent_insensitive(storage: Storage) -> None:
    store(storage, "a", entry("1", title="Café in Zürich"))
    assert search(storage, "CAFE") == ["1"]
    assert search(storage, "zurich") == ["1"]
    assert search(storage, "zür*") == ["1"]


@pytest.mark.parametrize(
    "query",
    [
        "tanf",
        "tanf OR deraa",
        "tanf AND deraa",
        "tanf NOT deraa",
        '"aid convoy"',
        "convoy*",
        "NEAR(aid trucks, 5)",
        "title: syria",
        "{title content}: syria",
        "author: ann",
        "category: politics",
    ],
)
def test_valid_search_queries_pass_the_check(query: str) -> None:
    check_search_query(query)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("tanf AND", "syntax error"),
        ("titel: syria", "no such column: titel"),
        ('"unclosed', "unterminated string"),
        ("   ", "empty search query"),
    ],
)
def test_bad_search_queries_are_rejected(query: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_search_query(query)


def test_search_hits_say_where_the_match_is(storage: Storage) -> None:
    store(storage, "a", entry("1", title="Deraa road"), entry("2"), entry("3"))
    add_comments(storage, "2", comment("c1", "<p>the base at Tanf</p>", author="Ann"))
    hits = storage.search_hits("tanf OR deraa", [entry_id(storage, k) for k in "123"])
    first, second = hits[entry_id(storage, "1")], hits[entry_id(storage, "2")]
    assert (first.where, first.text) == ("entry", "«Deraa» road")
    assert (second.where, second.comment_author) == ("comment", "Ann")
    assert "«Tanf»" in second.text
    assert entry_id(storage, "3") not in hits


# -- candidates --------------------------------------------------------------------------------


def test_candidate_orders(storage: Storage) -> None:
    store(storage, "a", entry("old", 30), entry("mid", 20), entry("new", 10))
    add_comments(storage, "old", comment("c1", "x", 1), comment("c2", "y", 2))
    add_comments(storage, "mid", comment("c1", "x", 15))
    assert candidates(storage) == ["new", "mid", "old"]
    assert candidates(storage, sort="most_comments") == ["old", "mid", "new"]
    # Activity: the latest comment, else the entry's own date.
    assert candidates(storage, sort="recent_activity") == ["old", "new", "mid"]


def test_candidate_bounds(storage: Storage) -> None:
    store(storage, "a", entry("1", 1), entry("2", 5), entry("3", 50))
    store(storage, "b", entry("4", 2))
    add_comments(storage, "2", comment("c1", "x"), comment("c2", "y"))
    assert candidates(storage, source_names=("a",)) == ["1", "2", "3"]
    assert candidates(storage, source_names=("b", "nope")) == ["4"]
    assert candidates(storage, source_names=()) == []
    assert candidates(storage, since=NOW - timedelta(hours=5)) == ["1", "4", "2"]
    assert candidates(storage, until=NOW - timedelta(hours=2)) == ["2", "3"]
    assert candidates(storage, min_comments=2) == ["2"]
    assert candidates(storage, window=2) == ["1", "4"]


def test_until_with_a_fraction_of_a_second_is_never_stricter_than_the_rules(
    storage: Storage,
) -> None:
    store(storage, "a", entry("1", 1))
    until = NOW - timedelta(hours=1) + timedelta(microseconds=1)
    assert candidates(storage, until=until) == ["1"]


def test_candidates_are_read_lazily_page_by_page(storage: Storage) -> None:
    store(storage, "a", *(entry(str(n), n) for n in range(10)))
    pages = storage.iter_candidates(CandidateQuery(), page_size=3)
    assert [e.key for e in next(pages)] == ["0", "1", "2"]
    pages.close()  # the statement is finished; the connection is free
    assert storage.count("entries") == 10


def test_candidates_read_again_are_the_same_values_until_they_change(storage: Storage) -> None:
    store(storage, "a", entry("x", 1), entry("y", 2))
    first = [e for page in storage.iter_candidates(CandidateQuery()) for e in page]
    again = [e for page in storage.iter_candidates(CandidateQuery()) for e in page]
    assert [a is b for a, b in zip(first, again, strict=True)] == [True, True]
    store(storage, "a", entry("x", 1, title="Retitled", content_hash="new"))
    storage.sync_sources([("a", "https://a.example/feed")], NOW)
    with storage.transaction():
        storage.update_source(storage.get_source("a").id, SourceUpdate(title="Source A"))
    changed = [e for page in storage.iter_candidates(CandidateQuery()) for e in page]
    assert [(e.key, e.title, e.source_title) for e in changed] == [
        ("x", "Retitled", "Source A"),
        ("y", "Entry y", "Source A"),
    ]


def test_many_sources_and_broad_searches_give_the_same_answers(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    for number in range(6):
        store(
            storage,
            f"s{number}",
            *(entry(f"{number}-{n}", n * 7 + number, title=f"word{n % 3}") for n in range(5)),
        )
    names = ("s1", "s2", "s4")
    cases = [
        {"source_names": names},
        {"source_names": names, "sort": "most_comments"},
        {"source_names": names, "search": "word1 OR word2"},
        {"search": "word1"},
    ]
    expected = [candidates(storage, **case) for case in cases]
    monkeypatch.setattr(queries, "_MAX_ARMS", 1)  # one "IN (...)" instead of one arm per source
    monkeypatch.setattr(queries, "_SELECTIVE_SEARCH", 0)  # every search counts as broad
    assert [candidates(storage, **case) for case in cases] == expected
    assert expected[2] and all(key[0] in "124" for key in expected[2])


def test_a_search_sqlite_rejects_is_a_storage_error(storage: Storage) -> None:
    with pytest.raises(StorageError, match="syntax error"):
        candidates(storage, search="tanf AND")


def test_known_entry_keys(storage: Storage) -> None:
    store(storage, "a", entry("1"), entry("2"))
    state = storage.get_source("a")
    keys = [str(n) for n in range(1200)]  # more than one chunk of placeholders
    assert storage.known_entry_keys(state.id, keys) == {"1", "2"}


# -- SQL never drops what the Python rules keep ------------------------------------------------


def _config(folder: Path, output: dict[str, Any]) -> AppConfig:
    return AppConfig.model_validate(
        {
            "database": str(folder / "aggregator.db"),
            "public_dir": str(folder / "public"),
            "sources": [
                {"name": "a", "url": "https://a.example/feed"},
                {"name": "b", "url": "https://b.example/feed", "max_age": "3d"},
            ],
            "outputs": [{"name": "out", "candidates": 10000, **output}],
        }
    )


# Entry ages near every boundary the rules can draw (1h, 1d, 3d, 5d), and anywhere.
_HOURS = st.one_of(
    st.sampled_from([0, 1, 2, 23, 24, 25, 71, 72, 73, 119, 120, 121]), st.integers(0, 240)
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ages=st.lists(st.tuples(st.sampled_from("ab"), _HOURS, st.integers(0, 4)), max_size=25),
    max_age=st.one_of(st.none(), st.sampled_from(["1h", "1d", "5d"])),
    before=st.one_of(st.none(), _HOURS),
    after=st.one_of(st.none(), _HOURS),
    min_comments=st.one_of(st.none(), st.integers(0, 4)),
    sort=st.sampled_from(["newest", "most_comments", "recent_activity"]),
    limit=st.integers(1, 30),
)
def test_sql_bounds_never_drop_an_entry_the_rules_keep(
    ages: Sequence[tuple[str, int, int]],
    max_age: str | None,
    before: int | None,
    after: int | None,
    min_comments: int | None,
    sort: str,
    limit: int,
) -> None:
    """The same output with and without the SQL bounds (``--explain`` drops them)."""
    output: dict[str, Any] = {"sort": sort, "limit": limit}
    if max_age:
        output["max_age"] = max_age
    if before is not None:
        output["before"] = NOW - timedelta(hours=before)
    if after is not None:
        output["after"] = NOW - timedelta(hours=after)
    if min_comments is not None:
        output["min_comments"] = min_comments
    with tempfile.TemporaryDirectory() as folder:
        config = _config(Path(folder), output)
        with Storage(config.database) as storage:
            for number, (source, hours, comments) in enumerate(ages):
                store(storage, source, entry(str(number), hours))
                storage.db.execute(
                    "UPDATE entries SET comment_count = ? WHERE key = ?", (comments, str(number))
                )
            chooser = OutputChooser(config, storage, clock=lambda: NOW)
            chosen = config.output("out")
            fast = chooser.select(chosen)
            full = chooser.select(chosen, explain=True)
    assert [e.key for e in fast.kept] == [e.key for e in full.kept]
    assert len(fast.kept) <= limit


_BOUNDARIES = [0, 1, 2, 23, 24, 25, 47, 48, 49, 71, 72, 73, 119, 120, 121]


@pytest.mark.parametrize(
    "output",
    [
        {"max_age": "1h"},
        {"max_age": "1d"},
        {"max_age": "5d", "sort": "most_comments"},
        {"before": NOW - timedelta(hours=24)},
        {"after": NOW - timedelta(hours=72)},
        {"after": NOW - timedelta(hours=72), "before": NOW - timedelta(hours=23)},
        {"min_comments": 2, "sort": "recent_activity"},
        {"max_age": "5d", "after": NOW - timedelta(hours=48), "min_comments": 1},
    ],
)
def test_sql_bounds_at_the_boundaries(tmp_path: Path, output: dict[str, Any]) -> None:
    config = _config(tmp_path, {"limit": 100, **output})
    with Storage(config.database) as storage:
        for source in "ab":
            for number, hours in enumerate(_BOUNDARIES):
                key = f"{source}{hours}"
                store(storage, source, entry(key, hours))
                storage.db.execute(
                    "UPDATE entries SET comment_count = ? WHERE key = ?", (number % 4, key)
                )
        chooser = OutputChooser(config, storage, clock=lambda: NOW)
        fast = chooser.select(config.output("out"))
        full = chooser.select(config.output("out"), explain=True)
    assert [e.key for e in fast.kept] == [e.key for e in full.kept]
    assert fast.kept and len(fast.kept) < 2 * len(_BOUNDARIES)


def test_stored_entry_date_is_its_sort_date(storage: Storage) -> None:
    future = entry("f", -48)  # claims to be published in two days
    store(storage, "a", future, entry("p", 5))
    [page] = list(storage.iter_candidates(CandidateQuery()))
    dated = {e.key: e.dated_at for e in page}
    assert dated == {"f": NOW, "p": NOW - timedelta(hours=5)}
    assert all(isinstance(e, StoredEntry) and e.sort_at for e in page)
