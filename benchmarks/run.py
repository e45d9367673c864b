"""One command that measures aggregator against the peer (issue 8).

    .venv/bin/python benchmarks/run.py [--feeds N] [--only poll,peer,publish,serve]

Sections (all by default):

* ``poll``    ``aggregator --config CFG poll`` cold (empty database) then warm (nothing changed)
* ``peer``    lemon24's ``reader`` (``update_feeds``) + plain feedparser over every comment feed,
              cold then warm, in ``benchmarks/.venv-peer``
* ``publish`` ``aggregator publish`` over a generated 1M-entry / 5M-comment database
              (skipped until ``aggregator.storage`` provides the schema)
* ``serve``   wrk against ``aggregator serve``: a cached feed, and 304 answers

The corpus (benchmarks/corpus.py) is served by nginx on 127.0.0.1 (benchmarks/server.py). Nothing
leaves the loopback interface. See benchmarks/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus  # noqa: E402
from harness import (  # noqa: E402
    BENCH_DIR,
    ROOT,
    ROW_HEADER,
    Row,
    Section,
    combine,
    fmt_num,
    free_port,
    project_command,
    run_measured,
    sqlite_counts,
    table,
)
from server import CorpusServer  # noqa: E402

SECTIONS = ("poll", "peer", "publish", "serve")


@dataclass
class Context:
    args: argparse.Namespace
    manifest: dict | None
    corpus_dir: Path
    workdir: Path
    results_dir: Path
    server: CorpusServer | None = None
    serve_port: int = 8765
    agg_config: Path | None = None
    rows: dict[str, Row] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    load_at_start: float = field(default_factory=lambda: os.getloadavg()[0])

    @property
    def counts(self) -> dict:
        return self.manifest["counts"]

    def log(self, name: str) -> Path:
        return self.results_dir / name

    def aggregator_config(self) -> Path:
        """The aggregator config for the corpus (database and public_dir in the work dir)."""
        if self.agg_config is None:
            agg_dir = self.workdir / "aggregator"
            agg_dir.mkdir(parents=True, exist_ok=True)
            self.agg_config = corpus.write_config(
                self.manifest, agg_dir, agg_dir / "aggregator.yaml", server_port=self.serve_port
            )
        return self.agg_config


def say(text: str) -> None:
    print(text, flush=True)


def _tail_reason(text: str, lines: int = 4) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return " | ".join(line.strip() for line in kept) or "(no output)"


# -- poll ------------------------------------------------------------------------------------


def section_poll(ctx: Context) -> None:
    say("\n== poll: aggregator ==")
    config = ctx.aggregator_config()
    db = config.parent / "agg.db"
    cmd = [*project_command(), "--config", str(config), "poll", *ctx.args.poll_args.split()]
    say(f"  command: {' '.join(cmd)}")
    for phase in ("cold", "warm"):
        offset = ctx.server.mark()
        m = run_measured(
            cmd, ctx.log(f"aggregator-poll-{phase}.log"), cwd=ROOT, timeout=ctx.args.timeout
        )
        requests = ctx.server.requests_since(offset)
        counts = sqlite_counts(db)
        usable = counts["entries"] not in (None, 0) and requests["total"] > 0
        reason = "timed out" if m.timed_out else f"exit {m.returncode}"
        if not m.ok and not usable:
            ctx.notes.append(
                f"aggregator poll {phase} not usable yet ({reason}, {requests['total']} "
                f"requests): {_tail_reason(m.tail())}"
            )
            say(
                f"  aggregator poll {phase}: NOT USABLE ({reason}, {m.wall:.1f} s, "
                f"{requests['total']} requests) -- {_tail_reason(m.tail(), 2)}"
            )
            say(f"  log: {m.log}")
            if phase == "cold":
                return
            continue
        row = Row.of(
            f"aggregator poll {phase}" + ("" if m.ok else f" ({reason})"),
            m,
            feeds=ctx.counts["feeds"],
            entries=counts["entries"],
            comments=counts["comments"],
            requests=requests,
        )
        if not m.ok:
            row.note = reason
            ctx.notes.append(
                f"aggregator poll {phase} ended with {reason} (figures kept: it made "
                f"{requests['total']} requests): {_tail_reason(m.tail(), 2)}"
            )
        ctx.rows[f"agg_{phase}"] = row
        say(
            f"  {phase}: {m.wall:.1f} s wall, {m.cpu:.1f} s CPU, {m.rss_mb:.0f} MB, "
            f"entries={fmt_num(counts['entries'])} comments={fmt_num(counts['comments'])}, "
            f"requests {requests['total']} (200: {requests['200']}, 304: {requests['304']})"
        )
        if phase == "cold":
            for key in ("entries", "comments"):
                want, got = ctx.counts[key], counts[key]
                if got is not None and got != want:
                    ctx.notes.append(f"aggregator stored {got:,} {key}; the corpus has {want:,}")
                if got is None:
                    ctx.notes.append(f"no '{key}' table found in {db}")


# -- peer ------------------------------------------------------------------------------------


def section_peer(ctx: Context) -> None:
    from peer_env import ensure_peer_venv, peer_python

    say("\n== peer: reader + feedparser ==")
    versions = ensure_peer_venv(ctx.log("peer-install.log"))
    say(f"  {', '.join(f'{k} {v}' for k, v in versions.items())} in benchmarks/.venv-peer")
    peer_dir = ctx.workdir / "peer"
    peer_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = ctx.corpus_dir / "manifest.json"
    python, script = str(peer_python()), str(BENCH_DIR / "peer.py")
    for phase in ("cold", "warm"):
        parts = []
        for mode in ("reader", "comments"):
            out = peer_dir / f"{mode}-{phase}.json"
            cmd = [python, script, mode, "--manifest", str(manifest_path), "--json", str(out)]
            if mode == "reader":
                cmd += [
                    "--db",
                    str(peer_dir / "reader.sqlite"),
                    "--workers",
                    str(ctx.args.peer_workers),
                ]
            else:
                cmd += [
                    "--state",
                    str(peer_dir / "etags.json"),
                    "--threads",
                    str(ctx.args.comment_threads),
                ]
            offset = ctx.server.mark()
            m = run_measured(cmd, ctx.log(f"peer-{mode}-{phase}.log"), timeout=ctx.args.timeout)
            requests = ctx.server.requests_since(offset)
            if not m.ok:
                raise RuntimeError(
                    f"peer {mode} {phase} failed (exit {m.returncode}): {_tail_reason(m.tail(), 6)}"
                )
            data = json.loads(out.read_text())
            if mode == "reader":
                row = Row.of(
                    f"  reader update_feeds {phase}",
                    m,
                    feeds=data["feeds"],
                    entries=data["entries_total"],
                    requests=requests,
                )
                say(
                    f"  reader {phase}: {m.wall:.1f} s wall ({data['update_s']:.1f} s in "
                    f"update_feeds), {m.cpu:.1f} s CPU, {m.rss_mb:.0f} MB, "
                    f"{data['entries_total']:,} entries, {data['outcomes']}, "
                    f"requests {requests['total']} (200: {requests['200']}, 304: {requests['304']})"
                )
                if data["outcomes"]["errors"]:
                    ctx.notes.append(
                        f"reader {phase}: {data['outcomes']['errors']} feed errors, "
                        f"e.g. {data['errors_sample'][:1]}"
                    )
            else:
                comments = (
                    data["comments"] if phase == "cold" else ctx.rows["peer_cold_comments"].comments
                )
                row = Row.of(
                    f"  feedparser comment feeds {phase}", m, comments=comments, requests=requests
                )
                say(
                    f"  comments {phase}: {m.wall:.1f} s wall, {m.cpu:.1f} s CPU, "
                    f"{m.rss_mb:.0f} MB, {data['comments']:,} comments parsed from "
                    f"{data['fetched']:,} feeds, {data['not_modified']:,} not modified, "
                    f"{data['errors']} errors, requests {requests['total']} "
                    f"(200: {requests['200']}, 304: {requests['304']})"
                )
                if data["errors"]:
                    ctx.notes.append(
                        f"feedparser {phase}: {data['errors']} errors, "
                        f"e.g. {data['errors_sample'][:1]}"
                    )
            ctx.rows[f"peer_{phase}_{mode}"] = row
            parts.append(row)
        ctx.rows[f"peer_{phase}"] = combine(f"peer {phase} (reader + feedparser)", parts)
    cold = ctx.rows["peer_cold_comments"].comments
    if cold != ctx.counts["comments"]:
        ctx.notes.append(
            f"feedparser read {cold:,} comments; the corpus has {ctx.counts['comments']:,}"
        )


# -- report ----------------------------------------------------------------------------------


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b in (None, 0):
        return "n/a"
    return f"{a / b:.2f}x"


def report(ctx: Context, started: float) -> str:
    c = ctx.counts if ctx.manifest else None
    lines = [
        "",
        "=" * 100,
        "aggregator benchmark -- "
        + (corpus.describe(ctx.manifest) if ctx.manifest else "no corpus (publish only)"),
        f"corpus server: {ctx.server.description if ctx.server else '(not started)'}; "
        f"machine: {os.cpu_count()} cores, load average at start {ctx.load_at_start:.1f}, "
        f"at end {os.getloadavg()[0]:.1f}; total time {time.monotonic() - started:.0f} s",
        "",
    ]
    order = [
        "agg_cold",
        "agg_warm",
        "peer_cold",
        "peer_cold_reader",
        "peer_cold_comments",
        "peer_warm",
        "peer_warm_reader",
        "peer_warm_comments",
    ]
    rows = [ctx.rows[key].cells() for key in order if key in ctx.rows]
    if rows:
        lines.append(table(rows, ROW_HEADER))
    if "poll" in ctx.args.only and "agg_cold" not in ctx.rows:
        lines.append(
            "aggregator poll: NOT MEASURED -- aggregator poll is not usable yet (see notes)"
        )
    if "peer" in ctx.args.only and {"agg_cold", "peer_cold"} <= ctx.rows.keys():
        ratio_rows = []
        for phase in ("cold", "warm"):
            a, p = ctx.rows.get(f"agg_{phase}"), ctx.rows.get(f"peer_{phase}")
            if not (a and p):
                continue
            ratio_rows.append(
                [
                    f"aggregator/peer {phase}",
                    ratio(a.wall, p.wall),
                    ratio(a.cpu, p.cpu),
                    ratio(a.rss_mb, p.rss_mb),
                    ratio((a.requests or {}).get("total"), (p.requests or {}).get("total")),
                ]
            )
        lines += [
            "",
            table(
                ratio_rows,
                ["ratio (<1: aggregator uses less)", "wall", "CPU", "peak RSS", "requests"],
            ),
        ]
    elif "peer" in ctx.args.only:
        lines.append("ratios aggregator/peer: n/a (no aggregator poll figures)")
    for section in ctx.sections:
        lines += ["", f"-- {section.name} --", section.render()]
    if ctx.notes:
        lines += ["", "notes:"] + [f"  - {note}" for note in ctx.notes]
    if c:
        lines += [
            "",
            f"corpus: {c['entries']:,} entries, {c['comments']:,} comments in "
            f"{c['comment_feeds']:,} comment feeds",
        ]
    lines.append(f"logs, report.txt and results.json in {ctx.results_dir}")
    return "\n".join(lines)


def results_json(ctx: Context) -> dict:
    return {
        "when": datetime.now().isoformat(timespec="seconds"),
        "args": {k: v for k, v in vars(ctx.args).items() if k != "only"}
        | {"only": sorted(ctx.args.only)},
        "corpus": ctx.manifest["counts"] if ctx.manifest else None,
        "server": ctx.server.description if ctx.server else None,
        "load_average": {"start": ctx.load_at_start, "end": os.getloadavg()[0]},
        "rows": {key: row.as_dict() for key, row in ctx.rows.items()},
        "sections": {s.name: {"skipped": s.skipped, "data": s.data} for s in ctx.sections},
        "notes": ctx.notes,
    }


# -- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=1000, help="number of feeds (default 1000)")
    parser.add_argument("--seed", type=int, default=corpus.DEFAULT_SEED)
    parser.add_argument(
        "--port",
        type=int,
        default=corpus.DEFAULT_PORT,
        help="corpus server port on 127.0.0.1 (another free one if busy)",
    )
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help="comma-separated sections: poll,peer,publish,serve (default: all)",
    )
    parser.add_argument(
        "--server",
        choices=("nginx", "python"),
        default="nginx",
        help="corpus server (python = the fallback, for testing)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=1800,
        help="seconds after which one measured run is killed (default 1800)",
    )
    parser.add_argument("--poll-args", default="", help="extra arguments after 'poll'")
    parser.add_argument(
        "--aggregator",
        default=None,
        help="command to run instead of the project's aggregator (sets AGGREGATOR_BENCH_CMD)",
    )
    parser.add_argument(
        "--peer-workers",
        type=int,
        default=1,
        help="reader update_feeds(workers=...) (default 1, reader's default)",
    )
    parser.add_argument("--comment-threads", type=int, default=8)
    parser.add_argument("--publish-entries", type=int, default=1_000_000)
    parser.add_argument("--publish-comments", type=int, default=5_000_000)
    parser.add_argument("--publish-sources", type=int, default=1000)
    parser.add_argument(
        "--publish-runs",
        type=int,
        default=30,
        help="measured in-process publishes per scenario (after one warm-up; default 30)",
    )
    parser.add_argument(
        "--publish-copy",
        action="store_true",
        help="copy the cached publish database into the temp dir before publishing",
    )
    parser.add_argument(
        "--schema-sql",
        type=Path,
        default=None,
        help="(development) build the publish database from this SQL file "
        "instead of aggregator.storage",
    )
    parser.add_argument("--wrk-duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--wrk-connections", type=int, default=16)
    parser.add_argument("--keep", action="store_true", help="keep the temp work dir (databases)")
    args = parser.parse_args(argv)
    args.only = {part.strip() for part in args.only.split(",") if part.strip()}
    unknown = args.only - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; choose from {SECTIONS}")
    return args


def prime_page_cache(folder: Path) -> None:
    """Read every corpus file once so that no run pays for the first disk read."""
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                while handle.read(1 << 20):
                    pass


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.aggregator:
        os.environ["AGGREGATOR_BENCH_CMD"] = args.aggregator
    started = time.monotonic()
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    results_dir = BENCH_DIR / ".results" / f"{stamp}-feeds{args.feeds}"
    results_dir.mkdir(parents=True, exist_ok=True)
    port = free_port(args.port)
    needs_corpus = bool(args.only & {"poll", "peer", "serve"})
    if port != args.port and needs_corpus:
        say(f"port {args.port} is busy: serving the corpus on {port} instead")
    corpus_dir = corpus.default_dir(args.feeds, args.seed, port)
    manifest = corpus.ensure(corpus_dir, args.feeds, args.seed, port) if needs_corpus else None
    workdir = Path(tempfile.mkdtemp(prefix="aggregator-bench-"))
    ctx = Context(
        args=args,
        manifest=manifest,
        corpus_dir=corpus_dir,
        workdir=workdir,
        results_dir=results_dir,
        serve_port=free_port(8765),
    )
    say(f"work dir {workdir}; logs in {results_dir}")
    status = 0
    try:
        if needs_corpus:
            prime_page_cache(corpus_dir)
            ctx.server = CorpusServer(
                corpus_dir,
                port,
                workdir / "corpus-server",
                prefer=args.server,
                install_log=results_dir / "install.log",
            ).start()
            say(f"corpus server: {ctx.server.description} on http://127.0.0.1:{port}/")
        if "poll" in args.only:
            section_poll(ctx)
        if "peer" in args.only:
            section_peer(ctx)
        if "serve" in args.only:
            import serving

            ctx.sections.append(serving.run_section(ctx))
        if ctx.server:
            ctx.server.stop()
        if "publish" in args.only:
            import publish

            ctx.sections.append(publish.run_section(ctx))
    except KeyboardInterrupt:
        ctx.notes.append("interrupted")
        status = 130
    except Exception as error:  # report what we have, then fail
        ctx.notes.append(f"benchmark error: {error}")
        status = 1
        import traceback

        traceback.print_exc()
    finally:
        if ctx.server:
            ctx.server.stop()
        text = report(ctx, started)
        print(text, flush=True)
        (results_dir / "report.txt").write_text(text + "\n")
        (results_dir / "results.json").write_text(
            json.dumps(results_json(ctx), indent=1, default=str)
        )
        if args.keep:
            say(f"kept work dir {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
