"""Private outputs (``access:``) over a real server on 127.0.0.1.

A source served locally is polled and published into a public output, a token output and a
basic-auth output; the app then runs under uvicorn and is asked as a stranger and as the owner.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import feedparser
import httpx
import pytest
import yaml
from click.testing import CliRunner

from aggregator.cli import main
from aggregator.config.loading import load_config
from aggregator.errors import ConfigError
from aggregator.serve.server import create_app
from tests.support import poll_and_publish, serve, serve_folder

TOKEN = "s3cret-token-value"
PASSWORD = "hunter2-but-longer"


def _feed() -> str:
    now = datetime.now(UTC)
    items = "".join(
        f"<item><title>Post {i}</title><link>https://blog.example/{i}</link>"
        f"<guid>https://blog.example/{i}</guid>"
        f"<pubDate>{format_datetime(now - timedelta(hours=i))}</pubDate></item>"
        for i in range(3)
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Blog</title>'
        f"<link>https://blog.example/</link><description>d</description>{items}</channel></rss>"
    )


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("FEED_TOKEN", TOKEN)
    monkeypatch.setenv("FEED_PASSWORD", PASSWORD)
    served = tmp_path / "site"
    served.mkdir()
    (served / "blog.rss").write_text(_feed())
    with serve_folder(served) as origin:
        config = {
            "database": str(tmp_path / "db.sqlite"),
            "public_dir": str(tmp_path / "public"),
            "defaults": {"comments": False},
            "sources": [{"name": "blog", "url": f"{origin}/blog.rss"}],
            "outputs": [
                {"name": "open"},
                {"name": "mine", "access": {"token": "${FEED_TOKEN}"}},
                {"name": "talk", "items": "comments", "access": {"token": "${FEED_TOKEN}"}},
                {
                    "name": "family",
                    "access": {"basic": {"user": "me", "password": "${FEED_PASSWORD}"}},
                },
            ],
        }
        path = tmp_path / "aggregator.yaml"
        path.write_text(yaml.safe_dump(config))
        poll_and_publish(path)
    yield path


def test_private_files_are_written_outside_public_feeds(site: Path) -> None:
    public = site.parent / "public"
    assert (public / "feeds" / "open.atom").is_file()
    # An output of comments (issue 15) is private like one of entries.
    for name in ("mine", "family", "talk"):
        assert not list((public / "feeds").glob(f"{name}*"))
        assert (public / "private" / "feeds" / f"{name}.atom").is_file()
    for path in public.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes()


def test_a_stranger_is_refused_and_the_owner_reads(
    site: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="aggregator")
    config = load_config(site)
    with serve(create_app(config)) as base, httpx.Client(base_url=base, timeout=10) as client:
        # Strangers.
        for url in ("/feeds/mine.atom", "/feeds/mine.rss", "/feeds/family.json"):
            answer = client.get(url)
            assert answer.status_code == 401, url
            assert answer.headers["www-authenticate"]
        assert client.get("/feeds/mine.atom?token=wrong-token").status_code == 401
        wrong = client.get("/feeds/mine.atom", headers={"Authorization": "Bearer nope-nope"})
        assert wrong.status_code == 401
        assert client.get("/feeds/family.atom", auth=("me", "wrong")).status_code == 401
        assert client.get("/outputs/mine").status_code in (401, 404)
        assert client.get("/outputs/family").status_code in (401, 404)
        index, opml = client.get("/").text, client.get("/opml").text
        assert "/outputs/open" in index and "mine" not in index and "family" not in index
        assert "open" in opml and "mine" not in opml and "family" not in opml
        assert client.get("/feeds/open.atom").status_code == 200

        # The owner.
        by_query = client.get(f"/feeds/mine.atom?token={TOKEN}")
        assert by_query.status_code == 200
        assert [e.title for e in feedparser.parse(by_query.content).entries][:1] == ["Post 0"]
        bearer = client.get("/feeds/mine.rss", headers={"Authorization": f"Bearer {TOKEN}"})
        assert bearer.status_code == 200 and "private" in bearer.headers["cache-control"]
        basic = client.get("/feeds/family.atom", auth=("me", PASSWORD))
        assert basic.status_code == 200
        assert len(feedparser.parse(basic.content).entries) == 3
        page = client.get("/outputs/family", auth=("me", PASSWORD))
        assert page.status_code == 200 and "Post 0" in page.text
        public_id = (
            feedparser.parse(basic.content).entries[0].id.rsplit(":", 1)[-1].replace("-", "")
        )
        entry_url = f"/outputs/family/{public_id}"
        assert client.get(entry_url).status_code in (401, 404)
        assert client.get(entry_url, auth=("me", "wrong")).status_code in (401, 404)
        shown = client.get(entry_url, auth=("me", PASSWORD))
        assert shown.status_code == 200 and "Post 0" in shown.text
        listed = client.get("/", headers={"Authorization": f"Bearer {TOKEN}"}).text
        assert "/outputs/mine" in listed and "/outputs/family" not in listed
    ours = "\n".join(
        record.getMessage() for record in caplog.records if record.name.startswith("aggregator")
    )
    assert TOKEN not in ours and PASSWORD not in ours


def test_secrets_stay_out_of_check_and_errors(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(main, ["--config", str(site), "check"])
    assert TOKEN not in result.output and PASSWORD not in result.output
    monkeypatch.delenv("FEED_TOKEN")
    with pytest.raises(ConfigError) as error:
        load_config(site)
    assert "FEED_TOKEN is not set" in str(error.value)
    assert "aggregator.yaml:" in str(error.value)


def test_access_needs_exactly_one_kind(tmp_path: Path) -> None:
    path = tmp_path / "aggregator.yaml"
    path.write_text(yaml.safe_dump({"outputs": [{"name": "x", "access": {}}]}))
    with pytest.raises(ConfigError, match="exactly one of 'token' or 'basic'"):
        load_config(path)
