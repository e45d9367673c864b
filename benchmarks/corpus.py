"""Deterministic benchmark corpus: N feeds (RSS 2.0 / Atom 1.0 / RSS 1.0) plus per-entry comment feeds.

Usage (standalone)::

    python benchmarks/corpus.py --feeds 1000 --seed 42 --port 8089 --out benchmarks/.corpus/x

Writes, under the output directory:

* ``feeds/feedNNNN.xml``                    one feed each (about 60% RSS 2.0, 30% Atom, 10% RSS 1.0)
* ``comments/feedNNNN/eNNN.xml``            one comment feed per entry of a blog feed (30% of feeds)
* ``*.xml.gz`` next to every file            pre-compressed copies (nginx ``gzip_static``)
* ``manifest.json``                          parameters, counts and every feed / comment feed URL
* ``aggregator.yaml``                        an aggregator config listing every feed as a source

Every URL in the corpus (feeds, comment feeds, post links, images, links in content) points at
``http://127.0.0.1:PORT/`` so that whatever a client follows stays on the loopback interface.
The same seed, feed count and port always give byte-identical files with identical mtimes, so the
server's ETag / Last-Modified are stable between runs.

Only the standard library is used so that any Python >= 3.10 can run it.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

GENERATOR_VERSION = 4  # bump whenever the output changes, so cached corpora are rebuilt
DEFAULT_SEED = 42
DEFAULT_PORT = 8089
# Every file gets this mtime, so Last-Modified / ETag do not depend on when the corpus was built.
FIXED_MTIME = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)
BASE_TIME = FIXED_MTIME - timedelta(minutes=5)

FORMAT_SHARES = (("rss2", 0.6), ("atom", 0.3), ("rss1", 0.1))
BLOG_SHARE = 0.3
ENTRIES_RANGE = (10, 50)
CONTENT_BYTES = (1024, 6 * 1024)
COMMENTS_RANGE = (5, 200)
COMMENTS_EXTRA_MEAN = 20  # comments per feed = 5 + Exp(mean 20), capped at 200 -> mean ~25

WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "he",
    "this",
    "are",
    "or",
    "his",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "had",
    "they",
    "you",
    "were",
    "their",
    "one",
    "all",
    "we",
    "can",
    "her",
    "has",
    "there",
    "been",
    "if",
    "more",
    "when",
    "will",
    "would",
    "who",
    "so",
    "no",
    "she",
    "other",
    "its",
    "time",
    "some",
    "could",
    "them",
    "these",
    "may",
    "than",
    "then",
    "do",
    "first",
    "any",
    "my",
    "now",
    "such",
    "like",
    "our",
    "over",
    "man",
    "me",
    "even",
    "most",
    "made",
    "after",
    "also",
    "did",
    "many",
    "before",
    "must",
    "through",
    "back",
    "years",
    "where",
    "much",
    "your",
    "way",
    "well",
    "down",
    "should",
    "because",
    "each",
    "just",
    "those",
    "people",
    "how",
    "too",
    "little",
    "state",
    "good",
    "very",
    "make",
    "world",
    "still",
    "own",
    "see",
    "men",
    "work",
    "long",
    "get",
    "here",
    "between",
    "both",
    "life",
    "being",
    "under",
    "never",
    "day",
    "same",
    "another",
    "know",
    "while",
    "last",
    "might",
    "us",
    "great",
    "old",
    "year",
    "off",
    "come",
    "since",
    "against",
    "go",
    "came",
    "right",
    "used",
    "take",
    "three",
    "system",
    "data",
    "server",
    "feed",
    "reader",
    "comment",
    "thread",
    "post",
    "blog",
    "update",
    "release",
    "version",
    "build",
    "test",
    "issue",
    "patch",
    "review",
    "design",
    "code",
    "library",
    "module",
    "function",
    "value",
    "network",
    "cache",
    "request",
    "response",
    "header",
    "client",
    "memory",
    "disk",
    "storage",
    "query",
    "index",
    "table",
    "column",
    "schema",
    "row",
    "record",
    "field",
    "python",
    "rust",
    "linux",
    "kernel",
    "socket",
    "thread",
    "process",
    "signal",
    "queue",
    "worker",
    "scheduler",
    "timer",
    "event",
    "loop",
    "async",
    "await",
    "future",
    "promise",
    "stream",
    "buffer",
    "parser",
    "token",
    "syntax",
    "grammar",
    "compiler",
    "runtime",
    "garbage",
    "collector",
    "allocator",
    "pointer",
    "reference",
    "object",
    "class",
    "method",
    "interface",
    "protocol",
    "adapter",
    "plugin",
    "extension",
    "feature",
    "option",
    "setting",
    "config",
    "default",
    "path",
    "file",
    "folder",
    "archive",
    "backup",
    "restore",
    "migrate",
    "deploy",
    "container",
    "image",
    "volume",
    "service",
    "endpoint",
    "route",
    "handler",
    "template",
    "render",
    "layout",
    "style",
    "theme",
    "color",
    "font",
    "page",
    "site",
    "link",
    "author",
    "editor",
    "draft",
    "publish",
    "archive",
    "morning",
    "evening",
    "winter",
    "summer",
    "garden",
    "kitchen",
    "coffee",
    "bread",
    "recipe",
    "travel",
    "train",
    "city",
    "river",
    "mountain",
    "forest",
    "ocean",
    "island",
    "bridge",
    "street",
    "market",
    "museum",
    "library",
    "school",
    "student",
    "teacher",
    "lesson",
    "chapter",
    "book",
    "novel",
    "poem",
    "story",
    "music",
    "concert",
    "guitar",
    "piano",
    "album",
    "song",
    "film",
    "camera",
    "photo",
    "picture",
    "painting",
    "gallery",
    "history",
    "science",
    "physics",
    "chemistry",
    "biology",
    "math",
    "number",
    "theory",
    "proof",
    "model",
    "experiment",
    "result",
    "paper",
    "research",
    "study",
    "survey",
    "analysis",
    "report",
    "chart",
    "graph",
    "measure",
    "benchmark",
    "metric",
    "latency",
    "throughput",
]

FIRST_NAMES = [
    "Alice",
    "Bob",
    "Carol",
    "Dave",
    "Erin",
    "Frank",
    "Grace",
    "Heidi",
    "Ivan",
    "Judy",
    "Mallory",
    "Niaj",
    "Olivia",
    "Peggy",
    "Rupert",
    "Sybil",
    "Trent",
    "Victor",
    "Walter",
    "Yolanda",
    "Zoe",
    "Amir",
    "Bea",
    "Chen",
    "Dmitri",
    "Elif",
    "Fatima",
    "Giulia",
    "Hiro",
    "Ingrid",
    "Jonas",
    "Kemal",
    "Lucia",
    "Mateo",
    "Nadia",
    "Oskar",
    "Priya",
    "Quentin",
    "Rosa",
    "Sven",
    "Tomas",
    "Ugo",
    "Vera",
    "Wen",
    "Ximena",
    "Yusuf",
]
LAST_NAMES = [
    "Smith",
    "Jones",
    "Garcia",
    "Muller",
    "Rossi",
    "Dubois",
    "Novak",
    "Kowalski",
    "Silva",
    "Tanaka",
    "Kim",
    "Nguyen",
    "Ivanova",
    "Hansen",
    "Jensen",
    "Berg",
    "Costa",
    "Ferreira",
    "Lopez",
    "Martin",
    "Bernard",
    "Weber",
    "Fischer",
    "Schulz",
    "Wagner",
    "Becker",
    "Hoffmann",
    "Okafor",
    "Mensah",
    "Haddad",
    "Sato",
    "Park",
    "Chen",
    "Singh",
    "Patel",
    "Khan",
    "Ali",
    "Yilmaz",
    "Demir",
    "Popescu",
    "Horvat",
]
TAGS = [
    "python",
    "rust",
    "web",
    "feeds",
    "rss",
    "atom",
    "linux",
    "databases",
    "sqlite",
    "performance",
    "travel",
    "cooking",
    "photos",
    "music",
    "books",
    "science",
    "politics",
    "economics",
    "design",
    "ux",
    "security",
    "networking",
    "devops",
    "testing",
    "release",
    "notes",
    "weekly",
    "links",
    "opinion",
    "tutorial",
    "howto",
    "review",
]


# -- small text helpers ---------------------------------------------------------------------------


def _words(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choices(WORDS, k=rng.randint(low, high)))


def _sentence(rng: random.Random) -> str:
    text = _words(rng, 6, 18)
    return text[0].upper() + text[1:] + rng.choice(".....?!")


def _title(rng: random.Random) -> str:
    return " ".join(word.capitalize() for word in rng.choices(WORDS, k=rng.randint(3, 9)))


def _person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


def _rfc822(when: datetime) -> str:
    return format_datetime(when, usegmt=True)


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _inline(rng: random.Random, base: str) -> str:
    """A sentence with now and then a link, emphasis or inline code."""
    text = _sentence(rng)
    roll = rng.random()
    if roll < 0.30:
        words = text.split(" ")
        at = rng.randrange(len(words))
        href = f"{base}/site/ref/{rng.choice(WORDS)}-{rng.randrange(10000)}.html"
        words[at] = f'<a href="{href}">{words[at]}</a>'
        text = " ".join(words)
    elif roll < 0.45:
        words = text.split(" ")
        at = rng.randrange(len(words))
        tag = rng.choice(("em", "strong", "code"))
        words[at] = f"<{tag}>{words[at]}</{tag}>"
        text = " ".join(words)
    return text


def _paragraph(rng: random.Random, base: str) -> str:
    return "<p>" + " ".join(_inline(rng, base) for _ in range(rng.randint(2, 6))) + "</p>"


def html_content(rng: random.Random, target: int, base: str) -> str:
    """HTML of about ``target`` bytes: paragraphs, links, images, lists, quotes, headings, code."""
    parts: list[str] = [_paragraph(rng, base)]
    size = len(parts[0])
    while size < target:
        roll = rng.random()
        if roll < 0.55:
            block = _paragraph(rng, base)
        elif roll < 0.67:
            tag = rng.choice(("ul", "ol"))
            items = "".join(f"<li>{_inline(rng, base)}</li>" for _ in range(rng.randint(2, 6)))
            block = f"<{tag}>{items}</{tag}>"
        elif roll < 0.77:
            width, height = rng.choice(((640, 480), (800, 600), (1200, 800), (320, 240)))
            src = f"{base}/img/{rng.randrange(100000):05d}.jpg"
            alt = escape(_words(rng, 2, 6))
            block = (
                f'<figure><img src="{src}" alt="{alt}" width="{width}" height="{height}" '
                f'loading="lazy"><figcaption>{_sentence(rng)}</figcaption></figure>'
            )
        elif roll < 0.84:
            block = f"<blockquote><p>{_sentence(rng)} {_sentence(rng)}</p></blockquote>"
        elif roll < 0.92:
            level = rng.choice(("h2", "h3"))
            block = f"<{level}>{_title(rng)}</{level}>"
        else:
            lines = "\n".join(
                f"{rng.choice(WORDS)}_{rng.choice(WORDS)} = {rng.choice(WORDS)}({rng.randrange(100)})"
                for _ in range(rng.randint(2, 8))
            )
            block = f"<pre><code>{escape(lines)}</code></pre>"
        parts.append(block)
        size += len(block) + 1
    return "\n".join(parts)


def comment_html(rng: random.Random, base: str) -> str:
    """A comment: mostly one short paragraph, sometimes a few, now and then a link."""
    paragraphs = [
        "<p>" + " ".join(_inline(rng, base) for _ in range(rng.randint(1, 4))) + "</p>"
        for _ in range(rng.choice((1, 1, 1, 1, 2, 2, 3)))
    ]
    return "\n".join(paragraphs)


def _summary(html: str, limit: int = 300) -> str:
    """A plain-text-ish summary: the first paragraph without tags, cut to ~``limit`` characters."""
    first = html.split("</p>", 1)[0]
    out, depth = [], 0
    for char in first:
        if char == "<":
            depth += 1
        elif char == ">":
            depth = max(0, depth - 1)
        elif not depth:
            out.append(char)
    text = "".join(out)
    return text[:limit].rsplit(" ", 1)[0] + " ..." if len(text) > limit else text


# -- plan --------------------------------------------------------------------------------------


def plan(feeds: int, seed: int) -> list[tuple[str, bool]]:
    """(format, is_blog) for each feed, with exact shares, shuffled deterministically."""
    rng = random.Random(f"plan:{seed}")
    formats: list[str] = []
    for index, (name, share) in enumerate(FORMAT_SHARES):
        count = feeds - len(formats) if index == len(FORMAT_SHARES) - 1 else round(feeds * share)
        formats.extend([name] * count)
    rng.shuffle(formats)
    blogs = set(rng.sample(range(feeds), round(feeds * BLOG_SHARE)))
    return [(formats[i], i in blogs) for i in range(feeds)]


def feed_name(index: int) -> str:
    return f"feed{index + 1:04d}"


# -- one feed -----------------------------------------------------------------------------------


def _write(root: Path, rel: str, text: str, mtime: float) -> int:
    path = root / rel
    data = text.encode("utf-8")
    path.write_bytes(data)
    gz_path = path.with_name(path.name + ".gz")
    with (
        open(gz_path, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0) as gz,
    ):
        gz.write(data)
    os.utime(path, (mtime, mtime))
    os.utime(gz_path, (mtime, mtime))
    return len(data)


_RSS2_NS = (
    'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/" '
    'xmlns:atom="http://www.w3.org/2005/Atom" '
    'xmlns:wfw="http://wellformedweb.org/CommentAPI/" '
    'xmlns:slash="http://purl.org/rss/1.0/modules/slash/"'
)


def _rss2_comment_feed(post: dict, comments: list[dict], self_url: str) -> str:
    items = []
    for c in comments:
        items.append(
            "<item>"
            f"<title>{escape('By: ' + c['author'])}</title>"
            f"<link>{escape(c['link'])}</link>"
            f"<dc:creator>{escape(c['author'])}</dc:creator>"
            f"<pubDate>{_rfc822(c['published'])}</pubDate>"
            f'<guid isPermaLink="false">{escape(c["id"])}</guid>'
            f"<description>{escape(_summary(c['html'], 150))}</description>"
            f"<content:encoded><![CDATA[{c['html']}]]></content:encoded>"
            "</item>"
        )
    last = comments[-1]["published"] if comments else post["published"]
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<rss version="2.0" {_RSS2_NS}>\n<channel>\n'
        f"<title>{escape('Comments on: ' + post['title'])}</title>\n"
        f'<atom:link href={quoteattr(self_url)} rel="self" type="application/rss+xml"/>\n'
        f"<link>{escape(post['link'])}</link>\n"
        f"<description>{escape('Comments on ' + post['title'])}</description>\n"
        f"<lastBuildDate>{_rfc822(last)}</lastBuildDate>\n"
        "<generator>aggregator-benchmark-corpus</generator>\n"
        + "\n".join(items)
        + "\n</channel>\n</rss>\n"
    )


def _atom_comment_feed(post: dict, comments: list[dict], self_url: str) -> str:
    entries = []
    for c in comments:
        ref = c["parent_id"] or post["id"]
        href = c["parent_link"] or post["link"]
        entries.append(
            "<entry>"
            f"<title>{escape('Comment by ' + c['author'])}</title>"
            f"<id>{escape(c['id'])}</id>"
            f'<link rel="alternate" type="text/html" href={quoteattr(c["link"])}/>'
            f"<published>{_iso(c['published'])}</published>"
            f"<updated>{_iso(c['published'])}</updated>"
            f"<author><name>{escape(c['author'])}</name>"
            f"<uri>{escape(c['author_url'])}</uri></author>"
            f'<thr:in-reply-to ref={quoteattr(ref)} href={quoteattr(href)} type="text/html"/>'
            f'<content type="html">{escape(c["html"])}</content>'
            "</entry>"
        )
    last = comments[-1]["published"] if comments else post["published"]
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<feed xmlns="http://www.w3.org/2005/Atom" '
        'xmlns:thr="http://purl.org/syndication/thread/1.0">\n'
        f"<title>{escape('Comments on: ' + post['title'])}</title>\n"
        f"<id>{escape(post['id'] + '/comments')}</id>\n"
        f"<updated>{_iso(last)}</updated>\n"
        f'<link rel="self" type="application/atom+xml" href={quoteattr(self_url)}/>\n'
        f'<link rel="alternate" type="text/html" href={quoteattr(post["link"])}/>\n'
        + "\n".join(entries)
        + "\n</feed>\n"
    )


def build_feed(args: tuple[int, str, bool, int, str, str]) -> dict:
    """Generate one feed (and its comment feeds when it is a blog); return its manifest record."""
    index, fmt, blog, seed, base, out = args
    root = Path(out)
    rng = random.Random(f"feed:{seed}:{index}")
    name = feed_name(index)
    mtime = FIXED_MTIME.timestamp()
    site = f"{base}/site/{name}"
    feed_rel = f"feeds/{name}.xml"
    feed_url = f"{base}/{feed_rel}"
    feed_title = _title(rng)
    feed_author = _person(rng)
    n_entries = rng.randint(*ENTRIES_RANGE)
    when = BASE_TIME - timedelta(minutes=rng.randint(0, 600))
    posts = []
    for e in range(n_entries):
        slug = "-".join(rng.choices(WORDS, k=4))
        post = {
            "n": e,
            "title": _title(rng),
            "link": f"{site}/{when:%Y/%m}/{slug}-{e}/",
            "id": f"tag:127.0.0.1,2024:{name}/e{e:03d}",
            "published": when,
            "author": feed_author if rng.random() < 0.8 else _person(rng),
            "tags": rng.sample(TAGS, rng.randint(0, 4)),
            "html": html_content(rng, rng.randint(*CONTENT_BYTES), base),
        }
        posts.append(post)
        when -= timedelta(minutes=rng.randint(30, 60 * 72))
    comment_feeds: list[dict] = []
    if blog:
        (root / "comments" / name).mkdir(parents=True, exist_ok=True)
        for post in posts:
            n_comments = min(
                COMMENTS_RANGE[1],
                COMMENTS_RANGE[0] + int(rng.expovariate(1 / COMMENTS_EXTRA_MEAN)),
            )
            rel = f"comments/{name}/e{post['n']:03d}.xml"
            url = f"{base}/{rel}"
            ctime = post["published"]
            comments: list[dict] = []
            for k in range(n_comments):
                ctime = min(BASE_TIME, ctime + timedelta(minutes=rng.randint(1, 600)))
                parent = (
                    comments[rng.randrange(len(comments))]
                    if comments and rng.random() < 0.2
                    else None
                )
                author = _person(rng)
                comments.append(
                    {
                        "id": f"{post['id']}/c{k + 1:04d}",
                        "link": f"{post['link']}#comment-{k + 1}",
                        "author": author,
                        "author_url": f"{base}/site/people/{author.replace(' ', '-').lower()}",
                        "published": ctime,
                        "html": comment_html(rng, base),
                        "parent_id": parent["id"] if parent else None,
                        "parent_link": parent["link"] if parent else None,
                    }
                )
            text = (
                _atom_comment_feed(post, comments, url)
                if fmt == "atom"
                else _rss2_comment_feed(post, comments, url)
            )
            size = _write(root, rel, text, mtime)
            post["comments_url"] = url
            post["comments_count"] = n_comments
            comment_feeds.append({"url": url, "comments": n_comments, "bytes": size})
    if fmt == "rss2":
        text = _rss2_feed(name, feed_title, site, feed_url, posts)
    elif fmt == "atom":
        text = _atom_feed(name, feed_title, feed_author, site, feed_url, posts)
    else:
        text = _rss1_feed(feed_title, site, feed_url, posts)
    size = _write(root, feed_rel, text, mtime)
    return {
        "name": name,
        "format": fmt,
        "blog": blog,
        "url": feed_url,
        "path": feed_rel,
        "bytes": size,
        "entries": n_entries,
        "comments": sum(cf["comments"] for cf in comment_feeds),
        "comment_feeds": comment_feeds,
    }


def _rss2_feed(name: str, title: str, site: str, self_url: str, posts: list[dict]) -> str:
    items = []
    for p in posts:
        cats = "".join(f"<category>{escape(t)}</category>" for t in p["tags"])
        extra = ""
        if "comments_url" in p:
            extra = (
                f"<comments>{escape(p['link'])}#comments</comments>"
                f"<wfw:commentRss>{escape(p['comments_url'])}</wfw:commentRss>"
                f"<slash:comments>{p['comments_count']}</slash:comments>"
            )
        items.append(
            "<item>"
            f"<title>{escape(p['title'])}</title>"
            f"<link>{escape(p['link'])}</link>"
            f"<dc:creator>{escape(p['author'])}</dc:creator>"
            f"<pubDate>{_rfc822(p['published'])}</pubDate>"
            f"{cats}"
            f'<guid isPermaLink="false">{escape(p["id"])}</guid>'
            f"<description>{escape(_summary(p['html']))}</description>"
            f"<content:encoded><![CDATA[{p['html']}]]></content:encoded>"
            f"{extra}"
            "</item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<rss version="2.0" {_RSS2_NS}>\n<channel>\n'
        f"<title>{escape(title)}</title>\n"
        f'<atom:link href={quoteattr(self_url)} rel="self" type="application/rss+xml"/>\n'
        f"<link>{escape(site)}/</link>\n"
        f"<description>{escape('Posts from ' + title + ' (' + name + ')')}</description>\n"
        f"<lastBuildDate>{_rfc822(posts[0]['published'])}</lastBuildDate>\n"
        "<language>en</language>\n<ttl>60</ttl>\n"
        "<generator>aggregator-benchmark-corpus</generator>\n"
        + "\n".join(items)
        + "\n</channel>\n</rss>\n"
    )


def _atom_feed(
    name: str, title: str, author: str, site: str, self_url: str, posts: list[dict]
) -> str:
    entries = []
    for p in posts:
        cats = "".join(f"<category term={quoteattr(t)}/>" for t in p["tags"])
        extra = ""
        if "comments_url" in p:
            extra = (
                f'<link rel="replies" type="application/atom+xml" href={quoteattr(p["comments_url"])} '
                f'thr:count="{p["comments_count"]}"/>'
                f'<link rel="replies" type="text/html" href={quoteattr(p["link"] + "#comments")} '
                f'thr:count="{p["comments_count"]}"/>'
            )
        entries.append(
            "<entry>"
            f"<title>{escape(p['title'])}</title>"
            f"<id>{escape(p['id'])}</id>"
            f'<link rel="alternate" type="text/html" href={quoteattr(p["link"])}/>'
            f"{extra}"
            f"<published>{_iso(p['published'])}</published>"
            f"<updated>{_iso(p['published'])}</updated>"
            f"<author><name>{escape(p['author'])}</name></author>"
            f"{cats}"
            f'<summary type="text">{escape(_summary(p["html"]))}</summary>'
            f'<content type="html">{escape(p["html"])}</content>'
            "</entry>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<feed xmlns="http://www.w3.org/2005/Atom" '
        'xmlns:thr="http://purl.org/syndication/thread/1.0" xml:lang="en">\n'
        f"<title>{escape(title)}</title>\n"
        f"<subtitle>{escape('Posts from ' + name)}</subtitle>\n"
        f"<id>tag:127.0.0.1,2024:{name}</id>\n"
        f"<updated>{_iso(posts[0]['published'])}</updated>\n"
        f'<link rel="self" type="application/atom+xml" href={quoteattr(self_url)}/>\n'
        f'<link rel="alternate" type="text/html" href={quoteattr(site + "/")}/>\n'
        f"<author><name>{escape(author)}</name></author>\n"
        "<generator>aggregator-benchmark-corpus</generator>\n" + "\n".join(entries) + "\n</feed>\n"
    )


def _rss1_feed(title: str, site: str, self_url: str, posts: list[dict]) -> str:
    seq = "".join(f"<rdf:li rdf:resource={quoteattr(p['link'])}/>" for p in posts)
    items = []
    for p in posts:
        subjects = "".join(f"<dc:subject>{escape(t)}</dc:subject>" for t in p["tags"])
        extra = ""
        if "comments_url" in p:
            extra = (
                f"<wfw:commentRss>{escape(p['comments_url'])}</wfw:commentRss>"
                f"<slash:comments>{p['comments_count']}</slash:comments>"
            )
        items.append(
            f"<item rdf:about={quoteattr(p['link'])}>"
            f"<title>{escape(p['title'])}</title>"
            f"<link>{escape(p['link'])}</link>"
            f"<description>{escape(_summary(p['html']))}</description>"
            f"<dc:date>{_iso(p['published'])}</dc:date>"
            f"<dc:creator>{escape(p['author'])}</dc:creator>"
            f"{subjects}"
            f"<content:encoded><![CDATA[{p['html']}]]></content:encoded>"
            f"{extra}"
            "</item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        'xmlns="http://purl.org/rss/1.0/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:wfw="http://wellformedweb.org/CommentAPI/" '
        'xmlns:slash="http://purl.org/rss/1.0/modules/slash/">\n'
        f"<channel rdf:about={quoteattr(self_url)}>"
        f"<title>{escape(title)}</title><link>{escape(site)}/</link>"
        f"<description>{escape('Posts from ' + title)}</description>"
        f"<items><rdf:Seq>{seq}</rdf:Seq></items></channel>\n" + "\n".join(items) + "\n</rdf:RDF>\n"
    )


# -- whole corpus -------------------------------------------------------------------------------


def _params(feeds: int, seed: int, port: int) -> dict:
    return {"generator": GENERATOR_VERSION, "feeds": feeds, "seed": seed, "port": port}


def load_manifest(out: Path) -> dict | None:
    try:
        return json.loads((out / "manifest.json").read_text())
    except (OSError, ValueError):
        return None


def generate(
    out: Path, feeds: int, seed: int, port: int, jobs: int | None = None, quiet: bool = False
) -> dict:
    """(Re)generate the corpus into ``out``; return the manifest."""
    if out.exists():
        shutil.rmtree(out)
    (out / "feeds").mkdir(parents=True)
    (out / "comments").mkdir()
    base = f"http://127.0.0.1:{port}"
    jobs = jobs or max(1, min(os.cpu_count() or 1, 4))
    tasks = [
        (i, fmt, blog, seed, base, str(out)) for i, (fmt, blog) in enumerate(plan(feeds, seed))
    ]
    started = time.monotonic()
    if jobs > 1 and feeds >= 20:
        with ProcessPoolExecutor(jobs) as pool:
            records = list(pool.map(build_feed, tasks, chunksize=4))
    else:
        records = [build_feed(task) for task in tasks]
    counts = {
        "feeds": len(records),
        "rss2": sum(r["format"] == "rss2" for r in records),
        "atom": sum(r["format"] == "atom" for r in records),
        "rss1": sum(r["format"] == "rss1" for r in records),
        "blogs": sum(r["blog"] for r in records),
        "entries": sum(r["entries"] for r in records),
        "comment_feeds": sum(len(r["comment_feeds"]) for r in records),
        "comments": sum(r["comments"] for r in records),
        "feed_bytes": sum(r["bytes"] for r in records),
        "comment_feed_bytes": sum(cf["bytes"] for r in records for cf in r["comment_feeds"]),
    }
    manifest = {
        "params": _params(feeds, seed, port),
        "base_url": base,
        "counts": counts,
        "generated_in_s": round(time.monotonic() - started, 1),
        "feeds": records,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=0))
    if not quiet:
        print(f"corpus: generated {describe(manifest)} in {manifest['generated_in_s']} s -> {out}")
    return manifest


def ensure(out: Path, feeds: int, seed: int, port: int, quiet: bool = False) -> dict:
    """Reuse the corpus in ``out`` when it was built with the same parameters, else build it."""
    manifest = load_manifest(out)
    if manifest and manifest.get("params") == _params(feeds, seed, port):
        if not quiet:
            print(f"corpus: reusing {describe(manifest)} in {out}")
        return manifest
    return generate(out, feeds, seed, port, quiet=quiet)


def describe(manifest: dict) -> str:
    c = manifest["counts"]
    return (
        f"{c['feeds']:,} feeds ({c['rss2']} RSS 2.0 / {c['atom']} Atom / {c['rss1']} RSS 1.0, "
        f"{c['blogs']} blogs), {c['entries']:,} entries, {c['comment_feeds']:,} comment feeds, "
        f"{c['comments']:,} comments, {(c['feed_bytes'] + c['comment_feed_bytes']) / 1e6:,.0f} MB"
    )


def comment_feed_urls(manifest: dict) -> list[str]:
    return [cf["url"] for r in manifest["feeds"] for cf in r["comment_feeds"]]


# -- aggregator config --------------------------------------------------------------------------


def _yaml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid YAML double-quoted scalar


def config_text(
    manifest: dict, workdir: Path, server_port: int = 8765, output_limit: int = 100
) -> str:
    """An aggregator YAML config for this corpus; database and public_dir live in ``workdir``."""
    lines = [
        "# Generated by benchmarks/corpus.py -- do not edit.",
        f"database: {_yaml_str(str(workdir / 'agg.db'))}",
        f"public_dir: {_yaml_str(str(workdir / 'public'))}",
        f"server: {{host: 127.0.0.1, port: {server_port}}}",
        "defaults: {interval: 1h, comments: false}",
        "sources:",
    ]
    for record in manifest["feeds"]:
        comments = ", comments: true" if record["blog"] else ""
        lines.append(f"  - {{name: {record['name']}, url: {_yaml_str(record['url'])}{comments}}}")
    lines += [
        "outputs:",
        f"  - {{name: all, title: Everything, limit: {output_limit}, formats: [atom, rss, json]}}",
        "",
    ]
    return "\n".join(lines)


def write_config(manifest: dict, workdir: Path, path: Path, server_port: int = 8765) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config_text(manifest, workdir, server_port))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port the corpus is served on"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output directory (default benchmarks/.corpus/feeds{N}-seed{S}-port{P})",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where the config's database/public_dir point (default: a temp dir)",
    )
    parser.add_argument("--force", action="store_true", help="regenerate even if cached")
    args = parser.parse_args(argv)
    out = args.out or default_dir(args.feeds, args.seed, args.port)
    manifest = (generate if args.force else ensure)(out, args.feeds, args.seed, args.port)
    workdir = args.workdir or Path(os.environ.get("TMPDIR", "/tmp")) / "aggregator-bench"
    config = write_config(manifest, workdir, out / "aggregator.yaml")
    print(f"corpus: config {config} (database in {workdir})")
    return 0


def default_dir(feeds: int, seed: int, port: int) -> Path:
    return Path(__file__).resolve().parent / ".corpus" / f"feeds{feeds}-seed{seed}-port{port}"


if __name__ == "__main__":
    sys.exit(main())
