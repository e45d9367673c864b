"""In-process publishing benchmark: the time to render output ``all`` (100 entries; Atom, RSS and
JSON Feed) from the generated 1,000,000-entry / 5,000,000-comment database, p50 and p95.

    .venv/bin/python benchmarks/publish_render.py [--runs 30] [--db PATH] [--json FILE]

Runs inside the project's venv, in its own interpreter: the database is opened once, read-only
(``Storage(read_only=True)``: no migration, SQLite refuses every write), the configuration is
``publish.publish_config`` (1,000 sources, 30% with ``comments: true``, one output ``all`` with
``limit: 100``, the default ``pages: 10``), and ``Publisher.publish()`` writes into a temporary
``public_dir``, never next to the database. Without ``--db`` the cached database of
``publish.py`` is used; it must exist (this script never generates it).

Three scenarios, each one unmeasured warm-up and then ``--runs`` measured publishes:

``cold``
    A new ``Storage`` connection and a new ``Publisher`` for every run, and every memoizing
    cache in ``aggregator`` cleared: every document is rendered (the feed, pages 2-10, every
    comment feed, the latest comments), as on the daemon's first publish after a start. The
    files are already there from the warm-up, so unchanged bytes are compared, not rewritten,
    as after a restart.
``window shift``
    One ``Publisher`` kept between runs; before each run it forgets what it rendered for the
    output's feed and its pages (2-10). That is the work of a publish after a new entry arrived
    at the top (every page moves by one entry) while no comment thread changed.
``unchanged``
    One ``Publisher`` kept, nothing forgotten: the floor every publish pays (selection, thread
    checks, signatures).

``feed`` is the part the target names: choosing the 100 entries (``feed: select``), their
comment counts (``feed: threads``) and rendering and writing the three documents
(``feed: atom``, ``feed: rss``, ``feed: json``), added up per run. Stages come from
``Publisher.times`` (exclusive times; they add up to the whole publish). Percentiles are
nearest-rank over the measured runs.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

FEED_STAGES = ("feed: select", "feed: threads", "feed: atom", "feed: rss", "feed: json")
SCENARIOS = ("cold", "window shift", "unchanged")


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (``share`` in 0..1) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def clear_memo_caches() -> int:
    """Clear every ``functools`` cache of an imported ``aggregator`` module; return how many."""
    cleared = 0
    for name, module in list(sys.modules.items()):
        if not (name == "aggregator" or name.startswith("aggregator.")) or module is None:
            continue
        for value in list(vars(module).values()):
            clear = getattr(value, "cache_clear", None)
            if callable(clear) and getattr(value, "__module__", None) == name:
                clear()
                cleared += 1
    return cleared


def measure(db: Path, workdir: Path, runs: int, progress: Callable[[str], None] = print) -> dict:
    """Publish output ``all`` of ``db`` in the three scenarios; return every run's figures."""
    import publish  # the benchmark's own module: publish_config, the cached database's key

    from aggregator.config.loading import load_config
    from aggregator.publish.publisher import Publisher
    from aggregator.storage import Storage

    workdir.mkdir(parents=True, exist_ok=True)
    meta_path = db.with_suffix(".json")
    made = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    n_sources = int(made.get("sources", 1000))
    config = load_config(
        publish.publish_config(workdir, db, n_sources, seed=publish.corpus.DEFAULT_SEED, port=9)
    )
    output = config.outputs[0]
    feeds = config.public_dir / "feeds"

    def rendered_for_window(path: Path) -> bool:
        """The output's feed and its pages: what a new entry at the top changes."""
        return path.parent == feeds or path.parent == feeds / output.name / "page"

    # SQLite names them after the real file, wherever a symbolic link to it points from.
    sidecars = [Path(f"{db.resolve()}{suffix}") for suffix in ("-wal", "-shm")]
    existed = [path.exists() for path in sidecars]
    before = publish._fingerprint(db)
    storage = Storage(db, read_only=True)
    fresh = Storage(db, read_only=True)
    results: dict[str, dict] = {}
    try:
        kept = Publisher(config, storage)
        for scenario in SCENARIOS:
            totals: list[float] = []
            stages: dict[str, list[float]] = {}
            changed: list[int] = []
            for run in range(runs + 1):  # run 0 is the warm-up
                if scenario == "cold":
                    clear_memo_caches()
                    fresh.close()
                    fresh = Storage(db, read_only=True)  # a new connection remembers nothing
                    publisher = Publisher(config, fresh)
                else:
                    publisher = kept
                    if scenario == "window shift":
                        for path in [p for p in kept._signatures if rendered_for_window(p)]:
                            del kept._signatures[path]
                gc.collect()
                started = time.perf_counter()
                files = publisher.publish()
                elapsed = time.perf_counter() - started
                if run == 0:
                    continue
                totals.append(elapsed * 1000)
                changed.append(len(files))
                for stage, seconds in publisher.times.seconds.items():
                    stages.setdefault(stage, []).append(seconds * 1000)
            for values in stages.values():  # a stage a run skipped took no time in that run
                values.extend([0.0] * (runs - len(values)))
            feed = [sum(stages.get(s, [0.0] * runs)[i] for s in FEED_STAGES) for i in range(runs)]
            results[scenario] = {
                "total_ms": totals,
                "feed_ms": feed,
                "stages_ms": stages,
                "files_changed": changed,
            }
            progress(
                f"  {scenario}: publish p50 {statistics.median(totals):.1f} ms, "
                f"p95 {percentile(totals, 0.95):.1f} ms; feed p50 {statistics.median(feed):.1f} ms"
            )
    finally:
        storage.close()
        fresh.close()
        wal, shm = sidecars
        # A read-only connection leaves an empty WAL and its index behind: remove ours.
        if not any(existed) and (not wal.exists() or wal.stat().st_size == 0):
            wal.unlink(missing_ok=True)
            shm.unlink(missing_ok=True)
    files = [p for p in config.public_dir.rglob("*") if p.is_file()]
    return {
        "database": str(db),
        "generated": made,
        "runs": runs,
        "output": {"name": output.name, "limit": output.limit, "pages": output.pages},
        "files": len(files),
        "bytes": sum(p.stat().st_size for p in files),
        "database_unchanged": publish._fingerprint(db) == before,
        "scenarios": results,
    }


