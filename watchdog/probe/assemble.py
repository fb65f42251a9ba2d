"""From answers to observations: what each server served, verified, and the chain of trust.

``Collected`` gathers one server's answers while the prober asks; ``assemble`` then turns all
servers' answers, the parent's DS and an optional trust anchor into a ZoneObservation. No I/O
here: the prober fetches, this module judges what was fetched (cryptographically only; time is
the engine's business).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import dns.name
import dns.rcode
import dns.rdatatype
from dns.rdtypes.ANY.CDNSKEY import CDNSKEY
from dns.rdtypes.ANY.CDS import CDS
from dns.rdtypes.ANY.DNSKEY import DNSKEY
from dns.rdtypes.ANY.DS import DS
from dns.rdtypes.ANY.NSEC3 import NSEC3
from dns.rdtypes.ANY.NSEC3PARAM import NSEC3PARAM
from dns.rdtypes.ANY.RRSIG import RRSIG
from dns.rdtypes.ANY.SOA import SOA

from watchdog.config.targets import TrustAnchor
from watchdog.engine.codes import Code
from watchdog.engine.findings import Finding, Severity
from watchdog.engine.observations import (
    ApexFacts,
    ChainStatus,
    DelegationSigner,
    KeyFacts,
    RRsetObservation,
    ServerObservation,
    SignatureObservation,
    ZoneObservation,
)
from watchdog.errors import ProbeError
from watchdog.probe.discovery import ParentDS, ServerAddress
from watchdog.probe.dnsio import Answer, RRset
from watchdog.probe.verify import (
    SUPPORTED_ALGORITHMS,
    SUPPORTED_DIGESTS,
    KeySet,
    SignatureVerifier,
    ds_matches,
    key_tag,
    secure_entry_keys,
)

__all__ = ["Collected", "assemble"]

_DENIAL_TYPES = frozenset({dns.rdatatype.NSEC, dns.rdatatype.NSEC3})
_RRSIG = dns.rdatatype.RRSIG
_Pair = tuple[RRset, RRset | None]
# One verification of an RRset: (id of the RRset, id of its RRSIGs, key bytes, no-key reason).
_Checked = tuple[int, int, tuple[bytes, ...], str]


@dataclass(slots=True)
class Collected:
    """One server's answers, gathered while asking (mutable, private to one probe)."""

    server: ServerAddress
    apex: dns.name.Name
    reachable: bool = True
    serial: int | None = None
    soa_expire: int | None = None
    dnskey: tuple[DNSKEY, ...] | None = None  # the DNSKEY RRset it served, if any
    dnskey_asked: bool = False  # the DNSKEY question got an answer (with or without keys)
    dnskey_failed: bool = False  # the DNSKEY question got no usable answer
    denial_missing: bool = False  # a non-existent name was answered without NSEC/NSEC3
    sets: dict[tuple[dns.name.Name, int], _Pair] = field(default_factory=dict)
    problems: list[Finding] = field(default_factory=list)

    @property
    def dnskey_absent(self) -> bool:
        """The server answered the DNSKEY question, without a DNSKEY RRset."""
        return self.dnskey is None and self.dnskey_asked and not self.dnskey_failed

    def fail(
        self,
        error: ProbeError,
        severity: Severity,
        owner: dns.name.Name | None = None,
        rdtype: dns.rdatatype.RdataType | None = None,
    ) -> None:
        """Record a question that got no usable answer."""
        if rdtype == dns.rdatatype.DNSKEY:
            self.dnskey_failed = True
        self._problem(error.code, severity, str(error), owner, rdtype)

    def apex_soa(self, answer: Answer) -> bool:
        """Take the apex SOA answer; False (with a problem) when the server is no use."""
        if answer.rcode == dns.rcode.NXDOMAIN:
            self._problem(
                Code.NXDOMAIN_APEX,
                Severity.UNREACHABLE,
                f"{self.server.address}: answers NXDOMAIN for the zone apex {self.apex}",
            )
            return False
        self._take(answer.answer, None)
        pair = self.sets.get((self.apex, dns.rdatatype.SOA))
        if pair is None:
            alias = self.sets.get((self.apex, dns.rdatatype.CNAME))
            # What a server that does not serve the zone answered is not the zone's data:
            # judging it would call an unsigned alias or referral BOGUS.
            self.sets.clear()
            if alias is not None:
                # RFC 2181 10.1: a CNAME cannot sit at a zone apex (it excludes SOA and NS).
                self._problem(
                    Code.CNAME_AT_APEX,
                    Severity.UNREACHABLE,
                    f"{self.server.address}: answers a CNAME to {_target(alias[0])} for the "
                    f"zone apex {self.apex}; an alias is not a zone",
                )
                return False
            self._problem(
                Code.NO_SOA,
                Severity.UNREACHABLE,
                f"{self.server.address}: no SOA for {self.apex} in an authoritative answer; "
                "it does not serve the zone",
            )
            return False
        soa = pair[0].rdatas[0]
        assert isinstance(soa, SOA)
        self.serial, self.soa_expire = soa.serial, soa.expire
        return True

    def record(
        self,
        answer: Answer,
        qname: dns.name.Name,
        rdtype: dns.rdatatype.RdataType,
        role: str,
    ) -> None:
        """Keep the signed material of one answer; note what is missing from it."""
        denial = self._take(answer.authority, _DENIAL_TYPES)
        kept = self._take(answer.answer, None)

        def where(what: str) -> str:  # formatted only when there is something to say
            return f"{self.server.address}: {qname} {dns.rdatatype.to_text(rdtype)}: {what}"

        if role == "denial":
            self.denial_missing = not denial and not kept
        elif answer.rcode == dns.rcode.NXDOMAIN:
            code = Code.NXDOMAIN_APEX if qname == self.apex else Code.EXTRA_NXDOMAIN
            self._problem(code, Severity.UNKNOWN, where("NXDOMAIN"), qname, rdtype)
        elif role not in ("dnskey", "facts") and not any(
            name == qname and kind in (rdtype, dns.rdatatype.CNAME) for name, kind in kept
        ):
            # A missing DNSKEY RRset is judged with the whole zone in view (assemble).
            self._problem(Code.NODATA, Severity.UNKNOWN, where("no such RRset"), qname, rdtype)
        if role == "dnskey":
            self.dnskey_asked = True
            pair = self.sets.get((self.apex, dns.rdatatype.DNSKEY))
            if pair is not None:
                self.dnskey = tuple(k for k in pair[0] if isinstance(k, DNSKEY))

    def _take(
        self, section: Sequence[RRset], only: frozenset[int] | None
    ) -> list[tuple[dns.name.Name, int]]:
        signatures = {(r.name, int(r.covers)): r for r in section if r.rdtype == _RRSIG}
        kept = []
        for rrset in section:
            if rrset.rdtype == _RRSIG or (only is not None and rrset.rdtype not in only):
                continue
            if not rrset.name.is_subdomain(self.apex):
                continue  # a CNAME target elsewhere is another zone's business
            key = (rrset.name, int(rrset.rdtype))
            self.sets.setdefault(key, (rrset, signatures.get(key)))
            kept.append(key)
        return kept

    def _problem(
        self,
        code: Code,
        severity: Severity,
        message: str,
        owner: dns.name.Name | None = None,
        rdtype: dns.rdatatype.RdataType | None = None,
    ) -> None:
        self.problems.append(
            Finding(
                code,
                severity,
                message,
                self.server.address,
                owner.to_text() if owner is not None else None,
                dns.rdatatype.to_text(rdtype) if rdtype is not None else None,
            )
        )


