"""The alerts' background workers: one thread per ``notify:`` item.

The poll thread only calls :meth:`AlertDispatcher.poke` (an event set: it never waits for a
target). Each worker, woken, reads the comments or entries stored past its alert's mark,
keeps those its condition matches, sends them as one batch, and moves the mark past
everything it read, in the database, only once the target accepted the batch: a batch is
never sent twice (across restarts too), and one that failed is sent again with the next.
``min_interval`` spaces batches: what arrives meanwhile waits for the next one.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from aggregator.alerts.conditions import needs_entry_rules, select_items
from aggregator.alerts.payload import make_payload, message, payload_bytes, signature
from aggregator.alerts.targets import SendError, WebhookSender, send_apprise
from aggregator.config.notify import NotifyConfig
from aggregator.config.schema import AppConfig
from aggregator.errors import AggregatorError
from aggregator.models import AlertItem
from aggregator.select.filters import compile_rules, keep
from aggregator.storage import Storage

log = logging.getLogger("aggregator.alerts")
SCAN_MAX = 5000  # rows read past a mark in one round; the rest in the next


def _now() -> datetime:
    return datetime.now(UTC)


def deliver(
    alert: NotifyConfig,
    items: list[AlertItem],
    more: int,
    webhooks: WebhookSender,
    stop: threading.Event,
    *,
    test: bool = False,
) -> None:
    """Send one batch to the alert's target; raises :class:`SendError`."""
    if alert.webhook:
        payload = make_payload(alert, items, more, _now(), test=test)
        body = payload_bytes(payload)
        headers = {
            "Content-Type": "application/json",
            "X-Aggregator-Event": str(payload["event"]),
            # The same batch retried keeps its id, so a receiver can drop a repeat.
            "X-Aggregator-Delivery": str(
                uuid.uuid5(
                    uuid.NAMESPACE_URL,
                    f"{alert.name}:{[item.kind + item.public_id for item in items]}",
                )
            ),
        }
        if alert.secret:
            headers["X-Aggregator-Signature"] = signature(alert.secret, body)
        webhooks.send(alert, body, headers, stop)
    else:
        title, text = message(alert, items, more, test=test)
        send_apprise(alert, title, text, stop)


class _Worker:
    def __init__(self, dispatcher: AlertDispatcher, alert: NotifyConfig):
        self.dispatcher = dispatcher
        self.alert = alert
        self.wake = threading.Event()
        self.stop = threading.Event()
        self.last_sent: datetime | None = None
        self.thread = threading.Thread(target=self._loop, name=f"alert-{alert.name}", daemon=True)

    def _loop(self) -> None:
        storage: Storage | None = None
        try:
            while not self.stop.is_set():
                if not self.wake.wait(0.5):
                    continue
                wait = self.rate_wait()
                if wait > 0:
                    self.stop.wait(wait)
                    continue  # still woken: runs after the wait
                self.wake.clear()
                if storage is None:
                    storage = Storage(self.dispatcher.config.database, cache_kib=512)
                try:
                    self.dispatcher.run_once(self, storage)
                except AggregatorError as error:
                    log.error("%s", error)
                except Exception:  # a bug must not end this alert for good
                    log.exception("notify %s failed", self.alert.name)
        finally:
            if storage is not None:
                storage.close()

    def rate_wait(self) -> float:
        """Seconds before this alert may send again (``min_interval``)."""
        if self.last_sent is None:
            return 0.0
        ready = self.last_sent + self.alert.min_interval
        return max(0.0, (ready - _now()).total_seconds())


