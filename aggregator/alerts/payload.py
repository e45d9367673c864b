"""Pure: what an alert sends. The webhook payload (documented in the README), the title and
body given to Apprise, and the ``X-Aggregator-Signature`` header (HMAC-SHA256 of the body)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from datetime import datetime

from aggregator.config.notify import NotifyConfig
from aggregator.models import AlertItem
from aggregator.parse.sanitize import plain_text

PAYLOAD_VERSION = 1
TEXT_CHARS = 1000  # each item's text is cut to this many characters


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _cut(text: str) -> str:
    return text if len(text) <= TEXT_CHARS else text[: TEXT_CHARS - 1].rstrip() + "…"


def item_json(item: AlertItem) -> dict[str, object]:
    """One comment or entry as the payload shows it."""
    entry = {
        "id": item.entry_public_id,
        "title": item.entry_title,
        "url": item.entry_link,
        "source": item.source_name,
    }
    if item.kind == "entry":
        return {
            "type": "entry",
            **entry,
            "author": item.author,
            "published": _time(item.published_at),
            "text": _cut(plain_text(item.content)),
        }
    return {
        "type": "comment",
        "id": item.public_id,
        "author": item.author,
        "url": item.link,
        "published": _time(item.published_at),
        "text": _cut(plain_text(item.content)),
        "in_reply_to": (
            {"id": item.parent_public_id, "author": item.parent_author}
            if item.parent_public_id
            else None
        ),
        "entry": entry,
    }


def make_payload(
    alert: NotifyConfig, items: Sequence[AlertItem], more: int, sent_at: datetime, *, test: bool
) -> dict[str, object]:
    """The JSON object a webhook receives for one batch."""
    return {
        "version": PAYLOAD_VERSION,
        "notify": alert.name,
        "event": "test" if test else alert.kind,
        "sent_at": sent_at.isoformat(),
        "count": len(items),
        "more": more,
        "items": [item_json(item) for item in items],
    }


def payload_bytes(payload: dict[str, object]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")


def signature(secret: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of the exact body bytes under ``secret``."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def message(
    alert: NotifyConfig, items: Sequence[AlertItem], more: int, *, test: bool
) -> tuple[str, str]:
    """Title and body for Apprise: one line per item."""
    if test:
        title = f"aggregator: test of {alert.name}"
    elif alert.kind == "new_comments":
        title = f"aggregator: {len(items) + more} new comment(s) ({alert.name})"
    else:
        title = f"aggregator: {len(items) + more} new entr{'y' if len(items) + more == 1 else 'ies'} ({alert.name})"
    lines = []
    for item in items:
        if item.kind == "comment":
            text = _cut(plain_text(item.content))[:200]
            lines.append(
                f"{item.author or 'anonymous'} on {item.entry_title or '(untitled)'}: {text}"
                + (f" <{item.link}>" if item.link else "")
            )
        else:
            lines.append(
                f"{item.entry_title or '(untitled)'} [{item.source_name}]"
                + (f" <{item.link}>" if item.link else "")
            )
    if more:
        lines.append(f"... and {more} more")
    return title, "\n".join(lines)
