"""The sentences people read, written in one place.

The terminal report (watchdog.render.check), its Nagios line, the webhook body's ``summary``
and Slack (watchdog.alerting.payloads) all say what a zone's deadlines mean with the words
below: "strict validators fail in 2h 13m (...)", the summary of an alert event, the headline of
a zone. A finding's own ``message`` is written where it is found (engine, probe); everything
that tells the state of a zone or an event is here. Pure: every function takes ``now`` (or an
object that carries it). DESIGN.md 3.
"""

from __future__ import annotations

from collections.abc import Callable

from watchdog.engine.alerts import AlertEvent, Condition, EventDeadlines, EventKind, SignatureRef
from watchdog.engine.codes import Code
from watchdog.engine.coverage import CoverageVerdict
from watchdog.engine.findings import Severity
from watchdog.engine.timeutil import format_duration, format_relative, rfc3339

__all__ = [
    "STRICT_VALIDATORS",
    "coverage_sentence",
    "event_headline",
    "finding_reason",
    "nagios_expiry",
    "no_timeline_reason",
    "profile_differs",
    "server_label",
    "servers_unreachable",
    "severity_word",
    "span",
    "summarize",
    "threshold_label",
    "worst_server",
    "zone_label",
]

# Who "strict validators" are: RFC 4035 5.3.1 without skew (DESIGN.md 1).
STRICT_VALIDATORS = "BIND 9, Knot Resolver, PowerDNS Recursor, Google Public DNS"


# --- words -------------------------------------------------------------------------------------


def severity_word(severity: Severity) -> str:
    """ "strict fail", "skew exhausted": a severity as a word."""
    return severity.value.replace("_", " ")


def zone_label(zone: str) -> str:
    """A zone name as people write it: without the final dot (the root stays ".")."""
    return zone.rstrip(".") or "."


def span(seconds: int) -> str:
    """A duration to the minute; the exact RFC 3339 moment is always printed next to it."""
    return format_duration(seconds - seconds % 60 if seconds >= 60 else seconds)


def _host(address: str) -> str:
    """ "192.0.2.53:53" -> "192.0.2.53", "[2001:db8::53]:53" -> "2001:db8::53"; other ports stay."""
    if address.startswith("[") and address.endswith("]:53"):
        return address[1:-4]
    if address.count(":") == 1 and address.endswith(":53"):
        return address[:-3]
    return address


def server_label(address: str, name: str | None, zone: str) -> str:
    """ "ns2 192.0.2.53": the NS name relative to the zone when it is inside it, and the address."""
    if address == "parent":
        return "the parent's DS"
    if not name:
        return _host(address)
    short, suffix = name.rstrip("."), "." + zone.rstrip(".").lower()
    if suffix != "." and short.lower().endswith(suffix):
        short = short[: -len(suffix)]
    return f"{short} {_host(address)}"


def _ref(ref: SignatureRef, zone: str) -> str:
    return server_label(ref.server, ref.server_name, zone)


def _event_timeline(event: AlertEvent, d: EventDeadlines) -> str:
    now, sig = event.at, d.signature
    if now < d.strict_fail_at and now >= sig.inception:
        return (
            f"strict validators fail in {span(d.strict_fail_at - now)} "
            f"({rfc3339(d.strict_fail_at)}); Unbound in {span(d.skew_exhausted_at - now)}"
        )
    if now < sig.inception:
        return (
            f"signature not valid before {rfc3339(sig.inception)}; strict validators fail "
            f"until then"
        )
    if now < d.skew_exhausted_at:
        return (
            f"signatures expired; strict validators fail since {rfc3339(d.strict_fail_at)} "
            f"({span(now - d.strict_fail_at)} ago); Unbound fails in "
            f"{span(d.skew_exhausted_at - now)} ({rfc3339(d.skew_exhausted_at)})"
        )
    return (
        f"signatures expired; every validator fails since {rfc3339(d.skew_exhausted_at)} "
        f"({span(now - d.skew_exhausted_at)} ago), strict validators since "
        f"{rfc3339(d.strict_fail_at)}"
    )


