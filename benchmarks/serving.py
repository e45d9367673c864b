"""Serving benchmark: wrk against ``aggregator serve`` (127.0.0.1 only).

Two figures, each one bounded wrk run (default 10 s, 2 threads, 16 connections, gzip accepted):

* requests/s for a cached feed (``/feeds/all.atom``, full 200 answers)
* requests/s for 304 answers (a Lua script sends the feed's ETag in If-None-Match)

Within run.py (``--only serve``) it polls the corpus into a database first when none exists yet,
publishes, starts ``aggregator --config CFG serve`` on a free port and stops it afterwards.
Standalone, it measures any loopback URL, e.g. the corpus server::

    python benchmarks/serving.py --url http://127.0.0.1:8089/feeds/feed0001.xml
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402
    ROOT,
    Section,
    ensure_apt_package,
    fmt_num,
    project_command,
    run_measured,
    sqlite_counts,
    stop_process,
    wait_for_http,
)

LOOPBACK = ("http://127.0.0.1:", "http://localhost:", "http://[::1]:")


def _get(url: str, headers: dict) -> tuple[int, dict, int]:
    assert url.startswith(LOOPBACK), url
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), len(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), 0


def parse_wrk(text: str) -> dict:
    def grab(pattern: str) -> str | None:
        match = re.search(pattern, text, re.MULTILINE)
        return match.group(1) if match else None

    result: dict = {}
    rps = grab(r"^Requests/sec:\s+([\d.]+)")
    result["requests_per_s"] = float(rps) if rps else None
    result["transfer_per_s"] = grab(r"^Transfer/sec:\s+(\S+)")
    total = grab(r"^\s*(\d+) requests in")
    result["requests"] = int(total) if total else None
    result["p50"] = grab(r"^\s+50%\s+(\S+)")
    result["p99"] = grab(r"^\s+99%\s+(\S+)")
    bad = grab(r"Non-2xx or 3xx responses:\s+(\d+)")
    result["non_2xx_3xx"] = int(bad) if bad else 0
    result["socket_errors"] = grab(r"Socket errors:\s+(.+)$")
    return result


def run_wrk(
    wrk: str, url: str, headers: dict, duration: int, connections: int, threads: int, log: Path
) -> dict:
    """One bounded wrk run; headers go through a Lua script (wrk.headers)."""
    assert url.startswith(LOOPBACK), url
    script = log.with_suffix(".lua")
    script.write_text(
        "".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n" for k, v in headers.items())
    )
    cmd = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    m = run_measured(cmd, log, timeout=duration + 60)
    text = log.read_text(errors="replace")
    result = parse_wrk(text)
    result["ok"] = m.ok and result["requests_per_s"] is not None
    if not result["ok"]:
        result["error"] = " | ".join(text.strip().splitlines()[-3:])
    return result


def _proc_figures(pid: int) -> tuple[float | None, float | None]:
    """(CPU seconds so far, peak RSS MB) of a running process, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        import os

        ticks = os.sysconf("SC_CLK_TCK")
        cpu = (int(fields[11]) + int(fields[12])) / ticks
        status = Path(f"/proc/{pid}/status").read_text()
        match = re.search(r"VmHWM:\s+(\d+) kB", status)
        return cpu, int(match.group(1)) / 1024 if match else None
    except (OSError, IndexError, ValueError):
        return None, None