def _target(rrset: RRset) -> str:
    return str(rrset.rdatas[0]) if rrset.rdatas else "?"


@dataclass(frozen=True, slots=True)
class _Trust:
    """What the DNSKEY RRset must be tied to: DS records and/or anchor keys."""

    kind: ChainStatus
    ds: tuple[DS, ...]
    keys: tuple[DNSKEY, ...]
    source: str  # "any DS" / "the trust anchor", for messages


def assemble(
    zone: str,
    apex: dns.name.Name,
    collected: Sequence[Collected],
    parent: ParentDS,
    parent_keys: Mapping[dns.name.Name, Answer],
    anchor: TrustAnchor | None,
    verifier: SignatureVerifier,
    *,
    problems: Sequence[Finding] = (),
) -> ZoneObservation:
    """Verify everything collected and build the zone's observation."""
    zone_problems = list(problems)
    trust = _trust(apex, parent, anchor, zone_problems)
    served = [c.dnskey for c in collected if c.dnskey is not None]
    # Unsigned only when a server said so (DNSKEY answered without keys) and nothing else
    # (DS, anchor, another server's keys) says otherwise; silence proves nothing.
    signed = (
        bool(served)
        or anchor is not None
        or parent.rrset is not None
        or not any(c.dnskey_absent for c in collected)
    )
    indexes = _index_keys(collected, apex, trust)
    chain = ChainStatus.NOT_CHECKED
    if trust is not None and any(i.entry for i in indexes.values()):
        chain = trust.kind
    elif trust is not None and any(c.dnskey is not None or c.dnskey_absent for c in collected):
        chain = ChainStatus.BROKEN
    elif trust is not None:
        # No DNSKEY answer (or no answer at all): nothing to match the DS or anchor against.
        # Said here, or the engine would claim there is no DS and no anchor (chain_not_checked).
        zone_problems.append(
            Finding(
                Code.CHAIN_UNVERIFIED,
                Severity.UNKNOWN,
                f"{apex}: no server answered the DNSKEY question; the chain of trust "
                f"could not be checked against {trust.source}",
            )
        )
    # Needed only for a server whose DNSKEY answer was lost.
    fallback = functools.cache(lambda: KeySet(key for rrset in served for key in rrset))
    seen: dict[_Checked, RRsetObservation] = {}
    servers = tuple(
        _server(c, apex, signed, trust, indexes.get(id(c)), chain, fallback, verifier, seen)
        for c in collected
    )
    return ZoneObservation(
        zone,
        servers,
        chain=chain,
        ds=_ds(apex, parent, parent_keys, verifier),
        signed=signed,
        problems=tuple(zone_problems),
        ds_records=tuple(
            DelegationSigner(d.key_tag, d.algorithm, d.digest_type)
            for d in (parent.rrset or ())
            if isinstance(d, DS)
        ),
    )


