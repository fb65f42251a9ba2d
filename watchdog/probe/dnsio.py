"""DNS transport of the prober: one question to one server, UDP first, TCP when truncated.

Every failure leaves this module as a ``ProbeError`` whose ``code`` is the stable finding code
(``timeout``, ``refused``, ``lame``...); dnspython and socket exceptions are translated here and
nowhere else. Answers are checked before anyone reads them: same id and question as asked (the
rules of dnspython's ``Message.is_response``), an rcode that carries data, and for
authoritative questions the AA bit (RFC 1034 4.3.1: without it the answer is not from the
zone's authority).

Over UDP, a datagram that is not the answer (another id or question; another source never
reaches a connected socket) is ignored and the socket keeps reading until the answer or the
timeout, as resolvers do (RFC 5452 9.1) and dig does ("ID mismatch"): one stray or spoofed
datagram must not blind a check. Only when strays alone came back is it ``mismatched``. Query
ids come from ``secrets`` (RFC 5452 9.2: unpredictable, not a Mersenne Twister's next word).

Cost matters (DESIGN: thousands of zones per minute on one core), and measured per query the
generic path (dns.message.make_query, dns.asyncquery.udp, Message parsing into RRsets) spent
most of its time on what the prober never reads. So the UDP path sends a prebuilt question on a
plain non-blocking socket and parses, with dnspython's name and rdata parsers, only the answer
section (and the authority section when asked for); glue and other additional records are
never decoded. Truncated answers are asked again over TCP and read by the same parser.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import ipaddress
import secrets
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import dns.flags
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.wire

from watchdog.engine.codes import Code
from watchdog.errors import ProbeError

__all__ = [
    "EDNS_PAYLOAD",
    "Answer",
    "RRset",
    "Sent",
    "answer_records",
    "family_reachable",
    "format_address",
    "query",
    "query_wire",
    "sent",
]

# DNS flag day 2020: 1232 bytes fits the IPv6 minimum MTU without fragmentation.
EDNS_PAYLOAD = 1232

_TC = dns.flags.TC >> 8  # the TC bit within the third byte of the header
# The OPT pseudo-RR of every question: root owner, type 41, payload size as class, DO set in
# the TTL's flag half, no options (RFC 6891 6.1.2, RFC 3225).
_OPT = b"\x00" + struct.pack("!HHIH", 41, EDNS_PAYLOAD, dns.flags.DO, 0)
_RR_FIXED = struct.Struct("!HHIH")  # type, class, TTL, RDLENGTH
# What the prober reads from an authority section: denial of existence and its signatures.
_DENIAL = frozenset({dns.rdatatype.NSEC, dns.rdatatype.NSEC3})
# Memoised decodings (a few kB each), for the servers of a zone answering the same question
# moments apart: measured at 3,000 zones, 128 entries already caught every such repeat; 256
# leave room for slower servers. Not for a whole cycle of thousands of zones, whose answers
# would cost more memory than decoding them again (4,096 entries held ~10 MB more at 3,000
# zones for no extra hit), and every probing process holds one (probe_workers).
_DECODED_ANSWERS = 256

# Retrying helps only when the next attempt may fare differently: a lost datagram, or a stray
# or damaged one (a wrong id is also what an off-path spoofing attempt looks like).
_RETRYABLE = frozenset({Code.TIMEOUT, Code.MISMATCHED, Code.MALFORMED})

_RCODE_CODES = {
    dns.rcode.REFUSED: Code.REFUSED,
    dns.rcode.SERVFAIL: Code.SERVFAIL,
    dns.rcode.NOTIMP: Code.NOTIMP,
    dns.rcode.FORMERR: Code.FORMERR,
}

# Errors meaning "no route from this host to that family/network": no packet ever left.
_NO_ROUTE = frozenset(
    {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL}
)


@dataclass(frozen=True, slots=True)
class RRset:
    """Records of one (owner, type, covered type) as served, in wire order."""

    name: dns.name.Name
    rdtype: dns.rdatatype.RdataType
    covers: dns.rdatatype.RdataType
    ttl: int  # the lowest TTL among the records
    rdatas: tuple[dns.rdata.Rdata, ...]

    def __iter__(self) -> Iterator[dns.rdata.Rdata]:
        return iter(self.rdatas)

    def __len__(self) -> int:
        return len(self.rdatas)


@dataclass(frozen=True, slots=True)
class Answer:
    """The parts of a DNS answer the prober reads."""

    rcode: dns.rcode.Rcode
    flags: int
    answer: tuple[RRset, ...]
    authority: tuple[RRset, ...] = ()


@dataclass(frozen=True, slots=True)
class _Where:
    """ "192.0.2.1:53: example. SOA" for messages, formatted only if a message is made."""

    host: str
    port: int
    qname: dns.name.Name
    rdtype: dns.rdatatype.RdataType

    def __str__(self) -> str:
        address = format_address(self.host, self.port)
        return f"{address}: {self.qname} {dns.rdatatype.to_text(self.rdtype)}"


@dataclass(slots=True)
class Sent:
    """Questions this process put on the wire, by transport (benchmarks read ``sent``)."""

    udp: int = 0
    tcp: int = 0


sent = Sent()


def format_address(host: str, port: int) -> str:
    """``192.0.2.1:53`` or ``[2001:db8::1]:53``: how findings and observations name a server."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def family_reachable(host: str, port: int) -> bool:
    """Whether this host has a route to ``host``, asked of the kernel without sending anything.

    ``connect()`` on a UDP socket only picks a route and a source address; it fails at once
    with ENETUNREACH (no route) or EAFNOSUPPORT (IPv6 disabled).
    """
    family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect((host, port))
    except OSError as exc:
        # Anything but "no route" is for the query itself to meet and report.
        return exc.errno not in _NO_ROUTE
    return True


