"""Publishing benchmark: ``aggregator publish`` over a database of 1,000,000 entries and 5,000,000
comments, generated directly into SQLite.

    .venv/bin/python benchmarks/run.py --only publish
    .venv/bin/python benchmarks/publish.py [--entries 1000000] [--comments 5000000] [--generate-only]

The schema comes from the project itself (``create_schema`` below: ``aggregator.storage.Storage``
applies its migrations to an empty file); rows are then bulk-inserted with plain sqlite3, using the
project's own helpers for timestamps and public ids (``format_time``, ``entry_public_id``,
``comment_public_id``). The generator checks the schema it got against ``EXPECTED_COLUMNS`` and
refuses with a clear message when a NOT NULL column it does not know appears.

The generated database is cached in ``benchmarks/.cache/`` (keyed by the schema SQL and the
parameters). ``aggregator publish`` runs on the cached file itself (publish only reads the database;
if the file changes anyway, the cache is discarded and the report says so); ``--publish-copy``
copies it into the run's temp dir first. Expect about 19 GB for the default size (the full-text
index included) and about 12 minutes to build it once.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import random
import shutil
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus  # noqa: E402
import harness  # noqa: E402
from harness import (  # noqa: E402
    BENCH_DIR,
    ROOT,
    Section,
    fmt_num,
    project_command,
    run_measured,
)

GENERATOR_VERSION = 2
CACHE_DIR = BENCH_DIR / ".cache"
BASE_URL = "http://127.0.0.1:9"  # discard port: these sources are never polled
BLOG_SHARE = 0.3

# The columns the generator fills, per table (the schema of migration 0001_initial). Columns the
# schema has beyond these must be nullable or have a default; columns listed here but absent from
# the schema are simply left out.
EXPECTED_COLUMNS: dict[str, tuple[str, ...]] = {
    "sources": (
        "id",
        "name",
        "url",
        "title",
        "link",
        "etag",
        "last_modified",
        "last_polled_at",
        "last_status",
        "error_count",
        "next_poll_at",
        "created_at",
    ),
    "entries": (
        "id",
        "source_id",
        "key",
        "public_id",
        "guid",
        "title",
        "link",
        "author",
        "summary",
        "content",
        "published_at",
        "updated_at",
        "first_seen_at",
        "sort_at",
        "changed_at",
        "content_hash",
        "categories",
        "enclosures",
        "comments_feed_url",
        "comments_page_url",
        "comment_count_hint",
        "comment_count",
        "last_comment_at",
        "comments_polled_at",
    ),
    "comments": (
        "id",
        "entry_id",
        "key",
        "public_id",
        "author",
        "author_url",
        "title",
        "content",
        "link",
        "number",
        "parent_key",
        "published_at",
        "first_seen_at",
        "sort_at",
        "changed_at",
        "content_hash",
    ),
}


class Skip(Exception):
    """The section cannot run (yet); the message says why."""


# =============================================================================================
# THE ONE PLACE THAT DEPENDS ON THE PROJECT'S STORAGE API -- keep it in step with aggregator.
# =============================================================================================
def create_schema(db_path: Path) -> None:
    """Create an empty database at ``db_path`` with the project's current schema.

    Uses ``aggregator.storage.Storage``, which creates the file and applies every migration.
    Raises :class:`Skip` when the project has no storage layer (yet).
    """
    try:
        from aggregator.storage import Storage
    except ImportError as error:
        raise Skip(f"the project has no aggregator.storage.Storage yet ({error})") from None
    storage = Storage(db_path)
    storage.close()


def project_helpers() -> tuple:
    """``format_time``, ``entry_public_id``, ``comment_public_id`` from aggregator.storage."""
    try:
        from aggregator.storage.ids import comment_public_id, entry_public_id
        from aggregator.storage.rows import format_time
    except ImportError as error:
        raise Skip(f"aggregator.storage lacks the id/time helpers ({error})") from None
    return format_time, entry_public_id, comment_public_id


def open_for_bulk_insert(db_path: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection with the application functions the schema's triggers call.

    ``aggregator.storage.register_functions`` registers them (e.g. ``aggregator_text`` for the
    full-text index). Deterministic ones are memoized here: the generator's content comes from a
    few thousand pooled snippets, so each is converted once instead of millions of times -- the
    same results, much faster.
    """
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        from aggregator.storage.functions import register_functions
    except ImportError:
        return conn  # an older schema without application functions

    class _Memoizing:
        def __init__(self, connection: sqlite3.Connection):
            self._connection = connection

        def create_function(self, name, narg, func, *, deterministic=False):
            if deterministic:
                func = functools.lru_cache(maxsize=50_000)(func)
            self._connection.create_function(name, narg, func, deterministic=deterministic)

        def __getattr__(self, name):
            return getattr(self._connection, name)

    register_functions(_Memoizing(conn))
    return conn