def _stale(event: AlertEvent, d: EventDeadlines) -> str | None:
    """The blamed server, when it is behind others rather than the whole zone being late."""
    blamed = d.signature.server
    later = any(
        s.reachable and s.strict_fail_at is not None and s.strict_fail_at > d.strict_fail_at
        for s in event.servers
    )
    old_serial = any(f.code == Code.STALE_SERIAL and f.server == blamed for f in event.findings)
    if blamed != "parent" and (later or old_serial):
        return _ref(d.signature, event.zone)
    return None


def _expiry(event: AlertEvent) -> str:
    d = event.deadlines
    if d is None:
        return "the zone is no longer signed" if not event.signed else "no signature verifies"
    text = _event_timeline(event, d)
    stale = _stale(event, d)
    if stale and not event.resolved:
        text += f"; stale server {stale}"
    return text


def _first(event: AlertEvent, severity: Severity) -> str:
    prefix = f"{event.zone}: "  # zone-level messages start with the zone, already said
    hits = [f.message.removeprefix(prefix) for f in event.findings if f.severity is severity]
    if not hits:
        return severity_word(severity)
    more = f" (and {len(hits) - 1} more)" if len(hits) > 1 else ""
    return f"{hits[0]}{more}"


def _stalled(event: AlertEvent) -> str:
    """The stall finding's own sentence (engine/stall.py words it, with the figures)."""
    prefix = f"{event.zone}: "
    hits = [f.message.removeprefix(prefix) for f in event.findings if f.code in _STALL_CODES]
    return hits[0] if hits else "signer stalled"


def _who_is_silent(event: AlertEvent) -> str:
    silent = [server_label(s.address, s.name, event.zone) for s in event.servers if not s.reachable]
    return ", ".join(silent) if silent else "no authoritative server found"


def _silent(event: AlertEvent) -> str:
    return f"{_who_is_silent(event)} not answering ({event.failures} consecutive failed checks)"


_STALL_CODES = frozenset({Code.SIGNER_STALLED, Code.SECONDARY_STALLED})
_DETAIL: dict[Condition, Callable[[AlertEvent], str]] = {
    Condition.EXPIRY: _expiry,
    Condition.BOGUS: lambda e: f"bogus: {_first(e, Severity.BOGUS)}",
    Condition.UNREACHABLE: lambda e: f"unreachable: {_silent(e)}",
    Condition.UNKNOWN: lambda e: f"cannot judge: {_first(e, Severity.UNKNOWN)}",
    Condition.SIGNER: lambda e: _stalled(e),
}
_RECOVERED: dict[Condition, Callable[[AlertEvent], str]] = {
    Condition.EXPIRY: _expiry,
    Condition.BOGUS: lambda e: "every RRset validates again",
    Condition.UNREACHABLE: lambda e: "every server answers again",
    Condition.UNKNOWN: lambda e: "the zone can be judged again",
    Condition.SIGNER: lambda e: "signatures are refreshed again",
}


def summarize(event: AlertEvent) -> str:
    """One line for humans, e.g. "example.com: strict validators fail in 2h 13m (...); ..."."""
    if event.kind is EventKind.RAISED:
        head = ""
    elif event.kind is EventKind.RENOTIFY:
        head = f"still {severity_word(event.new_severity)} since {rfc3339(event.since)}; "
    elif event.resolved:
        head = f"recovered from {severity_word(event.old_severity)}; "
    else:
        old, new = severity_word(event.old_severity), severity_word(event.new_severity)
        head = f"improved from {old} to {new}; "
    if not event.confirmed:  # this check's data would contradict the state it carries over
        detail = f"not confirmed by this check: {_who_is_silent(event)} not answering"
    else:
        detail = (_RECOVERED if event.resolved else _DETAIL)[event.condition](event)
    return " ".join(f"{zone_label(event.zone)}: {head}{detail}".split())  # always one line


