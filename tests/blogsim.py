"""Simulated blogs for the comment tests, served by a real HTTP server on 127.0.0.1.

A :class:`Blog` holds posts and their comments and renders them, on every request, in the markup
real blog software publishes (see ``/work/shared/reference/*.html`` and the comment feed fixtures
in ``tests/data/comment-feeds/``):

* ``wordpress``: RSS 2.0 (``/feed/``) and Atom (``/feed/atom/``) main feeds whose posts carry
  ``wfw:commentRss``, ``slash:comments``, Atom ``<link rel="replies">`` and ``thr:total``; per-post
  comment feeds (``<post>/feed/`` and ``<post>/feed/atom/``, newest first, comment guids
  ``https://blog/?p=3#comment-101``, threaded replies in Atom ``thr:in-reply-to``); site-wide comment
  feeds (``/comments/feed/`` and ``/comments/feed/atom/``); html5 post pages with replies nested in
  ``<ol class="children">``.
* ``typepad``: an RSS 1.0 ``index.rdf`` with no comment data, and post pages whose comments are
  signed "Posted by: NAME | Mon D, YYYY H:MM:SS AM | N" in the blog's local time.
* ``movabletype``: an RSS 2.0 ``index.xml`` with ``wfw:commentRss`` and per-entry comment feeds whose
  items are titled "Comment from NAME" and carry no ``dc:creator``.

Changing a blog's posts or comments changes what the server answers next. Responses carry an
ETag and answer ``If-None-Match`` with 304, as real servers do. Nothing here is imported by
aggregator; it is test scaffolding only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from html import escape
from zoneinfo import ZoneInfo

from werkzeug.wrappers import Request, Response

RSS_TYPE = "application/rss+xml; charset=UTF-8"
ATOM_TYPE = "application/atom+xml; charset=UTF-8"
RDF_TYPE = "application/rdf+xml; charset=UTF-8"
HTML_TYPE = "text/html; charset=UTF-8"

Renderer = Callable[[Request], tuple[str, str]]
# The tests' "now": every simulated comment is dated before it, as the schedule trusts no future.
START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@dataclass
class Comment:
    """One comment as the blog knows it. ``id`` is the blog's own comment id."""

    id: int
    author: str
    text: str
    at: datetime  # aware UTC
    parent: int | None = None
    author_url: str | None = None


@dataclass
class Post:
    """One post and its thread, in the order the blog shows it (oldest first)."""

    id: int
    slug: str
    title: str
    at: datetime
    comments: list[Comment] = field(default_factory=list)


