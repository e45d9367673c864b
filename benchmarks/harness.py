"""Shared helpers: measured subprocesses, package installs, SQLite counts, formatting."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent


# -- measured child processes --------------------------------------------------------------------


@dataclass
class Measured:
    """One child process: wall time, CPU (user+sys, incl. its waited-for children) and peak RSS."""

    cmd: list[str]
    returncode: int
    wall: float
    user: float
    sys: float
    maxrss_kb: int
    log: Path
    timed_out: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def cpu(self) -> float:
        return self.user + self.sys

    @property
    def rss_mb(self) -> float:
        return self.maxrss_kb / 1024  # Linux reports ru_maxrss in KiB

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.rstrip().splitlines()[-lines:])


def run_measured(
    cmd: list[str],
    log: Path,
    *,
    env: dict | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
) -> Measured:
    """Run ``cmd`` to completion with stdout+stderr to ``log``; measure it with ``os.wait4``.

    The command is started by the small ``_measure.py`` launcher (see there why), in its own
    session; on timeout the whole group is killed (SIGTERM, then SIGKILL after 5 s).
    """
    import json

    log.parent.mkdir(parents=True, exist_ok=True)
    result_file = log.with_name(log.name + ".rusage.json")
    result_file.unlink(missing_ok=True)
    launcher = [sys.executable, "-S", str(BENCH_DIR / "_measure.py"), str(result_file), "--"]
    timed_out = threading.Event()
    with open(log, "wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [*launcher, *cmd],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )

        def _kill() -> None:
            timed_out.set()
            for sig, pause in ((signal.SIGTERM, 5), (signal.SIGKILL, 0)):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    return
                time.sleep(pause)

        timer = threading.Timer(timeout, _kill) if timeout else None
        if timer:
            timer.daemon = True
            timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            if timer:
                timer.cancel()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
    try:
        data = json.loads(result_file.read_text())
    except (OSError, ValueError):  # the launcher was killed: fall back to its own figures
        data = {
            "returncode": proc.returncode,
            "wall": wall,
            "user": usage.ru_utime,
            "sys": usage.ru_stime,
            "maxrss_kb": usage.ru_maxrss,
        }
    return Measured(
        cmd=cmd,
        returncode=data["returncode"],
        wall=data["wall"],
        user=data["user"],
        sys=data["sys"],
        maxrss_kb=data["maxrss_kb"],
        log=log,
        timed_out=timed_out.is_set(),
    )


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, grace: float = 10) -> None:
    """Stop one process we started (and its process group, if it leads one)."""
    if proc.poll() is not None:
        return
    try:
        pgid = os.getpgid(proc.pid)
        if pgid == proc.pid:
            os.killpg(pgid, sig)
        else:
            proc.send_signal(sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            if os.getpgid(proc.pid) == proc.pid:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
        proc.wait(5)


# -- installs ---------------------------------------------------------------------------------

_apt_updated = False


def find_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for folder in ("/usr/sbin", "/usr/local/sbin", "/sbin", "/usr/bin"):
        candidate = Path(folder) / name
        if candidate.exists() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def ensure_apt_package(binary: str, package: str, log: Path) -> str | None:
    """The path of ``binary``, installing Debian's ``package`` with apt-get when it is missing."""
    global _apt_updated
    found = find_binary(binary)
    if found:
        return found
    prefix: list[str] = []
    if os.geteuid() != 0:
        if not shutil.which("sudo"):
            print(f"  cannot install {package}: not root and no sudo")
            return None
        prefix = ["sudo", "-n"]
    if not shutil.which("apt-get"):
        print(f"  cannot install {package}: no apt-get on this machine")
        return None
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        if not _apt_updated:
            print("  apt-get update ...", flush=True)
            subprocess.run(
                [*prefix, "apt-get", "-o", "DPkg::Lock::Timeout=600", "update"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                timeout=900,
                check=False,
            )
            _apt_updated = True
        print(f"  apt-get install -y {package} ...", flush=True)
        result = subprocess.run(
            [
                *prefix,
                "apt-get",
                "-o",
                "DPkg::Lock::Timeout=600",
                "install",
                "-y",
                "--no-install-recommends",
                package,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            timeout=1500,
            check=False,
        )
    found = find_binary(binary)
    if not found:
        print(f"  installing {package} failed (exit {result.returncode}); see {log}")
    return found


# -- small utilities -------------------------------------------------------------------------


def free_port(preferred: int | None = None) -> int:
    """``preferred`` when it is free on 127.0.0.1, else any free port."""
    if preferred:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", preferred))
                return preferred
            except OSError:
                pass
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(
    url: str, timeout: float, proc: subprocess.Popen | None = None, headers: dict | None = None
) -> int | None:
    """Poll ``url`` (loopback only) until it answers; return the status, or None on timeout."""
    import urllib.error
    import urllib.request

    assert url.startswith(("http://127.0.0.1:", "http://localhost:", "http://[::1]:")), url
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return None
        try:
            request = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(request, timeout=5) as response:
                response.read()
                return response.status
        except urllib.error.HTTPError as error:
            if error.code < 500:
                return error.code
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    return None


def sqlite_counts(db: Path) -> dict[str, int | None]:
    """Row counts of the entries / comments / sources tables, found defensively by name.

    Exact names win; otherwise the first plain table whose name contains the word (FTS shadow tables
    and the like are skipped). A missing table gives None.
    """
    result: dict[str, int | None] = {"entries": None, "comments": None, "sources": None}
    if not db.exists():
        return result
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error:
        return result
    try:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        for wanted, stem in (("entries", "entr"), ("comments", "comment"), ("sources", "source")):
            table = wanted if wanted in names else None
            if table is None:
                candidates = [
                    name
                    for name in names
                    if stem in name.lower()
                    and not any(
                        bad in name.lower()
                        for bad in (
                            "fts",
                            "_data",
                            "_idx",
                            "_content",
                            "_docsize",
                            "_config",
                            "search",
                        )
                    )
                ]
                table = min(candidates, key=len) if candidates else None
            if table:
                (count,) = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()
                result[wanted] = count
    except sqlite3.Error:
        pass
    finally:
        conn.close()
    return result


def project_command() -> list[str]:
    """How to call the project's CLI: ``$AGGREGATOR_BENCH_CMD`` when set (e.g. another build),
    else the project venv's ``aggregator`` script, else ``python -m aggregator``."""
    import shlex

    override = os.environ.get("AGGREGATOR_BENCH_CMD")
    if override:
        return shlex.split(override)
    for candidate in (
        ROOT / ".venv" / "bin" / "aggregator",
        Path(sys.executable).parent / "aggregator",
    ):
        if candidate.exists():
            return [str(candidate)]
    return [sys.executable, "-m", "aggregator"]


def fmt_num(value: float | int | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "  ".join(
            str(cell).ljust(widths[i]) if i == 0 else str(cell).rjust(widths[i])
            for i, cell in enumerate(row)
        )

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


# -- result rows ---------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the poll/peer table."""

    label: str
    wall: float | None = None
    cpu: float | None = None
    rss_mb: float | None = None
    feeds: int | None = None
    entries: int | None = None
    comments: int | None = None
    requests: dict | None = None
    note: str = ""

    @classmethod
    def of(cls, label: str, m: Measured, **kw: object) -> Row:
        return cls(label, wall=m.wall, cpu=m.cpu, rss_mb=m.rss_mb, **kw)

    def rate(self, count: int | None) -> float | None:
        if count is None or not self.wall:
            return None
        return count / self.wall

    def cells(self) -> list[str]:
        req = self.requests or {}
        return [
            self.label,
            fmt_num(self.wall),
            fmt_num(self.cpu),
            fmt_num(self.rate(self.feeds)),
            fmt_num(self.rate(self.entries)),
            fmt_num(self.rate(self.comments)),
            fmt_num(self.rss_mb, 0),
            fmt_num(req.get("total")),
            fmt_num(req.get("200")),
            fmt_num(req.get("304")),
        ]

    def as_dict(self) -> dict:
        return {
            "label": self.label,
            "wall_s": self.wall,
            "cpu_s": self.cpu,
            "peak_rss_mb": self.rss_mb,
            "feeds": self.feeds,
            "entries": self.entries,
            "comments": self.comments,
            "feeds_per_s": self.rate(self.feeds),
            "entries_per_s": self.rate(self.entries),
            "comments_per_s": self.rate(self.comments),
            "requests": self.requests,
            "note": self.note,
        }


ROW_HEADER = [
    "run",
    "wall s",
    "CPU s",
    "feeds/s",
    "entries/s",
    "comments/s",
    "peak RSS MB",
    "requests",
    "200",
    "304",
]


def combine(label: str, rows: list[Row]) -> Row:
    """Two runs one after the other: times and requests add up, peak RSS is the larger one."""
    requests: dict = {}
    for row in rows:
        for key, value in (row.requests or {}).items():
            requests[key] = requests.get(key, 0) + value

    def total(attr: str) -> float | None:
        values = [getattr(row, attr) for row in rows]
        return None if any(v is None for v in values) else sum(values)

    feeds = next((r.feeds for r in rows if r.feeds is not None), None)
    entries = next((r.entries for r in rows if r.entries is not None), None)
    comments = next((r.comments for r in rows if r.comments is not None), None)
    rss = [r.rss_mb for r in rows if r.rss_mb is not None]
    return Row(
        label,
        wall=total("wall"),
        cpu=total("cpu"),
        rss_mb=max(rss) if rss else None,
        feeds=feeds,
        entries=entries,
        comments=comments,
        requests=requests or None,
    )


@dataclass
class Section:
    """What one optional section (publish, serve) reports."""

    name: str
    skipped: str | None = None
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)

    def render(self) -> str:
        if self.skipped:
            return f"{self.name}: SKIPPED -- {self.skipped}"
        text = table(self.rows, self.header) if self.rows else f"{self.name}: (no figures)"
        return "\n".join([text, *[f"  note: {n}" for n in self.notes]])