def query_wire(qname: dns.name.Name, rdtype: dns.rdatatype.RdataType, *, recursive: bool) -> bytes:
    """A question with DO=1 and an EDNS0 buffer of EDNS_PAYLOAD bytes, id zero.

    Recursive questions (to the resolver) set RD and CD: we want the data even when the
    resolver's own validation fails, since judging it is our job and a bogus zone is exactly
    the one we must still see (RFC 4035 3.2.2). Authoritative questions set neither.
    """
    flags = dns.flags.RD | dns.flags.CD if recursive else 0
    header = struct.pack("!HHHHHH", 0, flags, 1, 0, 0, 1)
    question = qname.to_digestable() + struct.pack("!HH", rdtype, dns.rdataclass.IN)
    return header + question + _OPT


async def query(
    qname: dns.name.Name,
    rdtype: dns.rdatatype.RdataType,
    host: str,
    port: int,
    *,
    recursive: bool,
    attempt_timeout: float,
    retries: int,
    authority: bool = False,
) -> Answer:
    """Ask ``host``:``port``; return a checked answer (NOERROR or NXDOMAIN) or raise ProbeError.

    Authoritative questions (``recursive`` False) must come back with AA set. The authority
    section is read only when ``authority`` is set (denial of existence lives there). Up to
    ``retries`` more attempts follow a timeout or a damaged answer, each with its own
    ``attempt_timeout`` (seconds). NXDOMAIN is returned, not raised: whether it is a problem
    depends on the name asked.
    """
    wire = query_wire(qname, rdtype, recursive=recursive)
    where = _Where(host, port, qname, rdtype)
    failure: ProbeError | None = None
    for _ in range(retries + 1):
        try:
            answer = await _exchange(wire, host, port, attempt_timeout, authority, where)
        except ProbeError as exc:
            if exc.code not in _RETRYABLE:
                raise
            failure = exc
            continue
        return _checked(answer, not recursive, where)
    assert failure is not None
    if failure.code == Code.TIMEOUT and retries:
        raise ProbeError(Code.TIMEOUT, f"{failure} ({retries + 1} attempts)")
    raise failure


