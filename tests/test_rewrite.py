"""Rewrite rules (issue 17, item 3): a real feed served on 127.0.0.1 is polled (parsed and
rewritten in the sandbox), published, and read back with feedparser.

Three sources read the same feed: ``blog`` has rules of every kind after the defaults' host
map, ``plain`` has only the defaults', and ``raw`` opts out of the defaults. Bad rules are
configuration errors with their line; a pattern that would backtrack for ages in Python's
``re`` runs in linear time under RE2.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import feedparser
import pytest
import yaml
from click.testing import CliRunner

from aggregator.cli import main
from aggregator.config.loading import load_config
from aggregator.errors import ConfigError
from aggregator.models import RewriteRule
from aggregator.parse.rewrite import MAX_REWRITTEN_CHARS, Rewriter
from aggregator.poll.poller import Poller
from aggregator.publish.publisher import Publisher
from aggregator.storage import Storage
from tests.support import poll_and_publish, serve_folder

#: A run of x's that sends Python's backtracking ``re`` into exponential time on the
#: pattern (x+x+)+y (each extra x doubles it); RE2 reads it once.
HOSTILE_RUN = "x" * 40_000

ITEMS = [
    {
        "title": "Post one",
        "link": "https://blog.example/1",
        "content": (
            "<p>Intro</p><div class='ad'>BUY NOW</div>"
            "<p>Watch <a href='https://www.youtube.com/watch?v=abc'>the video</a>"
            "<img src='https://tracker.example/pixel.gif?u=1'></p>"
        ),
    },
    {
        "title": "Sponsored: Post two",
        "link": "https://youtube.com/watch?v=xyz",
        "content": "<p>Sponsored by ACME. Real text.</p>",
        "enclosure": "https://cdn.old.example/ep.mp3",
    },
    {"title": "Post three", "link": "https://blog.example/3", "content": f"<p>{HOSTILE_RUN}</p>"},
]


def _feed() -> str:
    now = datetime.now(UTC)
    items = []
    for index, item in enumerate(ITEMS):
        enclosure = (
            f'<enclosure url="{item["enclosure"]}" type="audio/mpeg" length="10"/>'
            if "enclosure" in item
            else ""
        )
        items.append(
            f"<item><title>{item['title']}</title><link>{item['link']}</link>"
            f"<guid>urn:post:{index}</guid>"
            f"<pubDate>{format_datetime(now - timedelta(hours=index))}</pubDate>"
            f"<description><![CDATA[{item['content']}]]></description>{enclosure}</item>"
        )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Blog</title>'
        f"<link>https://blog.example/</link><description>d</description>{''.join(items)}"
        "</channel></rss>"
    )


def _config(origin: str, tmp: Path, plain_rules: list[dict[str, Any]] | None = None) -> str:
    """The config's YAML; line numbers matter to the explain test, so it is written out."""
    plain = ""
    if plain_rules:
        plain = "    rewrite:\n" + "".join(
            "      - " + json.dumps(rule) + "\n" for rule in plain_rules
        )
    return f"""\
database: {tmp / "db.sqlite"}
public_dir: {tmp / "public"}
defaults:
  comments: false
  rewrite:
    - hosts: {{youtube.com: yewtu.be}}
sources:
  - name: blog
    url: {origin}/blog.rss
    rewrite:
      - remove: "div.ad"
      - replace: "^Sponsored: "
        with: ""
        in: title
      - replace: "Intro"
        with: "<script>alert(1)</script><b onclick='steal()'>Intro</b><a href='javascript:go()'>x</a>"
      - replace_url: "^https://tracker\\\\.example/.*$"
        with: "https://img.example/blank.gif"
      - hosts: {{cdn.old.example: cdn.new.example}}
      - replace: "(x+x+)+y"
        with: "never"
  - name: plain
    url: {origin}/blog.rss
{plain}  - name: raw
    url: {origin}/blog.rss
    rewrite_defaults: false
outputs:
  - name: blog
    sources: [blog]
  - name: plain
    sources: [plain]
  - name: raw
    sources: [raw]
"""


