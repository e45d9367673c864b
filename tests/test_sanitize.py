"""Tests for aggregator.parse.sanitize: the fast paths give exactly what the plain calls gave.

The reference functions below are the code before issue 8, kept verbatim: a new ``nh3`` sanitizer
built on every call, with the base URL bound into the attribute filter, and every title through
the sanitizer. The module now reuses one sanitizer, skips it for text without markup, and
takes plain absolute URLs as they are (what urljoin gives back for them); every stored byte
must stay the same.
"""

from __future__ import annotations

import html
import threading
from functools import partial
from urllib.parse import urljoin, urlsplit

import feedparser.urls
import nh3
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from aggregator.parse import fastxml, sanitize
from aggregator.parse.sanitize import (
    _ATTRIBUTES,
    _BLOCKS,
    _DROP_WITH_CONTENT,
    _SAFE_SCHEMES,
    _TAG,
    _TAGS,
    _WHITESPACE,
    MAX_HTML_CHARS,
    MAX_TEXT_CHARS,
    clean_html,
    clean_url,
    keep_fallbacks,
    plain_text,
    xml_safe,
)

_URL_ATTRIBUTES = {"href", "src", "cite", "poster"}


def reference_absolutize(base_url: str | None, tag: str, attribute: str, value: str) -> str | None:
    if attribute not in _URL_ATTRIBUTES:
        return value
    value = value.strip()
    try:
        if base_url:
            value = urljoin(base_url, value)
        scheme = urlsplit(value).scheme.lower()
    except ValueError:
        return None
    if scheme and scheme not in _SAFE_SCHEMES:
        return None
    return value


def reference_clean_html(
    markup: str | None, base_url: str | None = None, *, limit: int = MAX_HTML_CHARS
) -> str:
    if not markup:
        return ""
    return nh3.clean(
        keep_fallbacks(xml_safe(str(markup)[:limit])),
        tags=_TAGS,
        clean_content_tags=_DROP_WITH_CONTENT,
        attributes=_ATTRIBUTES,
        attribute_filter=partial(reference_absolutize, base_url),
        url_schemes=_SAFE_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    ).strip()


def reference_plain_text(markup: str | None, *, limit: int = MAX_TEXT_CHARS) -> str:
    if not markup:
        return ""
    text = nh3.clean(
        keep_fallbacks(xml_safe(str(markup)[: limit * 4])),
        tags=set(_BLOCKS),
        attributes={},
        clean_content_tags=_DROP_WITH_CONTENT,
        link_rel=None,
    )
    text = xml_safe(html.unescape(_TAG.sub(" ", text)))
    return _WHITESPACE.sub(" ", text).strip()[:limit]


def reference_clean_url(url: str | None, base_url: str | None = None) -> str | None:
    if not url:
        return None
    value = str(url).strip()
    if not value or len(value) > 2000 or sanitize._NOT_XML.search(value):
        return None
    try:
        value = urljoin(base_url, value) if base_url else value
        scheme = urlsplit(value).scheme.lower()
    except ValueError:
        return None
    if scheme not in _SAFE_SCHEMES and scheme != "file":
        return None
    return value


# Text that stresses what an HTML parser may change: whitespace of every kind, controls (C0, C1,
# DEL), non-breaking and other Unicode spaces, noncharacters, surrogates, astral characters, and
# the characters that markup and entities are made of.
TRICKY = st.sampled_from(
    list("<>&;#\"'=/ \t\n\r\x0b\x0c\x00\x01\x1f\x7f\x85\xa0\xad\u2028\u3000\ufeff\ufffd")
    + ["\ud800", "\udfff", "\ufdd0", "\ufffe", "\U0001f600", "&amp;", "&lt;", "&#0;", "&nbsp"]
)
TEXT = st.lists(st.one_of(st.characters(), TRICKY), max_size=40).map("".join)
URL_PARTS = st.sampled_from(
    [
        "http://", "https://", "HTTP://", "javascript:", "data:", "mailto:", "ftp://", "file:///",
        "//", "/", "./", "../", "?", "#", "a", "b.c", "x.example", ":", "@", "[", "]", "::1",
        "%41", ";", " ", "\t", "\n", "é", "\uff0f", "\u2100", "80", "path/", "q=1&r=2",
    ]
)  # fmt: skip
URLS = st.lists(URL_PARTS, max_size=8).map("".join)
BASES = st.one_of(
    st.none(),
    st.just(""),
    URLS,
    st.sampled_from(
        [
            "http://blog.example/2024/06/post/",
            "http://blog.example/2024/06/post/#comment-1",
            "https://blog.example/a/b?p=3#c",
            "file:///srv/feeds/feed.xml",
            "ftp://files.example/dir/",
            "http://[::1",
            "http://[::1]/x",
            "http://a]b/",
            "http://ex\u2100ample/",  # NFKC makes "a/c" of it: urlsplit refuses this host
            "http://bücher.example/",
        ]
    ),
)


