"""Rendering of reports: exit codes per profile, the JSON contract, the timeline, Nagios.

Reports come from the real engine (assess_zone) fed with hand-built observations, so every
expected value below is derived from the signature dates by hand (DESIGN.md 1-2).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchdog.engine.assess import WarnBefore, ZonePolicy, ZoneReport, assess_zone
from watchdog.engine.findings import Finding, Severity
from watchdog.engine.observations import (
    ChainStatus,
    RRsetObservation,
    ServerObservation,
    SignatureObservation,
    Verification,
    ZoneObservation,
)
from watchdog.engine.profiles import Profile, ValidatorSettings
from watchdog.render.check import (
    STATUS_NAMES,
    effective_severity,
    exit_code,
    nagios_line,
    render_text,
    render_zone,
    to_json,
)

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "watchdog/schemas/check-v1.json").read_text()
)
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
HOUR, DAY = 3600, 86400
WRAP = 2**32
I = 1_893_456_000  # 2030-01-01T00:00:00Z
E = I + 14 * DAY  # 2030-01-15T00:00:00Z; Unbound skew 86400 (L / 10 = 120960 > max)
A, B = "192.0.2.1:53", "192.0.2.2:53"
DEFAULT_POLICY = ZonePolicy()
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def sig(inception: int = I, expiration: int = E, key_tag: int = 1111) -> SignatureObservation:
    return SignatureObservation(
        owner="example.com.",
        rtype="SOA",
        key_tag=key_tag,
        algorithm=13,
        inception=inception % WRAP,
        expiration=expiration % WRAP,
        original_ttl=3600,
        verification=Verification.VALID,
    )


def server(address: str = A, *sigs: SignatureObservation, serial: int = 7) -> ServerObservation:
    rrsets = (RRsetObservation("example.com.", "SOA", 3600, sigs or (sig(),)),)
    return ServerObservation(address, "ns1.example.com.", True, serial, rrsets)


def dead(address: str = B) -> ServerObservation:
    problem = Finding("timeout", Severity.UNREACHABLE, f"{address}: no answer", address)
    return ServerObservation(address, None, False, None, (), (problem,))


def report(
    *servers: ServerObservation,
    now: int,
    policy: ZonePolicy = DEFAULT_POLICY,
    problems: tuple[Finding, ...] = (),
    signed: bool = True,
) -> ZoneReport:
    obs = ZoneObservation(
        "example.com.",
        servers or (server(),),
        ChainStatus.TRUST_ANCHOR,
        signed=signed,
        problems=problems,
    )
    return assess_zone(obs, now, policy)


# --- exit codes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # now: strict, powerdns, unbound, knot-dns
        (I + DAY, ("OK", "OK", "OK", "OK")),
        (E - 1, ("WARNING", "WARNING", "WARNING", "WARNING")),
        (E, ("WARNING", "WARNING", "WARNING", "CRITICAL")),  # knotd: expired at E itself
        (E + 1, ("CRITICAL", "CRITICAL", "WARNING", "CRITICAL")),  # Unbound: within its skew
        (E + 86400, ("CRITICAL", "CRITICAL", "WARNING", "CRITICAL")),
        (E + 86401, ("CRITICAL", "CRITICAL", "CRITICAL", "CRITICAL")),
    ],
)
def test_exit_code_per_profile(now: int, expected: tuple[str, str, str, str]) -> None:
    """Each profile turns CRITICAL at its own first failing second."""
    r = report(now=now)
    profiles = (Profile.STRICT, Profile.POWERDNS, Profile.UNBOUND, Profile.KNOT_DNS)
    assert tuple(STATUS_NAMES[exit_code([r], p)] for p in profiles) == expected


def test_strict_profile_severity_is_the_engines() -> None:
    """For strict validators the exit code reflects the engine's severity unchanged."""
    for now in (I - 1, I, E - DAY, E + 1, E + 2 * DAY):
        r = report(now=now)
        assert effective_severity(r, Profile.STRICT) is r.severity


def test_one_dead_server_is_a_warning_all_dead_is_unknown() -> None:
    """Some servers answering makes an unreachable one a WARNING; none answering is UNKNOWN."""
    partly = report(server(A), dead(B), now=I + DAY)
    assert partly.severity is Severity.UNREACHABLE  # the engine's view is kept in JSON
    assert exit_code([partly]) == 1
    nobody = report(dead(A), dead(B), now=I + DAY)
    assert exit_code([nobody]) == 3


