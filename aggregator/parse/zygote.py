"""A fork server forked from this process: parse workers without a fresh interpreter.

``multiprocessing``'s fork server is a new interpreter that imports the parse modules again
(and starts a resource tracker, another interpreter): a fixed cost of about a quarter of a CPU
second for every ``aggregator poll``, paid again by the daemon at each start. Forking this
process is cheaper, since what it has imported is shared, but forking a process with live
threads is unsafe (a lock held by another thread stays held forever in the child). So, while
the process still has one thread, :func:`start` forks a *zygote*: a single-threaded copy that
imports the parse modules once (at its first request: a parser that never parses costs a
fork) and then only forks workers on request. When the process is
already threaded, :func:`start` declines and :mod:`aggregator.parse.workers` uses the
``multiprocessing`` fork server as before.

The protocol, over a Unix socket pair: the parent sends one pickled ``(target, args)`` with two
file descriptors (the worker's end of its :class:`~multiprocessing.connection.Connection` and
the write end of a status pipe); the zygote forks, answers with the child's pid, and when the
child ends writes its exit code to the status pipe. :class:`WorkerProcess` is the parent's
handle on such a worker, with the part of ``multiprocessing.Process``'s interface the lanes
use. The zygote exits when the parent closes its socket (or dies); workers exit when their
connection closes.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import pickle
import signal
import socket
import struct
import threading
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

from aggregator.errors import ParseError
from aggregator.launch import collector_paused

_LENGTH = struct.Struct("!I")
#: A pid (the zygote's answer to a request) or an exit code (on a worker's status pipe).
_NUMBER = struct.Struct("!q")
_MAX_REQUEST = 1 << 20


def single_threaded() -> bool:
    """Whether this process has exactly one thread (C threads included, on Linux)."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return threading.active_count() == 1


class Zygote:
    """The parent's handle on a running zygote (see the module's docstring)."""

    def __init__(self, pid: int, sock: socket.socket):
        self.pid = pid
        self._sock = sock
        self._lock = threading.Lock()

    @classmethod
    def start(cls, preload: Sequence[str]) -> Zygote | None:
        """Fork a zygote that imports ``preload``; ``None`` when this process has threads (or
        cannot fork), for the caller to fall back on ``multiprocessing``."""
        if not hasattr(os, "fork") or not single_threaded():
            return None
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            pid = os.fork()
        except OSError:
            ours.close()
            theirs.close()
            return None
        if pid == 0:  # the zygote
            code = 1
            try:
                ours.close()
                code = _serve(theirs, preload)
            finally:
                os._exit(code)
        theirs.close()
        return cls(pid, ours)

    def spawn(
        self, target: Callable[..., Any], conn: Connection, args: tuple[Any, ...]
    ) -> WorkerProcess:
        """A new worker running ``target(conn, *args)``; ``conn`` is handed over (close it here
        afterwards). Raises :class:`ParseError` when the zygote is gone."""
        payload = pickle.dumps((target, args))
        status_r, status_w = os.pipe()
        try:
            with self._lock:
                socket.send_fds(
                    self._sock, [_LENGTH.pack(len(payload)) + payload], [conn.fileno(), status_w]
                )
                pid = _NUMBER.unpack(_read_exactly(self._sock, _NUMBER.size))[0]
        except (OSError, EOFError, struct.error) as error:
            os.close(status_r)
            raise ParseError(f"the parser process could not be started ({error})") from None
        finally:
            os.close(status_w)
        return WorkerProcess(pid, status_r)

    def alive(self) -> bool:
        """Whether the zygote still runs (it is this process's child)."""
        try:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            return False
        return pid == 0

    def stop(self) -> None:
        """Close the socket, which ends the zygote, and wait for it (so that its CPU time, and
        its workers', count in this process's children)."""
        self._sock.close()
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


