"""What the status page shows, as plain data, and how its rows are chosen: order, filters, pages.

Pure. The service keeps a ``StatusSnapshot`` up to date (every stored check, and the outbox's
delivery states every few seconds); the pages and the JSON API only read it, so a request never
waits on probing or on the state file. Query strings come from anyone who can reach the
listener: ``parse_query`` accepts exactly the documented parameters and refuses the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import parse_qsl

from watchdog.engine.assess import ZoneReport
from watchdog.engine.findings import Severity
from watchdog.errors import InvalidValueError

__all__ = [
    "PAGE_SIZE",
    "PENDING",
    "DeliveryState",
    "Selection",
    "SentEvent",
    "StatusQuery",
    "StatusSnapshot",
    "WebhookDelivery",
    "ZoneStatus",
    "parse_query",
    "select",
    "sort_key",
]

PAGE_SIZE = 200
PENDING = "pending"  # a configured zone not checked yet
_MAX_SEARCH = 1024  # characters; a DNS name in presentation format with \DDD escapes fits
_MAX_PAGE_DIGITS = 6
# Already failing or unjudgeable: ahead of every zone that still has time left.
_NOW_PROBLEMS = frozenset({Severity.BOGUS, Severity.UNREACHABLE, Severity.UNKNOWN})


class DeliveryState(StrEnum):
    """Where one event stands with one webhook, as the outbox says."""

    DELIVERED = "delivered"
    RETRYING = "retrying"  # pending after at least one failed attempt
    QUEUED = "queued"  # pending, not tried yet
    GIVEN_UP = "given_up"
    UNKNOWN = "unknown"  # no longer in the outbox (pruned), or not read yet


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One event's delivery to one webhook (by name only: URLs and keys are secrets)."""

    webhook: str
    state: DeliveryState
    attempts: int = 0
    next_attempt_at: int | None = None  # when retrying
    finished_at: int | None = None  # delivered or given up
    last_status: int | None = None  # the receiver's HTTP status of the last attempt


@dataclass(frozen=True, slots=True)
class SentEvent:
    """An alert event of one zone and what became of it at each webhook."""

    id: str
    condition: str
    kind: str
    old_severity: str
    new_severity: str
    at: int
    deliveries: tuple[WebhookDelivery, ...] = ()


@dataclass(frozen=True, slots=True)
class ZoneStatus:
    """One configured zone: its last report (None before the first check) and what comes next."""

    name: str
    report: ZoneReport | None
    next_check: int | None
    events: tuple[SentEvent, ...] = ()  # newest first

    @property
    def severity(self) -> str:
        return self.report.severity.value if self.report is not None else PENDING

    @property
    def coverage(self) -> str | None:
        """How much of the zone the last check judged: "apex", "transfer" or "walk"."""
        r = self.report
        return r.coverage.mode if r is not None and r.coverage is not None else None

    @property
    def last_check(self) -> int | None:
        return self.report.checked_at if self.report is not None else None


@dataclass(frozen=True, slots=True)
class StatusSnapshot:
    """Every zone, in deadline order (``sort_key``), as of ``taken_at``.

    ``build`` also keeps what every request filters on (severity words, case-folded names)
    and the counts, so a request over 10,000 zones only compares strings.
    """

    taken_at: int
    zones: tuple[ZoneStatus, ...]
    by_name: dict[str, ZoneStatus] = field(default_factory=dict, compare=False)
    severities: tuple[str, ...] = field(default=(), compare=False)
    folded: tuple[str, ...] = field(default=(), compare=False)
    counts: dict[str, int] = field(default_factory=dict, compare=False)

    @classmethod
    def build(cls, taken_at: int, zones: Sequence[ZoneStatus]) -> StatusSnapshot:
        ordered = tuple(sorted(zones, key=sort_key))
        severities = tuple(z.severity for z in ordered)
        counts: dict[str, int] = {}
        for word in severities:
            counts[word] = counts.get(word, 0) + 1
        return cls(
            taken_at,
            ordered,
            {z.name: z for z in ordered},
            severities,
            tuple(z.name.casefold() for z in ordered),
            counts,
        )


