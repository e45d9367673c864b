"""Status page benchmark: one page of ``/status`` over 10,000 sources (issue 18).

Builds a database of ``--sources`` sources (a fifth failing; five entries, five comments and
one logged poll each) in a temporary folder, then times :func:`build_status_page` plus the
template for the first page sorted by state, a middle page, and the first page by name, and
prints the median of ``--repeat`` runs of each. No network::

    .venv/bin/python benchmarks/status_page.py --sources 10000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from test_status_page import _many_sources  # noqa: E402

from aggregator.config.loading import load_config  # noqa: E402
from aggregator.serve.status_page import build_status_page, templates  # noqa: E402
from aggregator.storage import Storage  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "aggregator.yaml"
        path.write_text("database: aggregator.db\n")
        config = load_config(path)
        began = time.perf_counter()
        _many_sources(config, args.sources)
        print(f"built {args.sources} sources in {time.perf_counter() - began:.1f} s")
        now = datetime(2024, 5, 20, 12, tzinfo=UTC)
        pages = max(1, args.sources // 100)
        with Storage(config.database) as storage:
            for sort, number in (("state", 1), ("state", pages // 2 or 1), ("name", 1)):
                times = []
                for _ in range(args.repeat):
                    began = time.perf_counter()
                    page = build_status_page(storage, config, now, page=number, sort=sort)
                    templates.get_template("status.html").render(status=page)
                    times.append(time.perf_counter() - began)
                print(
                    f"status page {number} by {sort} of {args.sources} sources: "
                    f"{statistics.median(times) * 1000:.0f} ms median of {args.repeat}"
                )


if __name__ == "__main__":
    main()
