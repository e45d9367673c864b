"""comments_page: auto (issue 14): detectors on the shared corpus's pages and on small pages of
our own, dates as people write them, script-loaded systems named, extract-comments."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from corpora import REALWORLD, SHARED, corpus
from pytest_httpserver import HTTPServer

from aggregator.comments.dates import parse_comment_date
from aggregator.comments.detect import detect_comments, read_comments
from aggregator.config.loading import load_config

ROOT = Path(__file__).resolve().parent.parent
CORPUS = SHARED / REALWORLD
EXPECTED = json.loads((ROOT / "tests" / "data" / "corpus_pages_expected.json").read_text())
NOW = datetime(2020, 1, 1, tzinfo=UTC)
URL = "https://blog.example/2019/03/post/"


def _corpus_or_skip() -> None:
    corpus(REALWORLD)  # skips when absent, fails under CI=true


def _seen(comments) -> set[tuple[str | None, str | None]]:
    return {(c.author, c.published_at and c.published_at.date().isoformat()) for c in comments}


@pytest.mark.parametrize("name", sorted(EXPECTED["pages"]))
def test_corpus_page_gives_every_visible_comment(name: str) -> None:
    _corpus_or_skip()
    want = EXPECTED["pages"][name]
    found = detect_comments((CORPUS / "files" / want["file"]).read_bytes(), want["url"], now=NOW)

    assert len(found.comments) == want["count"], want["how"]
    for author, day in want["samples"]:
        assert (author, day) in _seen(found.comments)
    dated = want.get("with_author_and_date", want["count"])
    assert sum(1 for c in found.comments if c.author and c.published_at) == dated


@pytest.mark.parametrize(
    ("name", "detector"),
    [
        ("moritz-meyer.net.vreni", "wordpress"),
        ("readability.wordpress", "epoch"),
        ("luxuryhaven.co.hyatt", "blogger"),
        ("readability.blogger", "blogger"),
        ("readability.aclu", "drupal"),
        ("postlight.blisterreview", "schema.org"),
        ("postlight.androidcentral", "xenforo"),
        ("gregoryszorc.com.python3", None),
    ],
)
def test_corpus_page_names_its_detector(name: str, detector: str | None) -> None:
    _corpus_or_skip()
    want = EXPECTED["pages"][name]
    found = detect_comments((CORPUS / "files" / want["file"]).read_bytes(), want["url"], now=NOW)
    assert found.detector == detector


def test_corpus_replies_know_their_parent() -> None:
    _corpus_or_skip()
    want = EXPECTED["pages"]["moritz-meyer.net.vreni"]
    found = detect_comments((CORPUS / "files" / want["file"]).read_bytes(), want["url"], now=NOW)
    by_key = {c.key: c for c in found.comments}
    # "MoritzMeyer" answers Ben's comment-114 inside its ul.children.
    assert by_key["comment-115"].parent_key == "comment-114"
    assert by_key["comment-114"].parent_key is None


CLASSIC_WORDPRESS = b"""<html lang="en"><body>
<div class="entry-content"><p>The post itself, 12 March 2019.</p></div>
<ol class="commentlist">
 <li class="comment even thread-even depth-1" id="comment-11">
  <div id="div-comment-11" class="comment-body">
   <div class="comment-author vcard"><img class="avatar" src="a.png">
     <cite class="fn"><a href="https://ann.example/" class="url">Ann</a></cite>
     <span class="says">says:</span></div>
   <div class="comment-meta commentmetadata"><a href="#comment-11">March 3, 2019 at 11:05 am</a></div>
   <p>First!</p>
   <div class="reply"><a class="comment-reply-link" href="?replytocom=11#respond">Reply</a></div>
  </div>
  <ul class="children">
   <li class="comment odd alt depth-2" id="comment-12">
    <div id="div-comment-12" class="comment-body">
     <div class="comment-author vcard"><cite class="fn">Bob</cite> <span class="says">says:</span></div>
     <div class="comment-meta commentmetadata"><a href="#comment-12">March 4, 2019 at 9:00 pm</a></div>
     <p>Second.</p>
    </div>
   </li>
  </ul>
 </li>
 <li class="pingback even thread-odd depth-1" id="comment-13">
  <div class="comment-body">Pingback: <a href="https://elsewhere.example/">Elsewhere</a></div>
 </li>
