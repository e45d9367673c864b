"""Time the output queries on a large database (default: 1,000,000 entries, 200 sources).

Usage: .venv/bin/python benchmarks/output_queries.py [--entries N] [--db PATH]

Builds the database once (kept at --db for reruns), then times the first page of candidates
for typical outputs: every source, a few sources, a tag's worth of sources, each sort order,
date and comment bounds, and full-text searches. Every query should take milliseconds, not
seconds: the candidates come from indexes, never from a scan and sort of the whole table.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aggregator.models import CandidateQuery
from aggregator.storage import Storage
from aggregator.storage.rows import format_time

WORDS = [
    "syria",
    "iraq",
    "deraa",
    "tanf",
    "harbour",
    "weather",
    "river",
    "valley",
    "election",
    "budget",
    "council",
    "school",
    "bridge",
    "storm",
    "flood",
    "market",
    "port",
    "ferry",
    "rain",
    "wind",
    "road",
    "rail",
    "hospital",
    "museum",
    "library",
    "park",
]
NOW = datetime(2024, 6, 1, tzinfo=UTC)


def build(path: Path, entries: int, sources: int) -> None:
    rng = random.Random(1)
    with Storage(path) as storage:
        if storage.count("entries") >= entries:
            return
        db = storage.db
        with storage.transaction():
            for number in range(sources):
                db.execute(
                    "INSERT OR IGNORE INTO sources (name, url, created_at) VALUES (?, ?, ?)",
                    (f"s{number}", f"https://s{number}.example/feed", format_time(NOW)),
                )
        batch = []
        for number in range(entries):
            when = format_time(NOW - timedelta(minutes=number))
            count = int(rng.paretovariate(1.2)) - 1 if rng.random() < 0.3 else 0
            last = (
                format_time(NOW - timedelta(minutes=rng.randrange(number + 1))) if count else None
            )
            text = " ".join(rng.choice(WORDS) for _ in range(40))
            if number % 100_000 == 7:
                text += " zanzibar"  # a rare word
            batch.append(
                (
                    rng.randrange(sources) + 1,
                    f"k{number}",
                    f"{number:032x}",
                    " ".join(rng.choice(WORDS) for _ in range(6)),
                    text,
                    when,
                    when,
                    when,
                    when,
                    "h",
                    count,
                    last,
                )
            )
            if len(batch) == 20_000:
                _insert(storage, batch)
                batch = []
                print(f"\r{number + 1} entries", end="", flush=True)
        if batch:
            _insert(storage, batch)
        print()
        db.execute("ANALYZE")


def _insert(storage: Storage, rows: list[tuple[object, ...]]) -> None:
    with storage.transaction():
        storage.db.conn.executemany(
            "INSERT INTO entries (source_id, key, public_id, title, content, published_at, "
            "first_seen_at, sort_at, changed_at, content_hash, comment_count, last_comment_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--sources", type=int, default=200)
    parser.add_argument("--db", type=Path, default=Path("var/bench-outputs.db"))
    args = parser.parse_args()
    started = time.perf_counter()
    build(args.db, args.entries, args.sources)
    print(f"database ready in {time.perf_counter() - started:.1f}s: {args.db}")
    few = tuple(f"s{n}" for n in (3, 50, 120))
    tag = tuple(f"s{n}" for n in range(0, 200, 10))
    rare = ("s7",)
    cases = {
        "all, newest": CandidateQuery(),
        "all, newest, max_age 7d": CandidateQuery(since=NOW - timedelta(days=7)),
        "3 sources, newest": CandidateQuery(source_names=few),
        "3 sources, newest, max_age 7d": CandidateQuery(
            source_names=few, since=NOW - timedelta(days=7)
        ),
        "1 source, before a year ago": CandidateQuery(
            source_names=rare, until=NOW - timedelta(days=365)
        ),
        "20 sources, most_comments": CandidateQuery(source_names=tag, sort="most_comments"),
        "all, most_comments, min 5": CandidateQuery(sort="most_comments", min_comments=5),
        "20 sources, min_comments 50": CandidateQuery(source_names=tag, min_comments=50),
        "all, recent_activity": CandidateQuery(sort="recent_activity"),
        "3 sources, recent_activity": CandidateQuery(source_names=few, sort="recent_activity"),
        "all, search rare word": CandidateQuery(search="zanzibar"),
        "all, search common words": CandidateQuery(search="syria AND deraa"),
        "3 sources, search 'tanf OR deraa'": CandidateQuery(
            source_names=few, search="tanf OR deraa"
        ),
    }
    with Storage(args.db) as storage:
        for name, query in cases.items():
            started = time.perf_counter()
            pages = storage.iter_candidates(query, page_size=100)
            first = next(pages, [])
            pages.close()
            elapsed = (time.perf_counter() - started) * 1000
            print(f"{elapsed:9.1f} ms  {len(first):4d} rows  {name}")


if __name__ == "__main__":
    main()
