"""Discovery and the parent's DS through a real Unbound, for a real parent/child delegation.

The lab on 127.0.0.0/8: NSD serves the signed parent ``watchdog.test.`` (delegation, glue and
the child's DS) on a random port; two NSDs serve the child ``child.watchdog.test.`` on port 53
of 127.0.0.1 and 127.0.0.2 (discovered servers are asked on port 53), one of them an older
signed copy; Unbound, with root hints at 127.0.0.1 and a stub-zone for the parent, answers the
prober's NS, A, AAAA, DS and DNSKEY questions by iterating from the parent.

Run this file as a script to print a text report of that two-server zone:
``PYTHONPATH=tests .venv/bin/python tests/probe/test_resolver.py``.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from lab import NsdServer, SignedZone, Unbound, make_signed_zone, make_zone_keys
from targets import zone_target

from watchdog.config.targets import ProbeSettings, ZoneTarget
from watchdog.engine.assess import ZoneReport, assess_zone
from watchdog.engine.findings import Severity
from watchdog.engine.observations import ChainStatus, Verification, ZoneObservation
from watchdog.engine.timeutil import rfc3339
from watchdog.probe.prober import Prober

pytestmark = pytest.mark.realdns

NOW = 1_893_456_000  # 2030-01-01T00:00:00Z
DAY = 86400
PARENT = "watchdog.test."
CHILD = "child.watchdog.test."
FRESH, STALE = "127.0.0.1", "127.0.0.2"  # ns1 / ns2 of the child, port 53
_BINARIES = ("nsd", "unbound", "ldns-keygen", "ldns-signzone", "ldns-key2ds")


@dataclass(frozen=True)
class Delegation:
    """The running lab: where the resolver listens and the two copies of the child."""

    resolver: tuple[str, int]
    fresh: SignedZone
    stale: SignedZone


def _port_53_free(address: str) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            if kind == socket.SOCK_STREAM:  # as NSD does: a TIME_WAIT left over is no obstacle
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((address, 53))
            except OSError:
                return False
    return True


def build_delegation(workdir: Path, stack: ExitStack, *, wrong_ds: bool = False) -> Delegation:
    """Sign parent and child, start the three NSDs and Unbound; ``stack`` stops them."""
    keys = make_zone_keys(workdir / "keys", CHILD)
    child_records = [
        "@ IN NS ns2",
        f"ns2 IN A {STALE}",
    ]  # the lab zone already has "@ NS ns1" and "ns1 A 127.0.0.1"
    fresh = make_signed_zone(
        workdir / "fresh", CHILD, inception=NOW - DAY, expiration=NOW + 14 * DAY,
        keys=keys, serial=2, records=child_records,
    )  # fmt: skip
    stale = make_signed_zone(
        workdir / "stale", CHILD, inception=NOW - DAY, expiration=NOW + 3 * DAY,
        keys=keys, serial=1, records=child_records,
    )  # fmt: skip
    ds = fresh.ds
    if wrong_ds:
        other = make_signed_zone(workdir / "other", CHILD, inception=NOW, expiration=NOW + DAY)
        ds = other.ds
    parent = make_signed_zone(
        workdir / "parent",
        PARENT,
        inception=NOW - DAY,
        expiration=NOW + 30 * DAY,
        records=[
            "child IN NS ns1.child",
            "child IN NS ns2.child",
            f"ns1.child IN A {FRESH}",
            f"ns2.child IN A {STALE}",
            *ds,
        ],
    )
    parent_nsd = stack.enter_context(NsdServer(workdir / "nsd-parent", [parent]))
    stack.enter_context(NsdServer(workdir / "nsd-fresh", [fresh], address=FRESH, port=53))
    stack.enter_context(NsdServer(workdir / "nsd-stale", [stale], address=STALE, port=53))
    # No trust anchor: Unbound fetches the DNSSEC data and judges none; validation is the
    # prober's job (it asks with CD).
    unbound = stack.enter_context(
        Unbound(
            workdir / "unbound",
            zones=[PARENT],
            trust_anchors=(),
            upstream=(parent_nsd.address, parent_nsd.port),
            stub=True,
        )
    )
    return Delegation((unbound.address, unbound.port), fresh, stale)


@pytest.fixture
def delegation(
    tmp_path: Path, require_binaries: Callable[..., None]
) -> Iterator[Callable[..., Delegation]]:
    require_binaries(*_BINARIES)
    if not (_port_53_free(FRESH) and _port_53_free(STALE)):
        pytest.skip("port 53 on 127.0.0.1/127.0.0.2 is taken; discovered servers need it")
    with ExitStack() as stack:
        yield lambda **options: build_delegation(tmp_path, stack, **options)


async def probe(resolver: tuple[str, int], target: ZoneTarget) -> ZoneObservation:
    async with Prober(ProbeSettings(resolver=resolver, timeout=1.0)) as prober:
        return await prober.probe(target)


def render(report: ZoneReport) -> str:
    """A short text rendering of the engine's verdict: what an operator reads first."""
    lines = [f"zone {report.zone}  severity {report.severity.value}  chain {report.chain.value}"]
    if report.deadlines is not None:
        d = report.deadlines
        lines += [
            f"  warning at         {rfc3339(d.warning_at)}  (set by {d.warning.server})",
            f"  strict validators  {rfc3339(d.strict_fail_at)}  (set by {d.strict_fail.server} "
            f"{d.strict_fail.owner} {d.strict_fail.rtype}, key {d.strict_fail.signature.key_tag})",
            f"  unbound exhausted  {rfc3339(d.skew_exhausted_at)}  (skew {d.unbound_skew} s)",
        ]
    for server in report.servers:
        earliest = (
            rfc3339(server.deadlines.strict_fail.timeline.expiration) if server.deadlines else "-"
        )
        lines.append(
            f"  server {server.address:<16} ns {server.name or '-':<24} serial {server.serial}  "
            f"earliest expiry {earliest}  {server.severity.value}"
        )
    for server in report.servers:
        worrying = [f for f in server.findings if f.severity is not Severity.OK]
        for code in dict.fromkeys(f.code for f in worrying):
            first = next(f for f in worrying if f.code == code)
            count = sum(f.code == code for f in worrying)
            lines.append(f"  {server.address} {code} x{count}, e.g. {first.message}")
    if report.ds is not None:
        lines.append(f"  parent DS: {len(report.ds.signatures)} signature(s), {report.ds.severity}")
    lines += [f"  finding {f.code} [{f.severity.value}]: {f.message}" for f in report.findings]
    return "\n".join(lines)


