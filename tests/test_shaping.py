"""Tests for aggregator.select.shaping: summaries cut cleanly, plain text reads well."""

from __future__ import annotations

from functools import partial
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.parse.sanitize import plain_text as _plain_text
from aggregator.select.shaping import ELLIPSIS, summarize

plain_text = partial(_plain_text, limit=None)

VOID = {"br", "img", "hr", "input", "meta", "link", "wbr", "source", "area", "col", "embed"}


class _TagChecker(HTMLParser):
    """Checks that every tag opened is closed, in order (what "well-formed" means here)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with {self.stack}")
        else:
            self.stack.pop()


def assert_well_formed(html: str) -> None:
    checker = _TagChecker()
    checker.feed(html)
    checker.close()
    assert not checker.errors, checker.errors
    assert checker.stack == [], f"unclosed: {checker.stack}"


LONG = (
    "<p>The <b>quick brown fox</b> jumps over the <i>lazy <a href='/dog?a=1&amp;b=2'>dog</a></i>"
    " and keeps running through the forest until night falls.</p><p>Second paragraph.</p>"
)


def test_short_input_is_unchanged() -> None:
    html = "<p>Short <b>and sweet"  # even unclosed: it fits, so it is left alone
    assert summarize(html, 500) == html
    assert summarize("", 10) == ""
    assert summarize(LONG, 10_000) == LONG


def test_cut_on_word_boundary_with_ellipsis() -> None:
    out = summarize(LONG, 30)
    assert out == f"<p>The <b>quick brown fox</b> jumps over{ELLIPSIS}</p>"
    text = plain_text(out)
    assert text == f"The quick brown fox jumps over{ELLIPSIS}"
    assert len(text) <= 31


@pytest.mark.parametrize("limit", range(3, 130, 7))  # from 3: "The" fits
def test_cut_never_splits_a_word(limit: int) -> None:
    words = set(plain_text(LONG).replace(".", "").split())
    text = plain_text(summarize(LONG, limit)).rstrip(ELLIPSIS)
    for word in text.replace(".", "").split():
        assert word in words, (limit, word)


def test_unclosed_tags_are_closed() -> None:
    html = "<div><p>Lorem <b>ipsum dolor <i>sit amet, consectetur adipiscing elit, sed do"
    out = summarize(html, 21)
    assert out == f"<div><p>Lorem <b>ipsum dolor <i>sit{ELLIPSIS}</i></b></p></div>"
    assert_well_formed(out)


def test_entities_stay_intact() -> None:
    html = "<p>Fish &amp; chips &lt;tasty&gt; &eacute;t&eacute; &amp; more words here</p>"
    out = summarize(html, 24)
    assert "&amp; chips &lt;tasty&gt;" in out
    assert "&" not in out.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "")
    assert plain_text(out) == f"Fish & chips <tasty> été{ELLIPSIS}"


def test_cut_never_inside_a_tag_or_attribute() -> None:
    html = (
        '<p>word <a href="https://example.com/a very long url" title="x y z">link text here</a></p>'
    )
    out = summarize(html, 9)
    assert (
        out
        == f'<p>word <a href="https://example.com/a very long url" title="x y z">link{ELLIPSIS}</a></p>'
    )


def test_a_single_long_word_is_cut_hard() -> None:
    assert summarize("<p>" + "x" * 50 + "</p>", 10) == f"<p>{'x' * 10}{ELLIPSIS}</p>"


def test_trailing_punctuation_goes_before_the_ellipsis() -> None:
    assert summarize("<p>One, two, three, four</p>", 9) == f"<p>One, two{ELLIPSIS}</p>"


def test_scripts_and_comments_are_dropped_and_not_counted() -> None:
    html = "<p><script>var x = 'a b c d e f';</script><!-- note -->Visible words and more words</p>"
    out = summarize(html, 14)
    assert out == f"<p>Visible words{ELLIPSIS}</p>"


def test_max_chars_must_be_positive() -> None:
    with pytest.raises(ValueError):
        summarize("<p>x</p>", 0)


html_pieces = st.sampled_from(
    ["<p>", "</p>", "<b>", "</b>", "<i>", "</i>", "<ul><li>", "</li>", "<br>", "&amp;", "&lt;",
     "&eacute;", "&#169;", " ", "word", "lorem ipsum", "x" * 12, "<a href='?q=1&amp;r=2'>", "</a>",
     "<table><tr><td>", "</td>", "<!-- c -->", "<img src=x>", "<", ">", "&", "\u00e9t\u00e9"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(pieces=st.lists(html_pieces, max_size=40), limit=st.integers(1, 80))
def test_summary_is_well_formed_and_bounded(pieces: list[str], limit: int) -> None:
    html = "".join(pieces)
    out = summarize(html, limit)
    if out == html:
        assert len(plain_text(html)) <= limit + 1
        return
    assert_well_formed(out)
    text = plain_text(out)
    assert text.endswith(ELLIPSIS)
    assert len(text) <= limit + len(ELLIPSIS) + 1
    assert plain_text(html).startswith(text[: -len(ELLIPSIS)].rstrip())


def test_plain_text() -> None:
    assert plain_text("<p>One</p><p>Two<br>Three</p>") == "One Two Three"
    assert plain_text("AT&amp;T <b>wo</b>rd") == "AT&T word"
    assert plain_text("<style>p {}</style><script>x()</script>Text") == "Text"
    assert plain_text("Plain   title\n with spaces") == "Plain title with spaces"
    assert plain_text("a < b & c") == "a < b & c"
    assert plain_text(None) == ""
    assert plain_text("") == ""
