"""Entity bombs hidden by the charset (issue 12, item 5).

``xmlguard.defuse`` reads bytes as an ASCII-compatible encoding unless a BOM or the XML 1.0
appendix F patterns say otherwise. A document declared UTF-7 (``+ADw-`` is ``<``), EBCDIC other
than cp037's ``<?xm``, or UTF-16/32 without BOM that does not start with ``<`` hides its DOCTYPE
from that pass, while feedparser decodes by the HTTP charset or the XML declaration and gave
expat and its loose parser the bomb: about 500 MB for a 76 KB document. Each bomb below is a
real document in that encoding, parsed on every path that reaches feedparser: main feeds,
comment feeds, ``aggregator add`` (discovery) and a poll through the sandbox.
"""

from __future__ import annotations

import base64
import codecs
from pathlib import Path

import pytest
from click.testing import CliRunner
from hostile_server import HostileServer, static
from test_xmlguard import measure

from aggregator.cli import main
from aggregator.config.outputs import OutputConfig
from aggregator.config.schema import AppConfig
from aggregator.config.sources import SourceConfig
from aggregator.parse.comment_feed import parse_comment_feed
from aggregator.parse.feed import parse_feed
from aggregator.parse.sandbox import SandboxParser
from aggregator.parse.xmlguard import defuse
from aggregator.poll.poller import Poller

# A 20 KB "plain text" entity referenced 8,000 times: 160 MB of text once expanded.
_BOMB_TEXT = (
    '<!DOCTYPE rss [\n<!ENTITY a "' + "A" * 20_000 + '">\n]>\n'
    '<rss version="2.0"><channel><title>Bomb</title><link>http://127.0.0.1/</link>'
    "<item><title>one</title><guid>urn:bomb:1</guid><description>"
    + "&a;" * 8_000
    + "</description></item></channel></rss>"
)
_PEAK = 40 * 1024 * 1024  # unguarded, the UTF-7 and EBCDIC documents peak near 500 MB


def utf7(text: str) -> bytes:
    """``text`` in UTF-7 with every markup character base64-encoded, as an attacker writes it
    (Python's encoder writes ``<`` directly, which the byte-level guard would see)."""
    markup = "<>!&\"[]=/?'"
    return "".join(
        "+" + base64.b64encode(c.encode("utf-16-be")).decode().rstrip("=") + "-"
        if c in markup
        else c
        for c in text
    ).encode("ascii")


# (id, bytes, headers): how the encoding reaches feedparser.
BOMBS = [
    ("utf-7 header", utf7(_BOMB_TEXT), {"Content-Type": "application/rss+xml; charset=utf-7"}),
    (
        "utf-7 declaration",
        b'<?xml version="1.0" encoding="utf-7"?>\n' + utf7(_BOMB_TEXT),
        {"Content-Type": "application/rss+xml"},
    ),
    (
        "utf-7 text/xml",
        utf7(_BOMB_TEXT),
        {"Content-Type": "text/xml; charset=UTF-7"},
    ),
    (
        "utf-16-le no BOM",
        ("\n" + _BOMB_TEXT).encode("utf-16-le"),
        {"Content-Type": "application/xml; charset=utf-16le"},
    ),
    (
        "utf-16-be no BOM",
        (" " + _BOMB_TEXT).encode("utf-16-be"),
        {"Content-Type": "application/rss+xml; charset=utf-16be"},
    ),
    (
        "utf-32-le no BOM",
        ("\n" + _BOMB_TEXT).encode("utf-32-le"),
        {"Content-Type": "application/rss+xml; charset=utf-32le"},
    ),
    ("cp500", _BOMB_TEXT.encode("cp500"), {"Content-Type": "application/rss+xml; charset=cp500"}),
    ("cp037", _BOMB_TEXT.encode("cp037"), {"Content-Type": "application/xml; charset=cp037"}),
    (
        "cp500 declaration",
        ('<?xml version="1.0" encoding="cp500"?>\n' + _BOMB_TEXT).encode("cp500"),
        {},
    ),
]


def _check_not_expanded(text: str, warning: str | None) -> None:
    assert "A" * 100 not in text, "the entity was expanded"
    assert warning and "DOCTYPE declarations removed" in warning


