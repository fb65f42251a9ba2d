"""Zone transfer (AXFR over TCP, RFC 5936), streamed into a compact ZoneContent.

Each message is parsed and folded in before the next is read: what stays is, per RRset, the
canonical RDATA bytes (RFC 4034 6.2, what a signature covers) and the RRSIGs over it, never the
wire nor dnspython's parsed copies of the whole zone. TSIG (RFC 8945) signs the question and is
checked on every answer message. Every failure leaves as a ProbeError whose code is the
finding code: transfer_refused, transfer_notauth, transfer_tsig_failed, transfer_cut,
transfer_malformed, transfer_failed.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.tsig
from dns.rdtypes.ANY.DNSKEY import DNSKEY
from dns.rdtypes.ANY.RRSIG import RRSIG
from dns.rdtypes.ANY.SOA import SOA

from watchdog.config.coverage import TsigKey
from watchdog.engine.codes import Code
from watchdog.errors import ProbeError
from watchdog.probe import dnsio

__all__ = ["RRsetKey", "ZoneContent", "transfer_zone"]

RRsetKey = tuple[dns.name.Name, int]  # (owner, type)

_LENGTH = struct.Struct("!H")
_RCODES = {
    dns.rcode.REFUSED: Code.TRANSFER_REFUSED,
    dns.rcode.NOTAUTH: Code.TRANSFER_NOTAUTH,
}
_TSIG_ERRORS = (
    dns.tsig.BadSignature,
    dns.tsig.BadTime,
    dns.tsig.BadAlgorithm,
    dns.tsig.PeerError,
    dns.message.UnknownTSIGKey,
)


@dataclass(slots=True)
class ZoneContent:
    """A whole zone as transferred: ``data`` maps (owner, type) to (TTL, canonical RDATA in
    canonical order); ``rrsigs`` maps (owner, covered type) to its RRSIGs."""

    apex: dns.name.Name
    serial: int
    data: dict[RRsetKey, tuple[int, list[bytes]]] = field(default_factory=dict)
    rrsigs: dict[RRsetKey, list[RRSIG]] = field(default_factory=dict)
    keys: list[DNSKEY] = field(default_factory=list)

    def authoritative(self) -> list[RRsetKey]:
        """The RRsets a signer signs, in transfer order: not delegation NS records nor glue
        below a zone cut (RFC 4035 2.2: those are not signed)."""
        cuts = {o for o, t in self.data if t == dns.rdatatype.NS and o != self.apex}
        if not cuts:  # no delegation: every RRset is the zone's own (and no parent walk)
            return list(self.data)
        result = []
        for owner, rdtype in self.data:
            below = _below_cut(owner, cuts, self.apex)
            at_cut = owner in cuts
            if below or (at_cut and rdtype not in (dns.rdatatype.DS, dns.rdatatype.NSEC)):
                continue
            result.append((owner, rdtype))
        return result


def _below_cut(owner: dns.name.Name, cuts: set[dns.name.Name], apex: dns.name.Name) -> bool:
    name = owner
    while name != apex and len(name) > len(apex):
        name = name.parent()
        if name in cuts:
            return True
    return False


async def transfer_zone(
    apex: dns.name.Name, host: str, port: int, tsig: TsigKey | None, read_timeout: float
) -> ZoneContent:
    """Transfer ``apex`` from ``host``:``port``; ``read_timeout`` bounds each read, so a slow but
    moving transfer goes on while a stalled one ends as transfer_cut."""
    where = f"{dnsio.format_address(host, port)}: AXFR {apex}"
    query = dns.message.make_query(apex, dns.rdatatype.AXFR, dns.rdataclass.IN)
    if tsig is not None:
        query.use_tsig(
            dns.tsig.Key(tsig.name, tsig.secret, tsig.algorithm),
        )
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), read_timeout)
    except (TimeoutError, OSError) as exc:
        reason = "no connection" if isinstance(exc, TimeoutError) else exc.strerror or str(exc)
        raise ProbeError(Code.TRANSFER_FAILED, f"{where}: {reason}") from exc
    try:
        wire = query.to_wire()
        writer.write(_LENGTH.pack(len(wire)) + wire)
        return await _receive(reader, query, apex, where, read_timeout)
    finally:
        writer.close()


async def _receive(
    reader: asyncio.StreamReader,
    query: dns.message.Message,
    apex: dns.name.Name,
    where: str,
    read_timeout: float,
) -> ZoneContent:
    content: ZoneContent | None = None
    tsig_ctx = None
    pending: dict[RRsetKey, tuple[int, set[bytes]]] = {}
    while True:
        try:
            head = await asyncio.wait_for(reader.readexactly(_LENGTH.size), read_timeout)
            wire = await asyncio.wait_for(reader.readexactly(_LENGTH.unpack(head)[0]), read_timeout)
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError) as exc:
            got = f"after {len(pending):,} RRsets" if content else "before any record"
            raise ProbeError(Code.TRANSFER_CUT, f"{where}: the transfer stopped {got}") from exc
        if query.keyring is None:
            records = _parse_lean(wire, query, where)
        else:
            records, tsig_ctx = _parse(wire, query, tsig_ctx, first=content is None, where=where)
        done, content = _fold(records, apex, content, pending, where)
        if done:
            break
    assert content is not None
    for key, (ttl, rdatas) in pending.items():
        content.data[key] = (ttl, sorted(rdatas))
    return content


def _parse_lean(wire: bytes, query: dns.message.Message, where: str) -> Sequence[dnsio.RRset]:
    """An unsigned transfer's message, decoded as lean as the prober's answers."""
    try:
        ident, flags, records = dnsio.answer_records(wire)
    except Exception as exc:  # any broken byte sequence is the same fault: malformed
        raise ProbeError(Code.TRANSFER_MALFORMED, f"{where}: a malformed message ({exc})") from exc
    if ident != query.id or not flags & dns.flags.QR:
        raise ProbeError(Code.TRANSFER_MALFORMED, f"{where}: an answer to another question")
    rcode = dns.rcode.Rcode.make(flags & 0xF)
    if rcode != dns.rcode.NOERROR:
        code = _RCODES.get(rcode, Code.TRANSFER_FAILED)
        raise ProbeError(code, f"{where}: the server answered {dns.rcode.to_text(rcode)}")
    return records


def _parse(
    wire: bytes,
    query: dns.message.Message,
    tsig_ctx: object,
    *,
    first: bool,
    where: str,
) -> tuple[list[dnsio.RRset], object]:
    """A TSIG-signed transfer's message: dnspython checks the TSIG of each (RFC 8945 5.3.1)."""
    try:
        message = dns.message.from_wire(
            wire,
            keyring=query.keyring,
            request_mac=query.mac,
            xfr=True,
            tsig_ctx=tsig_ctx,  # type: ignore[arg-type]
            multi=True,
            # Each record its own RRset: merging them in the parser searched the section for
            # every record (most of the time of a large transfer); _fold merges by key.
            one_rr_per_rrset=True,
        )
    except _TSIG_ERRORS as exc:
        raise ProbeError(Code.TRANSFER_TSIG_FAILED, f"{where}: TSIG check failed ({exc})") from exc
    except dns.message.BadTSIG as exc:
        raise ProbeError(Code.TRANSFER_TSIG_FAILED, f"{where}: TSIG check failed ({exc})") from exc
    except (dns.exception.DNSException, ValueError, struct.error) as exc:
        raise ProbeError(Code.TRANSFER_MALFORMED, f"{where}: a malformed message ({exc})") from exc
    rcode = message.rcode()
    if rcode != dns.rcode.NOERROR:
        code = _RCODES.get(rcode, Code.TRANSFER_FAILED)
        if query.keyring is not None and rcode == dns.rcode.NOTAUTH:
            code = Code.TRANSFER_TSIG_FAILED  # RFC 8945 5.3.2: a key or signature it rejected
        raise ProbeError(code, f"{where}: the server answered {dns.rcode.to_text(rcode)}")
    if query.keyring is not None and not message.had_tsig:
        raise ProbeError(Code.TRANSFER_TSIG_FAILED, f"{where}: an answer without TSIG")
    if not query.is_response(message, xfr_continuation=not first):
        raise ProbeError(Code.TRANSFER_MALFORMED, f"{where}: an answer to another question")
    if any(r.rdclass != dns.rdataclass.IN for r in message.answer):
        raise ProbeError(Code.TRANSFER_MALFORMED, f"{where}: a record not of class IN")
    records = [dnsio.RRset(r.name, r.rdtype, r.covers, r.ttl, tuple(r)) for r in message.answer]
    return records, message.tsig_ctx


