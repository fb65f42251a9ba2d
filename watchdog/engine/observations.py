"""What the prober saw: plain frozen data handed from the I/O shell to the pure engine.

Times here are the raw 32-bit RRSIG fields exactly as served; the engine maps them to 64-bit
POSIX time against its own ``now`` (timeutil.serial_to_posix).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from watchdog.engine.findings import Finding

__all__ = [
    "ApexFacts",
    "ChainStatus",
    "CoverageObservation",
    "DelegationSigner",
    "KeyFacts",
    "RRsetObservation",
    "ServerObservation",
    "SignatureGroup",
    "SignatureObservation",
    "ValidatorAnswer",
    "Verification",
    "ZoneObservation",
]


class Verification(StrEnum):
    """The outcome of checking one RRSIG cryptographically, independent of time."""

    VALID = "valid"  # verifies with a DNSKEY of the zone (for DNSKEY: a DS-matched key)
    BOGUS = "bogus"  # the signature does not verify
    NO_KEY = "no_key"  # no DNSKEY with this key tag and algorithm (or, for DNSKEY, none DS-matched)
    UNSUPPORTED_ALGORITHM = "unsupported_algorithm"  # we cannot check it; neither bogus nor valid


@dataclass(frozen=True, slots=True)
class SignatureObservation:
    """One RRSIG as served, with the result of verifying it."""

    owner: str
    rtype: str
    key_tag: int
    algorithm: int
    inception: int  # raw 32-bit field
    expiration: int  # raw 32-bit field
    original_ttl: int
    verification: Verification
    reason: str = ""  # why it did not verify, for humans
    signer: str = ""


@dataclass(frozen=True, slots=True)
class RRsetObservation:
    """One RRset (owner, type) as one server served it, with its signatures."""

    owner: str
    rtype: str
    ttl: int
    signatures: tuple[SignatureObservation, ...]


@dataclass(frozen=True, slots=True)
class KeyFacts:
    """One DNSKEY as served: what the hygiene lints need to know about it."""

    key_tag: int
    algorithm: int
    flags: int  # 256 zone key, 257 with SEP (RFC 4034 2.1.1); 128 is REVOKE (RFC 5011)


@dataclass(frozen=True, slots=True)
class ApexFacts:
    """What one server serves at the apex beyond signatures: for the lints (engine/lints.py).

    CDS/CDNSKEY (RFC 7344) are kept as sorted presentation texts, to compare servers; their
    match with the DNSKEY set is decided by the prober, which holds the keys.
    """

    soa_expire: int | None = None
    keys: tuple[KeyFacts, ...] = ()
    nsec3: tuple[int, str] | None = None  # (most iterations, salt as hex) of NSEC3PARAM/NSEC3
    cds: tuple[str, ...] = ()
    cdnskey: tuple[str, ...] = ()
    unmatched_cds: tuple[str, ...] = ()  # CDS/CDNSKEY records that match no served DNSKEY


@dataclass(frozen=True, slots=True)
class DelegationSigner:
    """One DS record of the parent: which key and how it is digested."""

    key_tag: int
    algorithm: int
    digest_type: int


@dataclass(frozen=True, slots=True)
class ValidatorAnswer:
    """What one validating resolver the operator runs answered for the zone (SOA and DNSKEY
    asked with DO): the worse rcode of the two, AD on both, the EDE codes (RFC 8914)."""

    address: str
    rcode: str  # "NOERROR", "SERVFAIL", ...; "" when it did not answer
    authenticated: bool
    ede: tuple[int, ...] = ()
    error: str = ""  # why there is no answer


@dataclass(frozen=True, slots=True)
class ServerObservation:
    """Everything one authoritative server address answered (or failed to)."""

    address: str  # "192.0.2.1:53", "[2001:db8::1]:53"
    name: str | None = None  # the NS name it was found under; None for configured servers
    reachable: bool = True
    serial: int | None = None
    rrsets: tuple[RRsetObservation, ...] = ()
    problems: tuple[Finding, ...] = ()  # timeouts, lame, REFUSED, malformed answers...
    # Its DNSKEY question got no usable answer and no other server served the zone's keys:
    # its signatures could not be checked (NO_KEY), which is undecided, not bogus.
    keys_unknown: bool = False
    facts: ApexFacts | None = None  # None when the server served nothing at the apex


class ChainStatus(StrEnum):
    """Whether the DNSKEY RRset was tied to a DS (from the parent or a configured anchor)."""

    PARENT_DS = "parent_ds"  # a DS from the parent matched a DNSKEY
    TRUST_ANCHOR = "trust_anchor"  # a configured DS/DNSKEY anchor matched
    NOT_CHECKED = "not_checked"  # neither was available: said so, never pretended
    BROKEN = "broken"  # a DS or anchor exists and no served DNSKEY matches it


@dataclass(frozen=True, slots=True)
class SignatureGroup:
    """RRsets of a zone whose signatures are alike (same keys, times and verification):
    judged once for all of them. ``rrset`` is the first of them in the order served, the one a
    report names; ``count`` how many RRsets it stands for."""

    rrset: RRsetObservation
    count: int


@dataclass(frozen=True, slots=True)
class CoverageObservation:
    """What a check saw beyond the apex: the whole zone by transfer or NSEC walk.

    ``wanted`` is the configured mode; ``mode`` what this check achieved: "apex" when the
    transfer or walk failed (``problems`` say why), so a partial zone is never judged as whole.
    ``sampled`` holds the transfer's own RRsets for the names asked of every server this check,
    which the engine compares with what each server served.
    """

    mode: str  # "apex", "transfer" or "walk"
    wanted: str
    source: str = ""  # the server transferred from or walked
    serial: int | None = None
    rrsets: int = 0
    signatures: int = 0
    names: int = 0
    groups: tuple[SignatureGroup, ...] = ()
    sampled: tuple[RRsetObservation, ...] = ()
    problems: tuple[Finding, ...] = ()


@dataclass(frozen=True, slots=True)
class ZoneObservation:
    """One check of one zone: every server's answers plus the parent's DS."""

    zone: str
    servers: tuple[ServerObservation, ...]
    chain: ChainStatus = ChainStatus.NOT_CHECKED
    ds: RRsetObservation | None = None  # the parent's DS RRset and its RRSIGs
    signed: bool = True  # False when no server served a DNSKEY RRset
    problems: tuple[Finding, ...] = field(default=())  # zone-level: discovery, chain of trust
    coverage: CoverageObservation | None = None  # None: apex only, nothing more was asked
    ds_records: tuple[DelegationSigner, ...] = ()  # the parent's DS set, for the lints
    validators: tuple[ValidatorAnswer, ...] = ()  # [watchdog] validators, asked each check
