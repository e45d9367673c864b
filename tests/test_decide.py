"""Tests for aggregator.schedule.decide, .hints and .threads: the pure polling decider. Fixed ``NOW``, seeded rng, no clock."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.errors import FetchError
from aggregator.models import CommentData, EntryData, FeedData, FetchResult, SourceState
from aggregator.schedule.base import DEFAULT_POLICY, SchedulePolicy
from aggregator.schedule.decide import (
    PollOutcome,
    PollPlan,
    ScheduleState,
    adaptive_interval,
    backoff_delay,
    decide_next_poll,
    is_in_backoff,
)
from aggregator.schedule.hints import cache_floor, hints_floor, parse_retry_after, skip_to_allowed
from aggregator.schedule.threads import decide_next_comments_poll, detect_comment_gap

NOW = datetime(2024, 3, 6, 12, 0, tzinfo=UTC)  # a Wednesday
URL = "https://example.org/feed.xml"
NEW_URL = "https://example.org/new/feed.xml"
NO_JITTER = SchedulePolicy(jitter=0)
M = timedelta(minutes=1)
H = timedelta(hours=1)
D = timedelta(days=1)


def feed(**hints: object) -> FeedData:
    return FeedData(title="t", link=None, entries=(), **hints)  # type: ignore[arg-type]


def decide(outcome: PollOutcome, state: ScheduleState | None = None, **kw: object) -> PollPlan:
    policy = kw.pop("policy", NO_JITTER)
    return decide_next_poll(policy, state or ScheduleState(URL), outcome, NOW, **kw)  # type: ignore[arg-type]


# -- Retry-After --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", NOW + 120 * timedelta(seconds=1)),
        ("  120 ", NOW + 120 * timedelta(seconds=1)),
        ("0", NOW),
        ("Wed, 06 Mar 2024 13:00:00 GMT", NOW + H),  # IMF-fixdate
        ("Wednesday, 06-Mar-24 13:00:00 GMT", NOW + H),  # obsolete RFC 850
        ("Wed Mar  6 13:00:00 2024", NOW + H),  # obsolete asctime, GMT implied
        ("Wed, 06 Mar 2024 14:00:00 +0100", NOW + H),
        ("Wed, 06 Mar 2024 11:00:00 GMT", NOW),  # in the past: retry now
        ("99999999999999999999", NOW + D),  # capped at retry_after_max
        ("Thu, 06 Mar 2025 12:00:00 GMT", NOW + D),  # capped
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: datetime | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_parse_retry_after_cap_comes_from_policy() -> None:
    policy = SchedulePolicy(retry_after_max=H)
    assert parse_retry_after("7200", NOW, policy) == NOW + H
    assert parse_retry_after("600", NOW, policy) == NOW + 10 * M


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "3600"}, NOW + H),
        ({"retry-after": "Wed, 06 Mar 2024 14:00:00 GMT"}, NOW + 2 * H),
        ({"Retry-After": "60"}, NOW + 15 * M),  # never under the floor
        ({"Retry-After": "864000"}, NOW + D),  # ten days asked, one day granted
    ],
)
def test_errors_honour_retry_after(
    status: int, headers: dict[str, str], expected: datetime
) -> None:
    state = ScheduleState(URL, error_count=5)  # backoff alone would say 4 hours
    plan = decide(PollOutcome(status, headers=headers), state)
    assert (plan.next_poll_at, plan.reason, plan.error_count) == (expected, "retry-after", 6)


def test_retry_after_ignored_on_success() -> None:
    plan = decide(PollOutcome(200, headers={"Retry-After": "86400"}, adaptive=False))
    assert (plan.next_poll_at, plan.reason) == (NOW + H, "interval")


# -- cache headers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Cache-Control": "max-age=3600"}, NOW + H),
        ({"cache-control": "public, MAX-AGE=600, no-store"}, NOW + 10 * M),  # no-store ignored
        ({"Cache-Control": 'no-cache, max-age="600"'}, NOW + 10 * M),
        ({"Cache-Control": "s-maxage=1800"}, NOW + 30 * M),
        ({"Cache-Control": "s-maxage=1800, max-age=600"}, NOW + 10 * M),  # max-age wins
        ({"Cache-Control": "max-age=3600", "Age": "600"}, NOW + 50 * M),
        ({"Cache-Control": "max-age=3600", "Age": "7200"}, None),
        ({"Cache-Control": "max-age=0"}, None),
        ({"Cache-Control": "max-age=abc"}, None),
        ({"Cache-Control": "max-age=99999999999999999999"}, NOW + D),  # capped at hint_max
        ({"Cache-Control": "no-store"}, None),
        # Expires counts from the server's Date, not our clock (the server runs 1h behind).
        (
            {"Expires": "Wed, 06 Mar 2024 13:00:00 GMT", "Date": "Wed, 06 Mar 2024 11:00:00 GMT"},
            NOW + 2 * H,
        ),
        ({"Expires": "Wed, 06 Mar 2024 13:00:00 GMT"}, NOW + H),
        ({"Expires": "Wed, 06 Mar 2024 11:00:00 GMT"}, None),
        ({"Expires": "0"}, None),
        ({"Expires": "Wed, 06 Mar 2024 18:00:00 GMT", "Cache-Control": "max-age=60"}, NOW + M),
        ({}, None),
    ],
)
def test_cache_floor(headers: dict[str, str], expected: datetime | None) -> None:
    assert cache_floor(headers, NOW) == expected


def test_cache_floor_pushes_poll_later_never_earlier() -> None:
    later = decide(PollOutcome(200, headers={"Cache-Control": "max-age=7200"}, adaptive=False))
    earlier = decide(PollOutcome(200, headers={"Cache-Control": "max-age=60"}, adaptive=False))
    assert (later.next_poll_at, later.reason) == (NOW + 2 * H, "cache")
    assert (earlier.next_poll_at, earlier.reason) == (NOW + H, "interval")


# -- feed hints ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hints", "expected"),
    [
        ({"ttl_minutes": 120}, (NOW + 2 * H, "ttl")),
        ({"update_period_seconds": 3 * 3600}, (NOW + 3 * H, "update-period")),
        ({"ttl_minutes": 300, "update_period_seconds": 3600}, (NOW + 5 * H, "ttl")),
        ({"ttl_minutes": 60, "update_period_seconds": 7200}, (NOW + 2 * H, "update-period")),
        ({"update_period_seconds": 7 * 86400}, (NOW + D, "update-period")),  # weekly: a day at most
        ({"ttl_minutes": 10**15}, (NOW + D, "ttl")),
        ({"ttl_minutes": 0}, None),
        ({"ttl_minutes": -5}, None),
        ({}, None),
    ],
)
def test_hints_floor(hints: dict[str, int], expected: tuple[datetime, str] | None) -> None:
    assert hints_floor(feed(**hints), NOW) == expected


@pytest.mark.parametrize(
    ("hints", "expected_at", "reason"),
    [
        ({"ttl_minutes": 180}, NOW + 3 * H, "ttl"),
        ({"update_period_seconds": 86400}, NOW + D, "update-period"),
        ({"ttl_minutes": 5}, NOW + H, "interval"),  # a hint never pulls a poll earlier
        ({"update_period_seconds": 60}, NOW + H, "interval"),
    ],
)
def test_feed_hints_are_floors(hints: dict[str, int], expected_at: datetime, reason: str) -> None:
    plan = decide(PollOutcome(200, feed=feed(**hints), interval=H))
    assert (plan.next_poll_at, plan.reason) == (expected_at, reason)


# -- skipHours / skipDays ------------------------------------------------------------------------

WEEK = NOW + 7 * D


@pytest.mark.parametrize(
    ("at", "hours", "days", "expected"),
    [
        (NOW + 30 * M, {12, 13}, set(), NOW + 2 * H),  # 12:30 -> 14:00
        (NOW + 30 * M, {11}, set(), NOW + 30 * M),  # not skipped: unchanged
        (NOW, set(), {"Wednesday"}, NOW + 12 * H),  # Thursday 00:00
        (NOW, set(), {"wednesday", "THURSDAY"}, NOW + 36 * H),  # any case
        (NOW, {0, 1}, {"Wednesday"}, NOW + 14 * H),  # Thursday 02:00
        (NOW, {24}, {"Wednesday"}, NOW + 13 * H),  # 24 is read as midnight
        (NOW, {99, -1}, {"Caturday"}, NOW),  # nonsense ignored
        (NOW, set(range(24)), set(), WEEK),  # everything skipped: the limit
        (
            NOW,
            set(),
            {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"},
            WEEK,
        ),
        (
            datetime(2024, 3, 6, 13, 30, tzinfo=timezone(timedelta(hours=2))),
            {11},
            set(),
            NOW,  # 11:30 UTC is in the skipped hour
        ),
    ],
)
def test_skip_to_allowed(at: datetime, hours: set[int], days: set[str], expected: datetime) -> None:
    assert skip_to_allowed(at, hours, days, WEEK) == expected


def test_decide_moves_poll_out_of_skipped_hours_and_days() -> None:
    hours = decide(PollOutcome(200, feed=feed(skip_hours=frozenset({13, 14})), adaptive=False))
    assert (hours.next_poll_at, hours.reason) == (NOW + 3 * H, "skip")
    days = decide(PollOutcome(200, feed=feed(skip_days=frozenset({"Wednesday"})), adaptive=False))
    assert (days.next_poll_at, days.reason) == (NOW + 12 * H, "skip")
    # A poll that lands outside the skipped hours keeps its own reason.
    kept = decide(PollOutcome(200, feed=feed(skip_hours=frozenset({3})), adaptive=False))
    assert (kept.next_poll_at, kept.reason) == (NOW + H, "interval")


# -- adaptive interval ---------------------------------------------------------------------------


def every(gap: timedelta, count: int, newest: datetime = NOW) -> list[datetime]:
    return [newest - i * gap for i in range(count)]


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        (every(4 * H, 10), 2 * H),  # half the gap
        (every(2 * M, 10), 15 * M),  # clamped to adaptive_min
        (every(30 * D, 10), D),  # clamped to adaptive_max
        # commafeed #1672: ten posts in one day, then ten quiet days: daily, not weekly.
        (every(160 * M, 10, newest=NOW - 10 * D), D),
        # the same burst seen an hour after it ended: poll at its pace
        (every(160 * M, 10, newest=NOW - H), 80 * M),
        # recent activity weighs more: four hourly gaps after five daily ones
        (every(H, 5, newest=NOW - 10 * M) + every(D, 5, newest=NOW - 10 * M - 5 * D), 30 * M),
        # a long silence slows polling to a quarter of it
        (every(H, 10, newest=NOW - 8 * H), 2 * H),
        (every(H, 2), None),  # two posts are no rhythm
        ([NOW - H - i * timedelta(seconds=10) for i in range(5)], None),  # one batch
        (every(H, 10, newest=NOW + 30 * D)[:8] + every(4 * H, 4), 2 * H),  # future ones ignored
        ([None, NOW - 4 * H, None, NOW - 8 * H, NOW - 12 * H], 2 * H),
        ([], None),
    ],
)
def test_adaptive_interval(times: list[datetime | None], expected: timedelta | None) -> None:
    assert adaptive_interval(times, NOW) == expected


def test_adaptive_reads_only_the_newest_window() -> None:
    times = every(4 * H, 10) + every(30 * D, 20, newest=NOW - 40 * D)
    unweighted = SchedulePolicy(adaptive_decay=1)
    assert adaptive_interval(times, NOW, unweighted) == 2 * H
    assert adaptive_interval(times, NOW, replace(unweighted, adaptive_window=30)) == D


@pytest.mark.parametrize(
    ("outcome", "expected_at", "reason"),
    [
        (PollOutcome(200, entry_times=every(4 * H, 10), interval=6 * H), NOW + 2 * H, "adaptive"),
        (
            PollOutcome(200, entry_times=every(4 * H, 10), interval=6 * H, adaptive=False),
            NOW + 6 * H,
            "interval",
        ),
        (PollOutcome(200, entry_times=every(M, 10)), NOW + 15 * M, "adaptive"),
        (PollOutcome(200, interval=3 * H), NOW + 3 * H, "interval"),  # no signal: configured
        (PollOutcome(200, interval=M), NOW + 15 * M, "interval"),  # raised to the floor
        (PollOutcome(304), NOW + H, "interval"),  # the default
    ],
)
def test_interval_choice(outcome: PollOutcome, expected_at: datetime, reason: str) -> None:
    plan = decide(outcome)
    assert (plan.next_poll_at, plan.reason) == (expected_at, reason)


def test_adaptive_falls_back_to_feed_entry_dates() -> None:
    entries = tuple(
        EntryData(key=str(i), title="", published_at=t) for i, t in enumerate(every(4 * H, 5))
    )
    plan = decide(PollOutcome(200, feed=FeedData(title=None, link=None, entries=entries)))
    assert (plan.next_poll_at, plan.reason) == (NOW + 2 * H, "adaptive")


# -- backoff -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("errors", "expected"),
    [
        (0, 15 * M),
        (1, 15 * M),
        (2, 30 * M),
        (3, H),
        (4, 2 * H),
        (6, 8 * H),
        (8, D),
        (9, D),
        (500, D),
    ],
)
def test_backoff_delay(errors: int, expected: timedelta) -> None:
    assert backoff_delay(errors) == expected


def test_floor_bounds_adaptive_and_backoff_below_it() -> None:
    eager = SchedulePolicy(jitter=0, adaptive_min=M, backoff_base=5 * M)
    assert backoff_delay(1, eager) == 15 * M
    assert backoff_delay(3, eager) == 20 * M
    plan = decide(PollOutcome(200, entry_times=every(2 * M, 10)), policy=eager)
    assert (plan.next_poll_at, plan.reason) == (NOW + 15 * M, "adaptive")


def test_backoff_jitter_only_adds_at_most_the_fraction() -> None:
    rng = random.Random(7)
    delays = [backoff_delay(3, DEFAULT_POLICY, rng) for _ in range(200)]
    assert all(H <= d <= H * 1.1 for d in delays)
    assert len(set(delays)) > 100  # jitter actually spreads retries


@pytest.mark.parametrize("status", [None, 404, 500, 502, 503, 429, 403, 301])
def test_backoff_grows_then_resets_on_success(status: int | None) -> None:
    state = ScheduleState(URL)
    delays = []
    for _ in range(10):
        plan = decide(PollOutcome(status, error="timed out"), state)
        assert plan.reason == "backoff" and not plan.retired and plan.next_poll_at is not None
        delays.append(plan.next_poll_at - NOW)
        state = replace(state, error_count=plan.error_count)
    assert state.error_count == 10
    assert delays == sorted(delays) and delays[0] == 15 * M and delays[-1] == D
    recovered = decide(PollOutcome(200, adaptive=False), state)
    assert (recovered.error_count, recovered.reason, recovered.next_poll_at) == (
        0,
        "interval",
        NOW + H,
    )


def test_error_plan_names_the_failure() -> None:
    assert decide(PollOutcome(500)).detail.startswith("HTTP 500")
    assert decide(PollOutcome(None, error="cannot connect")).detail.startswith("cannot connect")


# -- redirects and 410 ---------------------------------------------------------------------------


def redirected(status: int | None, target: str | None = NEW_URL) -> PollOutcome:
    return PollOutcome(200, redirect_status=status, redirect_url=target if status else None)


def run(outcomes: list[PollOutcome], adopt_after: int = 3) -> list[PollPlan]:
    policy = SchedulePolicy(jitter=0, redirect_adopt_after=adopt_after)
    state, plans = ScheduleState(URL), []
    for outcome in outcomes:
        plan = decide(outcome, state, policy=policy)
        plans.append(plan)
        state = replace(
            state,
            url=plan.url,
            error_count=plan.error_count,
            redirect_url=plan.redirect_url,
            redirect_count=plan.redirect_count,
        )
    return plans


@pytest.mark.parametrize("status", [301, 308])
def test_permanent_redirect_adopted_after_n_consecutive(status: int) -> None:
    plans = run([redirected(status)] * 3)
    assert [(p.url, p.redirect_count, p.redirect_adopted) for p in plans] == [
        (URL, 1, False),
        (URL, 2, False),
        (NEW_URL, 0, True),
    ]
    assert plans[1].redirect_url == NEW_URL and plans[2].redirect_url is None
    assert "adopted permanent redirect" in plans[2].detail


def test_redirect_count_comes_from_policy() -> None:
    assert run([redirected(301)], adopt_after=1)[0].url == NEW_URL
    assert run([redirected(301)] * 4, adopt_after=5)[-1].url == URL


@pytest.mark.parametrize(
    "interruption",
    [
        redirected(None),  # answered directly: not consecutive any more
        redirected(302),  # temporary
        redirected(301, "https://example.org/other.xml"),  # elsewhere: count starts again
    ],
)
def test_redirect_count_resets_when_not_consecutive(interruption: PollOutcome) -> None:
    plans = run([redirected(301), redirected(301), interruption, redirected(301), redirected(301)])
    assert all(p.url == URL for p in plans)
    assert plans[-1].redirect_count == 2


def test_failed_poll_neither_confirms_nor_breaks_a_redirect() -> None:
    plans = run([redirected(301), redirected(301), PollOutcome(503), redirected(301)])
    assert plans[2].redirect_count == 2 and plans[2].url == URL
    assert plans[3].url == NEW_URL


@pytest.mark.parametrize("status", [302, 303, 307])
def test_temporary_redirect_never_adopted(status: int) -> None:
    plans = run([redirected(status)] * 10)
    assert all((p.url, p.redirect_url, p.redirect_count) == (URL, None, 0) for p in plans)


def test_410_retires_the_source() -> None:
    plan = decide(PollOutcome(410), ScheduleState(URL, error_count=2))
    assert plan.retired and plan.next_poll_at is None and plan.reason == "gone"
    assert "410 Gone" in plan.detail
    assert not decide(PollOutcome(404)).retired  # only 410 retires


def test_outcome_from_fetch_and_error() -> None:
    def fetched(final_url: str, permanent: str | None) -> FetchResult:
        return FetchResult(URL, final_url, 200, {}, b"", permanent_redirect=permanent)

    assert PollOutcome.from_fetch(fetched(NEW_URL, NEW_URL)).redirect_status == 301
    temporary = PollOutcome.from_fetch(fetched(NEW_URL, None), body_changed=True)
    assert (temporary.redirect_status, temporary.redirect_url, temporary.body_changed) == (
        302,
        NEW_URL,
        True,
    )
    assert PollOutcome.from_fetch(fetched(URL, None)).redirect_status is None
    error = PollOutcome.from_error(
        FetchError("HTTP 429", status=429, headers={"retry-after": "120"})
    )
    assert (error.status, error.headers, error.error) == (429, {"retry-after": "120"}, "HTTP 429")


# -- polls by hand -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "waiting", "words"),
    [
        (
            ScheduleState(URL, 1, next_poll_at=NOW + H, next_poll_reason="retry-after"),
            True,
            "retry-after",
        ),
        (
            ScheduleState(URL, 3, next_poll_at=NOW + 2 * H, next_poll_reason="backoff"),
            True,
            "3 error",
        ),
        (ScheduleState(URL, 0, next_poll_at=NOW + 2 * H, next_poll_reason="adaptive"), False, None),
        (ScheduleState(URL, 3, next_poll_at=NOW - M, next_poll_reason="backoff"), False, None),
        (ScheduleState(URL, 3, next_poll_at=None), False, None),
        (SourceState(1, "s", URL, error_count=2, next_poll_at=NOW + 30 * M), True, "backoff"),
        (SourceState(1, "s", URL, error_count=0, next_poll_at=NOW + 30 * M), False, None),
    ],
)
def test_is_in_backoff(
    state: ScheduleState | SourceState, waiting: bool, words: str | None
) -> None:
    result, reason = is_in_backoff(state, NOW)
    assert result is waiting
    assert (reason is None) if words is None else (words in (reason or ""))


def test_is_in_backoff_names_the_window() -> None:
    plan = decide(PollOutcome(429, headers={"Retry-After": "5400"}))
    state = ScheduleState(
        URL, plan.error_count, next_poll_at=plan.next_poll_at, next_poll_reason=plan.reason
    )
    assert is_in_backoff(state, NOW) == (
        True,
        "retry-after: the server asked to wait until 2024-03-06 13:30 UTC (in 1h 30m)",
    )
    assert is_in_backoff(state, NOW + 2 * H) == (False, None)


# -- comment threads -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first_seen", "last_comment", "last_new", "expected"),
    [
        (NOW - D, NOW - 10 * M, NOW - 10 * M, NOW + 15 * M),  # hot thread
        (NOW - D, NOW - 4 * H, NOW - 4 * H, NOW + 30 * M),
        (NOW - 3 * D, NOW - 2 * D, NOW - 2 * D, NOW + 6 * H),  # cooling
        (NOW - 12 * D, NOW - 10 * D, None, NOW + D),  # cold: once a day
        (NOW - H, None, None, NOW + 15 * M),  # a new post without comments yet
        (NOW - 2 * D, None, NOW - 8 * H, NOW + H),  # undated comments: when we saw them
        (NOW - 20 * D, NOW + 5 * D, None, None),  # a comment dated ahead is not trusted
        (NOW - 20 * D, NOW + 5 * D, NOW - 2 * D, NOW + 6 * H),  # when we saw it is
        # quiet for 13.5 days: one last poll at the 14-day mark, not a day later
        (NOW - 20 * D, NOW - 13 * D - 12 * H, None, NOW + 12 * H),
        (NOW - 20 * D, NOW - 14 * D, None, None),  # quiet 14 days since its latest comment
        (NOW - 14 * D, None, None, None),  # quiet 14 days since first seen
        (NOW - 3 * D, NOW - 60 * D, None, NOW + D),  # an old thread found late: 14 days from then
        (NOW - 14 * D, NOW - 60 * D, None, None),
        (NOW - 30 * D, NOW - 60 * D, NOW - 13 * D, NOW + D),  # a new comment keeps it alive
    ],
)
def test_comments_schedule(
    first_seen: datetime,
    last_comment: datetime | None,
    last_new: datetime | None,
    expected: datetime | None,
) -> None:
    assert decide_next_comments_poll(first_seen, last_comment, last_new, NOW) == expected


def test_comments_schedule_tapers_monotonically() -> None:
    intervals = []
    for hours in [0, 1, 3, 6, 12, 24, 48, 96, 192, 300]:
        at = decide_next_comments_poll(NOW - 20 * D, NOW - hours * H, None, NOW)
        assert at is not None
        intervals.append(at - NOW)
    assert intervals == sorted(intervals) and intervals[0] == 15 * M and intervals[-1] == D
    assert decide_next_comments_poll(NOW - D, NOW - D, None, NOW, quiet_after=D) is None


def comment(number: int | None = None, at: datetime | None = None) -> CommentData:
    return CommentData(key=f"{number}-{at}", content="", number=number, published_at=at)


@pytest.mark.parametrize(
    ("stored_numbers", "stored_newest", "fetched", "gap"),
    [
        ({1, 2, 3}, None, [comment(4), comment(5)], False),
        ({1, 2, 3}, None, [comment(2), comment(3), comment(4)], False),
        ({1, 2, 3}, None, [comment(6), comment(7)], True),  # 4 and 5 are missing
        ({1, 2, 3}, None, [comment(4), comment(6)], False),  # 5 deleted by the blog: no refetch
        ({1, 2, 3}, None, [comment(1), comment(3)], False),  # nothing new
        (set(), None, [comment(50), comment(51)], False),  # nothing stored yet
        ([None, 3], None, [comment(5)], True),
        (set(), NOW - H, [comment(at=NOW - 30 * M), comment(at=NOW)], True),  # window slid past us
        (set(), NOW - H, [comment(at=NOW - H), comment(at=NOW)], False),  # overlap
        (set(), NOW - H, [comment(at=NOW - 2 * H), comment(at=NOW)], False),
        (set(), NOW - H, [comment(), comment()], False),  # undated: cannot tell
        (set(), None, [comment(at=NOW)], False),  # no stored comments
        ({1, 2}, NOW - H, [], False),  # empty feed: cannot tell
    ],
)
def test_detect_comment_gap(
    stored_numbers: set[int], stored_newest: datetime | None, fetched: list[CommentData], gap: bool
) -> None:
    assert detect_comment_gap(stored_numbers, stored_newest, fetched) is gap


# -- properties ----------------------------------------------------------------------------------

statuses = st.sampled_from([None, 200, 203, 304, 301, 302, 400, 403, 404, 429, 500, 502, 503])
header_values = st.one_of(
    st.text(max_size=20),
    st.integers(-10, 10**9).map(str),
    st.sampled_from(["Wed, 06 Mar 2024 11:00:00 GMT", "Thu, 07 Mar 2024 12:00:00 GMT", "0"]),
)
headers = st.dictionaries(
    st.sampled_from(["Retry-After", "Cache-Control", "Expires", "Age", "Date"]), header_values
)
cache_controls = st.integers(-10, 10**9).map(lambda n: {"Cache-Control": f"max-age={n}"})
times = st.datetimes(
    min_value=datetime(2023, 1, 1), max_value=datetime(2024, 4, 1), timezones=st.just(UTC)
)
hint_feeds = st.builds(
    FeedData,
    title=st.none(),
    link=st.none(),
    entries=st.just(()),
    ttl_minutes=st.one_of(st.none(), st.integers(-100, 10**7)),
    update_period_seconds=st.one_of(st.none(), st.integers(-100, 10**9)),
    skip_hours=st.frozensets(st.integers(-2, 25), max_size=24),
    skip_days=st.frozensets(st.sampled_from(["Monday", "Wednesday", "Thursday", "sunday", "x"])),
)
outcomes = st.builds(
    PollOutcome,
    status=statuses,
    headers=st.one_of(headers, cache_controls),
    feed=st.one_of(st.none(), hint_feeds),
    entry_times=st.lists(times, max_size=15),
    interval=st.one_of(st.none(), st.timedeltas(min_value=timedelta(0), max_value=2 * D)),
    adaptive=st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(outcome=outcomes, errors=st.integers(0, 100), seed=st.integers(0, 2**32))
def test_next_poll_never_earlier_than_the_floor(
    outcome: PollOutcome, errors: int, seed: int
) -> None:
    plan = decide_next_poll(
        DEFAULT_POLICY, ScheduleState(URL, errors), outcome, NOW, random.Random(seed)
    )
    assert plan.next_poll_at is not None and not plan.retired
    assert NOW + DEFAULT_POLICY.floor <= plan.next_poll_at <= NOW + DEFAULT_POLICY.max_delay
    assert plan.error_count == (0 if outcome.status in (200, 203, 304) else errors + 1)
    feed_ = outcome.feed
    if (
        feed_ is not None
        and plan.error_count == 0
        and plan.next_poll_at < NOW + DEFAULT_POLICY.max_delay
    ):
        assert plan.next_poll_at.hour not in {h % 24 for h in feed_.skip_hours if 0 <= h <= 24}
        assert plan.next_poll_at.strftime("%A").lower() not in {d.lower() for d in feed_.skip_days}


@settings(max_examples=200, deadline=None)
@given(
    first_seen=times, last_comment=st.one_of(st.none(), times), last_new=st.one_of(st.none(), times)
)
def test_comments_poll_is_soon_or_never(
    first_seen: datetime, last_comment: datetime | None, last_new: datetime | None
) -> None:
    at = decide_next_comments_poll(first_seen, last_comment, last_new, NOW)
    latest = max(
        [t for t in (first_seen, last_comment, last_new) if t is not None and t <= NOW] or [NOW]
    )
    if at is None:
        assert NOW - max(latest, first_seen) >= timedelta(days=14)
    else:
        assert NOW + 15 * M <= at <= NOW + D