# --- headlines and timelines ------------------------------------------------------------------

_EVENT_HEADLINE = {
    Severity.OK: "recovered",
    Severity.WARNING: "signatures expire soon",
    Severity.STRICT_FAIL: "strict validators fail",
    Severity.SKEW_EXHAUSTED: "every validator fails",
    Severity.BOGUS: "does not validate",
    Severity.UNREACHABLE: "servers not answering",
    Severity.UNKNOWN: "cannot be judged",
}


def event_headline(severity: Severity) -> str:
    """What a zone entering ``severity`` means, in three words (Slack's header)."""
    return _EVENT_HEADLINE[severity]


def threshold_label(threshold: str, at: int, now: int, unbound_skew: int = 0) -> str:
    """The terminal timeline's label of a threshold: "warning at", "strict validators failing
    since", ...; ``threshold`` is ``warning``, ``strict_fail``, ``skew_exhausted`` or
    ``valid_from`` (a signature from the future)."""
    if threshold == "valid_from":
        return "signatures valid from"
    who = {
        "warning": ("warning at", "warning since"),
        "strict_fail": ("strict validators fail at", "strict validators failing since"),
        "skew_exhausted": (
            f"Unbound (skew {unbound_skew} s) fails at",
            f"Unbound (skew {unbound_skew} s) failing since",
        ),
    }[threshold]
    return who[0] if at > now else who[1]


def no_timeline_reason(signed: bool, served: bool) -> str:
    """Why a zone has no timeline to show."""
    if not signed:
        return "no server serves a DNSKEY RRset, so there is nothing to watch"
    if not served:
        return "no server served the zone: nothing to judge"
    return "no signature verifies: no deadline to count down to"


def nagios_expiry(
    zone: str, severity: Severity, strict_fail_at: int, skew_exhausted_at: int, now: int
) -> str:
    """A zone's Nagios summary when its dates are the story."""
    return (
        f"{zone} {severity_word(severity)}: strict validators fail "
        f"{format_relative(strict_fail_at, now)} ({rfc3339(strict_fail_at)}), "
        f"Unbound {format_relative(skew_exhausted_at, now)}"
    )


def finding_reason(zone: str, severity: Severity, code: str | None, server: str | None) -> str:
    """A zone's Nagios summary when a finding is the story: its code and where it was seen."""
    if code is None:
        return f"{zone} {severity_word(severity)}"
    where = f" on {server}" if server else ""
    return f"{zone} {severity_word(severity)}: {code}{where}"


def profile_differs(profile: str, strict: Severity) -> str:
    """Why the headline's severity is not the engine's: it is seen by another profile."""
    return f"for {profile}; {severity_word(strict)} for strict validators"


def servers_unreachable(silent: int, total: int) -> str:
    """How many of a zone's servers did not answer, when others did."""
    return f"{silent} of {total} servers unreachable"


def worst_server(address: str, name: str | None = None) -> str:
    """The server to blame first, as the terminal and Nagios name it."""
    return f"worst server {address}" + (f" ({name})" if name else "")


def coverage_sentence(c: CoverageVerdict) -> str:
    """What this check covered; in apex mode, what it did not."""
    counted = f"{c.rrsets:,} RRsets, {c.signatures:,} signatures, {c.names:,} names"
    if c.mode == "apex":  # the JSON's not_covered says it at length
        failed = f", {c.wanted} failed (see findings)" if c.wanted != "apex" else ""
        return f"apex only{failed} ({counted}); names below the apex not checked"
    how = "transfer from" if c.mode == "transfer" else "NSEC walk of"
    states = ", ".join(f"{n:,} {state.replace('_', ' ')}" for state, n in c.counts)
    return f"{how} {c.source}, serial {c.serial}: {counted} ({states})"