def summary_rows(result: dict) -> tuple[list[list[str]], list[list[str]]]:
    """Two tables: p50/p95 per scenario, and p50 per stage and scenario (all in ms)."""
    scenarios = result["scenarios"]
    runs: list[list[str]] = []
    for scenario in SCENARIOS:
        data = scenarios.get(scenario)
        if not data:
            continue
        for label, key in (
            ("feed (100 entries, 3 formats)", "feed_ms"),
            ("whole publish", "total_ms"),
        ):
            if key == "feed_ms" and scenario == "unchanged":
                continue  # nothing is rendered: the feed's figure would be its checks only
            values = data[key]
            runs.append(
                [
                    f"{scenario}: {label}",
                    f"{statistics.median(values):.1f}",
                    f"{percentile(values, 0.95):.1f}",
                    f"{min(values):.1f}",
                    f"{max(values):.1f}",
                ]
            )
    names: list[str] = []
    for scenario in SCENARIOS:
        for stage in scenarios.get(scenario, {}).get("stages_ms", {}):
            if stage not in names:
                names.append(stage)
    order = {stage: index for index, stage in enumerate(FEED_STAGES)}
    names.sort(key=lambda stage: (order.get(stage, len(order)), stage))
    stages = []
    for stage in names:
        row = [stage]
        for scenario in SCENARIOS:
            values = scenarios.get(scenario, {}).get("stages_ms", {}).get(stage)
            row.append(f"{statistics.median(values):.1f}" if values else "-")
        stages.append(row)
    return runs, stages


RUN_HEADER = ["in-process publish of output all (ms)", "p50", "p95", "min", "max"]
STAGE_HEADER = ["stage (p50 ms)", *SCENARIOS]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--db", type=Path, default=None, help="default: publish.py's cached one")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temp dir")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure here")
    args = parser.parse_args(argv)
    import publish
    from harness import table

    db = args.db
    if db is None:
        cached = sorted(publish.CACHE_DIR.glob("publish-*.db"))
        if not cached:
            print("publish_render: SKIPPED -- no generated database; run publish.py first")
            return 0
        db = cached[0]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="aggregator-render-"))
    try:
        print(f"publishing output all of {db.name} ({args.runs} runs per scenario)", flush=True)
        result = measure(db, workdir, args.runs, progress=lambda text: print(text, flush=True))
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    runs, stages = summary_rows(result)
    print()
    print(table(runs, RUN_HEADER))
    print()
    print(table(stages, STAGE_HEADER))
    if not result["database_unchanged"]:
        print("WARNING: the database file changed while it was open read-only")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
