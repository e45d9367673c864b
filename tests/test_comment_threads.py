"""Issue 14, items 1 and 3: in-reply-to parents, other pages of comments, and the ``generic``
fallback detector, on small pages and on the shared corpus's pages (read in place)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from corpora import REALWORLD, SHARED, corpus

from aggregator.comments.detect import detect_comments
from aggregator.comments.paging import other_comment_pages, page_number, thread_url
from aggregator.parse.links import _parse_html

ROOT = Path(__file__).resolve().parent.parent
CORPUS = SHARED / REALWORLD
EXPECTED = json.loads((ROOT / "tests" / "data" / "corpus_pages_expected.json").read_text())
NOW = datetime(2020, 1, 1, tzinfo=UTC)
URL = "https://blog.example/2019/03/post/"


def _corpus_or_skip() -> None:
    corpus(REALWORLD)  # skips when absent, fails under CI=true


def _flat_wordpress(reply_markup: str) -> bytes:
    return f"""<html lang="en"><body><ol class="commentlist">
<li class="comment" id="comment-1"><div class="comment-author vcard"><cite class="fn">Ann</cite></div>
<div class="comment-meta"><a href="{URL}#comment-1">March 3, 2019 at 10:00 am</a></div>
<p>First.</p><div class="reply"><a class="comment-reply-link" href="?replytocom=1#respond">Reply</a></div></li>
<li class="comment" id="comment-2"><div class="comment-author vcard"><cite class="fn">Bob</cite></div>
<div class="comment-meta"><a href="{URL}#comment-2">March 3, 2019 at 11:00 am</a></div>
<p>Unrelated.</p><div class="reply"><a class="comment-reply-link" href="?replytocom=2#respond">Reply</a></div></li>
<li class="comment" id="comment-3"><div class="comment-author vcard"><cite class="fn">Cy</cite></div>
<div class="comment-meta"><a href="{URL}#comment-3">March 3, 2019 at 12:00 pm</a></div>
<p>{reply_markup} I agree.</p><div class="reply"><a class="comment-reply-link" href="?replytocom=3#respond">Reply</a></div></li>
</ol></body></html>""".encode()


@pytest.mark.parametrize(
    "markup",
    [
        '<a href="#comment-1">@Ann</a>',
        'In reply to <a href="#comment-1">Ann</a>:',
        'Antwort auf <a href="#comment-1">Ann</a>',
        '<a class="u-in-reply-to" href="#comment-1">this</a>',
        '<a rel="in-reply-to" href="#comment-1">this</a>',
        '<a href="?replytocom=1">Ann</a>',
    ],
)
def test_in_reply_to_links_give_the_parent_where_nesting_gives_none(markup: str) -> None:
    found = detect_comments(_flat_wordpress(markup), URL, now=NOW)
    assert [(c.author, c.parent_key) for c in found.comments] == [
        ("Ann", None),
        ("Bob", None),
        ("Cy", "comment-1"),
    ]


@pytest.mark.parametrize(
    "markup",
    [
        'see <a href="#comment-1">this</a>',  # a plain link to a comment is no reply
        '<a href="#comment-9">@Zed</a>',  # a comment not on the page
        "",
    ],
)
def test_links_that_name_no_earlier_comment_give_no_parent(markup: str) -> None:
    found = detect_comments(_flat_wordpress(markup), URL, now=NOW)
    assert [c.parent_key for c in found.comments] == [None, None, None]


def test_mf2_in_reply_to_names_the_parent() -> None:
    page = f"""<html><body><article class="h-entry"><p class="e-content">Post.</p>
<div class="p-comment h-cite"><a class="u-url" href="{URL}#c1">#</a>
<span class="p-author h-card">Ann</span><time class="dt-published" datetime="2019-03-03T10:00:00Z"></time>
<p class="p-content">First.</p></div>
<div class="p-comment h-cite"><a class="u-url" href="{URL}#c2">#</a>
<a class="u-in-reply-to" href="{URL}#c1">re</a>
<span class="p-author h-card">Bob</span><time class="dt-published" datetime="2019-03-03T11:00:00Z"></time>
<p class="p-content">Second.</p></div></article></body></html>""".encode()
    found = detect_comments(page, URL, now=NOW)
    assert found.detector == "mf2"
    assert [(c.key, c.parent_key) for c in found.comments] == [("c1", None), ("c2", "c1")]


def test_other_comment_pages_of_the_same_post_are_found() -> None:
    page = f"""<html><body><ol class="commentlist"></ol>