@pytest.mark.parametrize(("document", "headers"), [b[1:] for b in BOMBS], ids=[b[0] for b in BOMBS])
def test_a_bomb_hidden_by_its_charset_is_defused_in_main_feeds(
    document: bytes, headers: dict[str, str]
) -> None:
    assert defuse(document).content is document  # hidden from the byte-level guard
    feed, seconds, peak = measure(lambda: parse_feed(document, headers, "http://127.0.0.1/f"))
    assert peak < _PEAK, f"{peak / 1e6:.0f} MB"
    assert seconds < 3.0
    assert [e.key for e in feed.entries] == ["urn:bomb:1"], "the feed is still read"
    _check_not_expanded(feed.entries[0].summary or feed.entries[0].content or "", feed.warning)


@pytest.mark.parametrize(("document", "headers"), [b[1:] for b in BOMBS], ids=[b[0] for b in BOMBS])
def test_a_bomb_hidden_by_its_charset_is_defused_in_comment_feeds(
    document: bytes, headers: dict[str, str]
) -> None:
    comments, _, peak = measure(
        lambda: parse_comment_feed(document, headers, "http://127.0.0.1/c").comments
    )
    assert peak < _PEAK, f"{peak / 1e6:.0f} MB"
    assert len(comments) == 1
    assert "A" * 100 not in (comments[0].content or "")


def test_utf16_with_a_bom_still_parses_with_its_entities_and_accents() -> None:
    text = (
        '<?xml version="1.0" encoding="utf-16"?>\n<!DOCTYPE rss [\n<!ENTITY who "Zoë">\n]>\n'
        '<rss version="2.0"><channel><title>Café für &who;</title><link>http://x.test/</link>'
        "<item><title>Ünïcode ☕ &who;</title><guid>u1</guid></item></channel></rss>"
    )
    for codec, bom in (("utf-16-le", codecs.BOM_UTF16_LE), ("utf-16-be", codecs.BOM_UTF16_BE)):
        document = bom + text.encode(codec)
        for headers in ({}, {"Content-Type": "application/rss+xml; charset=utf-16"}):
            feed = parse_feed(document, headers, "http://x.test/feed")
            assert feed.title == "Café für Zoë", (codec, headers)
            assert feed.entries[0].title == "Ünïcode ☕ Zoë"
            assert feed.warning is None


def test_a_latin1_feed_with_an_entity_is_unchanged() -> None:
    document = (
        '<?xml version="1.0" encoding="iso-8859-1"?>\n<!DOCTYPE rss [\n<!ENTITY e "é">\n]>\n'
        '<rss version="2.0"><channel><title>Été &e;</title>'
        "<item><title>à</title><guid>l1</guid></item></channel></rss>"
    ).encode("latin-1")
    feed = parse_feed(document, {"Content-Type": "application/rss+xml"}, "http://x.test/feed")
    assert (feed.title, feed.entries[0].title, feed.warning) == ("Été é", "à", None)


def test_add_reads_a_utf7_bomb_without_expanding_it(tmp_path: Path) -> None:
    document, headers = BOMBS[0][1], BOMBS[0][2]
    config = tmp_path / "aggregator.yaml"
    config.write_text(
        f"database: {tmp_path / 'a.db'}\npublic_dir: {tmp_path / 'public'}\n"
        "sources: []\noutputs:\n  - name: all\n"
    )
    page = static(document, content_type=headers["Content-Type"])
    with HostileServer({"/feed": page}) as server:
        result, _, peak = measure(
            lambda: CliRunner().invoke(
                main, ["--config", str(config), "add", "--dry-run", server.url("/feed")]
            )
        )
    assert peak < _PEAK, f"{peak / 1e6:.0f} MB"
    assert result.exit_code == 0, result.output
    assert "Bomb" in result.output


def test_a_poll_through_the_sandbox_stores_the_feed_unexpanded(tmp_path: Path) -> None:
    cases = {
        f"/{n}.rss": static(b[1], content_type=b[2].get("Content-Type", "application/xml"))
        for n, b in enumerate(BOMBS)
    }
    with HostileServer(cases) as server, SandboxParser(timeout=30) as parser:
        config = AppConfig(
            database=tmp_path / "aggregator.db",
            public_dir=tmp_path / "public",
            sources=tuple(
                SourceConfig(name=f"bomb-{n}", url=server.url(f"/{n}.rss"))
                for n in range(len(BOMBS))
            ),
            outputs=(OutputConfig(name="all"),),
        )
        with Poller(config, parser=parser, manual=True) as poller:
            results = poller.poll_many(config.sources)
            for result in results:
                assert (result.status, result.new) == ("new", 1), (result.source, result.error)
                assert "DOCTYPE declarations removed" in (result.warning or "")
            stored = poller.storage._rows("SELECT summary, content FROM entries")
    assert len(stored) == len(BOMBS)
    for row in stored:
        assert "A" * 100 not in (row["summary"] or "") + (row["content"] or "")