class Blog:
    """A blog of one ``kind`` served at ``origin`` (``http://127.0.0.1:PORT``) under ``prefix``.

    ``comment_feeds`` False leaves comment feed links out of the main feeds (blogs whose comments
    are only on their pages). ``feed_window`` caps comment feeds (per-post and site-wide) to their newest items,
    like WordPress's "Syndication feeds show the most recent 10 items". ``page_size`` splits
    per-post Atom comment feeds into RFC 5005 pages linked by ``rel="next"``. ``status`` maps a path
    to an HTTP status to answer instead (404 for a post with comments closed).
    """

    def __init__(
        self,
        origin: str,
        prefix: str,
        kind: str,
        *,
        timezone: str = "America/New_York",
        comment_feeds: bool = True,
        feed_window: int | None = None,
        page_size: int | None = None,
    ):
        self.origin = origin.rstrip("/")
        self.prefix = prefix.rstrip("/")
        self.base = self.origin + self.prefix
        self.kind = kind
        self.zone = ZoneInfo(timezone)
        self.comment_feeds = comment_feeds
        self.feed_window = feed_window
        self.page_size = page_size
        self.posts: list[Post] = []
        self.status: dict[str, int] = {}
        self.hints: dict[int, int] = {}  # post id -> a comment count the main feed claims instead
        self.page_extra = ""  # HTML added to every post page (a comment system's script)
        self.page_shows: int | None = None  # WordPress "break comments into pages": newest N
        self._next_comment = 101

    # -- building ----------------------------------------------------------------------------
    def add_post(self, slug: str, title: str, at: datetime) -> Post:
        post = Post(id=len(self.posts) + 1, slug=slug, title=title, at=at)
        self.posts.append(post)
        return post

    def comment(
        self,
        post: Post,
        author: str,
        text: str,
        at: datetime,
        *,
        parent: Comment | None = None,
        author_url: str | None = None,
    ) -> Comment:
        """Add a comment to ``post``; a reply is shown after its parent's earlier replies."""
        item = Comment(
            self._next_comment, author, text, at, parent.id if parent else None, author_url
        )
        self._next_comment += 1
        post.comments.append(item)
        return item

    # -- URLs ---------------------------------------------------------------------------------
    def post_path(self, post: Post) -> str:
        if self.kind == "typepad":
            return f"{self.prefix}/{post.at:%Y/%m}/{post.slug}.html"
        if self.kind == "movabletype":
            return f"{self.prefix}/archives/{post.slug}.html"
        return f"{self.prefix}/{post.slug}/"

    def post_url(self, post: Post) -> str:
        return self.origin + self.post_path(post)

    def comments_feed_path(self, post: Post, fmt: str = "rss") -> str:
        if self.kind == "movabletype":
            return f"{self.prefix}/comments/{post.id}.xml"
        return self.post_path(post) + ("feed/atom/" if fmt == "atom" else "feed/")

    def comment_url(self, post: Post, comment: Comment) -> str:
        return f"{self.post_url(post)}#comment-{self.comment_anchor(comment)}"

    def comment_anchor(self, comment: Comment) -> str:
        if self.kind == "typepad":
            return f"6a00d8341c5f1f53ef0200{comment.id:010d}"
        return str(comment.id)

    def guid(self, post: Post) -> str:
        """WordPress post guids are the shortlink ``https://blog/?p=ID``."""
        return f"{self.base}/?p={post.id}"

    def comment_guid(self, post: Post, comment: Comment) -> str:
        return f"{self.guid(post)}#comment-{comment.id}"

    def post_for(self, comment: Comment) -> Post:
        return next(p for p in self.posts if comment in p.comments)

    # -- serving ------------------------------------------------------------------------------
    def routes(self) -> dict[str, Renderer]:
        """Every path the blog answers, with what it renders."""
        routes: dict[str, Renderer] = {}
        if self.kind == "wordpress":
            routes[f"{self.prefix}/feed/"] = lambda r: (self.wordpress_rss(), RSS_TYPE)
            routes[f"{self.prefix}/feed/atom/"] = lambda r: (self.wordpress_atom(), ATOM_TYPE)
            routes[f"{self.prefix}/comments/feed/"] = lambda r: (self.site_comments_rss(), RSS_TYPE)
            routes[f"{self.prefix}/comments/feed/atom/"] = lambda r: (
                self.site_comments_atom(),
                ATOM_TYPE,
            )
        elif self.kind == "typepad":
            routes[f"{self.prefix}/index.rdf"] = lambda r: (self.typepad_rdf(), RDF_TYPE)
        elif self.kind == "movabletype":
            routes[f"{self.prefix}/index.xml"] = lambda r: (self.movabletype_rss(), RSS_TYPE)
        for post in self.posts:
            routes[self.post_path(post)] = _bind(self.page, post)
            if self.kind == "wordpress" and self.page_shows:
                for number in range(1, len(post.comments) // self.page_shows + 2):
                    routes[f"{self.post_path(post)}comment-page-{number}/"] = (
                        lambda r, post=post, number=number: (
                            self.wordpress_page(post, number),
                            HTML_TYPE,
                        )
                    )
            if self.kind == "wordpress":
                routes[self.comments_feed_path(post)] = _bind(self.post_comments_rss, post)
                routes[self.comments_feed_path(post, "atom")] = _bind(self.post_comments_atom, post)
            elif self.kind == "movabletype":
                routes[self.comments_feed_path(post)] = _bind(self.movabletype_comments, post)
        return routes

    def handle(self, request: Request) -> Response:
        """Answer one request: 404 for unknown paths, 304 when the ETag matches."""
        if request.path in self.status:
            return Response("closed", status=self.status[request.path])
        renderer = self.routes().get(request.path)
        if renderer is None:
            return Response("not found", status=404)
        body, content_type = renderer(request)
        etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:16] + '"'
        if request.headers.get("If-None-Match") == etag:
            return Response(status=304, headers={"ETag": etag})
        return Response(body, content_type=content_type, headers={"ETag": etag})

    # -- WordPress ----------------------------------------------------------------------------
    def _count(self, post: Post) -> int:
        return self.hints.get(post.id, len(post.comments))

    def wordpress_rss(self) -> str:
        items = []
        for post in reversed(self.posts):
            thread = ""
            if self.comment_feeds:
                thread = (
                    f"<comments>{self.post_url(post)}#respond</comments>\n"
                    f"<wfw:commentRss>{self.origin}{self.comments_feed_path(post)}</wfw:commentRss>\n"
                    f"<slash:comments>{self._count(post)}</slash:comments>"
                )
            items.append(
                f"""<item>
<title>{escape(post.title)}</title>
<link>{self.post_url(post)}</link>
<dc:creator><![CDATA[Marta]]></dc:creator>
<pubDate>{_rfc822(post.at)}</pubDate>
<guid isPermaLink="false">{self.guid(post)}</guid>
<description><![CDATA[<p>About {escape(post.title)}.</p>]]></description>
{thread}
</item>"""
            )
        return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
 xmlns:wfw="http://wellformedweb.org/CommentAPI/" xmlns:dc="http://purl.org/dc/elements/1.1/"
 xmlns:atom="http://www.w3.org/2005/Atom" xmlns:slash="http://purl.org/rss/1.0/modules/slash/">
