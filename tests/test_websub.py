"""WebSub publisher: a stand-in hub on 127.0.0.1 hears about every feed that changed."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from click.testing import CliRunner
from pytest_httpserver import HTTPServer
from support import SAMPLE_CONFIG, sample_config_path, serve_folder
from werkzeug import Request, Response

from aggregator.cli import main
from aggregator.config.loading import load_config
from aggregator.config.schema import AppConfig
from aggregator.poll.poller import Poller
from aggregator.publish.publisher import Publisher
from aggregator.publish.websub import HubNotifier, notify_changes, topic_urls
from aggregator.storage import Storage


class StandInHub:
    """Records publish pings; answers 204 like a real hub (or ``status`` when set)."""

    def __init__(self, server: HTTPServer, status: int = 204):
        self.pings: list[dict[str, list[str]]] = []
        self.status = status
        server.expect_request("/hub", method="POST").respond_with_handler(self._handle)
        self.url = server.url_for("/hub")

    def _handle(self, request: Request) -> Response:
        assert request.content_type.startswith("application/x-www-form-urlencoded")
        self.pings.append(parse_qs(request.get_data(as_text=True)))
        return Response(status=self.status)

    @property
    def topics(self) -> list[str]:
        assert all(ping["hub.mode"] == ["publish"] for ping in self.pings)
        return [url for ping in self.pings for url in ping["hub.url"]]


def _config_with_hub(tmp_path: Path, origin: str, hub: str) -> Path:
    path = sample_config_path(tmp_path, origin)
    path.write_text(path.read_text().replace("https://hub.example.org/", hub))
    return path


def _poll_and_publish(config: AppConfig) -> list[Path]:
    with Poller(config, manual=True) as poller:
        poller.poll_many(list(config.sources))
    with Storage(config.database) as storage:
        return Publisher(config, storage).publish()


def test_the_hub_is_told_about_each_changed_feed_and_only_those(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    hub = StandInHub(httpserver)
    with serve_folder(SAMPLE_CONFIG) as origin:
        config = load_config(_config_with_hub(tmp_path, origin, hub.url))
        changed = _poll_and_publish(config)
        result = notify_changes(config, changed)
        base = f"{config.server.public_url}/feeds"
        assert f"{base}/everything.atom" in hub.topics
        assert f"{base}/everything.rss" in hub.topics
        assert f"{base}/podcasts.rss" in hub.topics
        assert sorted(hub.topics) == sorted(result.notified) == sorted(topic_urls(config, changed))
        assert result.failed == {}
        # The feeds name the same hub the pings went to.
        assert hub.url in (config.public_dir / "feeds" / "everything.atom").read_text()

        # Nothing changed: no ping at all.
        hub.pings.clear()
        assert notify_changes(config, _poll_and_publish(config)).notified == []
        assert hub.pings == []


def test_a_new_entry_pings_the_hub_for_the_outputs_that_show_it(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    hub = StandInHub(httpserver)
    folder = tmp_path / "source"
    shutil.copytree(SAMPLE_CONFIG, folder)
    with serve_folder(folder) as origin:
        config = load_config(_config_with_hub(tmp_path, origin, hub.url))
        _poll_and_publish(config)
        podcast = folder / "podcast.rss"
        podcast.write_text(
            podcast.read_text().replace(
                "<item>",
                "<item><title>Episode 6</title><guid>https://tide.example.com/episodes/6</guid>"
                "<pubDate>Mon, 30 Nov 2026 06:00:00 GMT</pubDate></item>\n  <item>",
                1,
            )
        )
        changed = _poll_and_publish(config)
    notify_changes(config, changed)
    base = f"{config.server.public_url}/feeds"
    assert {f"{base}/everything.atom", f"{base}/podcasts.atom", f"{base}/podcasts.rss"} <= set(
        hub.topics
    )
    assert f"{base}/everything/comments.atom" not in hub.topics


def test_a_failing_hub_is_reported_not_raised(httpserver: HTTPServer) -> None:
    hub = StandInHub(httpserver, status=500)
    with HubNotifier(hub.url, user_agent="test") as notifier:
        result = notifier.notify(["https://feeds.example.org/feeds/a.atom"])
    assert result.notified == []
    assert result.failed == {"https://feeds.example.org/feeds/a.atom": "the hub answered HTTP 500"}
    with HubNotifier("http://127.0.0.1:9/hub", user_agent="test", timeout=2) as notifier:
        result = notifier.notify([f"https://feeds.example.org/feeds/{n}.atom" for n in "abc"])
    assert len(result.failed) == 3
    assert all("cannot reach the hub" in reason for reason in result.failed.values())


def test_publish_command_pings_the_hub(tmp_path: Path, httpserver: HTTPServer) -> None:
    hub = StandInHub(httpserver)
    with serve_folder(SAMPLE_CONFIG) as origin:
        path = _config_with_hub(tmp_path, origin, hub.url)
        config = load_config(path)
        with Poller(config, manual=True) as poller:
            poller.poll_many(list(config.sources))
    result = CliRunner().invoke(main, ["--config", str(path), "publish"])
    assert result.exit_code == 0, result.output
    assert f"feed(s) announced to {hub.url}" in result.output
    assert f"{config.server.public_url}/feeds/everything.json" in hub.topics


@pytest.mark.parametrize("hub", ["ftp://hub.example.org/", "not a url"])
def test_a_bad_hub_url_is_a_config_error(tmp_path: Path, hub: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"server:\n  websub_hub: {hub}\n")
    result = CliRunner().invoke(main, ["--config", str(path), "check"])
    assert result.exit_code == 2
    assert "server.websub_hub" in result.output and "is not an http(s) URL" in result.output