def test_dead_server_does_not_hide_a_strict_failure() -> None:
    """A dead server next to an expired one: CRITICAL, not WARNING or UNKNOWN."""
    assert exit_code([report(server(A), dead(B), now=E + 1)]) == 2


def test_unknown_finding_survives_the_unbound_profile() -> None:
    """Under --profile unbound a strict failure is a WARNING, but an UNKNOWN still shows."""
    problem = Finding("ds_lookup_failed", Severity.UNKNOWN, "example.com. DS: timeout")
    r = report(now=E + 1, problems=(problem,))
    assert exit_code([r], Profile.UNBOUND) == 3
    assert exit_code([r], Profile.STRICT) == 2


def test_unsigned_zone_is_unknown() -> None:
    """No DNSKEY anywhere: UNKNOWN (3), never OK."""
    obs = ZoneObservation(
        "example.com.",
        (ServerObservation(A, None, True, 7, ()),),
        ChainStatus.NOT_CHECKED,
        signed=False,
    )
    r = assess_zone(obs, I)
    assert exit_code([r]) == 3
    assert render_zone(r).splitlines()[0] == "example.com.  UNKNOWN  not signed"


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ((), 3),
        ((0, 0), 0),
        ((0, 1), 1),
        ((1, 3), 3),
        ((3, 2), 2),  # a zone known to fail is never hidden by one we could not see
        ((2, 1, 0, 3), 2),
    ],
)
def test_several_zones_exit_with_the_worst(codes: tuple[int, ...], expected: int) -> None:
    """Several zones: CRITICAL > UNKNOWN > WARNING > OK."""
    moment = {0: I + DAY, 1: E - 1, 2: E + 1}
    reports = [report(dead(A), now=I) if c == 3 else report(now=moment[c]) for c in codes]
    assert [exit_code([r]) for r in reports] == list(codes)
    assert exit_code(reports) == expected


# --- JSON -----------------------------------------------------------------------------------


def test_json_document_matches_schema_and_hand_derived_deadlines() -> None:
    """Zone-level deadlines, earliest signature and per-server fields, against the schema."""
    stale = sig(I - 7 * DAY, E - 7 * DAY, key_tag=2222)  # a secondary a week behind
    r = report(server(A), server(B, stale, serial=6), now=E - 8 * DAY)
    document = to_json([r], r.checked_at, fetched_at=I)
    VALIDATOR.validate(document)
    assert document["checked_at"] == "2030-01-07T00:00:00Z"
    assert document["fetched_at"] == "2030-01-01T00:00:00Z"
    assert (document["status"], document["exit_code"]) == ("WARNING", 1)
    zone = document["zones"][0]
    # B's signature: E_B = 2030-01-08T00:00:00Z, 14 d: warn 33 h 36 m before, skew 1 d
    assert zone["deadlines"] == {
        "warning_at": "2030-01-06T14:24:00Z",
        "strict_fail_at": "2030-01-08T00:00:01Z",
        "skew_exhausted_at": "2030-01-09T00:00:01Z",
    }
    assert zone["earliest"] == {
        "server": B,
        "owner": "example.com.",
        "type": "SOA",
        "key_tag": 2222,
        "algorithm": 13,
        "inception": "2029-12-25T00:00:00Z",
        "expiration": "2030-01-08T00:00:00Z",
    }
    assert zone["worst_server"] == B
    assert [(s["address"], s["serial"], s["state"]) for s in zone["servers"]] == [
        (A, 7, "ok"),
        (B, 6, "warning"),
    ]
    assert zone["servers"][0]["earliest_expiration"] == "2030-01-15T00:00:00Z"


def test_json_times_are_mapped_across_the_2106_wrap() -> None:
    """A signature straddling 2106-02-07 keeps 64-bit times in JSON, not 1970 dates."""
    start = 2**32 - 3 * DAY  # 2106-02-04T06:28:16Z
    r = report(server(A, sig(start, start + 14 * DAY)), now=start + DAY)
    zone = to_json([r], r.checked_at)["zones"][0]
    assert zone["earliest"]["inception"] == "2106-02-04T06:28:16Z"
    assert zone["earliest"]["expiration"] == "2106-02-18T06:28:16Z"
    assert zone["deadlines"]["strict_fail_at"] == "2106-02-18T06:28:17Z"


