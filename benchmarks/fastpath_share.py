"""How many real-world feeds take the lxml fast path, and why the others are declined.

    .venv/bin/python benchmarks/fastpath_share.py [--corpus ../shared/corpora/realworld]
        [--content-type application/xml] [--show 3]

Every file of ``sources.json`` with ``kind == "feed"`` is read by :mod:`aggregator.parse.fastfeed` as
``aggregator poll`` would read it from ``http://127.0.0.1:8089/feeds/<name>`` (the real-world
benchmark's server, which answers ``Content-Type: application/xml``); the share accepted is
printed, then each decline reason with its count, largest first.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

from lxml import etree

from aggregator.parse import fastfeed
from aggregator.parse import feed as parse
from aggregator.parse.fastxml import Declined

ROOT = Path(__file__).resolve().parents[1]


def feed_files(corpus: Path) -> list[Path]:
    """The corpus's feed files, in ``sources.json`` order."""
    sources = json.loads((corpus / "sources.json").read_text())
    return [corpus / "files" / item["file"] for item in sources if item["kind"] == "feed"]


def reason(content: bytes, headers: dict[str, str], url: str) -> str | None:
    """``None`` when the fast path accepts ``content``, else why it declines (generalised)."""
    try:
        fastfeed._read(content, headers, url, parse.MAX_ENTRIES)
    except Declined as error:
        text = str(error)
        return re.sub(r": '.*", ": <date>", text)
    except etree.XMLSyntaxError:
        return "not well-formed XML"
    except (ValueError, TypeError, OverflowError) as error:
        return f"{type(error).__name__}"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared/corpora/realworld")
    parser.add_argument("--content-type", default="application/xml")
    parser.add_argument("--show", type=int, default=3, help="files named per reason")
    args = parser.parse_args()
    if not (args.corpus / "sources.json").is_file():
        print(f"no corpus at {args.corpus}", file=sys.stderr)
        return 2
    headers = {"content-type": args.content_type} if args.content_type else {}
    reasons: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    files = feed_files(args.corpus)
    for path in files:
        url = f"http://127.0.0.1:8089/feeds/{path.name}"
        why = reason(path.read_bytes(), headers, url)
        if why is not None:
            reasons[why] += 1
            examples.setdefault(why, []).append(path.name)
    accepted = len(files) - sum(reasons.values())
    print(
        f"fast path: {accepted} of {len(files)} feeds accepted ({100 * accepted / len(files):.1f}%)"
    )
    for why, count in reasons.most_common():
        named = ", ".join(name[-50:] for name in examples[why][: args.show])
        print(f"{count:4d}  {why}    [{named}]")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # piped into head
        sys.exit(0)
