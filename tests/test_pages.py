"""Tests for reading comment threads from HTML pages (aggregator.comments.pages).

Each ``tests/data/pages/NAME.html`` describes itself in a header comment; ``NAME.json`` beside it
holds the selectors, page URL and time zone to read it with and the comments expected, and is
discovered automatically. Long threads are generated here, in the markup of the real samples.
"""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.comments.pages import extract_comments
from aggregator.comments.selectors import PRESETS, PageSelectors, selectors_from_config
from aggregator.models import CommentData

DATA = Path(__file__).parent / "data" / "pages"
EXPECTATIONS = sorted(DATA.glob("*.json"))
POST_URL = "https://example.typepad.com/blog/2019/03/a-long-thread.html"
NEW_YORK = ZoneInfo("America/New_York")
# Comment n of a generated thread is posted 67 minutes after comment n-1, starting at 18:00 EST on
# the eve of the 2019 switch to daylight time, so the thread crosses it and every hour of the day.
THREAD_START = datetime(2019, 3, 9, 23, 0, tzinfo=UTC)


def typepad_comment(
    number: int, author: str, date_text: str, body: str, author_url: str | None = None
) -> str:
    """One comment in classic Typepad markup (see the reference sample's header)."""
    ident = f"6a00d8341c5f1f53ef0200{number:010d}"
    signed = f'<a rel="nofollow" href="{author_url}">{author}</a>' if author_url else author
    return f"""<a id="c{ident}"></a>
<div class="comment font-entrybody" id="comment-{ident}">
	<div class="comment-content">
		{body}
	</div>
	<p class="comment-footer font-entryfooter">
		Posted by: {signed} |
		<a rel="nofollow" href="{POST_URL}#comment-{ident}">{date_text}</a> | {number}
	</p>
</div>
"""


def typepad_page(comments: list[str]) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>A Long Thread</title>'
        '</head><body><div class="entry"><h3 class="entry-header">A Long Thread</h3></div>'
        '<div class="comments" id="comments"><div class="comments-content">'
        '<h3 class="comments-header">Comments</h3>\n'
        + "".join(comments)
        + "</div></div></body></html>"
    )


def typepad_date(moment: datetime) -> str:
    """How Typepad prints a moment in a New York blog: "Mar 9, 2019 6:00:00 PM"."""
    local = moment.astimezone(NEW_YORK)
    return f"{local:%b} {local.day}, {local.year} {local.hour % 12 or 12}:{local:%M:%S %p}"


def thread_comments(count: int) -> tuple[list[str], list[datetime]]:
    """``count`` comments and the UTC moment each was posted at."""
    moments = [THREAD_START + timedelta(minutes=67 * i) for i in range(count)]
    comments = [
        typepad_comment(
            n,
            f"Reader {n}" if n % 5 else f"Reader &amp; Friend {n}",
            typepad_date(moment),
            f"<p>Invented comment number {n}.</p>",
            author_url=f"https://reader{n}.example.net/" if n % 3 == 0 else None,
        )
        for n, moment in enumerate(moments, 1)
    ]
    return comments, moments


def typepad_thread(count: int) -> tuple[str, list[datetime]]:
    """A page of ``count`` comments and the UTC moment each was posted at."""
    comments, moments = thread_comments(count)
    return typepad_page(comments), moments


def read(name: str, selectors: str = "typepad", timezone: str | None = None) -> list[CommentData]:
    expected = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
    return extract_comments(
        (DATA / f"{name}.html").read_bytes(),
        expected["page_url"],
        selectors_from_config(expected["selectors"]),
        expected["timezone"],
    )


def summary(comment: CommentData) -> dict[str, object]:
    published = comment.published_at.isoformat() if comment.published_at else None
    return {
        "key": comment.key,
        "author": comment.author,
        "author_url": comment.author_url,
        "published_at": published,
        "link": comment.link,
        "number": comment.number,
        "parent_key": comment.parent_key,
    }


@pytest.mark.parametrize("path", EXPECTATIONS, ids=lambda path: path.stem)
def test_page_fixture(path: Path) -> None:
    expected = json.loads(path.read_text(encoding="utf-8"))
    comments = read(path.stem)
    got = [summary(comment) for comment in comments]
    want = expected["comments"]
    assert len(got) == len(want)
    for got_one, want_one in zip(got, want, strict=True):
        if "key_pattern" in want_one:
            assert re.fullmatch(want_one.pop("key_pattern"), str(got_one.pop("key")))
        assert got_one == want_one
    for comment in comments:
        assert re.fullmatch(r"[0-9a-f]{64}", comment.content_hash)
        assert comment.content.strip()


