"""uvicorn's only adapter: the HTTP server that runs :func:`aggregator.serve.server.create_app`,
guarded against clients that hold connections without sending requests (slowloris).

uvicorn alone counts every open connection against ``limit_concurrency`` and answers 503 to
everyone once that many are open, and it never closes a connection that has not sent a request
head yet: 256 idle sockets took the server down. Here uvicorn runs with its h11 protocol
subclassed (:class:`GuardedH11Protocol`):

* a connection must send a complete request head within ``server.header_timeout`` seconds of
  its first byte (or of its opening), else it is closed; a trickled head does not reset the
  clock, only a complete one does;
* at most ``server.max_connections`` connections are open at once (less when the file
  descriptor limit is lower); a new connection over the cap closes the connection that has
  waited longest for a request head, so idle connections can never lock out a client that
  sends a request, and only when every connection is busy with a request is the new one closed;
* ``limit_concurrency`` is off: idle connections no longer turn requests into 503s, and
  requests in flight are bounded by the connections (h11 handles one request per connection
  at a time);
* the soft ``RLIMIT_NOFILE`` is raised to the hard limit at start (:func:`raise_file_limit`).

The alternatives (hypercorn, granian) were not taken: hypercorn is slower than uvicorn for
this app, granian moves serving into Rust worker threads outside our process model; the guard
is about a hundred lines over a protocol that uvicorn documents as replaceable (``http=``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import h11
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

from aggregator.config.server import ServerConfig

log = logging.getLogger(__name__)

#: File descriptors kept for everything but clients: the database, sandbox pipes, fetches.
RESERVED_DESCRIPTORS = 1024
#: uvicorn settings that bound what one client can hold: the size of an unfinished request
#: head (h11), how long an idle keep-alive connection stays, and the listen queue.
SERVER_LIMITS: dict[str, Any] = {
    "limit_concurrency": None,
    "h11_max_incomplete_event_size": 16 * 1024,
    "timeout_keep_alive": 5,
    "backlog": 2048,
}


def raise_file_limit() -> int:
    """Raise the soft limit on open files to the hard limit; return the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as error:  # e.g. RLIM_INFINITY refused by the kernel
            log.warning("cannot raise the open files limit from %d to %d: %s", soft, hard, error)
    return soft


def connection_cap(max_connections: int, file_limit: int) -> int:
    """The connections to allow at once: the configured cap, less when descriptors are few."""
    return max(16, min(max_connections, file_limit - RESERVED_DESCRIPTORS))


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for request heads and a connection cap.

    ``header_timeout`` and ``max_connections`` are set on a subclass per server
    (:func:`guarded_protocol`). Connections waiting for a request head are kept, oldest first,
    in an ordered set shared through uvicorn's ``ServerState``.
    """

    header_timeout: float = 10.0
    max_connections: int = 8192

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer: asyncio.TimerHandle | None = None
        self._arm_head_timer()
        self._wait()
        if len(self.connections) > self.max_connections:
            self._shed()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        self._waiting().pop(self, None)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._head_timer is None and self._awaiting_head():
            self._arm_head_timer()  # the first byte of a new head, after a keep-alive pause
        super().data_received(data)
        if not self._awaiting_head():
            self._disarm_head_timer()
            self._waiting().pop(self, None)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self._awaiting_head():
            self._wait()  # keep-alive: idle again, and first in line to be shed

    # -- the guard ---------------------------------------------------------------------------
    def _awaiting_head(self) -> bool:
        return self.conn.their_state is h11.IDLE and not self.transport.is_closing()

    def _waiting(self) -> OrderedDict[GuardedH11Protocol, None]:
        state = self.server_state
        waiting = getattr(state, "aggregator_waiting", None)
        if waiting is None:
            waiting = OrderedDict()
            state.aggregator_waiting = waiting  # type: ignore[attr-defined]
        return waiting

    def _wait(self) -> None:
        waiting = self._waiting()
        waiting[self] = None
        waiting.move_to_end(self)

    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        timer = getattr(self, "_head_timer", None)
        if timer is not None:
            timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._awaiting_head():
            self._close()

    def _shed(self) -> None:
        """Over the cap: close the connection that has waited longest for a request head."""
        waiting = self._waiting()
        oldest = next((p for p in waiting if p is not self), None)
        victim = oldest if oldest is not None else self
        waiting.pop(victim, None)
        victim._close()

    def _close(self) -> None:
        self._disarm_head_timer()
        with contextlib.suppress(h11.LocalProtocolError):
            self.conn.send(h11.ConnectionClosed())
        self.transport.close()


def guarded_protocol(header_timeout: float, max_connections: int) -> type[GuardedH11Protocol]:
    """A :class:`GuardedH11Protocol` subclass with these limits (uvicorn's ``http=``)."""
    return type(
        "GuardedH11Protocol",
        (GuardedH11Protocol,),
        {"header_timeout": header_timeout, "max_connections": max_connections},
    )


class Server(uvicorn.Server):
    """uvicorn's server, minus re-raising the stop signal after shutdown.

    uvicorn re-raises a captured SIGTERM once it has shut down, which would kill the process
    before the daemon stops its scheduler; we exit normally instead (status 0).
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            self._captured_signals.clear()


def make_server(app: ASGIApp, server: ServerConfig, *, log_level: str = "warning") -> Server:
    """A guarded uvicorn server for ``app`` on ``server.host:server.port``.

    Raises the process's open files limit first; the connection cap follows from it.
    """
    cap = connection_cap(server.max_connections, raise_file_limit())
    return Server(
        uvicorn.Config(
            app,
            host=server.host,
            port=server.port,
            log_level=log_level,
            access_log=False,
            lifespan="off",
            http=guarded_protocol(server.header_timeout, cap),
            **SERVER_LIMITS,
        )
    )
