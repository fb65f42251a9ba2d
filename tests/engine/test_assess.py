"""The engine: signature timelines, RRset and zone aggregation, severity (DESIGN.md 1-2)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchdog.engine.assess import (
    WarnBefore,
    ZonePolicy,
    assess_rrset,
    assess_zone,
    signature_timeline,
)
from watchdog.engine.findings import Severity
from watchdog.engine.observations import (
    ChainStatus,
    RRsetObservation,
    ServerObservation,
    SignatureObservation,
    Verification,
    ZoneObservation,
)
from watchdog.engine.profiles import ValidatorSettings
from watchdog.errors import InvalidValueError

HOUR, DAY = 3600, 86400
WRAP = 2**32
I = 1_800_000_000  # 2027-01-15T08:00:00Z
E = I + 14 * DAY
SKEW14 = 86400  # unbound skew of a 14-day signature with default settings (L/10 > max)


def sig(
    inception: int = I,
    expiration: int = E,
    key_tag: int = 1111,
    verification: Verification = Verification.VALID,
    rtype: str = "SOA",
    algorithm: int = 13,
) -> SignatureObservation:
    return SignatureObservation(
        owner="example.com.",
        rtype=rtype,
        key_tag=key_tag,
        algorithm=algorithm,
        inception=inception % WRAP,
        expiration=expiration % WRAP,
        original_ttl=3600,
        verification=verification,
    )


def rrset(*sigs: SignatureObservation, rtype: str = "SOA") -> RRsetObservation:
    return RRsetObservation("example.com.", rtype, 3600, sigs)


# --- one signature -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "severity"),
    [
        (I - SKEW14 - 1, Severity.SKEW_EXHAUSTED),  # even Unbound rejects: inception too far
        (I - SKEW14, Severity.STRICT_FAIL),  # Unbound accepts, strict do not
        (I - 1, Severity.STRICT_FAIL),  # not yet valid for strict validators
        (I, Severity.OK),
        (E - 14 * DAY // 10 - 1, Severity.OK),  # one second before the default 10% warning
        (E - 14 * DAY // 10, Severity.WARNING),
        (E, Severity.WARNING),  # last second strict validators accept
        (E + 1, Severity.STRICT_FAIL),
        (E + SKEW14, Severity.STRICT_FAIL),  # last second Unbound accepts
        (E + SKEW14 + 1, Severity.SKEW_EXHAUSTED),
    ],
)
def test_signature_severity_at_each_boundary(now: int, severity: Severity) -> None:
    """Severity flips exactly at I - skew, I, warning_at, E + 1 and E + skew + 1."""
    assert signature_timeline(I, E, now).severity(now) is severity


def test_signature_timeline_deadlines() -> None:
    """A 14-day signature: warning 10% (33.6 h) before E, strict at E+1, Unbound at E+1d+1."""
    t = signature_timeline(I, E, I)
    assert t.lifetime == 14 * DAY
    assert t.warning_at == E - 120960
    assert t.strict_fail_at == E + 1
    assert t.unbound_skew == SKEW14
    assert t.skew_exhausted_at == E + SKEW14 + 1
    assert t.not_yet_valid(I - 1) and not t.not_yet_valid(I)


@pytest.mark.parametrize(
    ("lifetime", "skew"),
    [(10 * HOUR, 3600), (7 * DAY, 60480), (10 * DAY, 86400), (100001, 10000)],
)
def test_signature_skew_from_lifetime(lifetime: int, skew: int) -> None:
    """The timeline carries Unbound's skew for its own lifetime."""
    t = signature_timeline(I, I + lifetime, I)
    assert t.unbound_skew == skew
    assert t.skew_exhausted_at == I + lifetime + skew + 1


def test_signature_with_zone_settings() -> None:
    """The zone's skew_min/skew_max settings change the skew-exhausted second."""
    policy = ZonePolicy(settings=ValidatorSettings(skew_min=0, skew_max=600))
    t = signature_timeline(I, I + 2 * HOUR, I, policy)
    assert t.unbound_skew == 600  # 720 lowered to the custom max
    assert t.skew_exhausted_at == I + 2 * HOUR + 601


def test_inception_equal_expiration_is_valid_for_one_second() -> None:
    """I == E is allowed: strict validators accept exactly that second."""
    t = signature_timeline(I, I, I)
    assert not t.inverted
    assert t.lifetime == 0
    assert t.severity(I) is Severity.WARNING  # 10% of 0 s: warning from E itself
    assert t.severity(I + 1) is Severity.STRICT_FAIL
    assert t.severity(I - 1) is Severity.STRICT_FAIL