def test_fixtures_are_discovered() -> None:
    assert len(EXPECTATIONS) >= 7
    assert all(path.with_suffix(".html").exists() for path in EXPECTATIONS)


def test_long_typepad_thread_is_read_once_in_order_across_the_dst_switch() -> None:
    page, moments = typepad_thread(150)
    comments = extract_comments(page, POST_URL, PRESETS["typepad"], "America/New_York")

    assert [c.number for c in comments] == list(range(1, 151))
    assert [c.published_at for c in comments] == moments
    assert len({c.key for c in comments}) == 150
    assert [c.author for c in comments[:5]] == [
        "Reader 1",
        "Reader 2",
        "Reader 3",
        "Reader 4",
        "Reader & Friend 5",
    ]
    third = comments[2]
    assert third.author_url == "https://reader3.example.net/"
    assert third.key == "comment-6a00d8341c5f1f53ef02000000000003"
    assert third.link == f"{POST_URL}#comment-6a00d8341c5f1f53ef02000000000003"
    assert comments[3].author_url is None
    assert all(c.parent_key is None for c in comments)
    assert comments[149].content == "<p>Invented comment number 150.</p>"


@pytest.mark.parametrize(
    ("number", "printed", "utc"),
    [
        (1, "Mar 9, 2019 6:00:00 PM", "2019-03-09T23:00:00+00:00"),  # EST, UTC-5
        (8, "Mar 10, 2019 1:49:00 AM", "2019-03-10T06:49:00+00:00"),  # last hour of EST
        (10, "Mar 10, 2019 5:03:00 AM", "2019-03-10T09:03:00+00:00"),  # EDT, UTC-4
        (7, "Mar 10, 2019 12:42:00 AM", "2019-03-10T05:42:00+00:00"),  # 12:xx AM
        (17, "Mar 10, 2019 12:52:00 PM", "2019-03-10T16:52:00+00:00"),  # 12:xx PM
    ],
)
def test_long_thread_dates_are_new_york_local_time(number: int, printed: str, utc: str) -> None:
    page, _ = typepad_thread(20)
    assert f">{printed}</a> | {number}\n" in page
    comments = extract_comments(page, POST_URL, PRESETS["typepad"], "America/New_York")
    assert comments[number - 1].published_at == datetime.fromisoformat(utc)


def test_thousands_of_comments_are_all_read() -> None:
    page, moments = typepad_thread(3000)
    comments = extract_comments(page.encode(), POST_URL, PRESETS["typepad"], "America/New_York")
    assert len(comments) == 3000
    assert comments[-1].number == 3000
    assert comments[-1].published_at == moments[-1]


def test_sanitizing_removes_active_content_and_makes_links_absolute() -> None:
    mallory = read("typepad-odd-cases")[4]
    assert mallory.author == "Mallory"
    for active in ("<script", "alert", "onclick", "onerror", "onmouseover", "javascript:"):
        assert active not in mallory.content.lower()
    for dropped in ("<iframe", "<style", "display: none"):
        assert dropped not in mallory.content
    # The removed iframe leaves a plain link to its source (issue 13).
    assert '<a href="https://evil.example/" rel="noopener noreferrer nofollow">' in mallory.content
    assert "Active content" in mallory.content
    assert "the end." in mallory.content
    assert 'href="https://example.typepad.com/blog/about.html"' in mallory.content
    assert 'src="https://example.typepad.com/blog/2019/03/smile.png"' in mallory.content


def test_javascript_author_link_is_not_kept() -> None:
    mallory = read("typepad-odd-cases")[4]
    assert mallory.author_url is None


def test_entities_are_text_in_the_author_and_stay_escaped_in_the_content() -> None:
    rene = read("typepad-odd-cases")[2]
    assert rene.author == "René & Co <3"
    assert rene.content == "<p>Half past midnight; Fish &amp; Chips &lt;3 été.</p>"


def test_relative_links_in_a_wordpress_body_resolve_against_the_page() -> None:
    theta = read("wordpress-threaded")[-1]
    assert 'href="https://blog.example.org/2021/10/other-post/"' in theta.content