class AlertDispatcher:
    """Runs the alerts of a configuration: ``start``, then ``poke`` after each poll's store."""

    def __init__(self, config: AppConfig, *, clock: Callable[[], datetime] = _now):
        self.config = config
        self.clock = clock
        self.webhooks = WebhookSender(allow_private_networks=config.allow_private_networks)
        self._workers: dict[str, _Worker] = {}
        self._lock = threading.Lock()

    def start_marks(self, storage: Storage) -> None:
        """Give new alerts a mark at what is stored now (they report what comes next)."""
        with storage.transaction():
            storage.start_alert_marks(alert.name for alert in self.config.notify)

    def start(self) -> None:
        """Mark new alerts and start one worker per alert."""
        if not self.config.notify:
            return
        with Storage(self.config.database) as storage:
            self.start_marks(storage)
            for alert in self.config.notify:
                self._start_worker(alert, storage)

    def _start_worker(self, alert: NotifyConfig, storage: Storage) -> None:
        worker = _Worker(self, alert)
        worker.last_sent = storage.alert_mark(alert.name)[2]
        self._workers[alert.name] = worker
        worker.thread.start()

    def reconfigure(self, config: AppConfig) -> None:
        """Follow a reload: workers of removed or changed alerts stop, new ones start."""
        with self._lock:
            self.config = config
            wanted = {alert.name: alert for alert in config.notify}
            for name, worker in list(self._workers.items()):
                if wanted.get(name) != worker.alert:
                    worker.stop.set()
                    del self._workers[name]
            missing = [alert for alert in config.notify if alert.name not in self._workers]
            if missing:
                with Storage(config.database) as storage:
                    self.start_marks(storage)
                    for alert in missing:
                        self._start_worker(alert, storage)

    def poke(self) -> None:
        """New rows may be stored: wake every worker. Never blocks."""
        for worker in list(self._workers.values()):
            worker.wake.set()

    def run_now(self, storage: Storage) -> None:
        """Run each alert once in this thread (``aggregator poll``), skipping those whose
        ``min_interval`` has not passed; errors are logged."""
        self.start_marks(storage)
        for alert in self.config.notify:
            worker = _Worker(self, alert)
            worker.last_sent = storage.alert_mark(alert.name)[2]
            if worker.rate_wait() > 0:
                log.info("notify %s: min_interval not passed; sent at a later poll", alert.name)
                continue
            try:
                self.run_once(worker, storage)
            except AggregatorError as error:
                log.error("%s", error)

    def run_once(self, worker: _Worker, storage: Storage) -> None:
        """Read past the mark, send what matches as one batch, move the mark."""
        alert = worker.alert
        comment_mark, entry_mark, _ = storage.alert_mark(alert.name)
        newest_comment, newest_entry = storage.newest_ids()
        comment_upto = min(newest_comment, comment_mark + SCAN_MAX)
        entry_upto = min(newest_entry, entry_mark + SCAN_MAX)
        if alert.kind == "new_comments":
            rows = storage.comments_between(comment_mark, comment_upto)
        else:
            rows = storage.entries_between(entry_mark, entry_upto)
        items = select_items(self.config, alert.condition, rows, self._entry_test(alert, storage))
        sent_at = None
        if items:
            batch = items[: alert.max_items]
            deliver(alert, batch, len(items) - len(batch), self.webhooks, worker.stop)
            sent_at = worker.last_sent = self.clock()
            log.info("notify %s: sent %d item(s)", alert.name, len(items))
        with storage.transaction():
            storage.move_alert_mark(alert.name, comment_upto, entry_upto, sent_at, len(items))
        if comment_upto < newest_comment or entry_upto < newest_entry:
            worker.wake.set()  # more to read

    def _entry_test(self, alert: NotifyConfig, storage: Storage) -> Callable[[AlertItem], bool]:
        condition = alert.condition
        if not needs_entry_rules(condition):
            return lambda item: True
        if condition.watch is not None:
            from aggregator.select.chooser import OutputChooser

            output = self.config.output(condition.watch.output)
            shown = {entry.id for entry in OutputChooser(self.config, storage).select(output).kept}
            return lambda item: item.entry_id in shown
        rules = compile_rules(
            condition.rule_items("include"),
            condition.rule_items("exclude"),
            condition.max_age,
            condition.before,
            condition.after,
        )
        now = self.clock()
        verdicts: dict[int, bool] = {}

        def passes(item: AlertItem) -> bool:
            if item.entry_id not in verdicts:
                entry = storage.get_entry(item.entry_public_id)
                verdicts[item.entry_id] = keep(rules, entry, now)
            return verdicts[item.entry_id]

        return passes

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every worker (a send in progress ends its current attempt) and the sender."""
        workers = list(self._workers.values())
        for worker in workers:
            worker.stop.set()
        deadline = _now() + timedelta(seconds=timeout)
        for worker in workers:
            worker.thread.join(max(0.0, (deadline - _now()).total_seconds()))
        self.webhooks.close()


def sample_items() -> list[AlertItem]:
    """The one made-up comment or entry ``aggregator notify test`` sends."""
    return [
        AlertItem(
            kind="comment",
            row_id=0,
            public_id="00000000000000000000000000000000",
            source_name="example",
            entry_id=0,
            entry_public_id="11111111111111111111111111111111",
            entry_title="A sample post",
            entry_link="https://blog.example.org/a-sample-post/",
            author="Sample Author",
            content="<p>This is a test notification from aggregator.</p>",
            link="https://blog.example.org/a-sample-post/#comment-1",
            published_at=_now(),
        )
    ]


def send_test(config: AppConfig, name: str) -> None:
    """Send a sample batch to the alert called ``name``; raises :class:`SendError`."""
    alert = config.notify_item(name)
    webhooks = WebhookSender(allow_private_networks=config.allow_private_networks)
    try:
        deliver(alert, sample_items(), 0, webhooks, threading.Event(), test=True)
    finally:
        webhooks.close()


__all__ = ["AlertDispatcher", "SendError", "deliver", "send_test"]
