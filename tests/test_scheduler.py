"""aggregator.schedule.scheduler: stored next-poll times drive APScheduler jobs; reloads keep places."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from aggregator.config.loading import load_config
from aggregator.config.schema import AppConfig
from aggregator.models import PollResult, SourceState, SourceUpdate
from aggregator.poll.poller import Poller
from aggregator.schedule.scheduler import PollScheduler, first_run_at
from aggregator.storage import Storage

NOW = datetime(2024, 3, 6, 12, 0, tzinfo=UTC)
FEED = (
    '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><link>http://x/</link>'
    "<description>d</description><item><title>a</title><guid>{name}</guid></item></channel></rss>"
)


def state(**fields: object) -> SourceState:
    return SourceState(id=1, name="s", url="https://example.org/", **fields)  # type: ignore[arg-type]


def test_a_stored_future_poll_is_kept_after_a_restart() -> None:
    assert first_run_at(state(next_poll_at=NOW + timedelta(hours=5)), NOW) == NOW + timedelta(
        hours=5
    )


def test_overdue_and_new_sources_are_spread_not_all_at_once() -> None:
    rng = random.Random(7)
    spread = timedelta(minutes=2)
    times = [
        first_run_at(state(next_poll_at=NOW - timedelta(days=3)), NOW, spread=spread, rng=rng)
        for _ in range(20)
    ] + [first_run_at(state(), NOW, spread=spread, rng=rng) for _ in range(20)]
    assert all(NOW <= t <= NOW + spread for t in times)
    assert len(set(times)) == 40


def test_a_retired_source_is_never_scheduled() -> None:
    assert first_run_at(state(retired_at=NOW, next_poll_at=None), NOW) is None


def write_config(tmp_path: Path, names: list[str], interval: str = "1h") -> AppConfig:
    for name in names:
        (tmp_path / f"{name}.rss").write_text(FEED.format(name=name))
    path = tmp_path / "aggregator.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "database": str(tmp_path / "agg.db"),
                "public_dir": str(tmp_path / "public"),
                "defaults": {"interval": interval},
                "sources": [{"name": n, "url": f"{n}.rss"} for n in names],
            }
        )
    )
    return load_config(path)


def test_jobs_follow_the_stored_schedule_and_a_run_reschedules_to_its_plan(tmp_path) -> None:
    config = write_config(tmp_path, ["later", "due"])
    later_at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
    with Poller(config) as poller:
        poller.sync_sources()
        with Storage(config.database) as storage, storage.transaction():
            storage.update_source(
                storage.get_source("later").id, SourceUpdate(next_poll_at=later_at)
            )
        done = threading.Event()
        results: list[PollResult] = []

        def on_result(source, result):  # noqa: ANN001
            results.append(result)
            done.set()

        scheduler = PollScheduler(config, poller, on_result, rng=random.Random(1))
        scheduler.start()
        try:
            assert scheduler.scheduled()["later"] == later_at
            assert done.wait(10)  # "due" had never been polled: it runs at once
            assert results[0].source == "due" and results[0].status == "new"
            for _ in range(100):  # the run adds its next job once on_result returned
                if scheduler.scheduled()["due"] is not None:
                    break
                threading.Event().wait(0.02)
            planned = scheduler.scheduled()["due"]
            assert planned == results[0].next_poll_at
            assert planned - datetime.now(UTC) > timedelta(minutes=59)
        finally:
            scheduler.shutdown()


def test_apply_config_adds_removes_and_keeps_places(tmp_path) -> None:
    config = write_config(tmp_path, ["a", "b"])
    with Poller(config) as poller:
        poller.sync_sources()
        keep_at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
        with Storage(config.database) as storage, storage.transaction():
            for name in ("a", "b"):
                storage.update_source(
                    storage.get_source(name).id, SourceUpdate(next_poll_at=keep_at)
                )
        scheduler = PollScheduler(config, poller, lambda s, r: None)
        scheduler.start()
        try:
            new = write_config(tmp_path, ["a", "c"], interval="2h")
            poller.reconfigure(new)
            poller.sync_sources()
            scheduler.apply_config(new)
            times = scheduler.scheduled()
            assert set(times) == {"a", "c"}
            assert times["a"] == keep_at  # a changed interval keeps its place in the schedule
            soon = datetime.now(UTC) + timedelta(seconds=1)
            assert times["c"] is None or times["c"] <= soon  # due at once (or already running)
            assert scheduler._scheduler.get_job("poll:b") is None
        finally:
            scheduler.shutdown()
