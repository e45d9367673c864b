"""Shared fixtures: simulated blogs on a real HTTP server (127.0.0.1), configs written as YAML
files in ``tmp_path`` with a real SQLite file beside them, and an injected clock."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from blogsim import START, Blog, Clock
from pytest_httpserver import HTTPServer
from werkzeug.wrappers import Request, Response

from aggregator.config import AppConfig, load_config


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def blogs(httpserver: HTTPServer) -> Callable[..., Blog]:
    """A factory of blogs served by one local server, each under its own path prefix."""
    served: dict[str, Blog] = {}

    def dispatch(request: Request) -> Response:
        for prefix, blog in served.items():
            if request.path.startswith(prefix + "/"):
                return blog.handle(request)
        return Response("not found", status=404)

    httpserver.expect_request(re.compile(r"^/")).respond_with_handler(dispatch)
    origin = httpserver.url_for("/").rstrip("/")

    def make(prefix: str, kind: str, **options: object) -> Blog:
        blog = Blog(origin, prefix, kind, **options)  # type: ignore[arg-type]
        served[blog.prefix] = blog
        return blog

    return make


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str], AppConfig]:
    """Write a YAML config (database and public folder in ``tmp_path``) and load it."""

    def write(body: str) -> AppConfig:
        path = tmp_path / "aggregator.yaml"
        header = (
            f"database: {tmp_path / 'aggregator.db'}\n"
            f"public_dir: {tmp_path / 'public'}\n"
            "server:\n  base_url: https://feeds.example.org\n"
        )
        path.write_text(header + textwrap.dedent(body), encoding="utf-8")
        return load_config(path)

    return write


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    """pytest-httpserver listens on 127.0.0.1 (not "localhost", which may resolve elsewhere)."""
    return ("127.0.0.1", 0)