def test_inception_after_expiration_is_bogus() -> None:
    """Inception serially after expiration is bogus whatever the time."""
    t = signature_timeline(E, I, I + DAY)
    assert t.inverted
    assert t.severity(I + DAY) is Severity.BOGUS


@pytest.mark.parametrize("now", [WRAP - 10, WRAP + 10])
def test_signature_straddling_2106_wrap(now: int) -> None:
    """A signature spanning 2106-02-07T06:28:16Z keeps its lifetime, before and after the wrap."""
    inception, expiration = WRAP - DAY, WRAP + DAY  # fields: 2^32 - 86400 and 86400
    t = signature_timeline(inception % WRAP, expiration % WRAP, now)
    assert (t.inception, t.expiration) == (inception, expiration)
    assert t.lifetime == 2 * DAY
    assert t.strict_fail_at == expiration + 1
    assert t.severity(now) is Severity.OK


def test_signature_after_wrap_seen_after_wrap() -> None:
    """Past the wrap, small fields are read as the next era, not 1970."""
    now = WRAP + 30 * DAY
    t = signature_timeline((now - DAY) % WRAP, (now + 13 * DAY) % WRAP, now)
    assert t.expiration == now + 13 * DAY
    assert t.severity(now) is Severity.OK


# --- warn_before -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "lifetime", "amount"),
    [
        ("10%", 14 * DAY, 120960),
        ("25%", 4 * DAY, DAY),
        ("0%", 14 * DAY, 0),
        ("100%", 14 * DAY, 14 * DAY),
        ("36h", 14 * DAY, 36 * HOUR),
        ("7d", 3 * DAY, 7 * DAY),
        ("90m", DAY, 5400),
        ("3600s", DAY, 3600),
    ],
)
def test_warn_before(text: str, lifetime: int, amount: int) -> None:
    """warn_before is a percent of the lifetime or a fixed duration."""
    assert WarnBefore.parse(text).amount(lifetime) == amount
    policy = ZonePolicy(warn_before=WarnBefore.parse(text))
    assert signature_timeline(I, I + lifetime, I, policy).warning_at == I + lifetime - amount


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("110%", r'warn_before "110%": a percent must be 0% to 100%'),
        ("10d%", r'warn_before "10d%" is not a duration \("36h", "7d"\) or a percent'),
        ("-5h", r'warn_before "-5h" is not a duration'),
        ("soon", r'warn_before "soon" is not a duration'),
    ],
)
def test_warn_before_rejects(text: str, message: str) -> None:
    """Bad warn_before values raise one clear error naming the value."""
    with pytest.raises(InvalidValueError, match=message):
        WarnBefore.parse(text)


# --- RRsets ----------------------------------------------------------------------------------


def test_rrset_lives_as_long_as_its_latest_signature() -> None:
    """Two verifying signatures: the RRset's deadline is the later one's; the early one is
    still reported."""
    early, late = sig(expiration=E - 5 * DAY, key_tag=1), sig(key_tag=2)
    v = assess_rrset(rrset(early, late), "192.0.2.1:53", E - 6 * DAY)
    assert v.deadlines is not None
    assert v.deadlines.strict_fail_at == E + 1
    assert v.deadlines.strict_fail.signature.key_tag == 2
    assert v.severity is Severity.OK
    assert [f.code for f in v.findings] == ["signature_expires_early"]


def test_rrset_carried_by_later_signature_after_early_one_expired() -> None:
    """When the early signature has expired, the RRset still validates through the other."""
    early, late = sig(expiration=E - 5 * DAY, key_tag=1), sig(key_tag=2)
    assert assess_rrset(rrset(early, late), "s", E - 4 * DAY).severity is Severity.OK


def test_rrset_chained_windows() -> None:
    """A pre-published signature that starts before the current one ends extends the RRset."""
    current = sig(inception=I, expiration=E, key_tag=1)
    nxt = sig(inception=E - DAY, expiration=E + 14 * DAY, key_tag=2)
    v = assess_rrset(rrset(current, nxt), "s", I + DAY)
    assert v.deadlines is not None and v.deadlines.strict_fail_at == E + 14 * DAY + 1


def test_rrset_gap_between_signatures_fails_in_the_gap() -> None:
    """A later signature that starts after a gap does not cover the gap."""
    current = sig(inception=I, expiration=E, key_tag=1)
    later = sig(inception=E + DAY, expiration=E + 14 * DAY, key_tag=2)
    v = assess_rrset(rrset(current, later), "s", I + DAY)
    assert v.deadlines is not None and v.deadlines.strict_fail_at == E + 1