<channel>
<title>Example WordPress Blog</title>
<atom:link href="{self.base}/feed/" rel="self" type="application/rss+xml" />
<link>{self.base}/</link>
<description>A blog</description>
{"".join(items)}
</channel>
</rss>"""

    def wordpress_atom(self) -> str:
        entries = []
        for post in reversed(self.posts):
            thread = ""
            if self.comment_feeds:
                count = self._count(post)
                thread = (
                    f'<link rel="replies" type="text/html" href="{self.post_url(post)}#comments"'
                    f' thr:count="{count}"/>\n'
                    f'<link rel="replies" type="application/atom+xml"'
                    f' href="{self.origin}{self.comments_feed_path(post, "atom")}" thr:count="{count}"/>\n'
                    f"<thr:total>{count}</thr:total>"
                )
            entries.append(
                f"""<entry>
<author><name>Marta</name></author>
<title type="html"><![CDATA[{post.title}]]></title>
<link rel="alternate" type="text/html" href="{self.post_url(post)}" />
<id>{self.guid(post)}</id>
<updated>{post.at.isoformat()}</updated>
<published>{post.at.isoformat()}</published>
<summary type="html"><![CDATA[About {escape(post.title)}.]]></summary>
{thread}
</entry>"""
            )
        return f"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:thr="http://purl.org/syndication/thread/1.0">
<title type="text">Example WordPress Blog</title>
<updated>{max((p.at for p in self.posts), default=_EPOCH).isoformat()}</updated>
<link rel="alternate" type="text/html" href="{self.base}/" />
<id>{self.base}/feed/atom/</id>
{"".join(entries)}
</feed>"""

    def _newest_first(self, post: Post) -> list[Comment]:
        comments = sorted(post.comments, key=lambda c: c.at, reverse=True)
        return comments[: self.feed_window] if self.feed_window else comments

    def _rss_comment(self, post: Post, comment: Comment, title: str) -> str:
        return f"""<item>
<title>{escape(title)}</title>
<link>{self.comment_url(post, comment)}</link>
<dc:creator><![CDATA[{comment.author}]]></dc:creator>
<pubDate>{_rfc822(comment.at)}</pubDate>
<guid isPermaLink="false">{self.comment_guid(post, comment)}</guid>
<description><![CDATA[{comment.text}]]></description>
<content:encoded><![CDATA[<p>{comment.text}</p>]]></content:encoded>
</item>"""

    def post_comments_rss(self, post: Post, request: Request) -> tuple[str, str]:
        items = "".join(
            self._rss_comment(post, c, f"By: {c.author}") for c in self._newest_first(post)
        )
        return _wp_comment_rss(f"Comments on: {post.title}", self.post_url(post), items), RSS_TYPE

    def _site_newest_first(self) -> list[tuple[Post, Comment]]:
        comments = sorted(
            ((p, c) for p in self.posts for c in p.comments), key=lambda pc: pc[1].at, reverse=True
        )
        return comments[: self.feed_window] if self.feed_window else comments

    def site_comments_rss(self) -> str:
        comments = self._site_newest_first()
        items = "".join(
            self._rss_comment(p, c, f"Comment on {p.title} by {c.author}") for p, c in comments
        )
        return _wp_comment_rss("Comments for Example WordPress Blog", f"{self.base}/", items)

    def _atom_comment(self, post: Post, comment: Comment, title: str) -> str:
        if comment.parent is not None:
            parent = next(c for c in post.comments if c.id == comment.parent)
            reply_to = (
                f'<thr:in-reply-to ref="{self.comment_guid(post, parent)}"'
                f' href="{self.comment_url(post, parent)}" type="text/html" />'
            )
        else:
            reply_to = (
                f'<thr:in-reply-to ref="{self.guid(post)}" href="{self.post_url(post)}"'
                ' type="text/html" />'
            )
        uri = f"<uri>{comment.author_url}</uri>" if comment.author_url else ""
        return f"""<entry>
<title>{escape(title)}</title>
<link rel="alternate" href="{self.comment_url(post, comment)}" type="text/html" />
<author><name>{escape(comment.author)}</name>{uri}</author>
<id>{self.comment_guid(post, comment)}</id>
<updated>{comment.at.isoformat()}</updated>
<published>{comment.at.isoformat()}</published>
{reply_to}
<content type="html" xml:base="{self.comment_url(post, comment)}"><![CDATA[<p>{comment.text}</p>]]></content>
</entry>"""

    def post_comments_atom(self, post: Post, request: Request) -> tuple[str, str]:
        comments = self._newest_first(post)
        page = int(request.args.get("page", "1"))
        feed_path = self.comments_feed_path(post, "atom")
        paging = ""
        if self.page_size:
            start = (page - 1) * self.page_size
            more = len(comments) > start + self.page_size
            comments = comments[start : start + self.page_size]
            if more:
                paging = f'<link rel="next" href="{self.origin}{feed_path}?page={page + 1}" />'
        entries = "".join(self._atom_comment(post, c, f"By: {c.author}") for c in comments)
        return (
            _wp_comment_atom(f"Comments on: {post.title}", self.post_url(post), paging, entries),
            ATOM_TYPE,
        )

    def site_comments_atom(self) -> str:
        comments = self._site_newest_first()
        entries = "".join(
            self._atom_comment(p, c, f"Comment on {p.title} by {c.author}") for p, c in comments
        )
        return _wp_comment_atom("Comments for Example WordPress Blog", f"{self.base}/", "", entries)

    def wordpress_page(self, post: Post, page: int | None = None) -> str:
        def render(comment: Comment, depth: int) -> str:
            replies = [c for c in post.comments if c.parent == comment.id]
            author = (
                f'<a href="{comment.author_url}" class="url" rel="ugc external nofollow">'
                f"{escape(comment.author)}</a>"
                if comment.author_url
                else escape(comment.author)
            )
            children = (
                '<ol class="children">' + "".join(render(r, depth + 1) for r in replies) + "</ol>"
                if replies
                else ""
            )
            local = comment.at.astimezone(self.zone)
            return f"""<li id="comment-{comment.id}" class="comment depth-{depth}">
<article id="div-comment-{comment.id}" class="comment-body">
<footer class="comment-meta">
<div class="comment-author vcard"><b class="fn">{author}</b> <span class="says">says:</span></div>
<div class="comment-metadata"><a href="{self.comment_url(post, comment)}"><time datetime="{local.isoformat()}">{local:%B} {local.day}, {local.year} at {_clock(local).lower()}</time></a></div>
</footer>
<div class="comment-content"><p>{comment.text}</p></div>
</article>{children}</li>
"""

        top = [c for c in post.comments if c.parent is None]
        nav = ""
        if self.page_shows is not None and len(top) > self.page_shows:
            # WordPress "break comments into pages", last page shown at the post's address:
            # pages of page_shows threads from the oldest, linked to their neighbours.
            pages = [top[n : n + self.page_shows] for n in range(0, len(top), self.page_shows)]
            number = len(pages) if page is None else page
            top = pages[number - 1] if 0 < number <= len(pages) else []
            links = []
            if number > 1:
                links.append(
                    f'<div class="nav-previous"><a href="{self.post_url(post)}comment-page-'
                    f'{number - 1}/#comments">Older comments</a></div>'
                )
            if number < len(pages):
                links.append(
                    f'<div class="nav-next"><a href="{self.post_url(post)}comment-page-'
                    f'{number + 1}/#comments">Newer comments</a></div>'
                )
            nav = (
                '<nav class="navigation comment-navigation"><div class="nav-links">'
                + "".join(links)
                + "</div></nav>"
            )
        return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(post.title)}</title></head><body>