def test_a_comment_block_without_a_body_is_skipped() -> None:
    keys = [c.key for c in read("typepad-odd-cases")]
    assert "comment-6a00d8341c5f1f53ef0200bbbbbbbbbb06" not in keys
    assert len(keys) == 7


def test_editing_a_comment_at_the_source_changes_only_its_hash() -> None:
    page = (DATA / "wordpress-threaded.html").read_text(encoding="utf-8")
    edited = page.replace("A reply to Gamma.", "A reply to Gamma, edited.")
    assert edited != page
    url = "https://blog.example.org/2021/10/threads/"
    before = extract_comments(page, url, PRESETS["wordpress"], "Europe/Paris")
    after = extract_comments(edited, url, PRESETS["wordpress"], "Europe/Paris")
    assert [c.key for c in before] == [c.key for c in after]
    changed = [
        b.key for b, a in zip(before, after, strict=True) if b.content_hash != a.content_hash
    ]
    assert changed == ["comment-602"]


def test_a_deleted_comment_does_not_change_the_others_keys_or_hashes() -> None:
    comments, _ = thread_comments(5)
    before = extract_comments(typepad_page(comments), POST_URL, PRESETS["typepad"])
    after = extract_comments(typepad_page(comments[1:]), POST_URL, PRESETS["typepad"])
    assert len(after) == 4
    assert [(c.key, c.content_hash) for c in before[1:]] == [(c.key, c.content_hash) for c in after]


def test_wordpress_hash_ignores_the_position_number() -> None:
    page = (DATA / "wordpress-threaded.html").read_text(encoding="utf-8")
    start = page.index('<li id="comment-604"')
    end = page.index("</li>", start) + len("</li>")
    url = "https://blog.example.org/2021/10/threads/"
    before = {c.key: c for c in extract_comments(page, url, PRESETS["wordpress"])}
    after = {
        c.key: c for c in extract_comments(page[:start] + page[end:], url, PRESETS["wordpress"])
    }
    assert "comment-604" not in after
    assert (before["comment-605"].number, after["comment-605"].number) == (5, 4)
    assert before["comment-605"].content_hash == after["comment-605"].content_hash


def test_str_and_bytes_give_the_same_comments() -> None:
    raw = (DATA / "wordpress-threaded.html").read_bytes()
    url = "https://blog.example.org/2021/10/threads/"
    from_bytes = extract_comments(raw, url, PRESETS["wordpress"], "Europe/Paris")
    from_text = extract_comments(raw.decode("utf-8"), url, PRESETS["wordpress"], "Europe/Paris")
    assert from_bytes == from_text


def test_without_an_absolute_page_url_keys_still_come_from_ids() -> None:
    raw = (DATA / "wordpress-threaded.html").read_bytes()
    comments = extract_comments(raw, "", PRESETS["wordpress"])
    assert [c.key for c in comments][-1] == "comment-608"
    assert comments[-1].link is None  # "#comment-608" cannot be made absolute
    assert comments[0].link == "https://blog.example.org/2021/10/threads/#comment-601"


@pytest.mark.parametrize(
    ("printed", "timezone", "utc"),
    [
        ("Mar 3, 2019 11:42:10 AM", "America/New_York", "2019-03-03T16:42:10+00:00"),
        ("Jul 3, 2019 11:42:10 AM", "America/New_York", "2019-07-03T15:42:10+00:00"),
        ("March 03, 2019 at 11:05 AM", "America/New_York", "2019-03-03T16:05:00+00:00"),
        ("Mar 3, 2019 11:42:10 AM", None, "2019-03-03T11:42:10+00:00"),
        ("Mar 3, 2019 12:00:00 AM", None, "2019-03-03T00:00:00+00:00"),
        ("Mar 3, 2019 12:59:59 PM", None, "2019-03-03T12:59:59+00:00"),
        ("Mar 3, 2019 12:05 am", None, "2019-03-03T00:05:00+00:00"),
        ("Sept 3, 2019 1:05 p.m.", None, "2019-09-03T13:05:00+00:00"),
        ("Mar 3, 2019", "America/New_York", "2019-03-03T05:00:00+00:00"),
        ("3 March 2019 14:05", "America/New_York", "2019-03-03T19:05:00+00:00"),
        ("2019-03-03T11:42:10+01:00", "America/New_York", "2019-03-03T10:42:10+00:00"),
        ("Mar 3, 2019 11:42:10 AM GMT", "America/New_York", "2019-03-03T11:42:10+00:00"),
        # Ambiguous (the repeated hour in November): the first, daylight-time, reading.
        ("Nov 3, 2019 1:30:00 AM", "America/New_York", "2019-11-03T05:30:00+00:00"),
        # Nonexistent (the skipped hour in March): read with the offset before the gap.
        ("Mar 10, 2019 2:30:00 AM", "America/New_York", "2019-03-10T07:30:00+00:00"),
    ],
)
def test_dates_are_read_in_the_blog_zone(printed: str, timezone: str | None, utc: str) -> None:
    page = typepad_page([typepad_comment(1, "Alpha", printed, "<p>x</p>")])
    [comment] = extract_comments(page, POST_URL, PRESETS["typepad"], timezone)
    assert comment.published_at == datetime.fromisoformat(utc)
    assert comment.published_at.tzinfo is UTC