# =============================================================================================


def schema_signature(db_path: Path) -> tuple[str, dict[str, list[tuple]]]:
    conn = sqlite3.connect(db_path)
    try:
        sql = "\n".join(
            row[0]
            for row in conn.execute(
                "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type, name"
            )
        )
        columns = {
            table: list(conn.execute(f'PRAGMA table_info("{table}")')) for table in EXPECTED_COLUMNS
        }
    finally:
        conn.close()
    return sql, columns


def check_schema(columns: dict[str, list[tuple]]) -> dict[str, list[str]]:
    """The columns to fill per table; raises Skip when a table or a required column is unknown."""
    usable: dict[str, list[str]] = {}
    problems = []
    for table, expected in EXPECTED_COLUMNS.items():
        info = columns[table]
        if not info:
            problems.append(f"no table {table!r}")
            continue
        present = {row[1] for row in info}
        for _cid, name, _type, notnull, default, pk in info:
            if notnull and default is None and not pk and name not in expected:
                problems.append(
                    f"{table}.{name} is NOT NULL without default and unknown to "
                    "benchmarks/publish.py (add it to EXPECTED_COLUMNS and the row maker)"
                )
        usable[table] = [name for name in expected if name in present]
    if problems:
        raise Skip("the schema changed: " + "; ".join(problems))
    return usable


# -- rows ------------------------------------------------------------------------------------


def source_names(count: int) -> list[str]:
    return [f"src{i + 1:05d}" for i in range(count)]