def test_bogus_signature_does_not_carry_rrset() -> None:
    """Only verifying signatures count; a bogus sibling is reported, not fatal."""
    bogus = sig(expiration=E + 30 * DAY, key_tag=9, verification=Verification.BOGUS)
    v = assess_rrset(rrset(sig(key_tag=1), bogus), "s", I + DAY)
    assert v.deadlines is not None and v.deadlines.strict_fail_at == E + 1
    assert v.severity is Severity.OK
    assert "signature_bogus" in [f.code for f in v.findings]


@pytest.mark.parametrize(
    ("verification", "severity", "code"),
    [
        (Verification.BOGUS, Severity.BOGUS, "signature_bogus"),
        (Verification.NO_KEY, Severity.BOGUS, "signature_no_key"),
        (Verification.UNSUPPORTED_ALGORITHM, Severity.UNKNOWN, "signature_unsupported_algorithm"),
    ],
)
def test_rrset_without_verifying_signature(
    verification: Verification, severity: Severity, code: str
) -> None:
    """No verifying signature: bogus, except an algorithm we cannot check is unknown."""
    v = assess_rrset(rrset(sig(verification=verification)), "s", I + DAY)
    assert v.severity is severity
    assert v.deadlines is None
    assert [f.code for f in v.findings] == [code]


def test_unsigned_rrset_is_bogus() -> None:
    """A signed zone serving an RRset without RRSIG is bogus."""
    v = assess_rrset(rrset(), "192.0.2.1:53", I)
    assert v.severity is Severity.BOGUS
    assert v.findings[0].code == "rrset_unsigned"
    assert "192.0.2.1:53" in v.findings[0].message


def test_rrset_not_yet_valid_says_so() -> None:
    """A signature whose inception is ahead is a strict failure that names the inception."""
    v = assess_rrset(rrset(sig()), "s", I - 10)
    assert v.severity is Severity.STRICT_FAIL
    assert "not valid before 2027-01-15T08:00:00Z" in v.findings[-1].message


# --- zones -----------------------------------------------------------------------------------


def server(address: str, serial: int, *rrsets: RRsetObservation) -> ServerObservation:
    return ServerObservation(address=address, name="ns.example.com.", serial=serial, rrsets=rrsets)


def test_zone_deadline_is_the_stale_servers() -> None:
    """A secondary serving an older copy sets the zone's deadline and is named."""
    fresh = server("192.0.2.1:53", 2, rrset(sig(expiration=E + 7 * DAY)))
    stale = server("192.0.2.2:53", 1, rrset(sig()))
    report = assess_zone(
        ZoneObservation("example.com.", (fresh, stale), chain=ChainStatus.TRUST_ANCHOR), E - HOUR
    )
    assert report.deadlines is not None
    assert report.deadlines.strict_fail_at == E + 1
    assert report.deadlines.strict_fail.server == "192.0.2.2:53"
    assert report.severity is Severity.WARNING
    assert report.worst_server is not None and report.worst_server.address == "192.0.2.2:53"
    stale_findings = [f for f in report.findings if f.code == "stale_serial"]
    assert [f.server for f in stale_findings] == ["192.0.2.2:53"]


def test_zone_dies_with_its_earliest_rrset() -> None:
    """Each zone threshold is the earliest over every RRset of every server."""
    s = server(
        "192.0.2.1:53",
        1,
        rrset(sig()),
        rrset(sig(expiration=E - DAY, rtype="DNSKEY"), rtype="DNSKEY"),
    )
    report = assess_zone(ZoneObservation("example.com.", (s,)), I + DAY)
    assert report.deadlines is not None
    assert report.deadlines.strict_fail_at == E - DAY + 1
    assert report.deadlines.strict_fail.rtype == "DNSKEY"
    assert report.deadlines.unbound_skew == 86400


def test_parent_ds_signature_counts() -> None:
    """The parent's DS RRSIG expiring breaks the zone too."""
    s = server("192.0.2.1:53", 1, rrset(sig()))
    ds = RRsetObservation("example.com.", "DS", 3600, (sig(expiration=I + 2 * DAY, rtype="DS"),))
    report = assess_zone(
        ZoneObservation("example.com.", (s,), ChainStatus.PARENT_DS, ds), I + 2 * DAY + HOUR
    )
    assert report.severity is Severity.STRICT_FAIL
    assert report.deadlines is not None and report.deadlines.strict_fail.server == "parent"