async def _exchange(
    question: bytes, host: str, port: int, seconds: float, authority: bool, where: _Where
) -> Answer:
    ident = secrets.randbits(16)
    wire = struct.pack("!H", ident) + question[2:]
    over = "UDP"
    try:
        reply = await _udp(wire, host, port, seconds)
        if len(reply) >= 3 and reply[2] & _TC:
            # Truncated (RFC 7766 5): ask again over TCP, where the whole answer fits.
            over = "TCP"
            reply = await _tcp(wire, host, port, seconds)
        return _parse(reply, question, ident, authority, where)
    except _StraysOnly as exc:
        raise ProbeError(
            Code.MISMATCHED,
            f"{where}: the answer does not match the question or id "
            f"({exc.count} such, none that does, within {seconds:g} s)",
        ) from exc
    except TimeoutError as exc:
        suffix = " (TCP)" if over == "TCP" else ""
        raise ProbeError(Code.TIMEOUT, f"{where}: no answer within {seconds:g} s{suffix}") from exc
    except ConnectionRefusedError as exc:
        raise ProbeError(Code.CONNECTION_REFUSED, f"{where}: connection refused") from exc
    except (EOFError, ConnectionResetError) as exc:
        raise ProbeError(Code.CONNECTION_CLOSED, f"{where}: connection closed mid-answer") from exc
    except OSError as exc:
        if exc.errno in _NO_ROUTE:
            raise ProbeError(Code.NETWORK_UNREACHABLE, f"{where}: {exc.strerror}") from exc
        raise ProbeError(Code.NETWORK_ERROR, f"{where}: {exc.strerror or exc}") from exc


class _StraysOnly(Exception):
    """The UDP wait ended with datagrams that were not the answer, and no answer."""

    def __init__(self, count: int) -> None:
        self.count = count
        super().__init__(f"{count} stray datagrams")


@dataclass(slots=True)
class _Waiting:
    """One UDP question waiting for its answer: the question, and the strays seen so far."""

    wire: bytes
    reply: asyncio.Future[bytes]
    strays: int = 0


async def _udp(wire: bytes, host: str, port: int, seconds: float) -> bytes:
    """One datagram out, the first answer to it back, on a fresh connected socket.

    Connected: the kernel drops datagrams from other sources, and the ICMP port-unreachable of
    a stopped server surfaces at once as ECONNREFUSED instead of a timeout per attempt. A
    fresh socket per question gets a fresh random source port (RFC 5452 9.2).

    Written against the loop's reader callbacks rather than ``sock_recv`` under
    ``asyncio.timeout``: a cycle sends some 80,000 of these, and the generic path (a wrapper
    coroutine, a cancellation scope that reschedules its timer, ``sock_recv``'s own reader
    bookkeeping) cost ~15 % more CPU per question, ~70 against ~60 us with the kernel's share.
    """
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.connect((host, port))
        try:
            sock.send(wire)  # a datagram goes out whole or not at all
        except (BlockingIOError, InterruptedError):  # a full send buffer: wait for room
            async with asyncio.timeout(seconds):
                await loop.sock_sendall(sock, wire)
        sent.udp += 1
        waiting = _Waiting(wire, loop.create_future())
        fd = sock.fileno()
        loop.add_reader(fd, _receive, sock, waiting)
        timer = loop.call_later(seconds, _expire, waiting)
        try:
            return await waiting.reply
        finally:
            timer.cancel()
            loop.remove_reader(fd)


def _receive(sock: socket.socket, waiting: _Waiting) -> None:
    while not waiting.reply.done():
        try:
            datagram = sock.recv(65535)
        except (BlockingIOError, InterruptedError):
            return  # nothing (more) to read: keep waiting
        except OSError as exc:  # ECONNREFUSED from an ICMP port-unreachable, among others
            waiting.reply.set_exception(exc)
            return
        if _answers(datagram, waiting.wire):
            waiting.reply.set_result(datagram)
        else:
            waiting.strays += 1


def _expire(waiting: _Waiting) -> None:
    if not waiting.reply.done():
        strays = waiting.strays
        waiting.reply.set_exception(_StraysOnly(strays) if strays else TimeoutError())


def _answers(datagram: bytes, wire: bytes) -> bool:
    """Whether ``datagram`` is an answer to the question ``wire`` by id and question (RFC
    5452 9.1). One with our id that cannot even be read is taken, to be reported malformed."""
    if datagram[:2] != wire[:2]:
        return False
    try:
        _, flags, qd, _, _, end = _header(datagram)
    except ProbeError:
        return True
    return _is_answer(datagram, flags, qd, end, wire)


def _header(reply: bytes) -> tuple[int, int, int, int, int, int]:
    """Id, flags, the counts of questions, answers and authority records, and the end of the
    question section; ProbeError without a ``where`` (the caller names the server)."""
    try:
        got_id, flags, qd, an, ns = struct.unpack_from("!HHHHH", reply, 0)
        offset = 12
        for _ in range(qd):
            offset = _skip_name(reply, offset) + 4
    except (struct.error, IndexError, ValueError) as exc:
        raise ProbeError(Code.MALFORMED, str(exc)) from exc
    return got_id, flags, qd, an, ns, offset