</ol>
<aside><ul><li class="recentcomments">Carl on <a href="/other/#comment-99">Other</a></li></ul></aside>
</body></html>"""


def test_classic_wordpress_markup() -> None:
    found = detect_comments(CLASSIC_WORDPRESS, URL, "Europe/Berlin", now=NOW)

    assert found.detector == "wordpress"
    first, reply = found.comments
    assert (first.author, first.author_url, first.key) == (
        "Ann",
        "https://ann.example/",
        "comment-11",
    )
    assert first.published_at == datetime(2019, 3, 3, 10, 5, tzinfo=UTC)  # 11:05 in Berlin
    assert (
        "First!" in first.content and "says" not in first.content and "Reply" not in first.content
    )
    assert "Second." not in first.content  # the reply is its own comment
    assert (reply.author, reply.parent_key) == ("Bob", "comment-11")
    assert reply.published_at == datetime(2019, 3, 4, 20, 0, tzinfo=UTC)


WPDISCUZ = """<html lang="fr"><body><div id="wpdcom">
 <div id="wpd-comm-5_0" class="wpd-comment">
  <div class="wpd-comment-author">Élodie</div>
  <div class="wpd-comment-date" title="12 mars 2019 à 10:30">il y a 9 mois</div>
  <div class="wpd-comment-text"><p>Très bien.</p></div>
  <div class="wpd-reply">
   <div id="wpd-comm-6_5" class="wpd-comment">
    <div class="wpd-comment-author">Luc</div>
    <div class="wpd-comment-date">il y a 3 jours</div>
    <div class="wpd-comment-text"><p>Merci.</p></div>
   </div>
  </div>
 </div></div></body></html>""".encode()


def test_wpdiscuz_with_french_and_relative_dates() -> None:
    found = detect_comments(WPDISCUZ, URL, now=NOW)

    assert found.detector == "wpdiscuz"
    first, reply = found.comments
    assert (first.author, first.published_at) == (
        "Élodie",
        datetime(2019, 3, 12, 10, 30, tzinfo=UTC),
    )
    assert reply.author == "Luc" and reply.parent_key == first.key
    assert reply.published_at is not None and reply.published_at.date().isoformat() == "2019-12-29"


BLOGGER = b"""<html><body><div class="comments" id="comments"><div class="comment-thread">
<ol><li class="comment" id="c101"><div class="comment-block"><div class="comment-header">
 <cite class="user"><a href="https://www.blogger.com/profile/1">Iwona</a></cite>
 <span class="datetime secondary-text"><a href="https://b.example/p.html?showComment=1559192764955#c101">30 maja 2019 13:06</a></span>
 </div><p class="comment-content">Interesting place :)</p>
 <span class="comment-actions"><a class="comment-reply">Reply</a></span></div>
 <div class="comment-replies"><div class="comment-thread inline-thread"><ol>
  <li class="comment" id="c102"><div class="comment-block"><div class="comment-header">
   <cite class="user">Owner</cite><span class="datetime"><a href="https://b.example/p.html?showComment=1559200000000#c102">x</a></span>
  </div><p class="comment-content">Thanks!</p></div></li>
 </ol></div></div></li></ol></div></div></body></html>"""


def test_blogger_dates_from_the_permalink_and_replies() -> None:
    found = detect_comments(BLOGGER, "https://b.example/p.html", now=NOW)

    assert found.detector == "blogger"
    first, reply = found.comments
    assert first.author == "Iwona" and first.key == "c101"
    assert first.published_at == datetime(2019, 5, 30, 5, 6, 4, 955000, tzinfo=UTC)
    assert (reply.author, reply.parent_key) == ("Owner", "c101")


DRUPAL = b"""<html lang="en"><body><div id="comments">
<a id="comment-7"></a>
<div class="comment comment-by-anonymous clearfix"><div class="comment-content">
 <h3 class="name"><span class="username">Anonymous</span></h3>
 <div class="field-comment-body"><p>A reform would help.</p></div></div>
 <div class="meta"><ul class="links inline"><li class="comment-reply"><a href="/comment/reply/1/7">reply</a></li>
 <li class="date"><span>April 5, 2018</span></li></ul></div></div>
