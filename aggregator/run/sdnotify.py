"""systemd's readiness protocol (sd_notify): a datagram to ``$NOTIFY_SOCKET``, or nothing.

A few lines of socket code rather than a dependency: the protocol is one datagram of
``KEY=value`` lines (``man 3 sd_notify``). Outside systemd (no ``NOTIFY_SOCKET``) every call
does nothing, and a failure to send is never fatal: the daemon's work matters more.
"""

from __future__ import annotations

import os
import socket
import time


def notify(*lines: str) -> bool:
    """Send ``lines`` (``READY=1``, ``STOPPING=1``, ``STATUS=...``) to systemd, if it listens.

    Returns whether a message was sent.
    """
    address = os.environ.get("NOTIFY_SOCKET")
    if not address or not lines:
        return False
    if address.startswith("@"):  # an abstract socket: the name starts with a NUL byte
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall("\n".join(lines).encode("utf-8"))
    except OSError:
        return False
    return True


def reloading() -> bool:
    """Tell systemd a reload started (``Type=notify-reload`` needs the monotonic timestamp)."""
    return notify(
        "RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}"
    )