@dataclass
class Site:
    path: Path
    origin: str
    tmp: Path
    poll_seconds: float

    def entries(self, output: str) -> dict[str, Any]:
        document = feedparser.parse((self.tmp / "public" / "feeds" / f"{output}.atom").read_bytes())
        return {entry.id.rsplit(":", 1)[-1]: entry for entry in document.entries} or {
            entry.title: entry for entry in document.entries
        }

    def by_title(self, output: str) -> dict[str, Any]:
        document = feedparser.parse((self.tmp / "public" / "feeds" / f"{output}.atom").read_bytes())
        return {entry.title: entry for entry in document.entries}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("rewrite")
    served = tmp / "site"
    served.mkdir()
    (served / "blog.rss").write_text(_feed())
    with serve_folder(served) as origin:
        path = tmp / "aggregator.yaml"
        path.write_text(_config(origin, tmp))
        started = time.monotonic()
        poll_and_publish(path)
        yield Site(path, origin, tmp, time.monotonic() - started)


def _content(entry: Any) -> str:
    return str(entry.content[0].value if "content" in entry else entry.summary)


def test_every_rule_kind_changes_the_published_entries(site: Site) -> None:
    entries = site.by_title("blog")
    assert set(entries) == {"Post one", "Post two", "Post three"}  # replace in: title
    one = _content(entries["Post one"])
    assert "BUY NOW" not in one and "Intro" in one  # remove: div.ad
    assert "https://yewtu.be/watch?v=abc" in one and "youtube.com" not in one  # defaults' hosts
    assert "https://img.example/blank.gif" in one and "tracker.example" not in one  # replace_url
    two = entries["Post two"]
    assert two.link == "https://yewtu.be/watch?v=xyz"  # the entry's own link
    assert [e.href for e in two.enclosures] == ["https://cdn.new.example/ep.mp3"]  # source hosts
    assert "Sponsored by ACME" in _content(two)  # the title rule left the content alone


def test_rewritten_html_is_sanitized_again(site: Site) -> None:
    one = _content(site.by_title("blog")["Post one"])
    assert "<b>Intro</b>" in one
    for active in ("<script", "alert(", "onclick", "steal()", "javascript:"):
        assert active not in one, active


def test_defaults_apply_unless_a_source_opts_out(site: Site) -> None:
    plain = _content(site.by_title("plain")["Post one"])
    assert "yewtu.be" in plain and "youtube.com" not in plain  # the defaults' rule
    assert "BUY NOW" in plain  # not blog's rules
    raw = site.by_title("raw")
    assert "https://www.youtube.com/watch?v=abc" in _content(raw["Post one"])  # opted out
    assert raw["Sponsored: Post two"].link == "https://youtube.com/watch?v=xyz"


def test_a_hostile_pattern_cannot_hang_a_poll(site: Site) -> None:
    # Three sources parsed, rewritten and stored, 40,000 x's under (x+x+)+y included.
    assert site.poll_seconds < 15
    assert HOSTILE_RUN in _content(site.by_title("blog")["Post three"])
    started = time.monotonic()
    values = {"title": "t", "content": "<p>" + "x" * 200_000 + "</p>", "summary": None}
    for pattern in ("(x+x+)+y", "(x|xx)+<", "(.*a){20}"):
        _, notes = Rewriter([RewriteRule("replace", pattern, "z")]).markup(values)
        assert pattern != "(x|xx)+<" or notes  # it does match, once
    assert time.monotonic() - started < 2


def test_a_replacement_cannot_blow_up_an_entry() -> None:
    values = {"title": "t", "content": "<p>" + "x" * 10_000 + "</p>", "summary": None}
    rules = [RewriteRule("replace", "x*?", "y" * 1000)]  # matches at every place
    assert Rewriter(rules).markup(values) == (values, [])
    # A long entry (cut to what the sanitizer keeps) is still rewritten.
    long = {"title": "t", "content": "<p>" + "a" * 400_000 + "</p>", "summary": None}
    rewritten, notes = Rewriter([RewriteRule("replace", "a{8}", "b")]).markup(long)
    assert notes and "aaaaaaaa" not in str(rewritten["content"])
    assert MAX_REWRITTEN_CHARS < 10_000 * 1000


def test_a_changed_rule_rewrites_stored_entries_of_an_unchanged_feed(
    site: Site, tmp_path: Path
) -> None:
    path = tmp_path / "aggregator.yaml"
    path.write_text(_config(site.origin, tmp_path))
    poll_and_publish(path)
    assert "BUY NOW" in _content(site.by_title("plain")["Post one"])  # site's own files
    path.write_text(_config(site.origin, tmp_path, [{"remove": ".ad"}]))
    config = load_config(path)
    with Poller(config, manual=True) as poller:
        result = poller.poll_source(config.source("plain"))
        assert result.ok and result.updated == 1, result.describe()  # only Post one has an .ad
        again = poller.poll_source(config.source("plain"))
    assert again.http_status == 304, again.describe()  # same rules: a conditional GET again
    with Storage(config.database) as storage:
        Publisher(config, storage).publish()
    document = feedparser.parse((tmp_path / "public" / "feeds" / "plain.atom").read_bytes())
    one = next(entry for entry in document.entries if entry.title == "Post one")
    assert "BUY NOW" not in _content(one) and "yewtu.be" in _content(one)