<nav class="comment-navigation"><div class="nav-links">
<a href="{URL}comment-page-1/#comments">Older</a>
<a rel="next" href="{URL}?page=3">Newer</a></div></nav>
<nav class="nav-links"><a rel="prev" href="https://blog.example/2019/02/other/">Previous post</a></nav>
<a href="https://blog.example/2019/02/other/comment-page-2/">another post's page</a>
<a href="{URL}?cpage=4#comments">page 4</a>
<a rel="next" href="{URL}?page=9">next, outside the navigation</a>
</body></html>""".encode()
    assert other_comment_pages(_parse_html(page), URL + "comment-page-2/") == (
        f"{URL}comment-page-1/",
        f"{URL}?page=3",
        f"{URL}?cpage=4",
    )
    assert page_number(f"{URL}comment-page-12/") == 12 and page_number(f"{URL}?cpage=3") == 3
    assert page_number(URL) is None
    assert thread_url(f"{URL}comment-page-2/#comments") == URL
    assert thread_url("https://b.example/?p=5&cpage=2") == "https://b.example/?p=5"


CUSTOM_THEME = """<html lang="en"><body><article><h1>Post</h1><p>Text.</p></article>
<section class="talk">{blocks}</section>
<form><textarea></textarea><button>Send</button></form></body></html>"""
BLOCK = """<div class="note"><span class="who">{name}</span>
<a class="when" href="#note-{n}">March {n}, 2019</a>
<div class="said"><p>Message {n} from {name}.</p></div></div>"""


def test_generic_reads_an_unknown_theme_with_three_or_more_alike_blocks() -> None:
    names = ["Ann", "Bob", "Cy", "Dee"]
    blocks = "".join(BLOCK.format(name=name, n=n) for n, name in enumerate(names, 1))
    found = detect_comments(CUSTOM_THEME.format(blocks=blocks).encode(), URL, now=NOW)
    assert found.detector == "generic"
    assert [
        (c.author, c.published_at and c.published_at.date().isoformat()) for c in found.comments
    ] == [(name, f"2019-03-0{n}") for n, name in enumerate(names, 1)]
    assert found.comments[0].key == "note-1" and found.comments[0].link == f"{URL}#note-1"
    assert "Message 1 from Ann." in found.comments[0].content
    assert "March 1" not in found.comments[0].content  # the date line is not the body


def test_generic_stays_silent_when_it_is_not_sure() -> None:
    two = "".join(BLOCK.format(name=name, n=n) for n, name in enumerate(["Ann", "Bob"], 1))
    assert detect_comments(CUSTOM_THEME.format(blocks=two).encode(), URL).detector is None
    # Three blocks with the same permalink are not three comments.
    same = "".join(BLOCK.format(name=name, n=1) for name in ["Ann", "Bob", "Cy"])
    assert detect_comments(CUSTOM_THEME.format(blocks=same).encode(), URL).detector is None
    # Blocks without an author-like element are not comments.
    anonymous = "".join(
        BLOCK.format(name=name, n=n).replace('class="who"', "") for n, name in enumerate("ABC", 1)
    )
    assert detect_comments(CUSTOM_THEME.format(blocks=anonymous).encode(), URL).detector is None


ERROR_PAGES = [
    # A blog's 404 page listing recent posts, with author, date and a "#comments" link each.
    """<html><body><h1>Not found</h1><ul class="recent">{}</ul></body></html>""".format(
        "".join(
            f'<li class="post"><span class="author">Ann</span> <span>March {n}, 2019</span> '
            f'<a href="https://blog.example/2019/03/p{n}/#comments">{n} comments</a></li>'
            for n in range(1, 6)
        )
    ),
    # A "latest comments" sidebar linking to comments of other posts.
    """<html><body><aside><ul class="recentcomments">{}</ul></aside></body></html>""".format(
        "".join(
            f'<li class="recentcomment"><span class="comment-author-link">Bob</span> on '
            f'<a href="https://blog.example/2019/0{n}/other/#comment-{n}">Other</a> '
            f"<span>March {n}, 2019</span></li>"
            for n in range(1, 6)
        )
    ),
    # A server's error page with a table of dated log lines.
    """<html><body><h1>502 Bad Gateway</h1><table>{}</table></body></html>""".format(
        "".join(
            f'<tr class="row"><td class="user">nginx</td><td>2019-03-0{n}</td>'
            f'<td><a href="#line-{n}">line {n}</a></td></tr>'
            for n in range(1, 6)
        )
    ),
]


@pytest.mark.parametrize("page", ERROR_PAGES)
def test_generic_finds_nothing_on_pages_without_comments(page: str) -> None:
    found = detect_comments(page.encode(), URL, now=NOW)
    assert found.comments == ()


def test_generic_does_not_fire_on_corpus_pages_without_comments() -> None:
    _corpus_or_skip()
    empty = {n: w for n, w in EXPECTED["pages"].items() if w["count"] == 0}
    assert len(empty) >= 4
    for want in empty.values():
        html = (CORPUS / "files" / want["file"]).read_bytes()
        found = detect_comments(html, want["url"], now=NOW)
        assert found.comments == (), want["file"]
        assert found.detector != "generic", want["file"]


def test_generic_leaves_pages_a_platform_detector_handles_unchanged() -> None:
    """On every corpus page with comments a platform or structured-data detector matches, so
    the fallback never runs there; and the counts stay those a reader sees."""
    _corpus_or_skip()
    for want in EXPECTED["pages"].values():
        if not want["count"]:
            continue
        html = (CORPUS / "files" / want["file"]).read_bytes()
        found = detect_comments(html, want["url"], now=NOW)
        assert found.detector not in (None, "generic"), want["file"]
        assert len(found.comments) == want["count"], want["file"]