def fragment_with(urls: list[str], words: list[str]) -> str:
    parts = []
    for index, url in enumerate(urls):
        word = html.escape(words[index % len(words)] if words else "x")
        attribute = html.escape(url, quote=True)
        parts.append(
            [
                f'<a href="{attribute}" title="{word}">{word}</a>',
                f'<img src="{attribute}" alt="{word}">',
                f'<blockquote cite="{attribute}">{word}</blockquote>',
                f'<video poster="{attribute}" src="{attribute}"></video>',
                f'<p onclick="{attribute}">{word}</p>',
            ][index % 5]
        )
    return " ".join(parts)


@settings(max_examples=500, deadline=None)
@given(TEXT)
@example("John Smith")
@example("  a\u00a0b\r\nc  ")
@example("a > b")
@example("x\x85y")
@example("\ufeffname")
def test_plain_text_is_the_same_as_through_the_sanitizer(text: str) -> None:
    assert plain_text(text) == reference_plain_text(text)
    assert plain_text(text, limit=5) == reference_plain_text(text, limit=5)


@settings(max_examples=300, deadline=None)
@given(TEXT, st.integers(min_value=1, max_value=50))
def test_plain_text_of_markup_is_the_same(text: str, limit: int) -> None:
    markup = f"<b>{text}</b> &amp; <script>{text}</script>{text}"
    assert plain_text(markup, limit=limit) == reference_plain_text(markup, limit=limit)


@settings(max_examples=500, deadline=None)
@given(st.lists(URLS, min_size=1, max_size=6), st.lists(TEXT, max_size=3), BASES)
def test_clean_html_is_the_same_as_a_new_sanitizer_per_call(
    urls: list[str], words: list[str], base: str | None
) -> None:
    markup = fragment_with(urls, words)
    assert clean_html(markup, base) == reference_clean_html(markup, base)
    # The same URLs again, against another base: nothing remembered may leak between calls.
    other = "https://other.example/x/y"
    assert clean_html(markup, other) == reference_clean_html(markup, other)


@settings(max_examples=300, deadline=None)
@given(TEXT, BASES, st.integers(min_value=0, max_value=100))
def test_clean_html_of_any_text_is_the_same(text: str, base: str | None, limit: int) -> None:
    assert clean_html(text, base) == reference_clean_html(text, base)
    assert clean_html(text, base, limit=limit) == reference_clean_html(text, base, limit=limit)


@settings(max_examples=500, deadline=None)
@given(TEXT.map(lambda text: text.replace("<", "").replace("&", "")), BASES)
@example("\ufeff\ufeff a > b\xa0\r\n\r", None)
@example("\ufeff", None)
@example("\xa0 x \xa0", None)
@example("\x00\ufeffx\ud800", None)
def test_clean_html_of_text_without_markup_is_the_same(text: str, base: str | None) -> None:
    """clean_html's shortcut for text with no tag and no entity."""
    assert clean_html(text, base) == reference_clean_html(text, base)


@settings(max_examples=1000, deadline=None)
@given(URLS, BASES)
@example("http://a.example/x?", "http://b.example/")
@example("http://a.example/x#", "https://b.example/")
@example("http://a.example/x;", "http://b.example/")
@example("http:///x", "http://b.example/y/")
@example("http://\t/x", "http://b.example/y/")
@example("http://[::1/x", "http://b.example/")
@example("http://a.example/x", "http://[::1")
def test_clean_url_is_the_same(url: str, base: str | None) -> None:
    assert clean_url(url, base) == reference_clean_url(url, base)
    assert clean_url(url, "https://other.example/") == reference_clean_url(
        url, "https://other.example/"
    )


@settings(max_examples=1000, deadline=None)
@given(st.from_regex(sanitize._PLAIN_ABSOLUTE, fullmatch=True), BASES)
@example("http://a.example/p?q#f", "http://b.example/x;y?z#w")
@example("https://a.example:/p/../q/./r", "https://b.example/")
def test_plain_absolute_urls_are_what_urljoin_gives(url: str, base: str | None) -> None:
    """The shortcut for plain absolute URLs, against urljoin over any base."""
    assert clean_url(url, base) == reference_clean_url(url, base)
    for attribute in ("href", "src"):
        assert sanitize._absolutize(base, "a", attribute, url) == reference_absolutize(
            base, "a", attribute, url
        )


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        URLS,
        st.from_regex(sanitize._PLAIN_ABSOLUTE, fullmatch=True),
        st.tuples(
            st.sampled_from(["tag:", "URN:", "x-y.z+1:", "ftp:", "svn+ssh:", "Http:"]), URLS
        ).map("".join),
        st.from_regex(fastxml._SEGMENT, fullmatch=True),
        st.sampled_from([".", "..", "...", ".x", "x.", "a..b", "%2e%2e", "1600-2823"]),
    ),
    st.one_of(
        BASES,
        st.lists(st.sampled_from(["/", "a", "..", ".", ";p", "?q", "#f", "//"]), max_size=8).map(
            lambda parts: "http://b.example" + "".join(parts)
        ),
    ),
)
@example("http://a.example/x", "http://[::1")
@example("tag:a.example,2024:1", "http://[::1")
@example("tag://[::1/x", "http://b.example/")
@example("tag:///x", "http://b.example/")
@example("1600-2823", "http://b.example/a/../b/./c//d/e;p?q#f")
@example("x", "http://b.example/..")
@example("x", "http://[::1")
@example("http:///a.example/x", "http://b.example/")
@example("https://a.example/x?", "https://b.example/")
def test_fast_paths_join_urls_as_feedparser_does(url: str, base: str | None) -> None:
    """The fast paths' copy of feedparser's ``_urljoin``, with its plain absolute shortcut."""
    assert fastxml._urljoin(base or "", url) == feedparser.urls._urljoin(base or "", url)


