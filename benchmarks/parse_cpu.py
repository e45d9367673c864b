"""CPU cost of the parse stage, in-process: every main feed and comment feed of a corpus on disk.

    .venv/bin/python benchmarks/parse_cpu.py [--corpus DIR] [--repeat 3] [--limit N]
    .venv/bin/python benchmarks/parse_cpu.py --digest before.txt   # one line per document
    .venv/bin/python benchmarks/parse_cpu.py --profile comments     # cProfile of one stage

Reads the corpus that ``benchmarks/corpus.py`` wrote (default: the 200-feed one in
``benchmarks/.corpus/``, or the main checkout's when this is a worktree without one) into memory
first, then runs ``aggregator.parse.feed.parse_feed`` over every ``feeds/*.xml`` and
``aggregator.parse.comment_feed.parse_comment_feed`` over every ``comments/*/*.xml``, each with its URL from
``manifest.json`` and a fixed ``now``, and prints CPU seconds (``time.process_time``, the best of
``--repeat`` runs) per stage, per document and per item. The ``pickle`` stage is what the sandbox
adds: every result pickled and unpickled once, as it crosses the worker's pipe.

``--digest FILE`` writes a SHA-256 of every document's result (every field of every entry
and comment), so two versions of the code can be shown to store the same bytes:
``diff before.txt after.txt``. No network is used.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import hashlib
import json
import pickle
import pstats
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aggregator.parse import comment_feed
from aggregator.parse import feed as parse

HERE = Path(__file__).resolve().parent
CORPUS_NAME = "feeds200-seed42-port8089"
#: Every date of the corpus is in 2024; a fixed ``now`` keeps the date rules deterministic.
NOW = datetime(2025, 1, 1, tzinfo=UTC)
HEADERS = {"content-type": "application/xml"}

Document = tuple[str, str, bytes]  # name, URL, content


def default_corpus() -> Path:
    """This checkout's 200-feed corpus, else the one in the main checkout (worktrees share it)."""
    own = HERE / ".corpus" / CORPUS_NAME
    if own.is_dir():
        return own
    return Path("/work/main/benchmarks/.corpus") / CORPUS_NAME


def load(corpus: Path, limit: int | None) -> tuple[list[Document], list[Document]]:
    """The main feeds and the comment feeds of ``corpus``, read into memory."""
    manifest = json.loads((corpus / "manifest.json").read_text())
    base = manifest["base_url"].rstrip("/")
    feeds: list[Document] = []
    comments: list[Document] = []
    for feed in manifest["feeds"][:limit]:
        feeds.append((feed["name"], feed["url"], (corpus / feed["path"]).read_bytes()))
        for thread in feed["comment_feeds"]:
            path = thread["url"].removeprefix(base + "/")
            comments.append((path, thread["url"], (corpus / path).read_bytes()))
    return feeds, comments


def run_feeds(documents: list[Document]) -> list[Any]:
    return [parse.parse_feed(content, HEADERS, url, now=NOW) for _, url, content in documents]


def run_comments(documents: list[Document]) -> list[Any]:
    return [
        comment_feed.parse_comment_feed(content, HEADERS, url, now=NOW) for _, url, content in documents
    ]


def run_pickle(results: list[Any]) -> list[Any]:
    """Each result pickled and unpickled, as ``multiprocessing`` sends it back from a worker."""
    return [pickle.loads(pickle.dumps((True, result))) for result in results]


def fingerprint(result: Any) -> str:
    """A SHA-256 of every field of a parse result (sets sorted, so it is the same every run)."""

    def plain(value: Any) -> Any:
        if isinstance(value, frozenset | set):
            return sorted(value)
        return str(value)

    text = json.dumps(dataclasses.asdict(result), sort_keys=True, default=plain)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def best_cpu(function: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """The least CPU time of ``repeat`` calls, and the last call's result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.process_time()
        result = function()
        best = min(best, time.process_time() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=default_corpus())
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--limit", type=int, help="only the first N main feeds (and theirs)")
    parser.add_argument("--digest", type=Path, help="write one SHA-256 per document here")
    parser.add_argument("--profile", choices=("feeds", "comments"), help="cProfile one stage")
    args = parser.parse_args()

    feeds, comments = load(args.corpus, args.limit)
    if args.profile:
        documents = feeds if args.profile == "feeds" else comments
        function = run_feeds if args.profile == "feeds" else run_comments
        profile = cProfile.Profile()
        profile.runcall(function, documents)
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
        return

    feed_cpu, feed_results = best_cpu(lambda: run_feeds(feeds), args.repeat)
    comment_cpu, comment_results = best_cpu(lambda: run_comments(comments), args.repeat)
    results = feed_results + comment_results
    pickle_cpu, _ = best_cpu(lambda: run_pickle(results), args.repeat)
    entries = sum(len(r.entries) for r in feed_results)
    items = sum(len(r.comments) for r in comment_results)
    pickled = sum(len(pickle.dumps((True, r))) for r in results)

    print(f"corpus: {args.corpus} (best of {args.repeat} runs, CPU seconds)")
    rows = [
        ("main feeds", feed_cpu, len(feeds), entries, "entries", "entry"),
        ("comment feeds", comment_cpu, len(comments), items, "comments", "comment"),
        ("pickle (round trip)", pickle_cpu, len(results), entries + items, "items", "item"),
    ]
    for name, cpu, documents, count, units, unit in rows:
        print(
            f"{name:20} {cpu:7.3f} s  {documents:5} docs {cpu / documents * 1e3:7.2f} ms/doc"
            f"  {count:6} {units:8} {cpu / max(count, 1) * 1e6:7.1f} us/{unit}"
        )
    print(f"{'total':20} {feed_cpu + comment_cpu + pickle_cpu:7.3f} s")
    print(f"pickled results: {pickled / 1e6:.1f} MB")

    if args.digest:
        names = [name for name, _, _ in feeds + comments]
        lines = (
            f"{name} {fingerprint(result)}" for name, result in zip(names, results, strict=True)
        )
        args.digest.write_text("\n".join(lines) + "\n")
        print(f"digest: {args.digest}")


if __name__ == "__main__":
    sys.exit(main())
