"""Real-world section: a cold ``aggregator poll`` of the shared real-world corpus against
``feedparser.parse`` over the same files (issue 13, item 12).

    .venv/bin/python benchmarks/realworld.py [--corpus ../shared/corpora/realworld] [--repeat 1]

Every file of the corpus's ``sources.json`` with ``kind == "feed"`` is served by a thread
server on 127.0.0.1 (``Content-Type: application/xml``, so the XML declaration's encoding
counts), one source per feed, comments off (their links lead off the machine). The project's
figure is the CPU time (user + system) of ``aggregator --config CFG poll`` on an empty database,
descendants included (``resource.getrusage(RUSAGE_CHILDREN)`` around the subprocess: the
sandbox's fork server (the zygote, or multiprocessing's with its resource tracker) and the
parse workers forked from it are its descendants; this process is made their subreaper, so one
the poll leaves behind is still waited for and counted). feedparser's is the CPU time of this process while it runs
``feedparser.parse`` on the same bytes, one after the other. Target: the project at most half
of feedparser's. The server's own CPU (in this process, during the poll) is counted in neither.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def feed_files(corpus: Path) -> list[Path]:
    """The corpus's feed files, in ``sources.json`` order."""
    sources = json.loads((corpus / "sources.json").read_text())
    return [corpus / "files" / item["file"] for item in sources if item["kind"] == "feed"]


def serve(files: list[Path]) -> tuple[ThreadingHTTPServer, list[str]]:
    """A thread server on a free loopback port answering ``/feeds/<n>.xml`` with file ``n``."""
    bodies = [path.read_bytes() for path in files]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            name = self.path.rsplit("/", 1)[-1].removesuffix(".xml")
            if not name.isdigit() or int(name) >= len(bodies):
                self.send_error(404)
                return
            body = bodies[int(name)]
            self.send_response(200)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    return server, [f"http://127.0.0.1:{port}/feeds/{i}.xml" for i in range(len(files))]


def config_text(urls: list[str], workdir: Path) -> str:
    lines = [
        f"database: {json.dumps(str(workdir / 'agg.db'))}",
        f"public_dir: {json.dumps(str(workdir / 'public'))}",
        "defaults: {interval: 1h, comments: false}",
        "sources:",
    ]
    lines += [f"  - {{name: rw{i}, url: {json.dumps(url)}}}" for i, url in enumerate(urls)]
    lines += ["outputs:", "  - {name: all, title: Everything, limit: 100, formats: [atom]}"]
    return "\n".join(lines) + "\n"


def cpu(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def become_subreaper() -> None:
    """Make this process the reaper of its orphaned descendants (Linux ``PR_SET_CHILD_SUBREAPER``):
    a process the poll leaves behind (the fork server, the resource tracker) is re-parented here
    instead of to init, and :func:`reap_orphans` then counts its CPU time in ``RUSAGE_CHILDREN``."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        print("note: no subreaper (not Linux?): orphaned grandchildren are not counted")


def reap_orphans(timeout: float = 10.0) -> None:
    """Wait for every descendant re-parented to this process (see :func:`become_subreaper`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.05)


def poll_cpu(urls: list[str], aggregator: Path) -> tuple[float, float, str]:
    """CPU and wall seconds of one cold ``aggregator poll``, and its last line of output."""
    workdir = Path(tempfile.mkdtemp(prefix="rw-bench-"))
    try:
        config = workdir / "aggregator.yaml"
        config.write_text(config_text(urls, workdir))
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(
            [str(aggregator), "--config", str(config), "poll"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        reap_orphans()
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        lines = (done.stdout + done.stderr).strip().splitlines()
        return (
            cpu(after) - cpu(before),
            wall,
            f"exit {done.returncode}: " + (lines[-1] if lines else ""),
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def feedparser_cpu(files: list[Path]) -> tuple[float, int]:
    """CPU seconds of ``feedparser.parse`` over every file in this process, and the entries."""
    import feedparser

    bodies = [path.read_bytes() for path in files]
    before = resource.getrusage(resource.RUSAGE_SELF)
    entries = sum(len(feedparser.parse(body).entries) for body in bodies)
    return cpu(resource.getrusage(resource.RUSAGE_SELF)) - cpu(before), entries


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared/corpora/realworld")
    parser.add_argument("--aggregator", type=Path, default=ROOT / ".venv" / "bin" / "aggregator")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each; the best is kept")
    args = parser.parse_args()
    if not (args.corpus / "sources.json").is_file():
        print(f"SKIPPED -- no corpus at {args.corpus}", file=sys.stderr)
        return 2
    files = feed_files(args.corpus)
    become_subreaper()
    server, urls = serve(files)
    try:
        polls = [poll_cpu(urls, args.aggregator) for _ in range(args.repeat)]
    finally:
        server.shutdown()
    parses = [feedparser_cpu(files) for _ in range(args.repeat)]
    project, wall, outcome = min(polls)
    reference, entries = min(parses)
    print(f"real-world corpus: {len(files)} feeds, {entries} entries (feedparser's count)")
    print(f"aggregator poll (cold, children included): {project:.2f} CPU s, {wall:.2f} s wall"
          f"  [{outcome}]")  # fmt: skip
    print(f"feedparser.parse, one process:             {reference:.2f} CPU s")
    print(f"ratio aggregator/feedparser: {project / reference:.2f} (target <= 0.50)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