# Long text (the byte-level checks start at 256 characters) with tricky characters anywhere,
# and the neighbours of the bytes those checks look for (Hangul U+D7A3 starts with ED like a
# surrogate, U+FFE0 with EF BF like U+FFFE; U+00C2 is C3 82, U+0100 C4 80).
LONG_TEXT = st.tuples(
    st.lists(
        st.one_of(
            TRICKY,
            st.sampled_from(["\ud7a3", "\uffe0", "\uffff", "\x80", "\x9f", "\xc2", "\u0100"]),
        ),
        max_size=6,
    ),
    st.integers(min_value=0, max_value=600),
    st.integers(min_value=0, max_value=600),
).map(lambda t: "".join("a" * t[1] + part + "é" * (t[2] % 7) for part in t[0]) + "b" * t[2])


@settings(max_examples=500, deadline=None)
@given(st.one_of(LONG_TEXT, TEXT))
@example("x" * 300 + "\x0b")
@example("x" * 300 + "\ud800")
@example("x" * 300 + "\ufffe")
@example("x" * 300 + "\x85")
def test_long_text_checks_are_the_patterns(text: str) -> None:
    """xml_safe's and the fast paths' byte-level checks find what their patterns find."""
    assert xml_safe(text) == sanitize._NOT_XML.sub("", text)
    assert fastxml._has_c1(text) == (fastxml.C1.search(text) is not None)


def reference_keep_fallbacks(markup: str) -> str:
    """keep_fallbacks before its one-scan shortcut (issue 13)."""
    if "<" not in markup:
        return markup
    lowered = markup.lower()
    if "<noscript" in lowered:
        markup = sanitize._NOSCRIPT.sub(" ", markup)
    if "<iframe" in lowered or "<embed" in lowered or "<object" in lowered:
        markup = sanitize._EMBED.sub(sanitize._embed_link, markup)
    return markup


EMBED_PARTS = st.sampled_from(
    [
        "<", ">", "</", "noscript", "NoScript", "iframe", "IFRAME", "embed", "Embed", "object",
        "objec\u212a", "\u0130frame", "\u017fcript", " src=", 'data="x"', "'y'", "</iframe>",
        "</object>", "a", " ",
    ]
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(EMBED_PARTS, TRICKY), max_size=12).map("".join))
@example("<IFRAME src=x></iframe>")
@example("<Noscript><p>fallback</p></noscript>")
def test_keep_fallbacks_is_the_same(markup: str) -> None:
    assert keep_fallbacks(markup) == reference_keep_fallbacks(markup)


def test_corpus_fragments_are_the_same() -> None:
    """Real-looking comments and entries (links, images, lists) against per-item bases."""
    markup = (
        '<p>See <a href="http://example.org/ref/1.html">this</a> and <a href="/local">that</a>,'
        ' <img src="pic.png" alt="a picture" width="10" onerror="x()">.</p><script>bad()</script>'
        '<ol><li><a href="javascript:alert(1)">no</a></li><li><code>x &lt; y</code></li></ol>'
    )
    for number in range(50):
        base = f"http://blog.example/2024/06/post-{number % 7}/#comment-{number}"
        assert clean_html(markup, base) == reference_clean_html(markup, base)
    assert clean_html(markup) == reference_clean_html(markup)


def test_threads_each_clean_against_their_own_base() -> None:
    """The one sanitizer's attribute filter reads a thread-local base URL."""
    markup = '<a href="x">x</a>' * 50
    failures: list[str] = []

    def work(number: int) -> None:
        base = f"http://host{number}.example/dir/"
        expected = reference_clean_html(markup, base)
        for _ in range(200):
            if clean_html(markup, base) != expected:
                failures.append(base)
                return

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_a_failing_call_leaves_no_base_behind() -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise TypeError("no text")

    with pytest.raises(TypeError):
        clean_html(Unprintable(), "http://a.example/")  # type: ignore[arg-type]
    assert clean_html('<a href="x">x</a>') == '<a href="x" rel="noopener noreferrer nofollow">x</a>'
