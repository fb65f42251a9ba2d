"""The scheduler's decisions: interval with jitter, predicted crossings, retries, clock steps."""

from __future__ import annotations

from watchdog.engine.schedule import (
    Plan,
    Reason,
    Schedule,
    ScheduleSettings,
    jitter_offset,
    plan_next,
)

S = ScheduleSettings(interval=900, jitter=0.1, retry_base=30, retry_cap=900)
T = 1_800_000_000


def test_regular_interval_with_stable_jitter() -> None:
    """Without a crossing or failure, the next check is one interval plus the zone's jitter."""
    plan = plan_next("example.com.", T, S)
    assert plan.reason is Reason.INTERVAL
    assert T + 900 <= plan.due < T + 990
    assert plan == plan_next("example.com.", T, S)  # same zone, same phase


def test_jitter_spreads_many_zones() -> None:
    """10,000 zones spread over the jitter window instead of firing in the same second."""
    offsets = [jitter_offset(f"zone{i}.example.", S) for i in range(10_000)]
    assert all(0 <= o < 90 for o in offsets)
    per_second = [offsets.count(s) for s in range(90)]
    assert max(per_second) < 200  # an even spread puts ~111 zones in each second


def test_crossing_comes_first() -> None:
    """A predicted threshold crossing before the interval is checked one second after it."""
    plan = plan_next("example.com.", T, S, next_crossing=T + 120)
    assert plan == Plan(T + 121, "example.com.", Reason.CROSSING)


def test_crossing_after_interval_waits_for_interval() -> None:
    """A crossing far ahead does not delay the regular check."""
    assert plan_next("example.com.", T, S, next_crossing=T + 86400).reason is Reason.INTERVAL


def test_retry_backs_off_exponentially_to_cap() -> None:
    """Failed probes are retried after 30 s, 60 s, 120 s ... capped at the interval."""
    dues = [plan_next("z.", T, S, failures=n).due - T for n in range(1, 7)]
    assert dues[:5] == [30, 60, 120, 240, 480]
    assert dues[5] >= 900 - 1 and dues[5] < 990


def test_schedule_pops_due_plans_in_order_and_replaces() -> None:
    """Only the latest plan per zone counts; due plans come out earliest first."""
    s = Schedule()
    s.set(Plan(T + 50, "a.", Reason.INTERVAL))
    s.set(Plan(T + 10, "b.", Reason.INTERVAL))
    s.set(Plan(T + 5, "a.", Reason.CROSSING))  # replaces a.'s earlier plan
    assert len(s) == 2 and s.next_due() == T + 5
    assert [p.zone for p in s.pop_due(T + 20)] == ["a.", "b."]
    assert s.pop_due(T + 1000) == [] and s.next_due() is None


def test_replan_after_backward_clock_step() -> None:
    """After the wall clock steps back an hour, no check stays postponed past one interval."""
    s = Schedule()
    s.set(Plan(T + 900, "a.", Reason.INTERVAL))
    stepped_now = T - 3600
    s.replan(stepped_now, S)
    plan = s.plan_of("a.")
    assert plan is not None and plan.due <= stepped_now + 990


def test_remove_zone() -> None:
    """A removed zone is never returned."""
    s = Schedule()
    s.set(Plan(T, "a.", Reason.FIRST))
    s.remove("a.")
    assert "a." not in s and s.pop_due(T + 1) == []
