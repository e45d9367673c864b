"""One writer daemon per database: an exclusive ``flock`` on ``<database>.lock``.

The lock belongs to the open file, so the kernel releases it when the process ends in any
way (including ``kill -9``): a stale lock file never blocks a restart. The holder's pid is
written into the file so that a second daemon can say who holds it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from aggregator.errors import LockedError, StorageError


class DatabaseLock:
    """Hold ``<database>.lock`` for as long as the daemon runs. Use as a context manager."""

    def __init__(self, database: str | os.PathLike[str]):
        self.path = Path(f"{os.fspath(database)}.lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`LockedError` naming the holder, at once (no wait)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise StorageError(f"{self.path}: cannot open lock file: {error}") from error
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise LockedError(
                f"another aggregator daemon{who} is already running on {self.path.with_suffix('')}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DatabaseLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