</div></body></html>"""


def test_drupal() -> None:
    found = detect_comments(DRUPAL, URL, now=NOW)

    assert found.detector == "drupal"
    [comment] = found.comments
    assert comment.author == "Anonymous"
    assert comment.published_at == datetime(2018, 4, 5, tzinfo=UTC)
    assert "reply" not in comment.content


MF2 = b"""<html><body><article class="h-entry"><div class="e-content">Post</div>
<div class="u-comment h-cite"><a class="p-author h-card" href="https://ann.example/">Ann</a>
 <a class="u-url" href="https://blog.example/2019/03/post/#c1"><time class="dt-published"
 datetime="2019-03-03T11:05:00+01:00">3 March</time></a><p class="p-content">Nice post.</p></div>
</article></body></html>"""

JSON_LD = b"""<html><head><script type="application/ld+json">{"@context": "https://schema.org",
 "@type": "BlogPosting", "comment": [{"@type": "Comment", "text": "Agreed.",
 "author": {"@type": "Person", "name": "Ann"}, "dateCreated": "2019-03-03T10:05:00Z",
 "url": "https://blog.example/2019/03/post/#comment-5",
 "comment": {"@type": "Comment", "text": "Thanks", "author": "Bob",
   "dateCreated": "2019-03-04"}}]}</script></head><body></body></html>"""


def test_microformats_h_cite_comments() -> None:
    found = detect_comments(MF2, URL, now=NOW)

    assert found.detector == "mf2"
    [comment] = found.comments
    assert (comment.author, comment.author_url, comment.key) == (
        "Ann",
        "https://ann.example/",
        "c1",
    )
    assert comment.published_at == datetime(2019, 3, 3, 10, 5, tzinfo=UTC)


def test_schema_org_json_ld_comments() -> None:
    found = detect_comments(JSON_LD, URL, now=NOW)

    assert found.detector == "json-ld"
    first, reply = found.comments
    assert (first.author, first.key, first.published_at) == (
        "Ann",
        "comment-5",
        datetime(2019, 3, 3, 10, 5, tzinfo=UTC),
    )
    assert (reply.author, reply.parent_key) == ("Bob", "comment-5")


DISQUS = b"""<html><body><article><p>A post about Python 3.</p></article>
<div id="disqus_thread"></div><script>var disqus_shortname = 'gps';
(function() { var d = document, s = d.createElement('script');
s.src = 'https://gps.disqus.com/embed.js'; (d.head || d.body).appendChild(s); })();</script>
</body></html>"""


def test_script_loaded_comments_are_named_not_invented() -> None:
    found = detect_comments(DISQUS, URL, now=NOW)

    assert found.script_systems == ("Disqus",)
    assert found.comments == () and found.detector is None


def test_undated_comment_is_kept_without_a_date() -> None:
    page = CLASSIC_WORDPRESS.replace(b"March 3, 2019 at 11:05 am", b"a while back")
    found = detect_comments(page, URL, now=NOW)

    assert found.comments[0].published_at is None  # stored at its first-seen time
    assert found.undated == 1


@pytest.mark.parametrize(
    ("text", "language", "day"),
    [
        ("March 10, 2017 at 12:20 AM", "en", "2017-03-10"),
        ("10. Februar 2019 um 18:05 Uhr", "de", "2019-02-10"),
        ("8. April 2019 @ 11:38", "de", "2019-04-08"),
        ("29.07.2006 um 16:43", "de", "2006-07-29"),
        ("03.04.2019", "de", "2019-04-03"),  # day first, not dateutil's month first
        ("12 mars 2019 à 10:30", "fr", "2019-03-12"),
        ("12 de marzo de 2019 a las 10:30", "es", "2019-03-12"),
        ("12 maggio 2019 alle 10:30", "it", "2019-05-12"),
        ("3 de abril de 2019 às 10:30", "pt", "2019-04-03"),
        ("3 april 2019 om 10:30", "nl", "2019-04-03"),
        ("5 марта 2019 в 10:12", "ru", "2019-03-05"),
        ("3 days ago", "en", "2019-12-29"),
        ("vor 2 Tagen", "de", "2019-12-30"),
        ("Jun 20th at 2:41 am", "en", "2019-06-20"),  # no year: the latest before the fetch
        ("Ben 19. Juni 2018 um 15:28 Uhr - Antworten", "de", "2018-06-19"),
    ],
)
def test_dates_as_people_write_them(text: str, language: str, day: str) -> None:
    stamp = parse_comment_date(text, UTC, language=language, now=NOW)
    assert stamp is not None and stamp.date().isoformat() == day


@pytest.mark.parametrize("text", ["Reply", "Antworten", "3 days ago", "March 2019", "12:30"])
def test_not_dates_without_a_fetch_time(text: str) -> None:
    assert parse_comment_date(text, UTC, language="en", now=None) is None


def test_presets_and_custom_exclude_through_read_comments() -> None:
    found = read_comments(
        CLASSIC_WORDPRESS,
        URL,
        {"container": "li.comment", "author": ".fn", "exclude": ".comment-author, .reply"},
    )
    assert found.detector == "custom"
    assert "says" not in found.comments[0].content and "Reply" not in found.comments[0].content
    assert "Ann" not in found.comments[0].content


def test_config_accepts_auto(tmp_path: Path) -> None:
    path = tmp_path / "aggregator.yaml"
    path.write_text(
        "sources:\n  - name: blog\n    url: https://blog.example/feed/\n    comments_page: auto\n"
    )
    assert load_config(path).sources[0].comments_page == "auto"


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(tmp_path / "a.yaml"), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_extract_comments_json_from_a_file(tmp_path: Path) -> None:
    page = tmp_path / "post.html"
    page.write_bytes(CLASSIC_WORDPRESS)
    result = _cli(tmp_path, "extract-comments", str(page), "--timezone", "Europe/Berlin", "--json")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        {
            "author": "Ann",
            "published": "2019-03-03T10:05:00Z",
            "text": "First!",
            "key": "comment-11",
            "parent": None,
        },
        {
            "author": "Bob",
            "published": "2019-03-04T20:00:00Z",
            "text": "Second.",
            "key": "comment-12",
            "parent": "comment-11",
        },
    ]


def test_extract_comments_from_a_url_follows_found_url_rules(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/post/").respond_with_data(DISQUS, content_type="text/html")
    url = httpserver.url_for("/post/")
    (tmp_path / "a.yaml").write_text("sources: []\n")
    refused = _cli(tmp_path, "extract-comments", url)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr

    (tmp_path / "a.yaml").write_text("allow_private_networks: true\nsources: []\n")
    result = _cli(tmp_path, "extract-comments", url)
    assert result.returncode == 0, result.stderr
    assert "detector: none matched" in result.stdout
    assert "comments loaded by script, not in the page: Disqus" in result.stdout


def test_extract_comments_bad_preset_is_one_line(tmp_path: Path) -> None:
    page = tmp_path / "post.html"
    page.write_bytes(CLASSIC_WORDPRESS)
    result = _cli(tmp_path, "extract-comments", str(page), "--preset", "nope")
    assert result.returncode == 2 and "unknown page selector preset 'nope'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("sample", "preset"),
    [
        ("typepad-post-with-comments.html", "typepad"),
        ("wordpress-post-with-comments.html", "wordpress"),
    ],
)
def test_auto_reads_the_reference_pages_as_their_preset(sample: str, preset: str) -> None:
    """The seed-shaped pages give the same comments through auto, even at another address."""
    path = ROOT.parent / "shared" / "reference" / sample
    if not path.is_file():
        _corpus_or_skip()
        pytest.skip(f"{path} not found")
    html = path.read_bytes()
    by_preset = read_comments(html, "https://alias.example/p.html", preset).comments
    by_auto = detect_comments(html, "https://alias.example/p.html")

    assert by_auto.detector == preset
    assert by_auto.comments == by_preset and len(by_preset) == 2