class WorkerProcess:
    """A worker forked by the zygote: its pid and, once it ended, its exit code."""

    def __init__(self, pid: int, status_fd: int):
        self.pid = pid
        self._status_fd: int | None = status_fd
        self._exitcode: int | None = None

    @property
    def exitcode(self) -> int | None:
        self._poll(0)
        return self._exitcode

    def is_alive(self) -> bool:
        return self._poll(0) is None

    def join(self, timeout: float | None = None) -> None:
        self._poll(timeout)

    def kill(self) -> None:
        if self._poll(0) is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)

    def _poll(self, timeout: float | None) -> int | None:
        fd = self._status_fd
        if fd is None:
            return self._exitcode
        # (multiprocessing's wait polls: select() refuses descriptors over 1023, which a
        # daemon serving many connections reaches.)
        if not wait([fd], timeout):
            return None
        data = b""
        while len(data) < _NUMBER.size:
            chunk = os.read(fd, _NUMBER.size - len(data))
            if not chunk:
                break
            data += chunk
        # A short read means the zygote itself died: the worker's end is unknown, call it 255.
        self._exitcode = _NUMBER.unpack(data)[0] if len(data) == _NUMBER.size else 255
        os.close(fd)
        self._status_fd = None
        return self._exitcode

    def __del__(self) -> None:
        if self._status_fd is not None:
            os.close(self._status_fd)


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError("the zygote closed its socket")
        data += chunk
    return data


def _serve(sock: socket.socket, preload: Sequence[str]) -> int:
    """The zygote's loop: fork a worker per request, report each one's end; 0 at the end."""
    loaded = False
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # ^C on the terminal is the parent's to handle
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w)
    status_fds: dict[int, int] = {}
    while True:
        try:
            ready = wait([sock.fileno(), wake_r])
        except InterruptedError:
            continue
        if wake_r in ready:
            _drain(wake_r)
            _reap(status_fds)
        if sock.fileno() in ready:
            try:
                data, fds, _, _ = socket.recv_fds(sock, 65536, 2)
            except OSError:
                data, fds = b"", []
            if not data:
                return 0  # the parent closed its end, or died
            try:
                (length,) = _LENGTH.unpack_from(data)
                if length > _MAX_REQUEST or len(fds) != 2:
                    return 1
                payload = data[_LENGTH.size :]
                if len(payload) < length:
                    payload += _read_exactly(sock, length - len(payload))
            except (struct.error, EOFError, OSError):
                return 1
            conn_fd, status_w = fds
            if not loaded:  # at the first request: a parser that never parses costs a fork
                _load(preload)
                loaded = True
            pid = os.fork()
            if pid == 0:  # the worker
                code = 1
                try:
                    signal.set_wakeup_fd(-1)
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    # SIGINT stays ignored: on ^C the parent stops its polls and then its
                    # workers, so a parse under way is not lost to the terminal's signal.
                    sock.close()
                    for fd in [wake_r, wake_w, status_w, *status_fds.values()]:
                        os.close(fd)
                    target, args = pickle.loads(payload)
                    target(Connection(conn_fd), *args)
                    code = 0
                finally:
                    os._exit(code)
            os.close(conn_fd)
            status_fds[pid] = status_w
            try:
                sock.sendall(_NUMBER.pack(pid))
            except OSError:
                return 0


def _load(preload: Sequence[str]) -> None:
    """Import ``preload`` with the collector paused, then freeze everything inherited or
    imported: it lives as long as the workers do, and out of the collector's sight no worker's
    collection walks (and copies) the parent's heap."""
    with collector_paused():
        for name in preload:
            importlib.import_module(name)
    gc.freeze()


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def _reap(status_fds: dict[int, int]) -> None:
    """Wait for every ended worker and write its exit code to its status pipe."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        fd = status_fds.pop(pid, None)
        if fd is None:
            continue
        with contextlib.suppress(OSError):  # the parent may have closed its end
            os.write(fd, _NUMBER.pack(os.waitstatus_to_exitcode(status)))
        os.close(fd)