@dataclass(frozen=True, slots=True)
class _KeyIndex:
    """A served DNSKEY RRset, indexed: its zone keys, and the keys a DS or anchor points at."""

    keys: KeySet
    entry: list[DNSKEY] | None  # None without a DS or anchor to match against
    entry_keys: KeySet


def _index_keys(
    collected: Sequence[Collected], apex: dns.name.Name, trust: _Trust | None
) -> dict[int, _KeyIndex]:
    """Per server (by id) that served a DNSKEY RRset, its index. Servers that served the same
    keys share one: key tags and DS digests are computed once, not once per server."""
    made: list[tuple[tuple[DNSKEY, ...], _KeyIndex]] = []
    indexes = {}
    for c in collected:
        if c.dnskey is None:
            continue
        index = next((i for keys, i in made if keys == c.dnskey), None)
        if index is None:
            entry = (
                secure_entry_keys(c.dnskey, apex, trust.ds, trust.keys)
                if trust is not None
                else None
            )
            index = _KeyIndex(KeySet(c.dnskey), entry, KeySet(entry or ()))
            made.append((c.dnskey, index))
        indexes[id(c)] = index
    return indexes


def _trust(
    apex: dns.name.Name, parent: ParentDS, anchor: TrustAnchor | None, problems: list[Finding]
) -> _Trust | None:
    if anchor is not None:
        return _Trust(ChainStatus.TRUST_ANCHOR, anchor.ds, anchor.dnskeys, "the trust anchor")
    if parent.rrset is None:
        return None
    records = [ds for ds in parent.rrset if isinstance(ds, DS)]
    usable = tuple(
        ds
        for ds in records
        if ds.digest_type in SUPPORTED_DIGESTS and ds.algorithm in SUPPORTED_ALGORITHMS
    )
    if not usable:
        # RFC 4035 5.2: a DS set with no supported algorithm makes the zone insecure; we
        # cannot check the chain either.
        problems.append(
            Finding(
                Code.DS_UNSUPPORTED,
                Severity.UNKNOWN,
                f"{apex}: every DS uses an algorithm or digest type we cannot check",
            )
        )
        return None
    return _Trust(ChainStatus.PARENT_DS, usable, (), "any DS")


def _server(
    c: Collected,
    apex: dns.name.Name,
    signed: bool,
    trust: _Trust | None,
    index: _KeyIndex | None,
    chain: ChainStatus,
    fallback: Callable[[], KeySet],
    verifier: SignatureVerifier,
    seen: dict[_Checked, RRsetObservation],
) -> ServerObservation:
    problems = list(c.problems)
    address = c.server.address
    keys, no_key = index.keys if index is not None else KeySet(), ""
    entry = index.entry if index is not None else None
    if c.dnskey is None:
        if c.dnskey_failed and len(fallback()):
            # Its DNSKEY answer was lost, not absent: judge its signatures by the zone's keys
            # as the other servers serve them rather than calling a lost packet bogus.
            keys, no_key = fallback(), "not served by any server"
        elif c.dnskey_failed:
            no_key = "the DNSKEY query failed and no other server served one"
        else:
            no_key = "this server served no DNSKEY RRset"
        if signed and c.dnskey_absent:
            problems.append(
                Finding(
                    Code.NO_DNSKEY,
                    Severity.BOGUS,
                    f"{address}: serves no DNSKEY RRset at {apex} in a signed zone",
                    address,
                    apex.to_text(),
                    "DNSKEY",
                )
            )
    elif trust is not None and not entry and chain is not ChainStatus.BROKEN:
        problems.append(
            Finding(
                Code.DS_MISMATCH,
                Severity.BOGUS,
                f"{address}: no DNSKEY it serves is matched by {trust.source}",
                address,
                apex.to_text(),
                "DNSKEY",
            )
        )
    if signed and c.denial_missing:
        problems.append(
            Finding(
                Code.DENIAL_MISSING,
                Severity.BOGUS,
                f"{address}: answers a non-existent name without NSEC or NSEC3 records",
                address,
            )
        )
    rrsets = []
    if signed:
        for rrset, rrsigs in c.sets.values():
            use, why = keys, no_key
            if rrset.rdtype == dns.rdatatype.DNSKEY and trust is not None:
                # RFC 4035 5.2: the DNSKEY RRset must be signed by a key the DS points at.
                use = index.entry_keys if index is not None else KeySet()
                why = f"not matched by {trust.source}"
            # Servers that sent the same bytes share their decoded RRsets (dnsio's memo): what
            # the first of them proved holds for the others, so it is verified once. The key
            # names the very objects (all alive until assemble returns) and the keys' bytes.
            checked = (id(rrset), id(rrsigs), use.fingerprint, why)
            observed = seen.get(checked)
            if observed is None:
                signatures = verifier.observe(
                    rrset.name,
                    rrset.rdtype,
                    rrset.rdatas,
                    (r for r in rrsigs or () if isinstance(r, RRSIG)),
                    use,
                    signer=apex,
                    no_key_reason=why,
                )
                owner = signatures[0].owner if signatures else rrset.name.to_text()
                observed = seen[checked] = RRsetObservation(
                    owner, dns.rdatatype.to_text(rrset.rdtype), rrset.ttl, signatures
                )
            rrsets.append(observed)
    return ServerObservation(
        address,
        c.server.name,
        c.reachable,
        c.serial,
        tuple(rrsets),
        tuple(problems),
        keys_unknown=c.dnskey is None and c.dnskey_failed and not len(fallback()),
        facts=_facts(c, apex) if c.serial is not None else None,
    )