def test_json_without_deadlines_has_nulls() -> None:
    """No server answered: deadlines, skew and earliest are null, and still schema-valid."""
    r = report(dead(A), now=I)
    zone = to_json([r], I)["zones"][0]
    VALIDATOR.validate(to_json([r], I))
    assert zone["deadlines"] == {
        "warning_at": None,
        "strict_fail_at": None,
        "skew_exhausted_at": None,
    }
    assert (zone["earliest"], zone["unbound_skew_seconds"]) == (None, None)
    assert zone["status"] == "UNKNOWN"


@settings(max_examples=200, deadline=None)
@given(
    lifetime=st.integers(0, 400 * DAY),
    offset=st.integers(-30 * DAY, 500 * DAY),
    skew_min=st.integers(0, 10 * DAY),
    skew_max=st.integers(0, 10 * DAY),
    profile=st.sampled_from(list(Profile)),
    wrap=st.booleans(),
)
def test_json_is_always_schema_valid_and_consistent(
    lifetime: int, offset: int, skew_min: int, skew_max: int, profile: Profile, wrap: bool
) -> None:
    """Any dates and settings: valid JSON, status == exit code, deadlines ordered."""
    start = 2**32 - 100 * DAY if wrap else I
    policy = ZonePolicy(ValidatorSettings(skew_min, skew_max))
    r = report(server(A, sig(start, start + lifetime)), now=start + offset, policy=policy)
    document = to_json([r], r.checked_at, profile=profile)
    VALIDATOR.validate(document)
    zone = document["zones"][0]
    assert zone["status"] == STATUS_NAMES[exit_code([r], profile)] == document["status"]
    d = zone["deadlines"]
    assert d["warning_at"] <= d["strict_fail_at"] <= d["skew_exhausted_at"]  # RFC 3339 sorts


# --- people ---------------------------------------------------------------------------------


def _timeline_rows(text: str) -> list[str]:
    return [
        line for line in text.splitlines() if re.search(r"\d{4}-\d\d-\d\dT.*(ago|in |now)", line)
    ]


@pytest.mark.parametrize("now", [I + DAY, E - HOUR, E + HOUR, E + 3 * DAY])
def test_timeline_columns_line_up(now: int) -> None:
    """Times and relative times start in the same column on every timeline row."""
    rows = _timeline_rows(render_zone(report(now=now)))
    assert len(rows) == 3
    time_columns = {re.search(r"\d{4}-\d\d-\d\dT", row).start() for row in rows}  # type: ignore[union-attr]
    relative_columns = {re.search(r"Z  \S", row).start() for row in rows}  # type: ignore[union-attr]
    assert len(time_columns) == 1
    assert len(relative_columns) == 1


def test_timeline_says_when_each_validator_class_fails() -> None:
    """Warning, strict and Unbound rows with UTC and relative times; past tense once passed."""
    text = render_zone(report(now=E + HOUR))
    rows = _timeline_rows(text)
    assert re.match(r" +warning since +2030-01-13T14:24:00Z +1d 10h 36m ago$", rows[0])
    assert re.match(
        r" +strict validators failing since +2030-01-15T00:00:01Z +59m 59s ago$", rows[1]
    )
    assert re.match(
        r" +Unbound \(skew 86400 s\) fails at +2030-01-16T00:00:01Z +in 23h 1s$", rows[2]
    )
    assert "BIND 9, Knot Resolver, PowerDNS Recursor, Google Public DNS" in text
    assert text.splitlines()[0] == f"example.com.  STRICT FAIL  worst server {A} (ns1.example.com.)"


def test_each_threshold_names_the_signature_that_sets_it() -> None:
    """When Unbound's deadline comes from another signature than the strict one, both show."""
    long_sig = sig(E - 28 * DAY, E, key_tag=1111)  # skew 86400: Unbound fails at E + 86401
    short = sig(E + 100 - DAY, E + 100, key_tag=2222)  # skew 8640: at E + 8741, earlier
    text = render_zone(report(server(A, long_sig), server(B, short), now=E - 2 * DAY))
    assert f"set by example.com. SOA RRSIG, key 1111 (alg 13), on {A} " in text
    assert "(warning, strict)" in text
    assert f"key 2222 (alg 13), on {B} (ns1.example.com.) (Unbound)" in text


