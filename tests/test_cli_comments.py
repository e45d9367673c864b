"""The command line's comment commands, run through click against a local blog and a real
database: ``aggregator poll`` reports new comments per source, ``aggregator comments ENTRY``
prints a thread."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from blogsim import START, Blog
from click.testing import CliRunner

from aggregator.cli import main
from aggregator.config.schema import AppConfig

H = timedelta(hours=1)
CONFIG = """
defaults:
  comments: true
sources:
  - name: wp
    url: {wp}
    comments_page: wordpress
  - name: moa
    url: {tp}
    comments_page: typepad
    timezone: America/New_York
outputs:
  - name: all
"""


def run(config: AppConfig, *args: str) -> tuple[int, str, str]:
    """Run one command; its exit code, stdout and stderr (where logging goes)."""
    result = CliRunner().invoke(main, ["--config", str(config.config_path), *args])
    return result.exit_code, result.stdout, result.stderr


def test_poll_reports_new_comments_per_source_and_comments_prints_the_thread(
    blogs: Callable[..., Blog], write_yaml_config: Callable[[str], AppConfig]
) -> None:
    wp = blogs("/wp", "wordpress", comment_feeds=False, timezone="UTC")
    post = wp.add_post("threaded", "A Threaded Post", START - 2 * H)
    alice = wp.comment(post, "Alice", "Top <em>level</em>.", START - H)
    wp.comment(post, "Bob", "A reply.", START - H + timedelta(minutes=5), parent=alice)
    doomed = wp.comment(post, "Carol", "Soon deleted.", START - H + timedelta(minutes=9))
    tp = blogs("/tp", "typepad")
    tp.add_post("quiet", "Quiet", START - H)
    config = write_yaml_config(
        CONFIG.format(wp=wp.origin + "/wp/feed/", tp=tp.origin + "/tp/index.rdf")
    )

    code, output, errors = run(config, "poll")
    assert code == 0, errors
    assert output.splitlines() == ["wp: 1 new, 3 new comments", "moa: 1 new"]

    wp.comment(post, "Dave", "One more.", START)
    post.comments.remove(doomed)
    code, output, _ = run(config, "poll", "wp")
    assert code == 0 and output.splitlines() == [
        "wp: unchanged (304), 1 new comment, 1 comment changed"
    ]

    code, output, errors = run(config, "comments", wp.post_url(post))
    assert code == 0, errors
    lines = output.splitlines()
    assert lines[0] == "A Threaded Post"
    assert lines[1] == f"{wp.post_url(post)}  [wp]  4 comment(s)"
    assert [line for line in lines[2:] if line] == [
        "#1 Alice | 2026-03-10 11:00 UTC",
        "Top level.",
        "    #2 Bob | 2026-03-10 11:05 UTC  (reply to Alice)",
        "    A reply.",
        "#3 Carol | 2026-03-10 11:09 UTC  (gone from the source)",
        "Soon deleted.",
        "#3 Dave | 2026-03-10 12:00 UTC",
        "One more.",
    ]


def test_comments_of_an_unknown_entry(write_yaml_config: Callable[[str], AppConfig]) -> None:
    config = write_yaml_config("sources: []\noutputs: []\n")
    code, output, errors = run(config, "comments", "https://nowhere.example/post")
    assert code == 1 and not output
    assert errors == "aggregator: no entry matches 'https://nowhere.example/post'\n"