def _facts(c: Collected, apex: dns.name.Name) -> ApexFacts:
    """What the lints need from one server's apex: SOA EXPIRE, keys, NSEC3, CDS/CDNSKEY."""
    keys = c.dnskey or ()
    nsec3 = [
        (r.iterations, r.salt.hex())
        for (_, rdtype), (rrset, _) in c.sets.items()
        if rdtype in (dns.rdatatype.NSEC3, dns.rdatatype.NSEC3PARAM)
        for r in rrset
        if isinstance(r, NSEC3 | NSEC3PARAM)
    ]

    def served(rdtype: int) -> list[dns.rdata.Rdata]:
        pair = c.sets.get((apex, rdtype))
        return list(pair[0]) if pair is not None else []

    cds, cdnskey = served(dns.rdatatype.CDS), served(dns.rdatatype.CDNSKEY)
    # RFC 8078 4: algorithm 0 is the "delete the DS" request, matching no key by design.
    unmatched = [
        r.to_text()
        for r in cds
        if isinstance(r, CDS) and r.algorithm and not any(ds_matches(r, k, apex) for k in keys)  # type: ignore[arg-type]
    ] + [
        r.to_text()
        for r in cdnskey
        if isinstance(r, CDNSKEY)
        and r.algorithm
        and not any((k.flags, k.algorithm, k.key) == (r.flags, r.algorithm, r.key) for k in keys)
    ]
    return ApexFacts(
        soa_expire=c.soa_expire,
        keys=tuple(KeyFacts(key_tag(k), k.algorithm, k.flags) for k in keys),
        nsec3=max(nsec3) if nsec3 else None,
        cds=tuple(sorted(r.to_text() for r in cds)),
        cdnskey=tuple(sorted(r.to_text() for r in cdnskey)),
        unmatched_cds=tuple(unmatched),
    )


def _ds(
    apex: dns.name.Name,
    parent: ParentDS,
    parent_keys: Mapping[dns.name.Name, Answer],
    verifier: SignatureVerifier,
) -> RRsetObservation | None:
    if parent.rrset is None:
        return None
    signatures: list[SignatureObservation] = []
    for rrsig in parent.rrsigs or ():
        assert isinstance(rrsig, RRSIG)
        signer = rrsig.signer
        answer = parent_keys.get(signer)
        keys = KeySet()
        if answer is not None:
            keys = KeySet(
                k
                for r in answer.answer
                if r.name == signer and r.rdtype == dns.rdatatype.DNSKEY
                for k in r
                if isinstance(k, DNSKEY)
            )
        # The DS lives in the parent: its signer must be a proper ancestor (RFC 4035 5.3.1).
        expected = signer if apex.is_subdomain(signer) and signer != apex else apex.parent()
        signatures += verifier.observe(
            apex,
            parent.rrset.rdtype,
            parent.rrset.rdatas,
            (rrsig,),
            keys,
            signer=expected,
            no_key_reason="the parent's DNSKEY RRset could not be fetched"
            if answer is None
            else "",
        )
    return RRsetObservation(apex.to_text(), "DS", parent.rrset.ttl, tuple(signatures))