def _fold(
    records: Sequence[dnsio.RRset],
    apex: dns.name.Name,
    content: ZoneContent | None,
    pending: dict[RRsetKey, tuple[int, set[bytes]]],
    where: str,
) -> tuple[bool, ZoneContent]:
    """Add one message's records; (whether the closing SOA came, the content so far).

    The lean decoder groups a message's records by owner and type, so the opening and the
    closing SOA (RFC 5936 2.2) of a zone that fits one message arrive as one set of two:
    the message is folded whole, then the closing SOA ends the transfer."""
    closed = False
    for rrset in records:
        if rrset.rdtype == dns.rdatatype.SOA and rrset.name == apex:
            for soa in rrset.rdatas:
                assert isinstance(soa, SOA)
                if content is None:
                    content = ZoneContent(apex, soa.serial)
                    pending[(apex, dns.rdatatype.SOA)] = (rrset.ttl, {soa.to_digestable()})
                elif soa.serial != content.serial:
                    raise ProbeError(
                        Code.TRANSFER_MALFORMED,
                        f"{where}: the closing SOA has serial {soa.serial}, not {content.serial}",
                    )
                else:
                    closed = True
            continue
        if content is None:
            raise ProbeError(Code.TRANSFER_MALFORMED, f"{where}: the first record is not the SOA")
        if not rrset.name.is_subdomain(apex):
            raise ProbeError(Code.TRANSFER_MALFORMED, f"{where}: {rrset.name} is not in the zone")
        if rrset.rdtype == dns.rdatatype.RRSIG:
            sigs = content.rrsigs.setdefault((rrset.name, rrset.covers), [])
            sigs.extend(r for r in rrset if isinstance(r, RRSIG))
            continue
        key = (rrset.name, int(rrset.rdtype))
        ttl, rdatas = pending.get(key, (rrset.ttl, set()))
        rdatas.update(r.to_digestable() for r in rrset)
        pending[key] = (min(ttl, rrset.ttl), rdatas)
        if rrset.rdtype == dns.rdatatype.DNSKEY and rrset.name == apex:
            content.keys.extend(r for r in rrset if isinstance(r, DNSKEY))
    if content is None:
        raise ProbeError(Code.TRANSFER_MALFORMED, f"{where}: an empty first message")
    return closed, content