def generate(
    db_path: Path,
    n_sources: int,
    n_entries: int,
    n_comments: int,
    seed: int,
    usable: dict[str, list[str]],
    progress=print,
) -> dict:
    format_time, entry_public_id, comment_public_id = project_helpers()
    rng = random.Random(f"publish:{seed}")
    base = BASE_URL
    progress("  building content pools ...")
    entry_pool = [
        corpus.html_content(rng, rng.randint(*corpus.CONTENT_BYTES), base) for _ in range(2000)
    ]
    summary_pool = [corpus._summary(html) for html in entry_pool]
    comment_pool = [corpus.comment_html(rng, base) for _ in range(5000)]
    title_pool = [corpus._title(rng) for _ in range(5000)]
    people = [corpus._person(rng) for _ in range(3000)]
    tags_pool = [json.dumps(rng.sample(corpus.TAGS, rng.randint(0, 4))) for _ in range(200)]

    end = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    span = timedelta(days=730).total_seconds()
    names = source_names(n_sources)
    blogs = set(rng.sample(range(n_sources), round(n_sources * BLOG_SHARE)))
    polled = format_time(end)

    conn = open_for_bulk_insert(db_path)
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -1000000")
    conn.execute("PRAGMA foreign_keys = OFF")

    def insert(table: str, rows) -> int:
        cols = usable[table]
        sql = f'INSERT INTO "{table}" ({", ".join(cols)}) VALUES ({", ".join("?" for _ in cols)})'
        done = 0
        batch: list[tuple] = []
        started = time.monotonic()
        conn.execute("BEGIN")
        for row in rows:
            batch.append(tuple(row.get(col) for col in cols))
            if len(batch) >= 50_000:
                conn.executemany(sql, batch)
                done += len(batch)
                batch.clear()
                if done % 500_000 == 0:
                    conn.execute("COMMIT")
                    conn.execute("BEGIN")
                    progress(f"    {table}: {done:,} rows ({time.monotonic() - started:.0f} s)")
        if batch:
            conn.executemany(sql, batch)
            done += len(batch)
        conn.execute("COMMIT")
        return done

    def sources():
        for i, name in enumerate(names):
            yield {
                "id": i + 1,
                "name": name,
                "url": f"{base}/feeds/{name}.xml",
                "title": title_pool[i % len(title_pool)],
                "link": f"{base}/site/{name}/",
                "etag": f'"{i:x}-bench"',
                "last_modified": "Sat, 01 Jun 2024 12:00:00 GMT",
                "last_polled_at": polled,
                "last_status": 200,
                "error_count": 0,
                "next_poll_at": format_time(end + timedelta(hours=1)),
                "created_at": polled,
            }

    # Entries: spread over sources and over two years; each gets a time, newest last id.
    entry_times = sorted(rng.random() for _ in range(n_entries))
    entry_source = [rng.randrange(n_sources) for _ in range(n_entries)]
    # Comments: only on blog entries; a skewed count per entry adding up exactly to n_comments.
    blog_entries = [i for i in range(n_entries) if entry_source[i] in blogs] or list(
        range(n_entries)
    )
    mean = n_comments / max(1, len(blog_entries))
    counts = {i: min(2000, int(rng.expovariate(1 / mean)) + 1) for i in blog_entries}
    total = sum(counts.values())
    keys = list(counts)
    while total != n_comments:
        i = keys[rng.randrange(len(keys))]
        if total > n_comments and counts[i] > 0:
            step = min(counts[i], total - n_comments, 10)
            counts[i] -= step
            total -= step
        elif total < n_comments:
            step = min(n_comments - total, 10)
            counts[i] += step
            total += step

    entry_meta: list[tuple[str, datetime]] = [None] * n_entries  # type: ignore[list-item]

    def entries():
        for i in range(n_entries):
            src = entry_source[i]
            name = names[src]
            when = (end - timedelta(seconds=span * (1 - entry_times[i]))).replace(microsecond=0)
            stamp = format_time(when)
            key = f"tag:bench,2024:{name}/{i}"
            public = entry_public_id(name, key)
            entry_meta[i] = (public, when)
            n = counts.get(i, 0)
            link = f"{base}/site/{name}/{i}/"
            pool = i % len(entry_pool)
            yield {
                "id": i + 1,
                "source_id": src + 1,
                "key": key,
                "public_id": public,
                "guid": key,
                "title": title_pool[i % len(title_pool)],
                "link": link,
                "author": people[i % len(people)],
                "summary": summary_pool[pool],
                "content": entry_pool[pool],
                "published_at": stamp,
                "updated_at": stamp,
                "first_seen_at": stamp,
                "sort_at": stamp,
                "changed_at": stamp,
                "content_hash": hashlib.sha1(f"{key}:{pool}".encode()).hexdigest(),
                "categories": tags_pool[i % len(tags_pool)],
                "enclosures": "[]",
                "comments_feed_url": f"{base}/comments/{name}/{i}.xml" if src in blogs else None,
                "comments_page_url": f"{link}#comments" if src in blogs else None,
                "comment_count_hint": n if src in blogs else None,
                "comment_count": n,
                "last_comment_at": format_time(when + timedelta(minutes=n * 7)) if n else None,
                "comments_polled_at": polled if src in blogs else None,
            }

    def comments():
        cid = 0
        for i in blog_entries:
            n = counts[i]
            if not n:
                continue
            public, when = entry_meta[i]
            for k in range(n):
                cid += 1
                key = f"c{k + 1}"
                at = format_time(when + timedelta(minutes=(k + 1) * 7))
                author = people[(cid * 7) % len(people)]
                parent = f"c{rng.randrange(k) + 1}" if k and rng.random() < 0.2 else None
                yield {
                    "id": cid,
                    "entry_id": i + 1,
                    "key": key,
                    "public_id": comment_public_id(public, key),
                    "author": author,
                    "author_url": f"{base}/people/{cid % 3000}",
                    "title": f"By: {author}",
                    "content": comment_pool[cid % len(comment_pool)],
                    "link": f"{base}/site/{i}/#comment-{k + 1}",
                    "number": k + 1,
                    "parent_key": parent,
                    "published_at": at,
                    "first_seen_at": at,
                    "sort_at": at,
                    "changed_at": at,
                    "content_hash": hashlib.sha1(f"{public}:{key}".encode()).hexdigest(),
                }

    started = time.monotonic()
    made = {"sources": insert("sources", sources())}
    progress(f"  sources: {made['sources']:,}")
    made["entries"] = insert("entries", entries())
    progress(f"  entries: {made['entries']:,} ({time.monotonic() - started:.0f} s)")
    made["comments"] = insert("comments", comments())
    progress(f"  comments: {made['comments']:,} ({time.monotonic() - started:.0f} s)")
    conn.execute("ANALYZE")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()
    made["blog_sources"] = len(blogs)
    made["generated_in_s"] = round(time.monotonic() - started, 1)
    return made


