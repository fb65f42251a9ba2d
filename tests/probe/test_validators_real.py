"""The validator view with real resolvers: Unbound and Knot Resolver asked beside the engine.

NSD serves a zone signed by ldns-signzone; Unbound trusts the zone's DS, Knot Resolver a DS of
other keys (so it fails the zone), a second Unbound trusts nothing (so it does not validate).
The prober asks each for the zone's SOA and DNSKEY with DO; the engine compares.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import pytest
from lab import Kresd, NsdServer, Unbound, make_signed_zone, make_zone_keys
from lab.process import run_tool
from targets import zone_target

from watchdog.config.targets import ProbeSettings
from watchdog.engine.assess import ZoneReport, assess_zone
from watchdog.engine.codes import Code
from watchdog.engine.findings import Severity
from watchdog.probe.prober import Prober
from watchdog.render.check import render_zone, zone_json

pytestmark = [pytest.mark.realdns, pytest.mark.slow]

ORIGIN = "validated.test."
DAY = 86400
_NO_RESOLVER = ("127.0.0.1", 9)  # nothing listens: discovery can never leave loopback


def _wrong_ds(tmp_path: Path) -> str:
    """A DS record of a key the zone does not serve: a trust anchor that does not match."""
    other = make_zone_keys(tmp_path / "other", ORIGIN)
    return run_tool(["ldns-key2ds", "-n", "-2", f"{other.ksk}.key"]).strip()


def test_each_validator_is_shown_beside_the_prediction(
    tmp_path: Path, require_binaries: Callable[..., None]
) -> None:
    """Unbound with the right anchor validates (no finding); Knot Resolver with a wrong one
    SERVFAILs a zone the engine judges valid (validator_fails); Unbound without an anchor
    answers without AD (validator_insecure); the report shows each one's answer."""
    require_binaries("nsd", "ldns-keygen", "ldns-signzone", "ldns-key2ds", "unbound", "kresd")
    now = int(time.time())
    zone = make_signed_zone(
        tmp_path / "zones", ORIGIN, inception=now - DAY, expiration=now + 10 * DAY
    )
    with ExitStack() as stack:
        nsd = stack.enter_context(NsdServer(tmp_path / "nsd", [zone]))
        upstream = (nsd.address, nsd.port)
        common = {"zones": [ORIGIN], "upstream": upstream}
        good = stack.enter_context(
            Unbound(tmp_path / "unbound", trust_anchors=zone.ds, **common)  # type: ignore[arg-type]
        )
        wrong = stack.enter_context(
            Kresd(tmp_path / "kresd", trust_anchors=[_wrong_ds(tmp_path)], **common)  # type: ignore[arg-type]
        )
        blind = stack.enter_context(
            Unbound(tmp_path / "blind", trust_anchors=[], **common)  # type: ignore[arg-type]
        )
        validators = tuple((v.address, v.port) for v in (good, wrong, blind))
        settings = ProbeSettings(
            timeout=2.0, retries=1, resolver=_NO_RESOLVER, validators=validators
        )
        target = zone_target(ORIGIN, (f"{nsd.address}:{nsd.port}",), "\n".join(zone.ds))

        async def probe() -> ZoneReport:
            async with Prober(settings) as prober:
                return assess_zone(await prober.probe(target), now)

        report = asyncio.run(probe())

    addresses = [f"{v.address}:{v.port}" for v in (good, wrong, blind)]
    assert [(v.answer.address, v.predicted, v.seen) for v in report.validators] == [
        (addresses[0], "secure", "secure"),
        (addresses[1], "secure", "fails"),
        (addresses[2], "secure", "insecure"),
    ]
    assert report.validators[0].answer.rcode == "NOERROR"
    assert report.validators[1].answer.rcode == "SERVFAIL"
    found = [(f.code, f.server) for f in report.findings if f.code.startswith("validator_")]
    assert found == [
        (Code.VALIDATOR_FAILS, addresses[1]),
        (Code.VALIDATOR_INSECURE, addresses[2]),
    ]
    fails = next(f for f in report.findings if f.code == Code.VALIDATOR_FAILS)
    assert fails.severity is Severity.STRICT_FAIL
    text = render_zone(report)
    assert "validators:" in text
    assert f"{addresses[1]}  SERVFAIL" in text
    assert [v["seen"] for v in zone_json(report)["validators"]] == ["secure", "fails", "insecure"]
