"""The configuration keys of issue 7: allow_private_networks and defaults.max_body_size."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.config.loading import load_config
from aggregator.config.units import parse_size
from aggregator.errors import ConfigError
from aggregator.poll.resources import make_fetcher


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "aggregator.yaml"
    path.write_text(text)
    return path


def test_defaults_are_safe(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "sources: []\n"))
    assert config.allow_private_networks is False
    assert config.defaults.max_body_size == 10 * 1024 * 1024


def test_the_keys_reach_the_fetcher(tmp_path: Path) -> None:
    (tmp_path / "feed.xml").write_text("<rss/>")  # a file source must exist (issue 18)
    config = load_config(
        write(
            tmp_path,
            "allow_private_networks: true\ndefaults:\n  max_body_size: 512KB\n  timeout: 7s\n"
            "sources:\n  - name: a\n    url: feed.xml\n",
        )
    )
    with make_fetcher(config) as fetcher:
        assert fetcher.allow_private_networks is True
        assert fetcher.max_bytes == 512 * 1024
        assert fetcher.timeout == 7
        assert tmp_path.resolve() in fetcher.file_roots


@pytest.mark.parametrize(
    ("text", "size"),
    [("10MB", 10 << 20), ("512 kb", 512 << 10), ("1G", 1 << 30), (4096, 4096), ("1.5MB", 1572864)],
)
def test_sizes(text: object, size: int) -> None:
    assert parse_size(text) == size


def test_a_bad_size_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, "defaults:\n  max_body_size: lots\n"))
    assert caught.value.problems == [
        f"{tmp_path / 'aggregator.yaml'}:2: defaults.max_body_size: "
        "'lots' is not a size such as 10MB or 512KB"
    ]


def test_allow_private_networks_must_be_a_boolean(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="allow_private_networks"):
        load_config(write(tmp_path, "allow_private_networks: sometimes\n"))
