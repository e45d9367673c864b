"""Embed detection (issue 16, section 1): the comment system a post's page embeds, proposed as a
``comment_system`` setting by ``aggregator add`` and by ``comments_page: auto``."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from blogsim import START, Blog
from click.testing import CliRunner
from corpora import REALWORLD, corpus
from support import demo_config_path

from aggregator.cli import main
from aggregator.comments.detect import read_comments
from aggregator.config.loading import load_config
from aggregator.discussions.detect import discourse_embed, propose

PAGE = "https://blog.example/2024/05/post/"


def _page(body: str) -> str:
    return f"<!DOCTYPE html><html><head><title>P</title></head><body><article>{body}</article></body></html>"


EMBEDS = {
    "disqus (shortname)": (
        "<div id='disqus_thread'></div><script>var disqus_shortname = 'myblog';"
        "(function(){var d=document.createElement('script');"
        "d.src='https://'+disqus_shortname+'.disqus.com/embed.js';})();</script>",
        {"type": "disqus", "forum": "myblog"},
    ),
    "disqus (host)": (
        "<script>var disqus_config = function () { this.page.url = PAGE_URL; };"
        "(function() { var s = document.createElement('script');"
        "s.src = 'https://other-blog.disqus.com/embed.js'; })();</script>",
        {"type": "disqus", "forum": "other-blog"},
    ),
    "discourse": (
        "<div id='discourse-comments'></div><script type='text/javascript'>"
        "DiscourseEmbed = { discourseUrl: 'https://forum.example.com/',"
        " discourseEmbedUrl: 'https://blog.example/2024/05/post/' };"
        "(function() { var d = document.createElement('script');"
        " d.src = DiscourseEmbed.discourseUrl + 'javascripts/embed.js'; })();</script>",
        {"type": "discourse", "base_url": "https://forum.example.com"},
    ),
    "isso": (
        '<script data-isso="//comments.example.tld/" '
        'src="//comments.example.tld/js/embed.min.js"></script><section id="isso-thread"></section>',
        {"type": "isso", "base_url": "https://comments.example.tld"},
    ),
    "isso (no data-isso)": (
        '<script src="/isso/js/embed.min.js"></script><section id="isso-thread"></section>',
        {"type": "isso", "base_url": "https://blog.example/isso"},
    ),
    "remark42": (
        "<div id='remark42'></div><script>var remark_config = {\n  host: 'https://remark42.example.com',"
        "\n  site_id: 'my_site',\n  components: ['embed'],\n};</script>",
        {"type": "remark42", "base_url": "https://remark42.example.com", "site": "my_site"},
    ),
    "remark42 (default site)": (
        '<script>var remark_config = {host: "https://r.example"}</script>',
        {"type": "remark42", "base_url": "https://r.example", "site": "remark"},
    ),
    "commento (hosted)": (
        '<div id="commento"></div><script defer src="https://cdn.commento.io/js/commento.js"></script>',
        {"type": "commento", "base_url": "https://commento.io", "domain": "blog.example"},
    ),
    "commento (self-hosted)": (
        '<script defer src="https://talk.example.org/js/commento.js"></script><div id="commento"></div>',
        {"type": "commento", "base_url": "https://talk.example.org", "domain": "blog.example"},
    ),
    "giscus": (
        '<script src="https://giscus.app/client.js" data-repo="me/blog" data-repo-id="R_1" '
        'data-category="Comments" data-mapping="pathname" crossorigin="anonymous" async></script>',
        {"type": "giscus", "repo": "me/blog", "mapping": "pathname", "category": "Comments"},
    ),
    "utterances": (
        '<script src="https://utteranc.es/client.js" repo="me/blog" issue-term="pathname" '
        'theme="github-light" crossorigin="anonymous" async></script>',
        {"type": "utterances", "repo": "me/blog", "mapping": "pathname"},
    ),
}

NOT_EMBEDS = {
    "prose about the systems": (
        "<p>Set disqus_shortname = 'x' and DiscourseEmbed = { discourseUrl: 'https://f.example/' }"
        " or var remark_config = {host: 'https://r.example'}; civic discourse matters.</p>"
    ),
    "code shown, not run": (
        '<pre><code>&lt;script src="https://giscus.app/client.js" data-repo="a/b"&gt;'
        "DiscourseEmbed = { discourseUrl: 'https://f.example/' }</code></pre>"
    ),
    "a link to Disqus itself": '<a href="https://disqus.com">Disqus</a>'
    '<script src="https://www.disqus.com/embed.js"></script>',
    "giscus without a repo": '<script src="https://giscus.app/client.js" data-repo="nope"></script>',
    "utterances elsewhere": '<script src="https://cdn.example/utteranc.es/client.js" repo="a/b"></script>',
    "a script named like Commento's": '<script src="https://x.example/js/commento.js.map"></script>',
}


@pytest.mark.parametrize("name", EMBEDS)
def test_each_embed_is_proposed(name: str) -> None:
    html, expected = EMBEDS[name]
    (proposal,) = propose(_page(html).encode(), PAGE)
    assert proposal.as_config() == expected


@pytest.mark.parametrize("name", NOT_EMBEDS)
def test_no_proposal_without_embed_code(name: str) -> None:
    assert propose(_page(NOT_EMBEDS[name]).encode(), PAGE) == ()


def test_every_system_of_one_page_in_order_and_the_discourse_topic() -> None:
    html = _page("".join(EMBEDS[name][0] for name in ("utterances", "isso", "discourse")))
    assert [p.type for p in propose(html, PAGE)] == ["discourse", "isso", "utterances"]
    page = _page(
        "<script>DiscourseEmbed = { discourseUrl: '//forum.example/', topicId: 42 };</script>"
    )
    found = discourse_embed(page, PAGE)
    assert found is not None and found.topic_id == 42
    assert found.base_url == "https://forum.example/"
    assert discourse_embed(_page(EMBEDS["isso"][0]), PAGE) is None
    # What a hostile page puts in its attributes reaches notes, `status` and the config file
    # without escape sequences or line breaks.
    hostile = '<script src="https://giscus.app/client.js" data-repo="a/b" data-category="x\x1b[2J\ny"></script>'
    (proposal,) = propose(_page(hostile), PAGE)
    assert proposal.as_config()["category"] == "x y"


def test_no_false_positive_over_the_real_pages() -> None:
    root = corpus(REALWORLD)
    pages = [
        s["file"] for s in json.loads((root / "sources.json").read_text()) if s["kind"] == "page"
    ]
    assert len(pages) == 24
    found = {
        name: [p.describe() for p in propose((root / "files" / name).read_bytes(), PAGE)]
        for name in pages
    }
    # The one real page with an embed: an old-style Disqus loader (disqus.com/forums/NAME/);
    # the ACLU page speaks of "civic discourse" and embeds nothing.
    assert {name: d for name, d in found.items() if d} == {
        "adbar__trafilatura/tests__cache__gregoryszorc.com.python3.html": [
            "comment_system: {type: disqus, forum: gregoryszorc} (also needs api_key)"
        ]
    }


def test_auto_names_the_setting_when_the_page_shows_no_comment() -> None:
    found = read_comments(_page(EMBEDS["isso"][0]).encode(), PAGE, "auto")
    assert found.comments == ()
    assert found.script_note == (
        "comments load by script (Isso); none in the page; to follow them, set "
        "comment_system: {type: isso, base_url: https://comments.example.tld}"
    )


def test_add_writes_a_complete_comment_system_and_proposes_an_incomplete_one(
    blogs: Callable[..., Blog], tmp_path: Path
) -> None:
    blog = blogs("/wp", "wordpress", comment_feeds=False)
    blog.add_post("post", "Post", START - timedelta(days=1))
    blog.page_extra = EMBEDS["remark42"][0]
    config = demo_config_path(tmp_path)
    result = CliRunner().invoke(
        main, ["--config", str(config), "add", blog.origin + "/wp/feed/", "--name", "remarked"]
    )
    assert result.exit_code == 0, result.output
    assert "loads its comments by script (Remark42): not in the page, followed through its API" in (
        result.output
    )
    assert (
        "  writing comment_system: {type: remark42, base_url: https://remark42.example.com, "
        "site: my_site}" in result.output.splitlines()
    )
    source = load_config(config).source("remarked")
    assert source.comment_system == {
        "type": "remark42",
        "base_url": "https://remark42.example.com",
        "site": "my_site",
    }
    # Disqus needs an API key only the operator has: proposed, not written.
    blog.page_extra = EMBEDS["disqus (shortname)"][0]
    other = demo_config_path(tmp_path / "other")
    result = CliRunner().invoke(
        main, ["--config", str(other), "add", blog.origin + "/wp/feed/", "--dry-run"]
    )
    assert (
        "  to follow them, add to the source: comment_system: {type: disqus, forum: myblog} "
        "(also needs api_key)" in result.output.splitlines()
    )
    # utterances needs nothing more (a token only raises its rate): written; giscus reads
    # GitHub's GraphQL API, which needs a token: proposed.
    blog.page_extra = EMBEDS["utterances"][0]
    result = CliRunner().invoke(
        main, ["--config", str(other), "add", blog.origin + "/wp/feed/", "--dry-run"]
    )
    assert (
        "  writing comment_system: {type: utterances, repo: me/blog, mapping: pathname}"
        in result.output.splitlines()
    )
    blog.page_extra = EMBEDS["giscus"][0]
    result = CliRunner().invoke(
        main, ["--config", str(other), "add", blog.origin + "/wp/feed/", "--dry-run"]
    )
    assert (
        "  to follow them, add to the source: comment_system: {type: giscus, repo: me/blog, "
        "mapping: pathname, category: Comments} (also needs token)" in result.output.splitlines()
    )


def test_utterances_issue_term_becomes_its_mapping() -> None:
    for attributes, mapping in (
        ('issue-term="og:title"', "og:title"),
        ('issue-term="my-own-term"', "specific"),
        ('issue-number="12"', "issue-number"),
        ("", None),
    ):
        html = f'<script src="https://utteranc.es/client.js" repo="me/blog" {attributes}></script>'
        (proposal,) = propose(_page(html), PAGE)
        assert proposal.as_config().get("mapping") == mapping
