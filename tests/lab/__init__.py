"""A real-DNS lab on 127.0.0.0/8: signed zones, NSD, and validating resolvers as the oracle.

Everything listens on loopback only, on free random ports; every process is started in its own
process group and stopped with it; every wait has a timeout. Nothing here contacts any address
outside 127.0.0.0/8: resolvers get root hints pointing at 127.0.0.1 and trust only the DS of
the zones under test.

Zones (lab.zones):
    make_zone_keys(workdir, origin, algorithm="ECDSAP256SHA256") -> ZoneKeys
    make_signed_zone(workdir, origin, *, inception, expiration, algorithm="ECDSAP256SHA256",
                     nsec3=False, optout=False, records=(), signer="ldns", keys=None,
                     serial=1) -> SignedZone
    make_unsigned_zone(workdir, origin, *, records=(), serial=1) -> UnsignedZone
    tamper_soa(zone_file)  # bump the signed SOA's refresh: its RRSIG no longer verifies
Authoritative server (lab.servers):
    NsdServer(workdir, zones, *, address="127.0.0.1", port=None)  # context manager, .start()
        .address, .port, .stop(), .log_text()
Validators (lab.validators), each Validator(workdir, *, zones, trust_anchors, upstream,
fake_now=None, settings=ValidatorSettings(), address="127.0.0.1", port=None):
    Unbound, Named (Clock.FROZEN: fake_now freezes libfaketime at that second)
        Unbound(..., stub=True): the zones as stub-zones on upstream, not forward-zones
    Kresd, PdnsRecursor (Clock.SHIFTED: real clock; shift the signature dates instead)
    .version(), .clock_reading(qname) -> ClockReading(second, line)
Queries (lab.dnsquery), DO=1, EDNS 1232, TCP on truncation:
    query(address, port, name, rtype) -> ValidatorAnswer(rcode, ad, ede_codes)
    ask(address, port, name, rtype, *, recursion_desired=True) -> dns.message.Message
One oracle run (lab.oracle):
    observe(Validator class, workdir, *, origin, inception, expiration, at, settings=...)
        -> Observation(validator, at, answer, clock, clock_evidence, zone)
Requirements (lab.requirements):
    LAB_BINARIES, Validator.BINARIES; missing_binaries(names) -> the ones not installed
Errors: LabError, with ToolError, StartupError and ClockNotConfirmedError under it.
"""

from .clock import faketime_environment
from .dnsquery import ValidatorAnswer, answers, ask, query
from .oracle import Observation, observe
from .process import (
    ClockNotConfirmedError,
    LabError,
    StartupError,
    ToolError,
    free_port,
)
from .requirements import LAB_BINARIES, missing_binaries
from .servers import NsdServer, ServedZone
from .validators import (
    VALIDATORS,
    Clock,
    ClockReading,
    Kresd,
    Named,
    PdnsRecursor,
    Unbound,
    Validator,
)
from .zones import (
    ALGORITHMS,
    SignedZone,
    UnsignedZone,
    ZoneKeys,
    make_signed_zone,
    make_unsigned_zone,
    make_zone_keys,
    parse_ds,
    signzone_date,
    splice_rrsigs,
    tamper_soa,
)

__all__ = [
    "ALGORITHMS",
    "LAB_BINARIES",
    "VALIDATORS",
    "Clock",
    "ClockNotConfirmedError",
    "ClockReading",
    "Kresd",
    "LabError",
    "Named",
    "NsdServer",
    "Observation",
    "PdnsRecursor",
    "ServedZone",
    "SignedZone",
    "StartupError",
    "ToolError",
    "Unbound",
    "UnsignedZone",
    "Validator",
    "ValidatorAnswer",
    "ZoneKeys",
    "answers",
    "ask",
    "faketime_environment",
    "free_port",
    "make_signed_zone",
    "make_unsigned_zone",
    "make_zone_keys",
    "missing_binaries",
    "observe",
    "parse_ds",
    "query",
    "signzone_date",
    "splice_rrsigs",
    "tamper_soa",
]