@pytest.mark.parametrize(
    "printed",
    [
        "11:05 AM",  # no date: must not become today
        "Mar 2019",  # no day
        "yesterday",
        "Feb 30, 2019 1:00 PM",
        "Mar 3, 2019 13:05 PM",
        "Dec 31, 9999 11:00 PM",  # past datetime.max once in UTC
        "",
    ],
)
def test_unreadable_dates_become_none(printed: str) -> None:
    page = typepad_page([typepad_comment(1, "Alpha", printed, "<p>x</p>")])
    [comment] = extract_comments(page, POST_URL, PRESETS["typepad"], "America/New_York")
    assert comment.published_at is None
    assert comment.author == "Alpha"
    assert comment.number == 1


def test_selectors_from_config_accepts_a_mapping() -> None:
    selectors = selectors_from_config(
        {"container": "article.note", "author": ".who", "body": ".txt"}
    )
    assert selectors == PageSelectors(container="article.note", author=".who", body=".txt")


def test_selectors_from_config_mapping_can_override_a_preset() -> None:
    selectors = selectors_from_config({"preset": "wordpress", "body": ".comment-text"})
    assert selectors.body == ".comment-text"
    assert selectors.container == PRESETS["wordpress"].container
    assert selectors.replies == PRESETS["wordpress"].replies


def test_selectors_from_config_reads_preset_names() -> None:
    assert selectors_from_config("typepad") is PRESETS["typepad"]
    assert selectors_from_config(" WordPress ") is PRESETS["wordpress"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "livejournal",
            r"unknown page selector preset 'livejournal'; expected auto or one of: blogger, drupal, "
            r"typepad, wordpress, wpdiscuz",
        ),
        ({"preset": "livejournal"}, r"unknown page selector preset 'livejournal'"),
        ({"container": "div.c", "autor": ".who"}, r"unknown page selector key\(s\) autor"),
        ({"author": ".who"}, r"need a 'container'"),
        ({"container": "div["}, r"'container' is not valid CSS"),
        ({"container": "div", "date": "  "}, r"'date' must be a non-empty CSS selector"),
        ({"container": "div", "date_attribute": "date time"}, r"attribute name"),
        ({"container": 5}, r"'container' must be a non-empty CSS selector"),
        ({"container": "div", "date_attribute": 3}, r"attribute name"),
        (42, r"a preset name or a mapping"),
    ],
)
def test_bad_selector_config_raises_value_error(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        selectors_from_config(value)  # type: ignore[arg-type]


def test_unknown_timezone_raises_value_error() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        extract_comments(typepad_page([]), POST_URL, PRESETS["typepad"], "Mars/Olympus")


@pytest.mark.parametrize("preset", sorted(PRESETS))
@settings(max_examples=60, deadline=None)
@given(page=st.text(max_size=400))
def test_any_text_is_read_without_raising(preset: str, page: str) -> None:
    comments = extract_comments(page, POST_URL, PRESETS[preset], "America/New_York")
    assert all(isinstance(c, CommentData) for c in comments)


@settings(max_examples=100, deadline=None)
@given(footer=st.text(max_size=80), body=st.text(max_size=80))
def test_any_footer_or_body_text_is_read_without_raising(footer: str, body: str) -> None:
    comment = typepad_comment(1, html.escape(footer), html.escape(footer), body)
    comments = extract_comments(typepad_page([comment]), POST_URL, PRESETS["typepad"], "Asia/Tokyo")
    assert len(comments) <= 1
