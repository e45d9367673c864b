"""SSRF rules against "public" servers (issue 12), in a private network namespace that the
test makes itself (see netns.py): nothing here touches a real network."""

from __future__ import annotations

from pathlib import Path

from netns import run_in_namespace

# Runs inside the namespace: a "public" blog at 93.184.215.14 whose feed moved for good
# (301) to moved.example, first a "public" 93.184.215.15, later re-pointed at 127.0.0.1,
# where an internal service answers.
ADOPTED_REDIRECT = r"""
import json, os, subprocess, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

work = Path(os.environ["WORK"])
hits = {"internal": 0, "moved": 0}

def feed(title):
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        f'<link>http://feeds.example/</link><item><title>{title}</title>'
        f'<guid>{title}</guid></item></channel></rss>'
    ).encode()

def server(address, port, answer):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            status, headers, body = answer(self)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args):
            pass
    httpd = ThreadingHTTPServer((address, port), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()

def blog(handler):
    return 301, {"Location": "http://moved.example:8080/feed"}, b""

def moved(handler):
    hits["moved"] += 1
    return 200, {"Content-Type": "application/rss+xml"}, feed("public post")

def internal(handler):
    hits["internal"] += 1
    return 200, {"Content-Type": "application/rss+xml"}, feed("INTERNAL SECRET")

server("93.184.215.14", 80, blog)
server("93.184.215.15", 8080, moved)
server("127.0.0.1", 8080, internal)

config = work / "aggregator.yaml"
config.write_text(
    f"database: {work / 'aggregator.db'}\n"
    f"public_dir: {work / 'public'}\n"
    "defaults:\n  redirect_adopt_after: 1\n"
    "sources:\n  - name: blog\n    url: http://feeds.example/feed\n"
)

def poll():
    done = subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(config), "poll"],
        capture_output=True, text=True, timeout=60,
    )
    return done.stdout + done.stderr

first = poll()
# The name of the adopted URL now points at an internal address (rewritten in place, so the
# bind mount over /etc/hosts shows it).
hosts = Path(os.environ["HOSTS_FILE"])
hosts.write_text(hosts.read_text().replace("93.184.215.15 moved.example", "127.0.0.1 moved.example"))
second = poll()

from aggregator.storage import Storage
with Storage(work / "aggregator.db") as storage:
    state = storage.get_source("blog")
    titles = [e.title for e in storage.list_entries(["blog"], 50)]
print(json.dumps({
    "first": first, "second": second, "hits": hits, "url": state.url,
    "last_error": state.last_error, "titles": titles,
}))
"""


def test_an_adopted_redirect_stays_a_found_url(tmp_path: Path) -> None:
    """Issue 12, item 3: once a 301 is adopted, the new URL is still judged as a URL found
    in the configured one: when its name comes to resolve to 127.0.0.1, it is refused."""
    result = run_in_namespace(
        ADOPTED_REDIRECT,
        folder=tmp_path,
        addresses=["93.184.215.14", "93.184.215.15"],
        hosts="93.184.215.14 feeds.example\n93.184.215.15 moved.example\n",
    )
    assert result["url"] == "http://moved.example:8080/feed", result["first"]
    assert result["hits"]["moved"] == 1
    assert "public post" in result["titles"]
    assert result["hits"]["internal"] == 0, "the internal service was reached"
    assert "INTERNAL SECRET" not in result["titles"]
    assert "127.0.0.1 is a loopback address" in (result["last_error"] or ""), result["second"]
