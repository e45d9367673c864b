"""CPU time of ``parse_feed`` over the benchmark corpus's main feeds, fast path off and on.

Usage: .venv/bin/python benchmarks/feed_parse.py [--feeds DIR] [--port 8089]

Reads every ``DIR/*.xml`` (default: ``benchmarks/.corpus/feeds200-seed42-port8089/feeds``, or
the main checkout's when run from a git worktree; ``benchmarks/corpus.py --feeds 200 --out ...``
makes one) into memory, then parses them all in this process with
``parse_feed(..., fast=False)`` (feedparser, the reference) and ``fast=True`` (``aggregator.parse.fastfeed``,
lxml, falling back to feedparser for what it declines), and prints the CPU seconds of each
(``time.process_time``: the machine is shared, so wall time would measure the neighbours),
the entries read, the share of documents the fast path accepts, and whether both runs gave
equal ``FeedData``; and the reading alone (feedparser's ``parse`` against ``read_feed``). The
two whole runs include everything ``parse_feed`` does after reading: sanitizing
HTML (nh3), dates, keys and content hashes.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from aggregator.parse import feed as parse
from aggregator.parse.fastfeed import read_feed

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path("benchmarks") / ".corpus" / "feeds200-seed42-port8089" / "feeds"


def _default_dir() -> Path:
    for root in (ROOT, ROOT.parent / "main"):
        if (root / CORPUS).is_dir():
            return root / CORPUS
    return ROOT / CORPUS


def _run(documents: list[tuple[str, bytes]], *, fast: bool) -> tuple[float, list[object]]:
    started = time.process_time()
    results = [parse.parse_feed(content, {}, url, fast=fast) for url, content in documents]
    return time.process_time() - started, results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=Path, default=_default_dir())
    parser.add_argument("--port", type=int, default=8089)
    args = parser.parse_args(argv)
    paths = sorted(args.feeds.glob("*.xml"))
    if not paths:
        parser.error(f"no *.xml in {args.feeds} (make a corpus with benchmarks/corpus.py)")
    documents = [
        (f"http://127.0.0.1:{args.port}/feeds/{path.name}", path.read_bytes()) for path in paths
    ]
    accepted = sum(
        read_feed(content, {}, url, parse.MAX_ENTRIES) is not None for url, content in documents
    )
    started = time.process_time()
    for url, content in documents:
        parse._run_feedparser(content, {}, url)
    read_slow = time.process_time() - started
    started = time.process_time()
    for url, content in documents:
        read_feed(content, {}, url, parse.MAX_ENTRIES)
    read_quick = time.process_time() - started
    slow, reference = _run(documents, fast=False)
    quick, results = _run(documents, fast=True)
    entries = sum(len(feed.entries) for feed in reference)  # type: ignore[attr-defined]
    size = sum(len(content) for _, content in documents) / 1e6
    print(f"{len(documents)} feeds, {entries} entries, {size:.1f} MB from {args.feeds}")
    print(
        f"fast path accepts {accepted} of {len(documents)} ({100 * accepted / len(documents):.0f}%)"
    )
    print(f"feedparser (fast=False): {slow:6.2f} s CPU")
    print(f"fast path  (fast=True):  {quick:6.2f} s CPU  ({slow / quick:.1f}x)")
    print(f"reading alone: feedparser {read_slow:.2f} s, fastfeed {read_quick:.2f} s CPU")
    print(f"same FeedData both ways: {results == reference}")
    return 0 if results == reference else 1


if __name__ == "__main__":
    raise SystemExit(main())
