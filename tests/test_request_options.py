"""Request options per source (issue 17, item 1): headers, auth, cookies, user_agent, proxy;
secrets written as ${ENV_VAR} or !file; private sources left out of outputs.

Real servers on 127.0.0.1: the feed server records what it received, a forward proxy
(``forward_proxy.py``) records what went through it.
"""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import sys
from pathlib import Path

import feedparser
import pytest
from forward_proxy import ForwardProxy

from aggregator.config.loading import load_config
from aggregator.errors import BlockedAddressError, ConfigError
from aggregator.fetch.addresses import Provenance
from aggregator.fetch.fetcher import Fetcher
from aggregator.models import RequestOptions
from aggregator.poll.poller import Poller
from aggregator.publish.publisher import Publisher
from aggregator.secret import Secret
from aggregator.storage import Storage

PASSWORD = "hunter2-s3cret-pw"
TOKEN = "tok-9f8e7d6c5b4a"
COOKIE = "sess-0a1b2c3d"
ALL_SECRETS = (PASSWORD, TOKEN, COOKIE, base64.b64encode(f"reader:{PASSWORD}".encode()).decode())


def run_cli(config_path: Path, *args: str, env: dict[str, str] | None = None):
    return subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(config_path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "aggregator.yaml"
    path.write_text(
        "database: var/aggregator.db\npublic_dir: var/public\ndefaults: {timeout: 5s}\n" + text,
        encoding="utf-8",
    )
    return path


@pytest.fixture
def secret_env(monkeypatch, tmp_path):
    monkeypatch.setenv("FEED_PASSWORD", PASSWORD)
    (tmp_path / "cookie.txt").write_text(COOKIE + "\n")
    return {"FEED_PASSWORD": PASSWORD}


def authenticated_config(tmp_path: Path, url: str, extra: str = "") -> Path:
    return write(
        tmp_path,
        f"""
sources:
  - name: members
    url: {url}
    auth: {{username: reader, password: "${{FEED_PASSWORD}}"}}
    cookies: {{session: !file cookie.txt}}
    headers: {{X-Api-Key: "{TOKEN}", Accept-Language: fr}}
    user_agent: MembersReader/2.0
  - name: open
    url: {url.replace("/members.rss", "/open.rss")}
outputs:
  - name: all
{extra}""",
    )


def test_credentials_are_sent_to_the_source_and_never_shown(tmp_path, feed_server, secret_env):
    url = feed_server.serve_feed("/members.rss", "formats/rss2.rss")
    feed_server.serve_feed("/open.rss", "formats/atom10.atom")
    path = authenticated_config(tmp_path, url)

    polled = run_cli(path, "--log-level", "debug", "poll", env=secret_env)
    assert polled.returncode == 0, polled.stderr
    sent = feed_server.requests_for("/members.rss")[0].headers
    assert (
        sent["authorization"] == "Basic " + base64.b64encode(f"reader:{PASSWORD}".encode()).decode()
    )
    assert sent["cookie"] == f"session={COOKIE}"
    assert sent["x-api-key"] == TOKEN
    assert sent["accept-language"] == "fr"
    assert sent["user-agent"] == "MembersReader/2.0"
    # The other source gets none of them.
    other = feed_server.requests_for("/open.rss")[0].headers
    assert "authorization" not in other and "cookie" not in other and "x-api-key" not in other
    assert other["user-agent"].startswith("aggregator/")

    outputs = [polled.stdout + polled.stderr]
    for args in (("check",), ("status",), ("status", "--json"), ("opml", "export"), ("publish",)):
        result = run_cli(path, *args, env=secret_env)
        assert result.returncode == 0, (args, result.stderr)
        outputs.append(result.stdout + result.stderr)
    for folder, _, files in os.walk(tmp_path / "var" / "public"):
        for name in files:
            outputs.append((Path(folder) / name).read_text(errors="replace"))
    text = "\n".join(outputs)
    for secret in ALL_SECRETS:
        assert secret not in text


def test_a_private_source_is_not_published_unless_the_output_says_so(
    tmp_path, feed_server, secret_env
):
    url = feed_server.serve_feed("/members.rss", "formats/rss2.rss")
    feed_server.serve_feed("/open.rss", "formats/atom10.atom")
    path = authenticated_config(
        tmp_path, url, "  - name: members-too\n    include_private_sources: true\n"
    )
    config = load_config(path)
    assert not config.source("members").is_public and config.source("open").is_public
    with Poller(config, manual=True) as poller:
        results = poller.poll_many(config.sources, force=True)
    assert all(result.error is None for result in results), results
    with Storage(config.database) as storage:
        Publisher(config, storage).publish()
    public = config.public_dir / "feeds"
    closed = feedparser.parse((public / "all.atom").read_bytes())
    both = feedparser.parse((public / "members-too.atom").read_bytes())
    members_titles = {
        e.title for e in feedparser.parse(feed_server.routes["/members.rss"].body).entries
    }
    assert members_titles and not members_titles & {e.title for e in closed.entries}
    assert members_titles <= {e.title for e in both.entries}
    assert len(closed.entries) > 0


def test_naming_a_private_source_needs_include_private_sources(tmp_path, secret_env):
    path = write(
        tmp_path,
        """
sources:
  - name: members
    url: https://example.org/feed
    auth: {bearer: "${FEED_PASSWORD}"}
  - name: shared
    url: https://example.org/shared
    auth: {bearer: "${FEED_PASSWORD}"}
    public: true
outputs:
  - name: all
    sources: [shared, members]
""",
    )
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert raised.value.problems == [
        f"{path}:15: outputs[0].sources[1]: source 'members' is private (it sends credentials): "
        "set include_private_sources: true on this output, or public: true on the source"
    ]


@pytest.mark.parametrize(
    ("snippet", "line", "message"),
    [
        (
            'auth: {bearer: "${NOT_SET_ANYWHERE}"}',
            7,
            "auth.bearer: environment variable NOT_SET_ANYWHERE is not set",
        ),
        ("auth: {username: a}", 7, "auth: basic auth needs both username and password"),
        (
            "auth: {bearer: x, username: a, password: b}",
            7,
            "auth: use either username and password (basic) or bearer, not both",
        ),
        (
            "cookies: {session: !file missing.txt}",
            7,
            "cookies: session: !file missing.txt: no such file",
        ),
        (
            "headers: {Host: evil.example}",
            7,
            "headers: the Host header is set by the HTTP client and cannot be changed",
        ),
        ('headers: {"Bad Name": x}', 7, "headers: 'Bad Name' is not a valid header name"),
        (
            "proxy: ftp://proxy.example:21",
            7,
            "proxy: the proxy must be a URL such as http://host:3128, https://host, socks5://host:1080 (or none)",
        ),
        ('user_agent: ""', 7, "user_agent: must be one line of text"),
    ],
)
def test_bad_request_options_are_named_by_line(tmp_path, snippet, line, message):
    path = write(
        tmp_path,
        f"sources:\n  - name: one\n    url: https://example.org/feed\n    {snippet}\noutputs: [{{name: all}}]\n",
    )
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    problem = raised.value.problems[0]
    assert problem.startswith(f"{path}:{line}: sources[0].")
    assert problem.endswith(message)
    assert PASSWORD not in problem


def test_secret_is_masked_in_repr_str_and_format():
    secret = Secret(PASSWORD)
    options = RequestOptions(credentials=(("Authorization", secret),), proxy=Secret(PASSWORD))
    for text in (str(secret), repr(secret), f"{secret}", repr(options), str(options)):
        assert PASSWORD not in text
    assert secret.reveal() == PASSWORD


def test_credentials_are_not_sent_across_a_redirect_to_another_origin(feed_server):
    other = feed_server.url("/moved.rss").replace("127.0.0.1", "localhost")
    feed_server.serve_feed("/moved.rss", "formats/rss2.rss")
    url = feed_server.redirect("/feed.rss", other, status=302)
    options = RequestOptions(
        origin=f"http://127.0.0.1:{feed_server.port}",
        credentials=(("Authorization", Secret(f"Bearer {TOKEN}")),),
    )
    with Fetcher(allow_private_networks=True, environ={}) as fetcher:
        result = fetcher.fetch(url, request=options)
    assert result.status == 200
    assert feed_server.requests_for("/feed.rss")[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert "authorization" not in feed_server.requests_for("/moved.rss")[0].headers


def test_a_source_proxy_carries_the_request_and_its_credentials(tmp_path, feed_server, monkeypatch):
    feed_server.serve_feed("/feed.rss", "formats/rss2.rss")
    monkeypatch.setenv("PROXY_PASSWORD", PASSWORD)
    with ForwardProxy({"feeds.invalid": ("127.0.0.1", feed_server.port)}) as proxy:
        path = write(
            tmp_path,
            f"""
sources:
  - name: behind
    url: http://feeds.invalid/feed.rss
    proxy: "http://agg:${{PROXY_PASSWORD}}@127.0.0.1:{proxy.port}"
outputs: [{{name: all}}]
""",
        )
        config = load_config(path)
        assert PASSWORD not in repr(config) and PASSWORD not in str(config.model_dump())
        with Poller(config, manual=True) as poller:
            [result] = poller.poll_many(config.sources, force=True)
        assert result.error is None, result.error
        assert result.new > 0
        [(target, headers)] = proxy.requests
        assert target == "http://feeds.invalid/feed.rss"
        assert (
            headers["proxy-authorization"]
            == "Basic " + base64.b64encode(f"agg:{PASSWORD}".encode()).decode()
        )
        # Reached only through the proxy: the feed server saw the proxy's request.
        assert feed_server.requests_for("/feed.rss")


def test_the_proxy_environment_is_honoured_and_no_proxy_bypasses_it(feed_server):
    url = feed_server.serve_feed("/feed.rss", "formats/rss2.rss")
    with ForwardProxy({"feeds.invalid": ("127.0.0.1", feed_server.port)}) as proxy:
        environ = {"HTTP_PROXY": proxy.url, "NO_PROXY": "127.0.0.1"}
        with Fetcher(environ=environ) as fetcher:
            via_proxy = fetcher.fetch("http://feeds.invalid/feed.rss")
            direct = fetcher.fetch(url)
            # proxy: none in the config: direct even with the environment set.
            assert (
                fetcher.proxy_for("http://feeds.invalid/x", RequestOptions(proxy_from_env=False))
                is None
            )
        assert via_proxy.status == 200 and direct.status == 200
        assert [target for target, _ in proxy.requests] == ["http://feeds.invalid/feed.rss"]


def test_through_a_proxy_the_target_still_obeys_the_address_rules(feed_server):
    with ForwardProxy() as proxy:
        options = RequestOptions(proxy=Secret(proxy.url))
        with Fetcher(environ={}, resolver=lambda host, port: ["169.254.169.254"]) as fetcher:
            found = Provenance.found_in("https://example.org/feed")
            for url, provenance in (
                ("http://169.254.169.254/latest/meta-data/", None),  # metadata: never
                ("http://127.0.0.1:9/private", found),  # a found URL: public addresses only
                ("http://metadata.example/latest/", None),  # a name resolving to metadata
            ):
                with pytest.raises(BlockedAddressError):
                    fetcher.fetch(url, provenance=provenance, request=options)
        assert proxy.requests == []


def test_secrets_never_reach_the_log_on_errors(feed_server, caplog, tmp_path, secret_env):
    feed_server.route("/members.rss", status=401, body=b"no")
    path = authenticated_config(tmp_path, feed_server.url("/members.rss"))
    config = load_config(path)
    caplog.set_level(logging.DEBUG)
    with Poller(config, manual=True) as poller:
        results = poller.poll_many(config.sources[:1], force=True)
    assert "401" in (results[0].error or "")
    for secret in ALL_SECRETS:
        assert secret not in caplog.text and secret not in repr(results)
