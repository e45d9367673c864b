"""WebSub subscriber decisions (W3C WebSub, https://www.w3.org/TR/websub/), issue 17 item 8.

Pure: which hub and topic a fetched feed announces, whether a source may be subscribed, what
the upkeep does with each stored subscription (subscribe, renew, unsubscribe, forget), how a
verification request is answered, whether a push's ``X-Hub-Signature`` is right, and how far a
live subscription moves the fallback poll. Does not: talk to a hub, read the database or the
clock (see :mod:`aggregator.poll.subscriber`), nor serve the callback (:mod:`aggregator.serve.websub`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum
from urllib.parse import urljoin, urlsplit

from aggregator.config.schema import AppConfig
from aggregator.config.server import is_public_url
from aggregator.config.sources import SourceConfig
from aggregator.models import FeedData, Subscription
from aggregator.schedule.decide import PollPlan

#: How long a subscription request may wait for the hub's verification before it is sent again.
VERIFY_WAIT = timedelta(hours=1)
#: A lease is renewed this long before it ends at most (a fifth of a shorter lease).
RENEW_AHEAD = timedelta(days=1)
#: An unsubscription the hub never verified is forgotten after this long.
UNSUBSCRIBE_WAIT = timedelta(days=1)
#: Retries of a failed request: the delay doubles from the first, up to the last.
RETRY_FIRST = timedelta(minutes=5)
RETRY_MAX = timedelta(days=1)
#: The longest lease recorded, whatever the hub grants (a hub's typo must not silence renewals).
MAX_LEASE = timedelta(days=365)
#: ``X-Hub-Signature`` methods (WebSub 8: sha1, sha256, sha384, sha512).
SIGNATURE_METHODS = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}

_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]*)*)")
_MENTIONS_HUB = re.compile(rb"""rel\s*=\s*["']?[^"'>]*\bhub\b|"hubs"\s*:""", re.IGNORECASE)
_REL = re.compile(r"""(?:^|;)\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,"]+))""", re.IGNORECASE)


@dataclass(frozen=True)
class HubLink:
    """Where to subscribe (``hub``) and to what (``topic``)."""

    hub: str
    topic: str


class Action(Enum):
    """What the upkeep does with one stored subscription."""

    NOTHING = "nothing"
    SUBSCRIBE = "subscribe"  # a first request, a retry, or a renewal
    UNSUBSCRIBE = "unsubscribe"
    FORGET = "forget"  # delete the row without asking the hub anything


def link_header_rels(values: str) -> list[tuple[str, frozenset[str]]]:
    """The ``(url, rels)`` of an HTTP ``Link`` header (RFC 8288), in order; bad parts skipped."""
    found = []
    for match in _LINK.finditer(values or ""):
        rels: set[str] = set()
        for rel in _REL.finditer(match.group(2)):
            rels.update((rel.group(1) or rel.group(2) or "").lower().split())
        found.append((match.group(1).strip(), frozenset(rels)))
    return found


def hub_link(feed: FeedData, headers: Mapping[str, str], url: str) -> HubLink | None:
    """The hub and topic a fetched feed announces, or ``None``.

    HTTP ``Link`` headers first, then the document's own links (WebSub 4: a subscriber should
    look in that order). The topic is the ``rel="self"`` URL found with the hub, else ``url``
    (the address the feed was fetched from).
    """
    header = ", ".join(value for key, value in headers.items() if key.lower() == "link")
    hubs, topic = [], None
    for target, rels in link_header_rels(header):
        absolute = _http_url(target, url)
        if absolute is None:
            continue
        if "hub" in rels:
            hubs.append(absolute)
        if "self" in rels and topic is None:
            topic = absolute
    if hubs:
        return HubLink(hubs[0], topic or url)
    if feed.hubs:
        return HubLink(feed.hubs[0], feed.self_url or url)
    return None


def mentions_hub(content: bytes, headers: Mapping[str, str]) -> bool:
    """Whether a response may name a hub (a cheap test before parsing an unchanged body):
    ``rel="hub"`` in the document or a ``Link`` header, or JSON Feed's ``"hubs"``."""
    link = " ".join(value for key, value in headers.items() if key.lower() == "link")
    return bool(_MENTIONS_HUB.search(content) or _MENTIONS_HUB.search(link.encode()))


def wants_websub(config: AppConfig, source: SourceConfig) -> bool:
    """Whether a source is subscribed when its feed announces a hub.

    ``websub: true`` on the source always (the operator vouches that hubs can reach the
    server); ``false`` never; unset, when ``defaults.websub`` is on and ``server.base_url``
    is public (a hub on the internet cannot call back a loopback or private address). A
    ``file:`` source never.
    """
    if not source.url.startswith(("http://", "https://")) or source.websub is False:
        return False
    if source.websub:
        return True
    return config.defaults.websub and is_public_url(config.server.base_url)


def callback_url(config: AppConfig, callback_id: str) -> str:
    """The address hubs verify and push to: ``<public URL>/websub/<callback_id>``."""
    return f"{config.server.public_url}/websub/{callback_id}"


def renew_margin(lease: timedelta) -> timedelta:
    """How long before a lease ends it is renewed: a fifth of it, a day at most."""
    return min(RENEW_AHEAD, lease / 5)


def retry_delay(errors: int) -> timedelta:
    """How long to wait before asking again after ``errors`` failed requests in a row."""
    return min(RETRY_MAX, RETRY_FIRST * 2 ** max(0, min(errors - 1, 20)))


def decide_upkeep(sub: Subscription, wanted: bool, now: datetime) -> Action:
    """What to do with one subscription now; ``wanted`` is whether its source is still
    configured, still wants WebSub, and still announces this hub and topic."""
    if sub.mode == "unsubscribe":
        if sub.requested_at is None:
            return Action.UNSUBSCRIBE
        return Action.FORGET if now - sub.requested_at >= UNSUBSCRIBE_WAIT else Action.NOTHING
    if not wanted:
        # Nothing was ever asked of the hub, or the lease is over: nobody to tell.
        if sub.requested_at is None or (sub.expires_at is not None and sub.expires_at <= now):
            return Action.FORGET
        return Action.UNSUBSCRIBE
    if sub.retry_at is not None and sub.retry_at > now:
        return Action.NOTHING
    if sub.requested_at is None:
        return Action.SUBSCRIBE
    if sub.expires_at is None or sub.expires_at <= now:
        waited = now - sub.requested_at >= VERIFY_WAIT
        return Action.SUBSCRIBE if waited or sub.retry_at is not None else Action.NOTHING
    lease = timedelta(seconds=sub.lease_seconds or 0) or (sub.expires_at - sub.requested_at)
    due = sub.expires_at - renew_margin(lease)
    if now < due:
        return Action.NOTHING
    # Renew once the margin begins; ask again if that request failed or went unverified.
    if sub.requested_at < due or sub.retry_at is not None or now - sub.requested_at >= VERIFY_WAIT:
        return Action.SUBSCRIBE
    return Action.NOTHING


@dataclass(frozen=True)
class Verification:
    """The answer to a hub's verification GET: the status, the body (the challenge) and
    what to record (``expires_at`` for a subscribe, ``forget`` for an unsubscribe, ``denied``
    with the hub's reason)."""

    status: int
    body: str = ""
    expires_at: datetime | None = None
    lease_seconds: int | None = None
    forget: bool = False
    denied: str | None = None


NOT_FOUND = Verification(404, "Unknown subscription.\n")


def verify_request(
    sub: Subscription | None, params: Mapping[str, str], now: datetime
) -> Verification:
    """Answer a verification of intent (WebSub 5.3) or a denial (5.2).

    The challenge is echoed only when the hub names the topic we asked for and the mode we
    asked for last; anything else is 404 (WebSub: "the subscriber MUST respond with an HTTP
    404"), so nobody can confirm a subscription we did not request.
    """
    mode = params.get("hub.mode", "")
    if sub is None or params.get("hub.topic") != sub.topic:
        return NOT_FOUND
    if mode == "denied":
        if sub.mode != "subscribe":
            return NOT_FOUND
        reason = (params.get("hub.reason") or "no reason given")[:200]
        return Verification(200, "ok\n", denied=reason)
    challenge = params.get("hub.challenge", "")
    if mode != sub.mode or not challenge or sub.requested_at is None:
        return NOT_FOUND
    if mode == "unsubscribe":
        return Verification(200, challenge, forget=True)
    try:
        seconds = int(params.get("hub.lease_seconds", ""))
    except ValueError:
        seconds = sub.lease_seconds or 0
    if seconds <= 0:
        return NOT_FOUND  # WebSub 5.3: required for a subscribe; without it, no lease to renew
    seconds = min(seconds, int(MAX_LEASE.total_seconds()))
    return Verification(
        200, challenge, expires_at=now + timedelta(seconds=seconds), lease_seconds=seconds
    )


def signature_ok(header: str | None, body: bytes, secret: str) -> bool:
    """Whether ``X-Hub-Signature`` (``method=hex``) is the HMAC of ``body`` with ``secret``."""
    method, _, digest = (header or "").strip().partition("=")
    algorithm = SIGNATURE_METHODS.get(method.strip().lower())
    if algorithm is None or not digest:
        return False
    expected = hmac.new(secret.encode(), body, algorithm).hexdigest()
    return hmac.compare_digest(expected, digest.strip().lower())


def stretch_plan(plan: PollPlan, now: datetime, factor: float) -> PollPlan:
    """A successful poll's plan with the wait times ``factor``: the fallback poll of a source
    whose hub pushes (errors, Retry-After and retirement are left as decided)."""
    if factor <= 1 or plan.next_poll_at is None or plan.error_count or plan.retired:
        return plan
    wait = max(plan.next_poll_at - now, timedelta(0))
    return replace(
        plan,
        next_poll_at=now + wait * factor,
        reason="websub",
        detail=f"{plan.detail}; ×{factor:g}: its WebSub hub pushes new entries",
    )


def redirect_target(current: str, status: int, location: str | None) -> str | None:
    """Where a hub's 307/308 answer sends the same POST again, or ``None`` (other answers)."""
    if status not in (307, 308) or not location:
        return None
    return _http_url(location, current)


def _http_url(value: str, base: str) -> str | None:
    try:
        url = urljoin(base, value.strip())
    except ValueError:
        return None
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.hostname else None
