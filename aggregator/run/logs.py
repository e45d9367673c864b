"""Logging set-up for every command: to stderr, journald-friendly, or one JSON object a line.

Under systemd (``JOURNAL_STREAM`` names our stderr) each text line starts with the syslog
priority (``<4>`` for a warning) and carries no timestamp, since journald adds its own and
reads the priority, so ``journalctl -p warning`` works. ``--log-format json`` prints one
object per line (time, level, logger, message) for log shippers.

Every format removes terminal control sequences (:func:`aggregator.terminal.safe_text`) from
what it writes, whatever a message quotes (a server's reason phrase, a feed's title, a source
name): only line feeds are kept.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

from aggregator.terminal import safe_text

# syslog priorities (RFC 5424) by logging level, as journald reads them from a "<N>" prefix.
_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


class SafeFormatter(logging.Formatter):
    """A text formatter without control characters or escape sequences in what it writes:
    messages and tracebacks keep their line feeds (a config error lists one problem a line)
    and lose the rest."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.message = safe_text(record.message, newlines=True)
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:  # noqa: N802
        return safe_text(super().formatException(ei), newlines=True)

    def formatStack(self, stack_info: str) -> str:  # noqa: N802
        return safe_text(super().formatStack(stack_info), newlines=True)


class JsonFormatter(SafeFormatter):
    """One JSON object per record: ``ts``, ``level``, ``logger``, ``message`` (and ``error``)."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": safe_text(record.getMessage(), newlines=True),
        }
        if record.exc_info:
            document["error"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False)


class JournalFormatter(SafeFormatter):
    """``<priority>LEVEL logger: message``, with the traceback indented on following lines."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        prefix = f"<{_PRIORITY.get(record.levelno, 6)}>"
        return "\n".join(prefix + line for line in text.splitlines())


def under_journald() -> bool:
    """Whether stderr is connected to the journal (systemd sets ``JOURNAL_STREAM=dev:inode``)."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    try:
        stat = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return stream == f"{stat.st_dev}:{stat.st_ino}"


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Send aggregator's log to stderr in the chosen format (``text`` or ``json``)."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    elif under_journald():
        handler.setFormatter(JournalFormatter("%(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("aiohttp").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