async def test_discovery_and_the_ds_chain_through_a_real_resolver(
    delegation: Callable[..., Delegation],
) -> None:
    """NS + A through Unbound find both addresses; the parent's DS ties the chain and its own
    signature verifies; the stale address is named and sets the zone's deadline."""
    lab = delegation()
    obs = await probe(lab.resolver, zone_target(CHILD))

    assert {(s.address, s.name, s.serial) for s in obs.servers} == {
        (f"{FRESH}:53", "ns1.child.watchdog.test.", 2),
        (f"{STALE}:53", "ns2.child.watchdog.test.", 1),
    }
    assert all(s.reachable and not s.problems for s in obs.servers)
    assert obs.chain is ChainStatus.PARENT_DS and obs.signed
    assert obs.ds is not None and obs.ds.rtype == "DS"
    assert [(s.verification, s.signer) for s in obs.ds.signatures] == [(Verification.VALID, PARENT)]
    report = assess_zone(obs, NOW)
    assert report.severity is Severity.OK
    assert report.deadlines is not None
    assert report.deadlines.strict_fail.server == f"{STALE}:53"
    assert report.deadlines.strict_fail_at == lab.stale.expiration + 1
    (stale,) = [f for f in report.findings if f.code == "stale_serial"]
    assert stale.server == f"{STALE}:53"
    assert "127.0.0.2:53" in render(report)


async def test_a_parent_ds_matching_no_dnskey_is_a_broken_chain(
    delegation: Callable[..., Delegation],
) -> None:
    """The parent publishes the DS of another key: chain BROKEN, DNSKEY signatures NO_KEY."""
    lab = delegation(wrong_ds=True)
    obs = await probe(lab.resolver, zone_target(CHILD))

    assert obs.chain is ChainStatus.BROKEN
    for server in obs.servers:
        (dnskey,) = [r for r in server.rrsets if r.rtype == "DNSKEY"]
        assert {s.verification for s in dnskey.signatures} == {Verification.NO_KEY}
        assert all("not matched by any DS" in s.reason for s in dnskey.signatures)
    report = assess_zone(obs, NOW)
    assert report.severity is Severity.BOGUS
    assert "ds_mismatch" in {f.code for f in report.findings}


async def test_configured_host_names_are_resolved_through_the_resolver(
    delegation: Callable[..., Delegation],
) -> None:
    """A configured "host" is looked up (A/AAAA), skipping NS discovery; DS still checked."""
    lab = delegation()
    obs = await probe(lab.resolver, zone_target(CHILD, servers=("ns2.child.watchdog.test",)))

    assert [(s.address, s.name, s.serial) for s in obs.servers] == [
        (f"{STALE}:53", "ns2.child.watchdog.test.", 1)
    ]
    assert obs.chain is ChainStatus.PARENT_DS


async def test_a_dead_resolver_leaves_the_zone_unreachable_not_crashed(
    require_binaries: Callable[..., None],
) -> None:
    """Nothing answers on the resolver's port: discovery and DS failures become findings."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    obs = await probe(("127.0.0.1", port), zone_target(CHILD))

    assert obs.servers == ()
    codes = {p.code for p in obs.problems}
    assert {"ns_lookup_failed", "ds_lookup_failed", "no_servers"} <= codes
    assert assess_zone(obs, NOW).severity is Severity.UNREACHABLE


def main() -> None:
    """Print the engine's report of the two-server zone with one stale copy, judged now and
    again six hours before the stale copy's signatures expire."""
    with tempfile.TemporaryDirectory() as workdir, ExitStack() as stack:
        lab = build_delegation(Path(workdir), stack)
        obs = asyncio.run(probe(lab.resolver, zone_target(CHILD)))
        print(f"probed through Unbound at {lab.resolver[0]}:{lab.resolver[1]}")
        for at in (NOW, lab.stale.expiration - 6 * 3600):
            print(f"\n--- judged at {rfc3339(at)} (fixed test clock) ---")
            print(render(assess_zone(obs, at)))


if __name__ == "__main__":
    sys.exit(main())