def ensure_database(
    n_sources: int,
    n_entries: int,
    n_comments: int,
    seed: int,
    schema_sql: Path | None = None,
    progress=print,
) -> tuple[Path, dict]:
    """The cached generated database for these parameters (building it when missing)."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    empty = CACHE_DIR / "schema-probe.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{empty}{suffix}").unlink(missing_ok=True)
    if schema_sql:  # development only: test the generator against a given schema
        conn = sqlite3.connect(empty)
        conn.executescript(schema_sql.read_text())
        conn.close()
    else:
        create_schema(empty)
    sql, columns = schema_signature(empty)
    usable = check_schema(columns)
    key = hashlib.sha256(
        json.dumps([GENERATOR_VERSION, sql, n_sources, n_entries, n_comments, seed]).encode()
    ).hexdigest()[:16]
    target = CACHE_DIR / f"publish-{key}.db"
    meta_path = target.with_suffix(".json")
    if target.exists() and meta_path.exists():
        progress(f"  reusing generated database {target.name}")
        return target, json.loads(meta_path.read_text())
    discard_cache()  # one cached database at a time: they are large
    progress(
        f"  generating {n_entries:,} entries and {n_comments:,} comments into {target.name} "
        "(cached for later runs) ..."
    )
    building = target.with_suffix(".building")
    shutil.copyfile(empty, building)
    for suffix in ("-wal", "-shm"):
        Path(f"{empty}{suffix}").unlink(missing_ok=True)
    made = generate(building, n_sources, n_entries, n_comments, seed, usable, progress)
    for suffix in ("-wal", "-shm"):
        Path(f"{building}{suffix}").unlink(missing_ok=True)
    building.rename(target)
    meta_path.write_text(json.dumps(made))
    return target, made


def _fingerprint(db: Path) -> tuple:
    """Size and mtime of the database and its WAL: what tells that someone wrote to it."""
    wal = Path(f"{db}-wal")
    stat = db.stat()
    wal_size = wal.stat().st_size if wal.exists() else 0
    return stat.st_size, stat.st_mtime_ns, wal_size


def discard_cache() -> None:
    for old in CACHE_DIR.glob("publish-*"):
        old.unlink()


def publish_config(workdir: Path, db: Path, n_sources: int, seed: int, port: int) -> Path:
    rng = random.Random(f"publish:{seed}")
    blogs = set(rng.sample(range(n_sources), round(n_sources * BLOG_SHARE)))  # informative only
    lines = [
        "# Generated by benchmarks/publish.py -- do not edit.",
        f"database: {json.dumps(str(db))}",
        f"public_dir: {json.dumps(str(workdir / 'public'))}",
        f"server: {{host: 127.0.0.1, port: {port}}}",
        "defaults: {interval: 1h, comments: false}",
        "sources:",
    ]
    for i, name in enumerate(source_names(n_sources)):
        comments = ", comments: true" if i in blogs else ""
        lines.append(f'  - {{name: {name}, url: "{BASE_URL}/feeds/{name}.xml"{comments}}}')
    lines += [
        "outputs:",
        "  - {name: all, title: Everything, limit: 100, formats: [atom, rss, json]}",
        "",
    ]
    path = workdir / "aggregator.yaml"
    path.write_text("\n".join(lines))
    return path


def folder_size(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


class PublishSection(Section):
    """The publish section: the in-process tables first, then the ``aggregator publish`` rows."""

    tables: list[tuple[list[str], list[list[str]]]]

    def render(self) -> str:
        if self.skipped:
            return super().render()
        parts = [
            harness.table(rows, header) for header, rows in getattr(self, "tables", []) if rows
        ]
        if self.rows:
            parts.append(harness.table(self.rows, self.header))
        return "\n\n".join([*parts, *[f"  note: {n}" for n in self.notes]])


def project_python() -> str:
    """The project venv's interpreter (the in-process benchmark imports aggregator)."""
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def run_render(ctx, db: Path, workdir: Path) -> dict | None:
    """``publish_render.py`` in its own interpreter; its figures, or None (noted) on failure."""
    import publish_render

    out = workdir / "render.json"
    log = ctx.log("publish-render.log")
    cmd = [
        project_python(),
        str(BENCH_DIR / "publish_render.py"),
        "--db",
        str(db),
        "--workdir",
        str(workdir / "render"),
        "--runs",
        str(ctx.args.publish_runs),
        "--json",
        str(out),
    ]
    print(f"  in-process: {ctx.args.publish_runs} runs per scenario ...", flush=True)
    with open(log, "w") as handle:
        done = subprocess.run(
            cmd, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, timeout=ctx.args.timeout
        )
    if done.returncode != 0 or not out.exists():
        tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
        return {"error": f"publish_render.py failed (exit {done.returncode}): {tail}"}
    result = json.loads(out.read_text())
    runs, stages = publish_render.summary_rows(result)
    result["tables"] = [(publish_render.RUN_HEADER, runs), (publish_render.STAGE_HEADER, stages)]
    for line in harness.table(runs, publish_render.RUN_HEADER).splitlines():
        print(f"  {line}", flush=True)
    return result