<article id="post-{post.id}" class="post"><h1 class="entry-title">{escape(post.title)}</h1>
<div class="entry-content"><p>About {escape(post.title)}.</p></div></article>
<div id="comments" class="comments-area">
<ol class="comment-list">
{"".join(render(c, 1) for c in top)}
</ol>{nav}</div>{self.page_extra}</body></html>"""

    # -- Typepad ------------------------------------------------------------------------------
    def typepad_rdf(self) -> str:
        items = "".join(
            f"""<item rdf:about="{self.post_url(p)}">
<title>{escape(p.title)}</title>
<link>{self.post_url(p)}</link>
<description>About {escape(p.title)}.</description>
<dc:creator>b</dc:creator>
<dc:date>{p.at.astimezone(self.zone).isoformat()}</dc:date>
</item>"""
            for p in reversed(self.posts)
        )
        seq = "".join(f'<rdf:li rdf:resource="{self.post_url(p)}" />' for p in reversed(self.posts))
        return f"""<?xml version="1.0" encoding="utf-8"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
 xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns="http://purl.org/rss/1.0/">
<channel rdf:about="{self.base}/">
<title>Example Typepad Blog</title>
<link>{self.base}/</link>
<description>A blog</description>
<items><rdf:Seq>{seq}</rdf:Seq></items>
</channel>
{items}
</rdf:RDF>"""

    def typepad_page(self, post: Post) -> str:
        blocks = []
        for number, comment in enumerate(post.comments, 1):
            anchor = self.comment_anchor(comment)
            signed = (
                f'<a rel="nofollow" href="{comment.author_url}">{escape(comment.author)}</a>'
                if comment.author_url
                else escape(comment.author)
            )
            local = comment.at.astimezone(self.zone)
            date = f"{local:%b} {local.day}, {local.year} {_clock(local, seconds=True)}"
            blocks.append(
                f"""<a id="c{anchor}"></a>
