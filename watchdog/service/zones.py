"""The zones the service watches: their config, alert state and plan bookkeeping (no I/O).

A ``ZoneTable`` applies a config (at start and on every reload): zones that stay keep their
alert state, new zones start from what the store held for them and are planned at once,
removed zones leave the schedule. It also writes the one-line status systemd shows.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from watchdog.config.parse import Config, ZoneConfig
from watchdog.config.targets import ZoneTarget
from watchdog.engine.alerts import AlertPolicy, AlertState, Condition
from watchdog.engine.schedule import Plan, Reason, Schedule
from watchdog.engine.stall import History
from watchdog.engine.timeutil import rfc3339
from watchdog.errors import WatchdogError

__all__ = ["WatchedZone", "ZoneChanges", "ZoneTable", "stored_histories", "stored_states"]

# The order of the status line: from fine to worst, then the zones not yet checked.
_STATUS_ORDER = (
    "ok",
    "warning",
    "unknown",
    "unreachable",
    "strict_fail",
    "skew_exhausted",
    "bogus",
    "pending",
)


@dataclass
class WatchedZone:
    """One zone as the service holds it: ``states`` is what the store holds for it."""

    config: ZoneConfig
    target: ZoneTarget
    policy: AlertPolicy
    states: dict[Condition, AlertState]
    history: History = field(default_factory=History)  # what the store holds (engine/stall)
    severity: str = "pending"

    @property
    def name(self) -> str:
        return self.config.name


@dataclass(frozen=True)
class ZoneChanges:
    """What applying a config changed: names added and removed."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


def _target(zone: ZoneConfig) -> ZoneTarget:
    return ZoneTarget(
        zone=zone.name,
        servers=zone.servers,
        trust_anchor=zone.trust_anchor,
        extra=zone.extra,
        coverage=zone.coverage,
    )


def stored_states(
    rows: Mapping[tuple[str, str], Mapping[str, Any]],
) -> dict[str, dict[Condition, AlertState]]:
    """The store's alert-state rows by zone; a row this version cannot read is skipped (the
    condition starts afresh rather than the service refusing to start)."""
    stored: dict[str, dict[Condition, AlertState]] = {}
    for (zone, condition), data in rows.items():
        with contextlib.suppress(WatchdogError, ValueError):
            stored.setdefault(zone, {})[Condition(condition)] = AlertState.from_dict(data)
    return stored


def stored_histories(rows: Mapping[str, Mapping[str, Any]]) -> dict[str, History]:
    """The store's signature histories by zone; one this version cannot read is learned
    again (the zone is "learning" for a while) rather than the service refusing to start."""
    histories = {}
    for zone, data in rows.items():
        with contextlib.suppress(WatchdogError, ValueError):
            histories[zone] = History.from_dict(data)
    return histories


@dataclass
class ZoneTable:
    """The watched zones by name, and the schedule that says when each is checked next."""

    schedule: Schedule = field(default_factory=Schedule)
    zones: dict[str, WatchedZone] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.zones)

    def __iter__(self) -> Iterator[WatchedZone]:
        return iter(self.zones.values())

    def get(self, name: str) -> WatchedZone | None:
        return self.zones.get(name)

    def current(self, zone: WatchedZone) -> bool:
        """Whether ``zone`` is still the one watched under its name (not removed by a reload)."""
        return self.zones.get(zone.name) is zone

    def apply(
        self,
        config: Config,
        stored: Mapping[str, dict[Condition, AlertState]],
        now: int,
        histories: Mapping[str, History] | None = None,
    ) -> ZoneChanges:
        """Watch the zones of ``config``: keep the state of zones that stay, plan new ones at
        ``now`` with what the store held for them (``stored``, ``histories``), forget removed
        ones."""
        wanted = {z.name: z for z in config.zones}
        removed = tuple(name for name in self.zones if name not in wanted)
        for name in removed:
            del self.zones[name]
            self.schedule.remove(name)
        added = []
        for name, zc in wanted.items():
            policy = AlertPolicy(renotify=zc.renotify, unreachable_after=zc.unreachable_after)
            z = self.zones.get(name)
            if z is not None:
                z.config, z.target, z.policy = zc, _target(zc), policy
                continue
            history = (histories or {}).get(name, History())
            self.zones[name] = WatchedZone(
                zc, _target(zc), policy, dict(stored.get(name, {})), history
            )
            self.schedule.set(Plan(now, name, Reason.FIRST))
            added.append(name)
        return ZoneChanges(tuple(added), removed)

    def status(self) -> str:
        """systemd's STATUS= line: zones per severity and the time of the next check."""
        counts = Counter(z.severity for z in self.zones.values())
        parts = ", ".join(f"{counts[k]} {k}" for k in _STATUS_ORDER if counts.get(k))
        nxt = self.schedule.next_due()
        when = f"; next check {rfc3339(nxt)[11:]}" if nxt is not None else ""
        noun = "zone" if len(self.zones) == 1 else "zones"
        return f"{len(self.zones)} {noun}: {parts or 'none'}{when}"

    def severities(self) -> Counter[str]:
        """How many zones are in each severity (``pending``: not checked yet)."""
        return Counter(z.severity for z in self.zones.values())