def run_section(ctx) -> Section:
    """The ``publish`` section of run.py: in-process render times, then ``aggregator publish``."""
    args = ctx.args
    section = PublishSection(
        "publish",
        header=[
            "aggregator publish (subprocess)",
            "wall s",
            "CPU s",
            "peak RSS MB",
            "files",
            "MB written",
            "entries in DB",
            "comments in DB",
        ],
    )
    section.tables = []
    print("\n== publish: output all over a generated database ==", flush=True)
    try:
        db, made = ensure_database(
            args.publish_sources,
            args.publish_entries,
            args.publish_comments,
            args.seed,
            args.schema_sql,
            progress=lambda text: print(text, flush=True),
        )
    except Skip as skip:
        section.skipped = str(skip)
        print(f"  SKIPPED: {skip}", flush=True)
        return section
    workdir = ctx.workdir / "publish"
    workdir.mkdir(parents=True, exist_ok=True)
    if args.publish_copy:
        target = workdir / "agg.db"
        started = time.monotonic()
        shutil.copyfile(db, target)
        print(
            f"  copied {db.stat().st_size / 1e9:.1f} GB database in "
            f"{time.monotonic() - started:.0f} s",
            flush=True,
        )
    else:
        target = db  # publish only reads; a changed file is noticed below and discarded
    before = _fingerprint(target)
    section.data["generated"] = made
    render = run_render(ctx, target, workdir)
    if render and "error" in render:
        section.notes.append(render["error"])
    elif render:
        section.tables = render.pop("tables")
        section.data["in_process"] = render
        if not render.get("database_unchanged", True):
            section.notes.append("the database changed while publish_render.py had it read-only")
    config = publish_config(workdir, target, args.publish_sources, args.seed, ctx.serve_port)
    cmd = [*project_command(), "--config", str(config), "publish"]
    for phase in ("cold", "warm"):
        m = run_measured(
            cmd, ctx.log(f"aggregator-publish-{phase}.log"), cwd=ROOT, timeout=args.timeout
        )
        files, size = folder_size(workdir / "public")
        if not m.ok:
            reason = "timed out" if m.timed_out else f"exit {m.returncode}"
            tail = " | ".join(m.tail(3).splitlines())
            if phase == "cold" and not section.tables:
                section.skipped = f"aggregator publish failed ({reason}): {tail}"
                print(f"  {section.skipped}", flush=True)
                return section
            section.notes.append(f"publish {phase}: {reason}: {tail}")
            continue
        section.rows.append(
            [
                f"aggregator publish {phase}",
                fmt_num(m.wall),
                fmt_num(m.cpu),
                fmt_num(m.rss_mb, 0),
                fmt_num(files),
                fmt_num(size / 1e6),
                fmt_num(made["entries"]),
                fmt_num(made["comments"]),
            ]
        )
        section.data[phase] = {
            "wall_s": m.wall,
            "cpu_s": m.cpu,
            "peak_rss_mb": m.rss_mb,
            "files": files,
            "bytes": size,
            "returncode": m.returncode,
        }
        print(
            f"  publish {phase}: {m.wall:.1f} s wall, {m.cpu:.1f} s CPU, {m.rss_mb:.0f} MB, "
            f"{files} files, {size / 1e6:.1f} MB",
            flush=True,
        )
    if not args.publish_copy and _fingerprint(target) != before:
        section.notes.append(
            "aggregator publish modified the cached database: it was discarded and will be "
            "rebuilt next time (use --publish-copy if publish is meant to write)"
        )
        discard_cache()
    section.notes.append(
        f"database: {made['sources']:,} sources ({made['blog_sources']} with comments), "
        f"{made['entries']:,} entries, {made['comments']:,} comments, "
        f"{db.stat().st_size / 1e9:.1f} GB. In-process: Publisher.publish() of output all "
        "(limit 100, pages 10) on the database opened read-only, after one warm-up; cold = a "
        "new Publisher per run (everything rendered), window shift = the feed and its pages "
        "re-rendered (a new entry at the top), unchanged = nothing to render; feed = select + "
        "threads + atom/rss/json of the 100-entry document (see publish_render.py). "
        "aggregator publish rows: the whole CLI process (interpreter, imports, config), cold = "
        "empty public dir, warm = again with nothing changed"
    )
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="publishing benchmark (see module docstring)")
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--comments", type=int, default=5_000_000)
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=corpus.DEFAULT_SEED)
    parser.add_argument(
        "--schema-sql",
        type=Path,
        default=None,
        help="(development) use this SQL instead of aggregator.storage",
    )
    parser.add_argument("--generate-only", action="store_true")
    args = parser.parse_args(argv)
    if not args.generate_only:
        import run

        return run.main(
            [
                "--only",
                "publish",
                "--publish-entries",
                str(args.entries),
                "--publish-comments",
                str(args.comments),
                "--publish-sources",
                str(args.sources),
                "--seed",
                str(args.seed),
                *(["--schema-sql", str(args.schema_sql)] if args.schema_sql else []),
            ]
        )
    try:
        db, made = ensure_database(
            args.sources, args.entries, args.comments, args.seed, args.schema_sql
        )
    except Skip as skip:
        print(f"publish: SKIPPED -- {skip}")
        return 0
    print(f"{db}: {made}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