<div class="comment font-entrybody" id="comment-{anchor}">
	<div class="comment-content">
		<p>{comment.text}</p>
	</div>
	<p class="comment-footer font-entryfooter">
		Posted by: {signed} |
		<a rel="nofollow" href="{self.comment_url(post, comment)}">{date}</a> | {number}
	</p>
</div>
"""
            )
        return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(post.title)}</title></head><body>
<div class="entry"><h3 class="entry-header">{escape(post.title)}</h3>
<div class="entry-content"><div class="entry-body"><p>About {escape(post.title)}.</p></div></div></div>
<div class="comments" id="comments"><div class="comments-content">
<h3 class="comments-header">Comments</h3>
{"".join(blocks)}</div></div>
</body></html>"""

    # -- Movable Type -------------------------------------------------------------------------
    def movabletype_rss(self) -> str:
        items = "".join(
            f"""<item>
<title>{escape(p.title)}</title>
<description>About {escape(p.title)}.</description>
<link>{self.post_url(p)}</link>
<guid>{self.post_url(p)}</guid>
<pubDate>{_rfc822(p.at)}</pubDate>
<comments>{self.post_url(p)}#comments</comments>
<wfw:commentRss>{self.origin}{self.comments_feed_path(p)}</wfw:commentRss>
</item>"""
            for p in reversed(self.posts)
        )
        return f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:wfw="http://wellformedweb.org/CommentAPI/">