def _is_answer(reply: bytes, flags: int, qd: int, end: int, question: bytes) -> bool:
    """As dns.message.Message.is_response: a response, a QUERY, to the same question (an
    error answer may leave the question out). The id is the caller's to compare."""
    ours = question[12 : -len(_OPT)]
    same_question = (
        reply[12 : end - 4].lower() == ours[:-4] and reply[end - 4 : end] == ours[-4:]
        if qd == 1
        else qd == 0 and flags & 0xF not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN)
    )
    return (
        bool(flags & dns.flags.QR)
        and dns.opcode.from_flags(flags) == dns.opcode.QUERY
        and same_question
    )


async def _tcp(wire: bytes, host: str, port: int, seconds: float) -> bytes:
    """The same question over TCP with its two-byte length prefix (RFC 1035 4.2.2); the whole
    exchange, from connecting to the last byte of the answer, within ``seconds``. The answer
    is checked and decoded as a datagram's is (``_parse``), not by dnspython's full message
    parser: with ``dns.asyncquery.tcp`` and that parser a truncated question cost twice the CPU
    (~1.3 against ~0.6 ms, UDP attempt included)."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setblocking(False)
        async with asyncio.timeout(seconds):
            await loop.sock_connect(sock, (host, port))
            await loop.sock_sendall(sock, struct.pack("!H", len(wire)) + wire)
            sent.tcp += 1
            (length,) = struct.unpack("!H", await _receive_exactly(loop, sock, 2))
            return await _receive_exactly(loop, sock, length)


async def _receive_exactly(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, size: int
) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = await loop.sock_recv(sock, size - len(data))
        if not chunk:
            raise EOFError(f"connection closed after {len(data)} of {size} bytes")
        data += chunk
    return bytes(data)


def _parse(reply: bytes, question: bytes, ident: int, authority: bool, where: _Where) -> Answer:
    """Check the header and question of ``reply`` against ours, then decode only the sections
    we read (dnspython parses tens of microseconds per record; an authoritative answer carries
    as many records again in its authority and additional sections)."""
    try:
        got_id, flags, qd, an, ns, end = _header(reply)
    except ProbeError as exc:
        raise ProbeError(Code.MALFORMED, f"{where}: malformed answer ({exc})") from exc
    if got_id != ident or not _is_answer(reply, flags, qd, end, question):
        raise ProbeError(Code.MISMATCHED, f"{where}: the answer does not match the question or id")
    rcode = dns.rcode.Rcode.make(flags & 0xF)
    if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        return Answer(rcode, flags, ())  # nothing in it will be read
    try:
        answer_end = _skip_records(reply, end, an)
        section_end = _skip_records(reply, answer_end, ns) if authority else answer_end
        answers, authorities = _decode(
            reply[12:section_end], end, an, ns if authority else 0, answer_end
        )
    except Exception as exc:
        # Whatever the parser meets in hostile or broken bytes (bad pointers, short rdata,
        # unknown encodings), the answer is unusable, and that is a finding, not a crash.
        raise ProbeError(Code.MALFORMED, f"{where}: malformed answer ({exc})") from exc
    return Answer(rcode, flags, answers, authorities)


def answer_records(wire: bytes) -> tuple[int, int, tuple[RRset, ...]]:
    """(id, flags, answer records grouped by owner and type) of a whole message, decoded as
    lean as the prober's answers: a zone transfer's many messages (RFC 5936 2.2) cost what
    dnspython's Message parser spends mostly on merging records into sets (bench/coverage.py).
    Raises on malformed bytes; the caller names that a fault."""
    ident, flags, qd, an = struct.unpack_from("!HHHH", wire, 0)
    offset = 12
    for _ in range(qd):
        offset = _skip_name(wire, offset) + 4
    return ident, flags, _records(wire, offset, an, None)


def _decode_once(
    body: bytes, question_end: int, an: int, ns: int, answer_end: int
) -> tuple[tuple[RRset, ...], tuple[RRset, ...]]:
    """The answer (and authority) records of a message whose bytes after the header are
    ``body``. Compression pointers are absolute offsets past the header, so the header itself
    (id, flags) does not change what the bytes decode to."""
    wire = bytes(12) + body
    answers = _records(wire, question_end, an, None)
    authorities = _records(wire, answer_end, ns, _DENIAL) if ns else ()
    return answers, authorities


# Memoised on the bytes: the servers of a zone mostly send identical answers (the prober asks
# them all the same questions, its non-existent name included), and decoding is the dearest
# part of a query.
_decode = functools.lru_cache(maxsize=_DECODED_ANSWERS)(_decode_once)


def _records(
    wire: bytes, offset: int, count: int, only: frozenset[int] | None
) -> tuple[RRset, ...]:
    """Decode ``count`` records from ``offset``, grouped by (owner, type, covered type); with
    ``only``, just records of those types and the RRSIGs covering them."""
    groups: dict[
        tuple[dns.name.Name, dns.rdatatype.RdataType, dns.rdatatype.RdataType],
        list[tuple[int, dns.rdata.Rdata]],
    ] = {}
    # Owners are nearly always a compression pointer to a name decoded before (the question,
    # or the first record of a set): decode each pointed-at name once per message.
    owners: dict[int, dns.name.Name] = {}
    for _ in range(count):
        if wire[offset] >= 0xC0:
            target = (wire[offset] & 0x3F) << 8 | wire[offset + 1]
            name = owners.get(target)
            if name is None:
                name = owners[target] = dns.name.from_wire(wire, offset)[0]
            used = 2
        else:
            name, used = dns.name.from_wire(wire, offset)
        rdtype, rdclass, ttl, length = _RR_FIXED.unpack_from(wire, offset + used)
        start = offset + used + _RR_FIXED.size
        offset = start + length
        if only is not None and (
            rdtype not in only
            if rdtype != dns.rdatatype.RRSIG
            else (wire[start] << 8 | wire[start + 1]) not in only
        ):
            continue
        rdata = _rdata(rdclass, rdtype, wire, start, length)
        groups.setdefault((name, rdata.rdtype, rdata.covers()), []).append((ttl, rdata))
    return tuple(
        RRset(name, rdtype, covers, min(t for t, _ in found), tuple(r for _, r in found))
        for (name, rdtype, covers), found in groups.items()
    )


def _rdata(rdclass: int, rdtype: int, wire: bytes, start: int, length: int) -> dns.rdata.Rdata:
    """``dns.rdata.from_wire`` without its per-record lookups (the enums and the class of the
    type, found once per pair here); what it checks is checked the same way."""
    rclass, rtype, implementation = _rdata_class(rdclass, rdtype)
    parser = dns.wire.Parser(wire, start)
    with parser.restrict_to(length):  # the rdata must fill exactly its RDLENGTH
        return implementation.from_wire_parser(rclass, rtype, parser, None)


@functools.lru_cache(maxsize=256)
def _rdata_class(
    rdclass: int, rdtype: int
) -> tuple[dns.rdataclass.RdataClass, dns.rdatatype.RdataType, type[dns.rdata.Rdata]]:
    rclass = dns.rdataclass.RdataClass.make(rdclass)
    rtype = dns.rdatatype.RdataType.make(rdtype)
    implementation: type[dns.rdata.Rdata] = dns.rdata.get_rdata_class(  # type: ignore[no-untyped-call]
        rclass, rtype
    )
    return rclass, rtype, implementation


def _skip_records(wire: bytes, offset: int, count: int) -> int:
    for _ in range(count):
        offset = _skip_name(wire, offset) + 10
        offset += wire[offset - 2] << 8 | wire[offset - 1]
    if offset > len(wire):
        raise ValueError("records run past the end of the message")
    return offset


def _skip_name(wire: bytes, offset: int) -> int:
    while True:
        length = wire[offset]
        if length >= 0xC0:
            return offset + 2
        if length == 0:
            return offset + 1
        if length > 63:
            raise ValueError(f"bad label length {length}")
        offset += length + 1


def _checked(answer: Answer, authoritative: bool, where: _Where) -> Answer:
    if answer.rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        code = _RCODE_CODES.get(answer.rcode, Code.BAD_RCODE)
        raise ProbeError(code, f"{where}: {dns.rcode.to_text(answer.rcode)}")
    if authoritative and not answer.flags & dns.flags.AA:
        raise ProbeError(Code.LAME, f"{where}: answer is not authoritative (AA bit clear)")
    return answer
