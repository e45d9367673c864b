"""The WebSub subscriber (issue 17, item 8): asks hubs for subscriptions, answers their
verifications and stores what they push.

:meth:`Subscriber.upkeep` (the daemon's ``websub_upkeep`` job) goes over the stored
subscriptions and does what :func:`aggregator.poll.websub.decide_upkeep` says: subscribe, renew,
unsubscribe (a source removed from the config, or no longer announcing the hub) or forget.
:meth:`verify` and :meth:`receive` are called by the callback routes
(:mod:`aggregator.serve.websub`). Pushed documents go through :meth:`Poller.store_pushed`, the same
sandboxed parse, rules and storage as a poll. Decisions are in :mod:`aggregator.poll.websub`.

Requests to a hub go through the project's one HTTP client (aiohttp, on a loop thread of its
own), under the address rules of a URL found in the source's feed. A hub that answers 307 or
308 gets the same POST at the new address (at most :data:`MAX_REDIRECTS` times).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp

from aggregator.config.schema import AppConfig
from aggregator.config.sources import SourceConfig
from aggregator.errors import AggregatorError, FetchError
from aggregator.fetch.addresses import AddressRule, Provenance, rule_for
from aggregator.fetch.transport import (
    LoopThread,
    default_ssl_context,
    make_session,
    request_url,
    system_resolver,
)
from aggregator.models import WEBSUB_DENIED, PollResult, Subscription
from aggregator.poll.poller import Poller
from aggregator.poll.websub import (
    NOT_FOUND,
    Action,
    Verification,
    callback_url,
    decide_upkeep,
    redirect_target,
    retry_delay,
    signature_ok,
    verify_request,
    wants_websub,
)
from aggregator.terminal import safe_text

log = logging.getLogger(__name__)

#: 307/308 answers followed per request.
MAX_REDIRECTS = 5


class Subscriber:
    """Keeps one configuration's WebSub subscriptions. Safe to use from several threads.

    ``on_push`` is told of what each accepted push stored (the daemon publishes the outputs
    that include the source, as after a poll).
    """

    def __init__(
        self,
        config: AppConfig,
        poller: Poller,
        *,
        on_push: Callable[[SourceConfig, PollResult], None] | None = None,
    ):
        self.config = config
        self.poller = poller
        self.on_push = on_push
        self._loop = LoopThread("aggregator-websub-subscriber")
        self._sessions: dict[AddressRule, aiohttp.ClientSession] = {}  # used on the loop only
        self._upkeep_lock = threading.Lock()

    def reconfigure(self, config: AppConfig) -> None:
        """Use a reloaded configuration from the next upkeep on."""
        self.config = config

    def close(self) -> None:
        """Close the connections to hubs and stop the loop thread."""

        async def close_all() -> None:
            for session in self._sessions.values():
                await session.close()
            self._sessions.clear()

        self._loop.close(close_all())

    # -- upkeep ----------------------------------------------------------------------------------
    def upkeep(self, now: datetime | None = None) -> list[tuple[str, Action]]:
        """Subscribe, renew, unsubscribe or forget each stored subscription as due; what was
        done, by source. A hub that fails is recorded with a retry time, never raised."""
        with self._upkeep_lock:
            now = now or self.poller.clock()
            try:
                subscriptions = self.poller.storage.list_subscriptions()
            except AggregatorError as error:
                log.error("websub: cannot read the subscriptions: %s", error)
                return []
            done: list[tuple[str, Action]] = []
            for sub in subscriptions:
                action = decide_upkeep(sub, self._wanted(sub), now)
                if action is Action.NOTHING:
                    continue
                try:
                    self._act(sub, action, now)
                except AggregatorError as error:
                    log.error("websub: %s: %s", sub.source_name, error)
                done.append((sub.source_name, action))
            return done

    def _wanted(self, sub: Subscription) -> bool:
        try:
            source = self.config.source(sub.source_name)
        except KeyError:
            return False
        return wants_websub(self.config, source)

    def _act(self, sub: Subscription, action: Action, now: datetime) -> None:
        storage = self.poller.storage
        if action is Action.FORGET:
            with self.poller.write_lock, storage.transaction():
                storage.delete_subscription(sub.id)
            log.info("websub: %s: subscription to %s forgotten", sub.source_name, sub.hub)
            return
        mode = "subscribe" if action is Action.SUBSCRIBE else "unsubscribe"
        # Recorded before asking: a hub may verify before it answers the request.
        with self.poller.write_lock, storage.transaction():
            storage.update_subscription(sub.id, mode=mode, requested_at=now, retry_at=None)
        try:
            status = self._send(sub, mode)
        except FetchError as error:
            self._failed(sub, str(error), now)
            return
        if 200 <= status < 300:
            log.info("websub: %s: asked %s to %s", sub.source_name, sub.hub, mode)
            return
        self._failed(sub, f"the hub answered HTTP {status}", now)

    def _failed(self, sub: Subscription, reason: str, now: datetime) -> None:
        errors = sub.error_count + 1
        log.warning("websub: %s: %s: %s", sub.source_name, sub.hub, reason)
        with self.poller.write_lock, self.poller.storage.transaction():
            self.poller.storage.update_subscription(
                sub.id,
                error_count=errors,
                last_error=safe_text(reason)[:300],
                retry_at=now + retry_delay(errors),
            )

    def _send(self, sub: Subscription, mode: str) -> int:
        """POST the request to the hub, following 307/308; the final status."""
        form = {
            "hub.mode": mode,
            "hub.topic": sub.topic,
            "hub.callback": callback_url(self.config, sub.callback_id),
        }
        if mode == "subscribe":
            form["hub.secret"] = sub.secret.reveal()
            form["hub.lease_seconds"] = str(int(self.config.defaults.websub_lease.total_seconds()))
        body = urlencode(form).encode()
        try:
            source_url = self.config.source(sub.source_name).url
        except KeyError:
            source_url = sub.topic
        url = sub.hub
        for _ in range(MAX_REDIRECTS + 1):
            rule = rule_for(
                url,
                Provenance.found_in(source_url),
                allow_private_networks=self.config.allow_private_networks,
            )
            status, location = self._post(url, body, rule)
            target = redirect_target(url, status, location)
            if target is None:
                return status
            url = target
        raise FetchError(f"{sub.hub}: more than {MAX_REDIRECTS} redirects")

    def _post(self, url: str, body: bytes, rule: AddressRule) -> tuple[int, str | None]:
        timeout = self.config.defaults.timeout.total_seconds()

        async def run() -> tuple[int, str | None]:
            session = self._sessions.get(rule)
            if session is None:
                session = self._sessions[rule] = make_session(
                    rule,
                    ssl_context=default_ssl_context(),
                    resolver=system_resolver,
                    headers={"User-Agent": self.config.defaults.user_agent},
                    connect_timeout=timeout,
                    max_connections=4,
                )
            target = request_url(url, urlsplit(url).hostname or "", rule)
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            async with session.post(
                target,
                data=body,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                await response.content.read(64 * 1024)
                return response.status, response.headers.get("Location")

        try:
            return self._loop.run(run())
        except TimeoutError:
            raise FetchError(f"{url}: no answer within {timeout:g}s") from None
        except (aiohttp.ClientError, OSError, ValueError) as error:
            raise FetchError(f"{url}: {error or type(error).__name__}") from None

    # -- the callback ----------------------------------------------------------------------------
    def verify(self, callback_id: str, params: Mapping[str, str]) -> Verification:
        """Answer a hub's verification GET (or its denial) and record what it confirms."""
        now = self.poller.clock()
        storage = self.poller.storage
        sub = storage.subscription_by_callback(callback_id)
        answer = verify_request(sub, params, now)
        if sub is None or answer.status != 200:
            if sub is not None:
                log.warning("websub: %s: refused a verification request", sub.source_name)
            return answer
        with self.poller.write_lock, storage.transaction():
            if answer.forget:
                storage.delete_subscription(sub.id)
            elif answer.denied is not None:
                storage.update_subscription(
                    sub.id,
                    expires_at=None,
                    error_count=sub.error_count + 1,
                    last_error=safe_text(f"{WEBSUB_DENIED}: {answer.denied}"),
                    retry_at=now + retry_delay(sub.error_count + 4),
                )
            else:
                storage.update_subscription(
                    sub.id,
                    expires_at=answer.expires_at,
                    lease_seconds=answer.lease_seconds,
                    verified_at=now,
                    error_count=0,
                    last_error=None,
                    retry_at=None,
                )
        what = "denied" if answer.denied else "unsubscribed" if answer.forget else "verified"
        log.info("websub: %s: %s by %s", sub.source_name, what, sub.hub)
        return answer

    def receive(self, callback_id: str, body: bytes, headers: Mapping[str, str]) -> int:
        """Store a pushed document when its ``X-Hub-Signature`` is right; the HTTP status.

        200: stored. 202: a wrong or missing signature, ignored and stored nowhere (WebSub 8:
        the subscriber "MUST still return a 2xx success response" and "locally ignore" it).
        404: no such subscription, or its source is gone.
        """
        storage = self.poller.storage
        sub = storage.subscription_by_callback(callback_id)
        source = self._source(sub)
        if sub is None or source is None or sub.mode != "subscribe":
            return NOT_FOUND.status
        if not signature_ok(_header(headers, "x-hub-signature"), body, sub.secret.reveal()):
            log.warning("websub: %s: ignored a push without a valid signature", sub.source_name)
            return 202
        kept = {k: v for k, v in headers.items() if k.lower() in ("content-type",)}
        result = self.poller.store_pushed(source, body, kept)
        now = self.poller.clock()
        with self.poller.write_lock, storage.transaction():
            storage.update_subscription(sub.id, pushed_at=now)
        if self.on_push is not None:
            self.on_push(source, result)  # the daemon logs it, as after a poll
        elif result.ok:
            log.info("%s", result.describe())
        return 200

    def _source(self, sub: Subscription | None) -> SourceConfig | None:
        if sub is None:
            return None
        try:
            return self.config.source(sub.source_name)
        except KeyError:
            return None


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return str(value)
    return None