<channel>
<title>Example Movable Type Blog</title>
<link>{self.base}/</link>
<description>A blog</description>
<generator>http://www.sixapart.com/movabletype/</generator>
{items}
</channel>
</rss>"""

    def movabletype_comments(self, post: Post, request: Request) -> tuple[str, str]:
        items = "".join(
            f"""<item>
<title>Comment from {escape(c.author)}</title>
<description><![CDATA[<p>{c.text}</p>]]></description>
<link>{self.post_url(post)}#comment-{c.id}</link>
<guid>{self.post_url(post)}#comment-{c.id}</guid>
<pubDate>{_rfc822(c.at)}</pubDate>
</item>"""
            for c in post.comments
        )
        body = f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0">
<channel>
<title>Comments on {escape(post.title)}</title>
<link>{self.post_url(post)}</link>
<description>Comments</description>
{items}
</channel>
</rss>"""
        return body, RSS_TYPE

    def page(self, post: Post, request: Request) -> tuple[str, str]:
        if self.kind == "typepad":
            return self.typepad_page(post), HTML_TYPE
        return self.wordpress_page(post), HTML_TYPE


_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _bind(method: Callable[[Post, Request], tuple[str, str]], post: Post) -> Renderer:
    return lambda request: method(post, request)


def _rfc822(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def _clock(local: datetime, *, seconds: bool = False) -> str:
    """12-hour time as blogs print it: "9:05 AM", or "9:05:07 AM" with seconds."""
    hour = local.hour % 12 or 12
    text = f"{hour}:{local:%M}" + (f":{local:%S}" if seconds else "")
    return f"{text} {'AM' if local.hour < 12 else 'PM'}"


def _wp_comment_rss(title: str, link: str, items: str) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
 xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom"
 xmlns:sy="http://purl.org/rss/1.0/modules/syndication/">
<channel>
<title>{escape(title)}</title>
<link>{link}</link>
<description>Comments</description>
<sy:updatePeriod>hourly</sy:updatePeriod>
{items}
</channel>
</rss>"""


def _wp_comment_atom(title: str, link: str, paging: str, entries: str) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:thr="http://purl.org/syndication/thread/1.0">
<title type="text">{escape(title)}</title>
<link rel="alternate" type="text/html" href="{link}" />
<id>{link}#comments-atom</id>
<updated>2020-01-01T00:00:00Z</updated>
{paging}
{entries}
</feed>"""


def requests_to(log: list[tuple[Request, Response]], path: str) -> list[Request]:
    """The requests a server log holds for ``path`` (query string ignored)."""
    return [request for request, _ in log if request.path == path]