def test_zone_with_unreachable_server() -> None:
    """One unreachable server makes the zone unreachable while the rest is fine."""
    ok = server("192.0.2.1:53", 1, rrset(sig()))
    down = ServerObservation("192.0.2.2:53", reachable=False)
    report = assess_zone(ZoneObservation("example.com.", (ok, down)), I + DAY)
    assert report.severity is Severity.UNREACHABLE
    assert report.expiry_severity is Severity.OK
    assert report.deadlines is not None


def test_zone_with_no_server_answering() -> None:
    """No server answered: unreachable, no deadlines invented."""
    down = ServerObservation("192.0.2.2:53", reachable=False)
    report = assess_zone(ZoneObservation("example.com.", (down,)), I)
    assert report.severity is Severity.UNREACHABLE
    assert report.deadlines is None
    assert "all_unreachable" in [f.code for f in report.findings]


def test_unsigned_zone_is_unknown_not_ok() -> None:
    """A zone without DNSKEY is reported as not signed, never OK."""
    s = ServerObservation("192.0.2.1:53", serial=1)
    report = assess_zone(ZoneObservation("example.com.", (s,), signed=False), I)
    assert report.severity is Severity.UNKNOWN
    assert "not_signed" in [f.code for f in report.findings]


def test_chain_not_checked_is_said() -> None:
    """Without DS or anchor the report says the chain was not checked."""
    s = server("192.0.2.1:53", 1, rrset(sig()))
    report = assess_zone(ZoneObservation("example.com.", (s,)), I + DAY)
    assert report.severity is Severity.OK
    assert "chain_not_checked" in [f.code for f in report.findings]


def test_broken_chain_is_bogus() -> None:
    """A DS that matches no served DNSKEY makes the zone bogus."""
    s = server("192.0.2.1:53", 1, rrset(sig()))
    report = assess_zone(ZoneObservation("example.com.", (s,), ChainStatus.BROKEN), I + DAY)
    assert report.severity is Severity.BOGUS
    assert report.expiry_severity is Severity.OK


# --- properties -------------------------------------------------------------------------------

times = st.integers(0, WRAP - 1)
lifetimes = st.integers(0, 400 * DAY)
settings = st.builds(
    ValidatorSettings, skew_min=st.integers(1, 10 * DAY), skew_max=st.integers(1, 10 * DAY)
)
warn = st.one_of(
    st.integers(0, 100).map(lambda p: f"{p}%"), st.integers(0, 60 * DAY).map(lambda s: f"{s}s")
)


@given(times, lifetimes, settings, warn)
def test_deadlines_are_ordered(inception: int, life: int, s: ValidatorSettings, w: str) -> None:
    """warning_at <= strict_fail_at <= skew_exhausted_at whenever the skew is at least 1 s."""
    policy = ZonePolicy(settings=s, warn_before=WarnBefore.parse(w))
    t = signature_timeline(inception, (inception + life) % WRAP, inception, policy)
    assert t.unbound_skew >= 1
    assert t.warning_at <= t.strict_fail_at < t.skew_exhausted_at


@given(times, lifetimes, settings, st.lists(st.integers(0, 800 * DAY), min_size=2, max_size=6))
def test_severity_is_monotone_after_inception(
    inception: int, life: int, s: ValidatorSettings, offsets: list[int]
) -> None:
    """Once a signature's inception has passed, its severity never decreases with time."""
    policy = ZonePolicy(settings=s)
    moments = sorted(inception + o for o in offsets)
    t = signature_timeline(inception, (inception + life) % WRAP, moments[0], policy)
    ranks = [t.severity(m).rank for m in moments]
    assert ranks == sorted(ranks)


def test_zsk_signature_on_dnskey_is_not_reported() -> None:
    """A DNSKEY RRset also signed by a key no DS matches (the ZSK) is normal, not a finding."""
    ksk = sig(rtype="DNSKEY", key_tag=1)
    zsk = sig(rtype="DNSKEY", key_tag=2, verification=Verification.NO_KEY)
    v = assess_rrset(rrset(ksk, zsk, rtype="DNSKEY"), "s", I + DAY)
    assert v.severity is Severity.OK
    assert v.findings == ()


def test_no_key_signature_on_other_rrsets_is_still_reported() -> None:
    """Outside DNSKEY, a signature by an unknown key next to a valid one is still shown."""
    v = assess_rrset(
        rrset(sig(key_tag=1), sig(key_tag=2, verification=Verification.NO_KEY)), "s", I + DAY
    )
    assert [f.code for f in v.findings] == ["signature_no_key"]
