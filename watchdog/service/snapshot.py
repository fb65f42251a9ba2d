"""What the service knows right now, kept in memory for the pages that show it.

The HTTP handlers (``/metrics``, ``/healthz``, status pages) must never wait on probing or
SQLite, so the service keeps this view up to date as it goes: each zone's last verdict, set as
soon as its check is stored (``ZoneState``, a compact copy of the ``ZoneReport``, so 10,000
zones stay cheap), its own counters, and the outbox figures, refreshed in the background.
A zone removed by a reload is dropped from the view, so its samples vanish.

Reads and writes happen in the event loop's thread; ``freeze()`` copies what a renderer in
another thread may read.
"""

from __future__ import annotations

import bisect
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from watchdog.engine.assess import ZoneReport
from watchdog.engine.findings import Finding

__all__ = [
    "DURATION_BUCKETS",
    "CheckResult",
    "Frozen",
    "OutboxState",
    "ServerState",
    "Snapshot",
    "ZoneState",
    "zone_state",
]

# Seconds; a check covers one batch of zones due together (from one zone to every zone).
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class CheckResult:
    """The ``result`` label of ``dnssec_watchdog_checks_total``: one zone's check."""

    SUCCESS = "success"  # judged and stored (whatever the zone's state)
    FAILURE = "failure"  # not judged or not stored (worker died, state file unwritable, bug)


@dataclass(frozen=True, slots=True)
class ServerState:
    """One server address of a zone at its last check."""

    address: str
    name: str | None
    up: bool
    serial: int | None
    severity: str


@dataclass(frozen=True, slots=True)
class ZoneState:
    """One zone's last verdict; deadlines are Unix seconds, None when there is none."""

    zone: str
    severity: str
    checked_at: int
    warning_at: int | None
    strict_fail_at: int | None
    skew_exhausted_at: int | None
    servers: tuple[ServerState, ...]
    findings: tuple[Finding, ...]
    next_check: int | None = None


def zone_state(report: ZoneReport, next_check: int | None = None) -> ZoneState:
    """The compact state of ``report``: what the pages and the metrics need, nothing more."""
    d = report.deadlines
    return ZoneState(
        zone=report.zone,
        severity=report.severity.value,
        checked_at=report.checked_at,
        warning_at=d.warning_at if d else None,
        strict_fail_at=d.strict_fail_at if d else None,
        skew_exhausted_at=d.skew_exhausted_at if d else None,
        servers=tuple(
            ServerState(s.address, s.name, s.reachable, s.serial, s.severity.value)
            for s in report.servers
        ),
        findings=report.all_findings,
        next_check=next_check,
    )


@dataclass(frozen=True, slots=True)
class OutboxState:
    """One webhook's undelivered entries: how many, and when the oldest was enqueued."""

    pending: int = 0
    oldest_created_at: float | None = None


@dataclass(frozen=True, slots=True)
class Frozen:
    """A copy of the snapshot at one moment, safe to read from another thread."""

    version: str
    zones: tuple[ZoneState, ...]
    checks: Mapping[str, int]
    duration_buckets: tuple[int, ...]  # cumulative counts per DURATION_BUCKETS, then +Inf
    duration_sum: float
    deliveries: Mapping[tuple[str, str], int]  # (webhook, result) -> count
    webhooks: tuple[str, ...]
    outbox: Mapping[str, OutboxState]
    restarts: Mapping[str, int]
    at: float


@dataclass
class Snapshot:
    """The service's live view. The service writes it; handlers read or ``freeze`` it."""

    version: str
    zones: dict[str, ZoneState] = field(default_factory=dict)
    checks: Counter[str] = field(default_factory=Counter)
    deliveries: Counter[tuple[str, str]] = field(default_factory=Counter)
    webhooks: tuple[str, ...] = ()
    outbox: dict[str, OutboxState] = field(default_factory=dict)
    restarts: Mapping[str, int] = field(default_factory=dict)
    generation: int = 0  # changes whenever ``zones`` does: rendered zone metrics are reused
    _buckets: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BUCKETS) + 1))
    _duration_sum: float = 0.0

    def checked(self, state: ZoneState) -> None:
        """A zone's check was stored: it is the zone's state from now on."""
        self.zones[state.zone] = state
        self.checks[CheckResult.SUCCESS] += 1
        self.generation += 1

    def failed(self, zones: int) -> None:
        """``zones`` checks ended without a stored verdict (they are tried again)."""
        self.checks[CheckResult.FAILURE] += zones

    def keep_only(self, names: Iterable[str]) -> None:
        """Forget zones no longer configured (a reload removed them)."""
        wanted = set(names)
        for name in [n for n in self.zones if n not in wanted]:
            del self.zones[name]
            self.generation += 1

    def observe_duration(self, seconds: float) -> None:
        """One check batch took ``seconds``."""
        self._buckets[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1
        self._duration_sum += seconds

    def oldest_check(self) -> int | None:
        """The earliest ``checked_at`` over the zones checked so far."""
        return min((z.checked_at for z in self.zones.values()), default=None)

    def freeze(self, *, zones: bool = True) -> Frozen:
        """A copy for another thread; without the zones when they are rendered apart."""
        cumulative, total = [], 0
        for count in self._buckets:
            total += count
            cumulative.append(total)
        return Frozen(
            version=self.version,
            zones=tuple(self.zones.values()) if zones else (),
            checks=dict(self.checks),
            duration_buckets=tuple(cumulative),
            duration_sum=self._duration_sum,
            deliveries=dict(self.deliveries),
            webhooks=self.webhooks,
            outbox=dict(self.outbox),
            restarts=dict(self.restarts),
            at=time.time(),
        )