def test_preview_explain_shows_which_rule_changed_what(site: Site) -> None:
    result = CliRunner().invoke(main, ["-c", str(site.path), "preview", "blog", "--explain"])
    assert result.exit_code == 0, result.output
    text = result.output
    assert "Rewrite rules" in text
    lines = site.path.read_text().splitlines()
    remove_line = next(i for i, line in enumerate(lines, 1) if 'remove: "div.ad"' in line)
    hosts_line = next(i for i, line in enumerate(lines, 1) if "youtube.com: yewtu.be" in line)
    assert (
        f"sources[0].rewrite[0] ({site.path}:{remove_line}): remove 'div.ad': "
        "1 change(s) in 1 entry" in text
    )
    assert f"defaults.rewrite[0] ({site.path}:{hosts_line}): hosts youtube.com→yewtu.be" in text
    assert "Post one: content ×1: '<div class=\"ad\">BUY NOW</div>' → ''" in text
    assert "'https://youtube.com/watch?v=xyz' → 'https://yewtu.be/watch?v=xyz'" in text
    assert "sources[0].rewrite[5]" in text and "changes nothing now" in text  # (x+x+)+y

    report = json.loads(
        CliRunner()
        .invoke(main, ["-c", str(site.path), "preview", "blog", "--explain", "--json"])
        .output
    )
    (blog,) = report["rewrites"]
    rules = {rule["rule"]: rule for rule in blog["rules"]}
    assert rules["sources[0].rewrite[1]"]["line"] == remove_line + 1
    (change,) = rules["sources[0].rewrite[1]"]["changes"]
    assert (change["field"], change["before"], change["after"]) == ("title", "Sponsored:", "")


BAD_RULES = [  # (the rule, its line in the file, the message after "sources[0].")
    ('- remove: "div[["', 5, "rewrite[0].remove: 'div[[' is not a valid CSS selector"),
    ('- replace: "(a)\\\\1"\n        with: x', 5, "rewrite[0].replace: bad regular expression"),
    ('- replace: "(?=a)b"\n        with: x', 5, "rewrite[0].replace: bad regular expression"),
    ("- replace_url: x", 5, "rewrite[0]: a replace_url rule needs 'with'"),
    ("- replace: a\n        with: x\n        in: body", 7, "rewrite[0].in: 'body' is not one of"),
    ('- replace: a\n        with: "\\\\2"', 6, "rewrite[0].with: 'with' refers to group 2"),
    ("- hosts: {'https://a.example': b.example}", 5, "rewrite[0].hosts: 'https://a.example' is"),
    ("- remove: a\n        in: title", 6, "rewrite[0].in: unknown key for a remove rule"),
    ("- frob: a", 5, "rewrite[0]: a rule needs exactly one of remove, replace, replace_url"),
]


@pytest.mark.parametrize(("rule", "line", "message"), BAD_RULES)
def test_a_bad_rule_is_reported_with_its_file_and_line(
    tmp_path: Path, rule: str, line: int, message: str
) -> None:
    path = tmp_path / "aggregator.yaml"
    path.write_text(
        f"sources:\n  - name: one\n    url: https://example.org/feed\n    rewrite:\n      {rule}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (problem,) = caught.value.problems
    assert problem.startswith(f"{path}:{line}: sources[0].{message}"), problem


def test_a_bad_default_rule_is_reported_too(tmp_path: Path) -> None:
    path = tmp_path / "aggregator.yaml"
    path.write_text(yaml.safe_dump({"defaults": {"rewrite": [{"remove": "p", "with": "x"}]}}))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [
        f"{path}:4: defaults.rewrite[0].with: unknown key for a remove rule"
    ]


def test_matches_inside_matches_are_removed_safely() -> None:
    values = {"title": "t", "content": "<div class=a><p>x<span>y</span></p></div>tail<p>k</p>"}
    rewritten, notes = Rewriter([RewriteRule("remove", ".a, p, span")]).markup(
        {**values, "summary": None}
    )
    assert rewritten["content"] == "tail" and notes[0].count == 4
