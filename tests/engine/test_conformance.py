"""The engine's validator profiles against the real validators, second by second.

For each case the engine (profiles.window) predicts the boundary of a signature's window; a
fresh validator with an empty cache, put at the boundary's two seconds (lab.observe), must
validate on the accepted side and answer SERVFAIL on the rejected side. The validator settings
handed to the engine are the ones written into the validator's config.

Every case adds a line (validator version, the two seconds, the answers) to
tests/engine/.conformance-report.txt and to the terminal summary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import dns.rcode
import pytest
from lab import (
    LAB_BINARIES,
    Kresd,
    Named,
    Observation,
    PdnsRecursor,
    Unbound,
    Validator,
    observe,
)

from watchdog.engine.profiles import DEFAULT_SETTINGS, Profile, ValidatorSettings, window
from watchdog.engine.timeutil import format_duration, rfc3339

pytestmark = pytest.mark.conformance

INCEPTION = 1_893_456_000  # 2030-01-01T00:00:00Z: any fixed moment would do
ORIGIN = "conformance.test."
REPORT = Path(__file__).with_name(".conformance-report.txt")
HOUR = 3600
DAY = 86400


class Side(StrEnum):
    EXPIRATION = "expiration"
    INCEPTION = "inception"


# Proof that a SERVFAIL is the validator's judgement of the signature dates, not a broken lab:
# the Extended DNS Error (RFC 8914: 7 Signature Expired, 8 Signature Not Yet Valid), or for
# named 9.18, which sends no EDE here, its log (the texts of DNS_R_SIGEXPIRED and
# DNS_R_SIGFUTURE).
_EDE = {Side.EXPIRATION: 7, Side.INCEPTION: 8}
_NAMED_LOG = {
    Side.EXPIRATION: "RRSIG has expired",
    Side.INCEPTION: "RRSIG validity period has not begun",
}


@dataclass(frozen=True)
class Boundary:
    """One side of one signature's window, as a validator and the engine's profile see it."""

    validator: type[Validator]
    profile: Profile
    lifetime: int
    side: Side
    settings: ValidatorSettings = DEFAULT_SETTINGS

    @property
    def expiration(self) -> int:
        return INCEPTION + self.lifetime

    def seconds(self) -> tuple[int, int]:
        """(accepted second, adjacent rejected second), both predicted by the engine."""
        accepted = window(self.profile, INCEPTION, self.expiration, self.settings)
        if self.side is Side.EXPIRATION:
            return accepted.accepted_until, accepted.first_rejected_after
        return accepted.accepted_from, accepted.last_rejected_before

    def describe(self) -> str:
        settings = ""
        if self.profile is Profile.UNBOUND:
            settings = f", skew_min={self.settings.skew_min} skew_max={self.settings.skew_max}"
        elif self.profile is Profile.POWERDNS:
            settings = f", inception_skew={self.settings.powerdns_inception_skew}"
        return (
            f"profile {self.profile.value}, {self.side.value} side, lifetime "
            f"{format_duration(self.lifetime)} ({self.lifetime} s){settings}"
        )


def _case(boundary: Boundary, name: str) -> object:
    return pytest.param(boundary, id=name)


@pytest.fixture(scope="module")
def conformance_report(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """Collects one line per case; written to REPORT and the terminal when the module ends."""
    lines: list[str] = []
    yield lines
    if not lines:
        return
    REPORT.write_text("\n".join(lines) + "\n")
    plugins = request.config.pluginmanager
    terminal = plugins.get_plugin("terminalreporter")
    capture = plugins.get_plugin("capturemanager")
    if terminal is None or capture is None:
        return
    with capture.global_and_fixture_disabled():  # teardown output is captured otherwise
        terminal.write_line("")
        terminal.write_sep("-", f"conformance report (also in tests/{REPORT.name})")
        for line in lines:
            terminal.write_line(line)


def _outcome(observation: Observation) -> str:
    return f"{rfc3339(observation.at)} ({observation.at}) {observation.answer.describe()}"


@pytest.fixture
def check_boundary(
    tmp_path: Path, require_binaries: Callable[..., None], conformance_report: list[str]
) -> Callable[[Boundary], None]:
    """Observes a fresh validator at both seconds of a boundary and checks each side."""
    return lambda boundary: _check_boundary(
        boundary, tmp_path, require_binaries, conformance_report
    )


def _check_boundary(
    boundary: Boundary,
    workdir: Path,
    require_binaries: Callable[..., None],
    report: list[str],
) -> None:
    require_binaries(*LAB_BINARIES, *boundary.validator.BINARIES)
    accepted_at, rejected_at = boundary.seconds()
    runs = {}
    for label, at in (("accepted", accepted_at), ("rejected", rejected_at)):
        runs[label] = observe(
            boundary.validator,
            workdir / label,
            origin=ORIGIN,
            inception=INCEPTION,
            expiration=boundary.expiration,
            at=at,
            settings=boundary.settings,
        )
    accepted, rejected = runs["accepted"], runs["rejected"]
    line = (
        f"{accepted.validator} | {boundary.describe()} | accepted side {_outcome(accepted)} | "
        f"rejected side {_outcome(rejected)} | {accepted.clock.value}"
    )
    report.append(line)
    print(line)
    assert accepted.answer.validated, f"expected NOERROR+AD at {accepted_at}: {line}"
    assert rejected.answer.rcode == dns.rcode.SERVFAIL, f"expected SERVFAIL at {rejected_at}"
    if boundary.validator is Named:
        assert _NAMED_LOG[boundary.side] in rejected.validator_log
    else:
        assert _EDE[boundary.side] in rejected.answer.ede_codes


@pytest.mark.parametrize(
    "boundary",
    [
        _case(Boundary(Unbound, Profile.UNBOUND, 2 * HOUR, Side.EXPIRATION), "2h"),
        _case(Boundary(Unbound, Profile.UNBOUND, 7 * DAY, Side.EXPIRATION), "7d"),
        _case(Boundary(Unbound, Profile.UNBOUND, 30 * DAY, Side.EXPIRATION), "30d"),
        _case(Boundary(Unbound, Profile.UNBOUND, 100_001, Side.EXPIRATION), "100001s"),
    ],
)
def test_unbound_expiration_with_default_skew(
    boundary: Boundary, check_boundary: Callable[[Boundary], None]
) -> None:
    """Unbound with default skew bounds validates until E + skew and fails one second later."""
    check_boundary(boundary)


@pytest.mark.parametrize(
    "boundary",
    [
        _case(
            Boundary(
                Unbound, Profile.UNBOUND, 2 * HOUR, Side.EXPIRATION, ValidatorSettings(skew_min=0)
            ),
            "skew-min-0-2h",
        ),
        _case(
            Boundary(
                Unbound, Profile.UNBOUND, 30 * DAY, Side.EXPIRATION, ValidatorSettings(skew_max=600)
            ),
            "skew-max-600-30d",
        ),
    ],
)
def test_unbound_expiration_with_configured_skew(
    boundary: Boundary, check_boundary: Callable[[Boundary], None]
) -> None:
    """val-sig-skew-min and val-sig-skew-max move Unbound's boundary as the engine predicts."""
    check_boundary(boundary)


def test_unbound_inception_side(check_boundary: Callable[[Boundary], None]) -> None:
    """Unbound accepts a signature from I - skew and rejects it one second earlier."""
    boundary = Boundary(Unbound, Profile.UNBOUND, 7 * DAY, Side.INCEPTION)
    check_boundary(boundary)


@pytest.mark.parametrize(
    "boundary",
    [
        _case(Boundary(validator, Profile.STRICT, 7 * DAY, side), f"{validator.name}-{side}")
        for validator in (Named, Kresd)
        for side in Side
    ],
)
def test_strict_validators(boundary: Boundary, check_boundary: Callable[[Boundary], None]) -> None:
    """BIND and Knot Resolver accept exactly I..E, as the strict profile says."""
    check_boundary(boundary)


@pytest.mark.parametrize(
    "boundary",
    [_case(Boundary(PdnsRecursor, Profile.POWERDNS, 7 * DAY, side), f"{side}") for side in Side],
)
def test_powerdns_recursor(boundary: Boundary, check_boundary: Callable[[Boundary], None]) -> None:
    """PowerDNS Recursor accepts from I - inception skew through E, as the powerdns profile says."""
    check_boundary(boundary)
