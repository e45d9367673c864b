"""Prometheus metrics (the ``prometheus-client`` library's only adapter).

:class:`Metrics` counts what the poller does (polls by result, errors, new entries and
comments, fetch durations, the share of polls answered "not modified") and, at scrape time,
reads each source's stored state through a callback (entries, comments, error streak, next
poll, last success, retired). Each :class:`Metrics` has its own registry, so two daemons in one
test process never share counters.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from aggregator.models import PollResult

# Fetches take from milliseconds (a 304 nearby) to the 30 s timeout (a slow server).
_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True)
class SourceGauges:
    """One source's stored state as the ``/metrics`` scrape reports it."""

    name: str
    entries: int
    comments: int
    error_count: int
    retired: bool
    next_poll_at: datetime | None
    last_success_at: datetime | None


class Metrics:
    """The daemon's metrics, in a registry of their own."""

    def __init__(self, sources: Callable[[], Sequence[SourceGauges]] | None = None):
        self.registry = CollectorRegistry()
        self.polls = Counter(
            "aggregator_polls",
            "Polls of a source, by result (new, updated, unchanged, not_modified, error, skipped).",
            ["source", "result"],
            registry=self.registry,
        )
        self.errors = Counter(
            "aggregator_poll_errors",
            "Failed polls, by kind: the HTTP status, or 'network' when there was no answer.",
            ["source", "kind"],
            registry=self.registry,
        )
        self.entries = Counter(
            "aggregator_new_entries",
            "Entries stored for the first time.",
            ["source"],
            registry=self.registry,
        )
        self.comments = Counter(
            "aggregator_new_comments",
            "Comments stored for the first time.",
            ["source"],
            registry=self.registry,
        )
        self.fetch_seconds = Histogram(
            "aggregator_fetch_duration_seconds",
            "How long a source's fetch took (request and body), errors included.",
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
        self.not_modified_ratio = Gauge(
            "aggregator_not_modified_ratio",
            "Share of successful polls since start that were answered 304 Not Modified.",
            registry=self.registry,
        )
        self._lock = threading.Lock()
        self._successes = 0
        self._unchanged = 0
        self._has_sources = False
        if sources is not None:
            self.add_sources(sources)

    def add_sources(self, sources: Callable[[], Sequence[SourceGauges]]) -> None:
        """Report per-source gauges read by ``sources`` at each scrape (once per registry)."""
        with self._lock:
            if not self._has_sources:
                self.registry.register(_SourceCollector(sources))
                self._has_sources = True

    def record(self, result: PollResult, fetch_seconds: float | None = None) -> None:
        """Count one poll's outcome."""
        label = result.status.replace("-", "_")
        self.polls.labels(result.source, label).inc()
        if fetch_seconds is not None:
            self.fetch_seconds.observe(fetch_seconds)
        if result.status == "error":
            kind = str(result.http_status) if result.http_status else "network"
            self.errors.labels(result.source, kind).inc()
        if result.new:
            self.entries.labels(result.source).inc(result.new)
        if result.new_comments:
            self.comments.labels(result.source).inc(result.new_comments)
        if result.status not in ("error", "skipped"):
            with self._lock:
                self._successes += 1
                if result.http_status == 304:
                    self._unchanged += 1
                self.not_modified_ratio.set(self._unchanged / self._successes)

    def record_comments(self, source: str, new: int) -> None:
        """Count comments found by a comment-thread run outside a source's poll."""
        if new:
            self.comments.labels(source).inc(new)

    def render(self, *, per_source: bool = True) -> tuple[bytes, str]:
        """The Prometheus text exposition and its content type.

        Without ``per_source`` (a client that may not see source names), the samples of every
        metric labelled by source are summed over the sources, timestamps are left out, and so
        is every sample that names a source."""
        if per_source:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        return generate_latest(_Totals(self.registry)), CONTENT_TYPE_LATEST


class _SourceCollector(Collector):
    """Per-source gauges read from storage at scrape time (always current, never stale)."""

    def __init__(self, sources: Callable[[], Sequence[SourceGauges]]):
        self._sources = sources

    def collect(self) -> Iterator[GaugeMetricFamily]:
        rows = list(self._sources())
        yield from _families(rows)


class _Totals:
    """A registry's metrics summed over their ``source`` label (see :meth:`Metrics.render`)."""

    def __init__(self, registry: CollectorRegistry):
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        for family in self._registry.collect():
            if not any("source" in sample.labels for sample in family.samples):
                yield family
                continue
            if family.name.endswith("_timestamp_seconds"):
                continue
            sums: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue  # a creation time per source: no total
                labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "source"))
                key = (sample.name, labels)
                sums[key] = sums.get(key, 0.0) + sample.value
            total = Metric(family.name, family.documentation, family.type, family.unit)
            for (name, labels), value in sums.items():
                total.add_sample(name, dict(labels), value)
            yield total


def _families(rows: Iterable[SourceGauges]) -> Iterator[GaugeMetricFamily]:
    specs: list[tuple[str, str, Callable[[SourceGauges], float | None]]] = [
        ("aggregator_source_entries", "Entries stored for the source.", lambda r: r.entries),
        ("aggregator_source_comments", "Comments stored for the source.", lambda r: r.comments),
        (
            "aggregator_source_error_streak",
            "Failed polls in a row (0 after a success).",
            lambda r: r.error_count,
        ),
        (
            "aggregator_source_retired",
            "1 when the source answered 410 Gone and is no longer requested.",
            lambda r: 1.0 if r.retired else 0.0,
        ),
        (
            "aggregator_source_next_poll_timestamp_seconds",
            "When the source is due next (Unix time).",
            lambda r: r.next_poll_at.timestamp() if r.next_poll_at else None,
        ),
        (
            "aggregator_source_last_success_timestamp_seconds",
            "When the source was last polled successfully (Unix time).",
            lambda r: r.last_success_at.timestamp() if r.last_success_at else None,
        ),
    ]
    rows = list(rows)
    for name, help_text, value in specs:
        family = GaugeMetricFamily(name, help_text, labels=["source"])
        for row in rows:
            number = value(row)
            if number is not None:
                family.add_metric([row.name], float(number))
        yield family