def sort_key(z: ZoneStatus) -> tuple[int, int, int, str]:
    """Soonest deadline first; what fails or cannot be judged now ahead of zones with time left.

    The deadline is the zone's strict-fail moment: a zone that already fails has one in the
    past and so comes first. A bogus, unreachable or unknown zone counts as failing now (its
    deadline, if any, no later than the check that saw it). Unchecked zones come last.
    """
    r = z.report
    if r is None:
        return (1, 0, 0, z.name)
    at = r.deadlines.strict_fail_at if r.deadlines is not None else None
    if r.severity in _NOW_PROBLEMS or at is None:
        at = r.checked_at if at is None else min(at, r.checked_at)
    return (0, at, -r.severity.rank, z.name)


@dataclass(frozen=True, slots=True)
class StatusQuery:
    """The index page's parameters: ``severity`` (one word), ``q`` (name contains), ``page``."""

    severity: str | None = None
    search: str = ""
    page: int = 1

    def params(self, **changes: object) -> dict[str, str]:
        """Query parameters for a link to this view with ``changes`` (defaults left out)."""
        values = {"severity": self.severity, "q": self.search, "page": self.page, **changes}
        out = {}
        if values["severity"]:
            out["severity"] = str(values["severity"])
        if values["q"]:
            out["q"] = str(values["q"])
        if values["page"] != 1:
            out["page"] = str(values["page"])
        return out


SEVERITY_WORDS = (*(s.value for s in Severity), PENDING)


def parse_query(raw: str) -> StatusQuery:
    """The query string of ``/`` or ``/api/v1/zones``; ``InvalidValueError`` says what is wrong.

    Only ``severity``, ``q`` and ``page``, each at most once; percent-escapes must decode to
    UTF-8; ``page`` is ASCII digits (no sign, no other script's digits).
    """
    try:
        pairs = parse_qsl(
            raw, keep_blank_values=True, strict_parsing=False, errors="strict", max_num_fields=3
        )
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidValueError(f"bad query string: {exc}") from exc
    seen: dict[str, str] = {}
    for key, value in pairs:
        if key not in ("severity", "q", "page"):
            raise InvalidValueError(f"unknown parameter {key!r}: use severity, q or page")
        if key in seen:
            raise InvalidValueError(f"parameter {key!r} given twice")
        seen[key] = value
    severity = seen.get("severity") or None
    if severity is not None and severity not in SEVERITY_WORDS:
        raise InvalidValueError(f"severity {severity!r} is not one of {', '.join(SEVERITY_WORDS)}")
    search = seen.get("q", "")
    if len(search) > _MAX_SEARCH or any(ord(c) < 0x20 or ord(c) == 0x7F for c in search):
        raise InvalidValueError(f"q: at most {_MAX_SEARCH} characters, no control characters")
    page = _page_number(seen.get("page"))
    return StatusQuery(severity, search, page)


def _page_number(text: str | None) -> int:
    if text is None or text == "":
        return 1
    if not (text.isascii() and text.isdigit()) or len(text) > _MAX_PAGE_DIGITS or int(text) < 1:
        raise InvalidValueError(f"page {text!r} is not a page number (1, 2, ...)")
    return int(text)


@dataclass(frozen=True, slots=True)
class Selection:
    """The rows of one page, and what the page needs to say about the rest."""

    rows: tuple[ZoneStatus, ...]
    matched: int  # zones passing the filters
    page: int
    pages: int
    counts: dict[str, int]  # every zone, by severity word (the filters do not change them)


def select(snapshot: StatusSnapshot, query: StatusQuery, page_size: int = PAGE_SIZE) -> Selection:
    """Filter the snapshot's ordered zones and cut one page; a page past the end is an error."""
    needle, wanted = query.search.casefold(), query.severity
    if not needle and wanted is None:
        matched: Sequence[ZoneStatus] = snapshot.zones
    else:
        matched = [
            z
            for z, severity, name in zip(
                snapshot.zones, snapshot.severities, snapshot.folded, strict=True
            )
            if (wanted is None or severity == wanted) and needle in name
        ]
    pages = max(1, -(-len(matched) // page_size))
    if query.page > pages:
        raise InvalidValueError(f"page {query.page} does not exist: there are {pages}")
    start = (query.page - 1) * page_size
    rows = tuple(matched[start : start + page_size])
    return Selection(rows, len(matched), query.page, pages, snapshot.counts)