def test_block_fits_a_screen() -> None:
    """Two servers, a dead one: the block is short and, findings aside, under 100 columns."""
    text = render_zone(report(server(A), dead(B), now=E - HOUR))
    lines = text.splitlines()
    assert len(lines) <= 24
    assert all(len(line) <= 100 for line in lines if "timeout" not in line)


def test_colour_only_when_asked_and_columns_unchanged() -> None:
    """Colour wraps severities in ANSI codes; without the codes the text is the plain one."""
    r = report(server(A), dead(B), now=E + 1)
    plain = render_text([r])
    coloured = render_text([r], colour=True)
    assert "\x1b[" not in plain
    assert "\x1b[31mSTRICT FAIL\x1b[0m" in coloured
    assert ANSI.sub("", coloured) == plain


def test_findings_are_capped_and_timeline_findings_not_repeated() -> None:
    """More than 8 findings: 8 lines and a pointer to --json; expiry findings stay out."""
    problems = tuple(
        Finding(f"problem_{n}", Severity.UNKNOWN, f"problem number {n}") for n in range(11)
    )
    text = render_zone(report(now=E - HOUR, problems=problems))
    assert "signature_expiring" not in text
    assert "    ... and 3 more (--json lists them all)" in text
    assert sum("problem_" in line for line in text.splitlines()) == 8


def test_unbound_profile_headline_explains_itself() -> None:
    """With --profile unbound a strict failure is headlined WARNING, and says why."""
    line = render_zone(report(now=E + 1), profile=Profile.UNBOUND).splitlines()[0]
    assert line.startswith("example.com.  WARNING  for unbound; strict fail for strict validators")


# --- Nagios ---------------------------------------------------------------------------------


def test_nagios_line_and_perfdata_thresholds() -> None:
    """One line; perfdata seconds left, warning range "N:" where N - 1 = strict - warning."""
    r = report(now=E - DAY)
    line = nagios_line([r])
    assert "\n" not in line
    status, perf = line.split(" | ")
    assert status == (
        "DNSSEC WARNING - example.com. warning: strict validators fail in 1d "
        "(2030-01-15T00:00:01Z), Unbound in 2d"
    )
    # strict fail E + 1 is 86401 s away; warning begins 120960 s before E, i.e. 120961 s left
    assert perf.split(" ") == [
        "'example.com.",  # labels are quoted: the space inside belongs to the label
        "strict_fail'=86401s;120962:;1:",
        "'example.com.",
        "skew_exhausted'=172801s;;1:",
    ]


def test_nagios_line_lists_bad_zones_first_and_counts_the_fine() -> None:
    """Critical before warning; the OK zones summed up in a count."""
    fine = report(now=I + DAY)
    warn = report(now=E - HOUR, policy=ZonePolicy(warn_before=WarnBefore(seconds=2 * HOUR)))
    failed = report(now=E + 1)
    status = nagios_line([fine, warn, fine, failed]).split(" | ")[0]
    assert status.startswith("DNSSEC CRITICAL - example.com. strict fail: ")
    assert "; example.com. warning: " in status
    assert status.endswith("; 2 zones ok")


def test_nagios_perfdata_critical_threshold_follows_the_profile() -> None:
    """Under --profile unbound the strict countdown is not critical; knot-dns is one s earlier."""
    r = report(now=E - DAY)
    assert "strict_fail'=86401s;120962:; " in nagios_line([r], Profile.UNBOUND)
    assert "strict_fail'=86401s;120962:;2: " in nagios_line([r], Profile.KNOT_DNS)


def test_nagios_names_the_finding_when_dates_are_not_the_reason() -> None:
    """A dead server makes the zone WARNING: the line says which server, not the dates."""
    status = nagios_line([report(server(A), dead(B), now=I + DAY)]).split(" | ")[0]
    assert status == f"DNSSEC WARNING - example.com. warning: timeout on {B}"
