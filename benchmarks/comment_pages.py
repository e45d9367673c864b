"""Comments read from the shared corpus's blog pages, per page, against what a reader sees.

    .venv/bin/python benchmarks/comment_pages.py [--preset auto|typepad|wordpress|best-preset]

For every page of ``../shared/corpora/realworld`` (kind == page) it prints the detector that
matched, the comments found, how many have an author and a date, the expected count (from
``tests/data/corpus_pages_expected.json``, counted by reading each page), and whether the sample
comments written there (author and calendar date) are among those read. ``best-preset`` is the
situation before issue 14: whichever of ``typepad`` and ``wordpress`` finds more on each page.

Totals at the end: comments found / expected, the share with the right author and date (a found
comment whose author and date agree with the page; counted per page as min(found with author and
date, expected with author and date), which the sample check keeps honest), and items read that
are not comments (found beyond the expected count, plus samples missed).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpora" / "realworld"
EXPECTED = ROOT / "tests" / "data" / "corpus_pages_expected.json"
# The captures are old: relative dates count from a fixed time, not today.
FETCHED_AT = datetime(2020, 1, 1, tzinfo=UTC)


def read_page(path: Path, preset: str, url: str):
    """(detector, comments) of one page with one preset, ``auto`` or the better of the two old."""
    html = path.read_bytes()
    if preset == "best-preset":
        # Only the page API of before issue 14 (extract_comments and a preset), so that the same
        # script measures the old code
        # (PYTHONPATH=<old checkout> python benchmarks/comment_pages.py --preset best-preset).
        from aggregator.comments.pages import extract_comments
        from aggregator.comments.selectors import PRESETS

        runs = [(n, extract_comments(html, url, PRESETS[n])) for n in ("typepad", "wordpress")]
        name, comments = max(runs, key=lambda run: len(run[1]))
        return (name if comments else None), comments, ()
    from aggregator.comments.detect import read_comments

    found = read_comments(html, url, preset, now=FETCHED_AT)
    return found.detector, found.comments, found.script_systems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="auto")
    args = parser.parse_args()
    if not CORPUS.is_dir():
        print(f"corpus not found: {CORPUS}", file=sys.stderr)
        return 2
    expected = json.loads(EXPECTED.read_text())["pages"]
    totals = dict(expected=0, found=0, right=0, extra=0, author=0, date=0)
    print(f"{'page':<44} {'detector':<11} {'found':>5} {'auth':>5} {'date':>5} {'exp':>4}  "
          "samples  scripts")
    for name, want in sorted(expected.items()):
        path = CORPUS / "files" / want["file"]
        detector, comments, systems = read_page(path, args.preset, want["url"])
        with_author = sum(1 for c in comments if c.author)
        with_date = sum(1 for c in comments if c.published_at)
        both = sum(1 for c in comments if c.author and c.published_at)
        read = {(c.author, c.published_at and c.published_at.date().isoformat()) for c in comments}
        samples = [tuple(s) for s in want.get("samples", [])]
        hits = sum(1 for s in samples if s in read)
        missed = len(samples) - hits
        count = want["count"]
        dated = want.get("with_author_and_date", count)
        right = min(both, dated) if not missed else max(0, min(both, dated) - missed)
        # Pages whose comments show neither author nor date: found comments are right as such.
        right += min(len(comments), count - dated)
        totals["expected"] += count
        totals["found"] += len(comments)
        totals["right"] += min(right, count)
        totals["extra"] += max(0, len(comments) - count) + missed
        totals["author"] += with_author
        totals["date"] += with_date
        print(
            f"{name:<44} {detector or '-':<11} {len(comments):>5} {with_author:>5} "
            f"{with_date:>5} {count:>4}  {hits}/{len(samples):<6} {','.join(systems) or '-'}"
        )
    share = totals["right"] / totals["expected"] if totals["expected"] else 1.0
    extra = totals["extra"] / totals["found"] if totals["found"] else 0.0
    print(
        f"\npreset {args.preset}: found {totals['found']} of {totals['expected']} expected; "
        f"right author and date {totals['right']} ({share:.1%}); "
        f"not comments {totals['extra']} ({extra:.1%} of found)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
