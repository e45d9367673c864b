"""The peer: lemon24's ``reader`` for the feeds, plain ``feedparser`` for the comment feeds.

Runs inside ``benchmarks/.venv-peer`` (created by run.py), never in the project's venv, and imports
nothing from the project or from the other benchmark modules. Each call is one measured subprocess:

    python peer.py reader   --manifest M --db reader.sqlite --json out.json [--workers 1]
    python peer.py comments --manifest M --state etags.json --json out.json [--threads 8]

``reader``: adds every feed of the manifest (when the database is new) and calls
``update_feeds(scheduled=False)`` once; run it twice on the same database for cold and warm.

``comments``: fetches every comment feed URL of the manifest with a pool of 8 threads (one
``requests.Session`` per thread, gzip, keep-alive), one request per comment feed, and parses each
body with ``feedparser.parse``. The ETag / Last-Modified of each answer is saved in ``--state``; a
second run sends them back (If-None-Match / If-Modified-Since), as any polite poller would, so the
warm run is mostly 304s -- the same courtesy reader and aggregator extend to the feeds.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def _manifest(path: str) -> dict:
    return json.loads(Path(path).read_text())


def _check_loopback(url: str) -> None:
    if not url.startswith(("http://127.0.0.1:", "http://localhost:", "http://[::1]:")):
        raise SystemExit(f"refusing non-loopback URL {url!r}")


def run_reader(args: argparse.Namespace) -> dict:
    import reader as reader_module
    from reader import make_reader

    manifest = _manifest(args.manifest)
    urls = [record["url"] for record in manifest["feeds"]]
    for url in urls:
        _check_loopback(url)
    new_db = not Path(args.db).exists()
    started = time.perf_counter()
    reader = make_reader(args.db)
    added = 0
    if new_db:
        for url in urls:
            reader.add_feed(url, exist_ok=True)
            added += 1
    setup = time.perf_counter() - started

    kwargs: dict = {"workers": args.workers}
    if "scheduled" in inspect.signature(reader.update_feeds_iter).parameters:
        kwargs["scheduled"] = False  # reader >= 3.21 only updates *due* feeds by default
    outcomes = {"updated": 0, "not_modified": 0, "errors": 0}
    errors: list[str] = []
    new_entries = 0
    started = time.perf_counter()
    for result in reader.update_feeds_iter(**kwargs):
        value = result.value
        if isinstance(value, Exception):
            outcomes["errors"] += 1
            if len(errors) < 5:
                errors.append(f"{result.url}: {value!r}")
        elif value is None:
            outcomes["not_modified"] += 1
        else:
            outcomes["updated"] += 1
            new_entries += getattr(value, "new", 0) or 0
    update = time.perf_counter() - started
    counts = reader.get_entry_counts()
    feeds = len(list(reader.get_feeds()))
    reader.close()
    return {
        "tool": f"reader {reader_module.__version__}",
        "feeds": feeds,
        "feeds_added": added,
        "entries_total": counts.total,
        "new_entries": new_entries,
        "outcomes": outcomes,
        "errors_sample": errors,
        "setup_s": round(setup, 3),
        "update_s": round(update, 3),
        "workers": args.workers,
    }


def run_comments(args: argparse.Namespace) -> dict:
    import feedparser
    import requests

    manifest = _manifest(args.manifest)
    urls = [cf["url"] for record in manifest["feeds"] for cf in record["comment_feeds"]]
    for url in urls:
        _check_loopback(url)
    state_path = Path(args.state)
    state: dict[str, dict] = json.loads(state_path.read_text()) if state_path.exists() else {}
    local = threading.local()
    lock = threading.Lock()
    totals = {"comments": 0, "fetched": 0, "not_modified": 0, "errors": 0, "bozo": 0, "bytes": 0}
    errors: list[str] = []
    new_state: dict[str, dict] = {}
    agent = f"peer-bench feedparser/{feedparser.__version__} requests/{requests.__version__}"

    def fetch(url: str) -> None:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.headers["User-Agent"] = agent
            session.headers["Accept-Encoding"] = "gzip"
        headers = {}
        known = state.get(url, {})
        if known.get("etag"):
            headers["If-None-Match"] = known["etag"]
        if known.get("last_modified"):
            headers["If-Modified-Since"] = known["last_modified"]
        try:
            response = session.get(url, headers=headers, timeout=30)
        except requests.RequestException as error:
            with lock:
                totals["errors"] += 1
                if len(errors) < 5:
                    errors.append(f"{url}: {error!r}")
            return
        if response.status_code == 304:
            with lock:
                totals["not_modified"] += 1
                new_state[url] = known
            return
        if response.status_code != 200:
            with lock:
                totals["errors"] += 1
                if len(errors) < 5:
                    errors.append(f"{url}: HTTP {response.status_code}")
            return
        body = response.content
        parsed = feedparser.parse(
            body,
            response_headers={
                k.lower(): v for k, v in response.headers.items() if k.lower() != "content-encoding"
            },
        )
        with lock:
            totals["fetched"] += 1
            totals["bytes"] += len(body)
            totals["comments"] += len(parsed.entries)
            totals["bozo"] += bool(parsed.bozo)
            new_state[url] = {
                "etag": response.headers.get("ETag"),
                "last_modified": response.headers.get("Last-Modified"),
            }

    started = time.perf_counter()
    with ThreadPoolExecutor(args.threads) as pool:
        for _ in pool.map(fetch, urls):
            pass
    elapsed = time.perf_counter() - started
    state_path.write_text(json.dumps(new_state))
    return {
        "tool": f"feedparser {feedparser.__version__} + requests {requests.__version__}",
        "comment_feeds": len(urls),
        "threads": args.threads,
        "fetch_parse_s": round(elapsed, 3),
        "errors_sample": errors,
        **totals,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="peer benchmark runner (runs in .venv-peer)")
    sub = parser.add_subparsers(dest="mode", required=True)
    one = sub.add_parser("reader")
    one.add_argument("--manifest", required=True)
    one.add_argument("--db", required=True)
    one.add_argument("--json", required=True)
    one.add_argument("--workers", type=int, default=1)
    two = sub.add_parser("comments")
    two.add_argument("--manifest", required=True)
    two.add_argument("--state", required=True)
    two.add_argument("--json", required=True)
    two.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv)
    result = run_reader(args) if args.mode == "reader" else run_comments(args)
    result["pid"] = os.getpid()
    Path(args.json).write_text(json.dumps(result, indent=1))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