def measure_url(
    wrk: str, url: str, logs: Path, duration: int, connections: int, pid: int | None = None
) -> tuple[list[list[str]], dict, list[str]]:
    """wrk on ``url`` for full answers, then with its ETag for 304s. Rows, data and notes."""
    rows, data, notes = [], {}, []
    status, headers, size = _get(url, {"Accept-Encoding": "gzip"})
    if status != 200:
        raise RuntimeError(f"{url} answered {status}")
    headers = {k.lower(): v for k, v in headers.items()}
    etag = headers.get("etag")
    data["feed_bytes"] = size
    data["content_encoding"] = headers.get("content-encoding")
    runs = [("cached feed (200)", {"Accept-Encoding": "gzip"})]
    if etag:
        check, _, _ = _get(url, {"If-None-Match": etag, "Accept-Encoding": "gzip"})
        if check == 304:
            runs.append(("If-None-Match (304)", {"If-None-Match": etag, "Accept-Encoding": "gzip"}))
        else:
            notes.append(f"a request with If-None-Match {etag} got {check}, not 304: no 304 run")
    else:
        notes.append("the feed has no ETag: no 304 run")
    for label, request_headers in runs:
        cpu_before, _ = _proc_figures(pid) if pid else (None, None)
        result = run_wrk(
            wrk,
            url,
            request_headers,
            duration,
            connections,
            2,
            logs / f"wrk-{'304' if '304' in label else '200'}.log",
        )
        cpu_after, hwm = _proc_figures(pid) if pid else (None, None)
        result["server_cpu_s"] = (
            (cpu_after - cpu_before) if cpu_before is not None and cpu_after is not None else None
        )
        result["server_peak_rss_mb"] = hwm
        data[label] = result
        if not result["ok"]:
            notes.append(f"wrk {label} failed: {result.get('error')}")
            continue
        rows.append(
            [
                label,
                fmt_num(result["requests_per_s"], 0),
                result["p50"] or "-",
                result["p99"] or "-",
                result["transfer_per_s"] or "-",
                fmt_num(result["non_2xx_3xx"]),
                fmt_num(result["server_cpu_s"]),
                fmt_num(hwm, 0),
            ]
        )
        if result["non_2xx_3xx"]:
            notes.append(f"{label}: {result['non_2xx_3xx']} answers were not 2xx/3xx")
        if result["socket_errors"]:
            notes.append(f"{label}: socket errors {result['socket_errors']}")
    notes.append(
        f"wrk -t2 -c{connections} -d{duration}s on {url}; body {size:,} bytes "
        f"({data['content_encoding'] or 'identity'})"
    )
    return rows, data, notes


HEADER = [
    "serve",
    "requests/s",
    "p50",
    "p99",
    "transfer/s",
    "non-2xx/3xx",
    "server CPU s",
    "server peak MB",
]


def run_section(ctx) -> Section:
    """The ``serve`` section of run.py."""
    section = Section("serve", header=HEADER)
    print("\n== serve: wrk against aggregator serve ==", flush=True)
    wrk = ensure_apt_package("wrk", "wrk", ctx.log("install.log"))
    if not wrk:
        section.skipped = "wrk is not installed and could not be installed (apt-get install wrk)"
        return section
    config = ctx.aggregator_config()
    db = config.parent / "agg.db"
    agg = [*project_command(), "--config", str(config)]
    if not sqlite_counts(db)["entries"]:
        print(
            "  no polled database yet: running aggregator poll once (not measured) ...", flush=True
        )
        m = run_measured(
            [*agg, "poll"], ctx.log("serve-setup-poll.log"), cwd=ROOT, timeout=ctx.args.timeout
        )
        if not sqlite_counts(db)["entries"]:
            section.skipped = (
                f"needs a polled database, and aggregator poll failed "
                f"(exit {m.returncode}): {' | '.join(m.tail(2).splitlines())}"
            )
            return section
    m = run_measured(
        [*agg, "publish"], ctx.log("serve-setup-publish.log"), cwd=ROOT, timeout=ctx.args.timeout
    )
    if not m.ok:
        section.skipped = (
            f"aggregator publish failed (exit {m.returncode}): {' | '.join(m.tail(2).splitlines())}"
        )
        return section
    url = f"http://127.0.0.1:{ctx.serve_port}/feeds/all.atom"
    log = ctx.log("aggregator-serve.log")
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*agg, "serve"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
            start_new_session=True,
        )
    try:
        status = wait_for_http(url, 60, proc)
        if status != 200:
            tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-2:])
            section.skipped = f"aggregator serve did not answer 200 on {url} (got {status}): {tail}"
            return section
        rows, data, notes = measure_url(
            wrk, url, ctx.results_dir, ctx.args.wrk_duration, ctx.args.wrk_connections, pid=proc.pid
        )
        section.rows, section.data, section.notes = rows, data, notes
        for row in rows:
            print(f"  {row[0]}: {row[1]} requests/s (p50 {row[2]}, p99 {row[3]})", flush=True)
    except Exception as error:  # report, do not abort the other sections
        section.skipped = f"serve benchmark failed: {error}"
    finally:
        stop_process(proc)
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="wrk on one loopback URL: 200s, then 304s")
    parser.add_argument("--url", required=True)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args(argv)
    if not args.url.startswith(LOOPBACK):
        parser.error("only loopback URLs (http://127.0.0.1:PORT/...)")
    logs = Path(tempfile.mkdtemp(prefix="wrk-"))
    wrk = ensure_apt_package("wrk", "wrk", logs / "install.log")
    if not wrk:
        print("wrk is not available")
        return 1
    rows, _, notes = measure_url(wrk, args.url, logs, args.duration, args.connections)
    from harness import table

    print(table(rows, HEADER))
    for note in notes:
        print(f"  note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
