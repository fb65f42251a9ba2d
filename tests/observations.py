"""Observations built by hand for tests of what is judged and said (no DNS involved)."""

from __future__ import annotations

from watchdog.engine.observations import (
    RRsetObservation,
    ServerObservation,
    SignatureObservation,
    Verification,
    ZoneObservation,
)

DAY = 86400


def one_server(
    zone: str,
    expiration: int | None,
    *,
    lifetime: int = 14 * DAY,
    address: str = "192.0.2.1:53",
    name: str = "ns1.example.com.",
) -> ZoneObservation:
    """One server serving the apex SOA and DNSKEY RRsets, each with one valid signature of
    ``lifetime`` seconds that expires at ``expiration``; None: the server does not answer."""
    if expiration is None:
        return ZoneObservation(zone, (ServerObservation(address, name, reachable=False),))
    rrsets = tuple(
        RRsetObservation(
            zone,
            rtype,
            3600,
            (
                SignatureObservation(
                    zone,
                    rtype,
                    1111,
                    13,
                    expiration - lifetime,
                    expiration,
                    3600,
                    Verification.VALID,
                ),
            ),
        )
        for rtype in ("SOA", "DNSKEY")
    )
    return ZoneObservation(zone, (ServerObservation(address, name, serial=1, rrsets=rrsets),))
