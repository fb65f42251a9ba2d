"""One oracle run: what a fresh validator answers at a chosen second for a freshly signed zone.

observe() does the whole run of the shared VALIDATOR-LAB notes: sign a zone with the asked
inception/expiration, serve it from NSD, start ONE validator with an empty cache at the asked
second, send one query, prove from the validator's own log that it ran at that second, stop
everything.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import dns.exception

from watchdog.engine.profiles import DEFAULT_SETTINGS, ValidatorSettings

from .clock import next_second_after, sleep_until
from .dnsquery import ValidatorAnswer, query
from .process import ClockNotConfirmedError, LabError
from .servers import NsdServer
from .validators import Clock, Validator
from .zones import SignedZone, ZoneKeys, make_signed_zone, make_zone_keys

__all__ = ["Observation", "observe"]

# For shifted-date validators: how far ahead of "now" the query second R is first placed (it
# must leave time to sign, start NSD and start the validator), and how often to try again,
# doubling the lead, when start-up or the query did not fit before or inside R.
_FIRST_LEAD = 0.5
_SHIFTED_ATTEMPTS = 4


@dataclass(frozen=True, slots=True)
class Observation:
    """A validator's answer at the faked second ``at``, and the evidence of its clock."""

    validator: str  # product and version, e.g. "unbound 1.17.1"
    at: int  # the "now" the validator judged the signatures at (POSIX seconds)
    answer: ValidatorAnswer
    clock: Clock
    clock_evidence: str  # the validator's own log line for the query
    zone: SignedZone  # the zone as served (dates shifted for Clock.SHIFTED validators)
    validator_log: str  # everything the validator logged during the run


def observe(
    validator: type[Validator],
    workdir: Path,
    *,
    origin: str,
    inception: int,
    expiration: int,
    at: int,
    settings: ValidatorSettings = DEFAULT_SETTINGS,
    algorithm: str = "ECDSAP256SHA256",
    keys: ZoneKeys | None = None,
    qname: str | None = None,
    rtype: str = "A",
    signer: str = "ldns",
) -> Observation:
    """What a fresh ``validator`` answers at POSIX second ``at`` for a zone signed I..E.

    Queries ``qname`` (default www.<origin>, an A record of the lab zone). Raises
    ClockNotConfirmedError when the validator's log does not show the expected second.
    """
    workdir = Path(workdir)
    keys = keys or make_zone_keys(workdir, origin, algorithm)
    qname = qname or f"www.{keys.origin}"
    if validator.CLOCK is Clock.FROZEN:
        zone = make_signed_zone(
            workdir,
            origin,
            inception=inception,
            expiration=expiration,
            algorithm=algorithm,
            keys=keys,
            signer=signer,
        )
        with ExitStack() as stack:
            resolver = _serve(stack, validator, workdir, zone, settings, fake_now=at)
            answer = _ask(resolver, qname, rtype)
            reading = resolver.clock_reading(qname)
            log = resolver.log_text()
        if reading.second != at:
            raise ClockNotConfirmedError(
                f"{validator.name} ran at {reading.second}, not at {at}: {reading.line}"
            )
        return Observation(
            validator.version(), at, answer, validator.CLOCK, reading.line, zone, log
        )
    return _observe_shifted(
        validator, workdir, keys, inception, expiration, at, settings, qname, rtype, signer
    )


def _observe_shifted(
    validator: type[Validator],
    workdir: Path,
    keys: ZoneKeys,
    inception: int,
    expiration: int,
    at: int,
    settings: ValidatorSettings,
    qname: str,
    rtype: str,
    signer: str,
) -> Observation:
    """Sign with I + (R - at), E + (R - at) and query inside the real second R."""
    lead = _FIRST_LEAD
    misses = []
    for attempt in range(_SHIFTED_ATTEMPTS):
        rundir = workdir / f"{validator.name}-{attempt}"
        second = next_second_after(lead)
        shift = second - at
        zone = make_signed_zone(
            rundir,
            keys.origin,
            inception=inception + shift,
            expiration=expiration + shift,
            algorithm=keys.algorithm,
            keys=keys,
            signer=signer,
        )
        with ExitStack() as stack:
            resolver = _serve(stack, validator, rundir, zone, settings)
            if time.time() >= second:
                misses.append(f"start-up ran past second {second} (lead {lead} s)")
                lead *= 2
                continue
            sleep_until(second)
            sent = time.time()
            answer = _ask(resolver, qname, rtype)
            received = time.time()
            reading = resolver.clock_reading(qname)
            log = resolver.log_text()
        if not (second <= sent and received < second + 1):
            misses.append(f"query ran from {sent:.3f} to {received:.3f}, outside {second}")
            continue
        if reading.second != second:
            raise ClockNotConfirmedError(
                f"{validator.name} logged second {reading.second}, the query ran inside "
                f"{second}: {reading.line}"
            )
        evidence = f"{reading.line} [signature dates shifted by {shift:+d} s]"
        return Observation(validator.version(), at, answer, validator.CLOCK, evidence, zone, log)
    raise LabError(f"{validator.name}: no run fitted inside one real second: {'; '.join(misses)}")


def _serve(
    stack: ExitStack,
    validator: type[Validator],
    workdir: Path,
    zone: SignedZone,
    settings: ValidatorSettings,
    fake_now: int | None = None,
) -> Validator:
    """NSD serving ``zone`` and a fresh ``validator`` that trusts only its DS; ``stack`` stops
    both."""
    nsd = stack.enter_context(NsdServer(workdir / "nsd", [zone]))
    return stack.enter_context(
        validator(
            workdir / validator.name,
            zones=[zone.origin],
            trust_anchors=zone.ds,
            upstream=(nsd.address, nsd.port),
            fake_now=fake_now,
            settings=settings,
        )
    )


def _ask(resolver: Validator, qname: str, rtype: str) -> ValidatorAnswer:
    try:
        return query(resolver.address, resolver.port, qname, rtype)
    except (dns.exception.DNSException, OSError) as exc:
        raise LabError(
            f"{resolver.name} gave no usable answer for {qname} {rtype}: {exc!r}\n"
            + resolver.log_tail()
        ) from exc
