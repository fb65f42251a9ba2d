"""Faults the demo server can inject, and the pure function that applies them to one answer.

A server holds an ordered list of ``Fault``; for each query the first one that applies (by
query type and transport) turns the normal response into a ``Reply``: the exact bytes to send,
when, from which socket, and what happens to a TCP connection afterwards. The behaviours a
resolver or prober meets in the wild, and how to ask for each:

    no answer at all                    Fault(FaultKind.DROP)
    TCP accept, then never answer       Fault(FaultKind.DROP, transport=Transport.TCP)
    a late answer                       Fault(FaultKind.DELAY, seconds=3)
    TC=1 always, TCP closed unanswered  Fault(FaultKind.TRUNCATE)
    TCP reset in the middle of a reply  Fault(FaultKind.TCP_RESET)
    bytes that are not DNS              Fault(FaultKind.GARBAGE)
    a message cut short (no TC bit)     Fault(FaultKind.SHORT)
    an answer with another message id   Fault(FaultKind.WRONG_ID)
    an answer to another question       Fault(FaultKind.WRONG_QUESTION)
    UDP answer from another port        Fault(FaultKind.OTHER_PORT)
    strays, then the right UDP answer   Fault(FaultKind.STRAYS)  (a wrong-id copy, a copy
                                        for another question, a copy from another port)
    REFUSED / SERVFAIL / NOTIMP         Fault(FaultKind.RCODE, rcode=dns.rcode.SERVFAIL)
    NXDOMAIN for the apex (any name)    Fault(FaultKind.RCODE, rcode=dns.rcode.NXDOMAIN)
    lame (AA=0)                         Fault(FaultKind.LAME)
    a 64 KiB answer (TC=1 over UDP)     Fault(FaultKind.HUGE)

Scope any of them with ``qtype=dns.rdatatype.DNSKEY`` or ``transport=Transport.UDP``; list
several to combine (``[Fault(TRUNCATE, transport=UDP), Fault(TCP_RESET)]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from dns.rdtypes.ANY.TXT import TXT

from watchdog.errors import InvalidValueError

__all__ = ["Ending", "Fault", "FaultKind", "Reply", "Transport", "plan_reply"]

_MAX_MESSAGE = 65535  # a TCP message carries a 16-bit length (RFC 1035 4.2.2)
_CLASSIC_UDP = 512  # the UDP limit without EDNS (RFC 1035 4.2.1), and EDNS's floor (RFC 6891 6.2.3)
_WRONG_NAME = dns.name.from_text("wrong-question.invalid.")


class Transport(StrEnum):
    """The transport a query came in on."""

    UDP = "udp"
    TCP = "tcp"


class FaultKind(StrEnum):
    """What goes wrong; see the module docstring for the behaviour of each."""

    DROP = "drop"
    DELAY = "delay"
    TRUNCATE = "truncate"
    TCP_RESET = "tcp_reset"
    GARBAGE = "garbage"
    SHORT = "short"
    WRONG_ID = "wrong_id"
    WRONG_QUESTION = "wrong_question"
    OTHER_PORT = "other_port"
    STRAYS = "strays"
    RCODE = "rcode"
    LAME = "lame"
    HUGE = "huge"


# Kinds that only mean something on one transport; elsewhere they never apply.
_ONLY_ON = {
    FaultKind.TCP_RESET: Transport.TCP,
    FaultKind.OTHER_PORT: Transport.UDP,
    FaultKind.STRAYS: Transport.UDP,
}


@dataclass(frozen=True, slots=True)
class Fault:
    """One injected fault, optionally limited to one query type and/or one transport."""

    kind: FaultKind
    seconds: float = 0.0  # DELAY: how late the answer comes
    rcode: dns.rcode.Rcode = dns.rcode.Rcode.REFUSED  # RCODE: the code answered
    qtype: dns.rdatatype.RdataType | None = None  # None: every query type
    transport: Transport | None = None  # None: both transports

    def __post_init__(self) -> None:
        if self.seconds < 0:
            raise InvalidValueError(f"fault {self.kind}: delay {self.seconds} s is negative")
        only = _ONLY_ON.get(self.kind)
        if only is not None and self.transport not in (None, only):
            raise InvalidValueError(f"fault {self.kind} only exists over {only}")

    def applies_to(self, qtype: dns.rdatatype.RdataType | None, transport: Transport) -> bool:
        """Whether this fault takes over a query of ``qtype`` arriving over ``transport``."""
        return (
            _ONLY_ON.get(self.kind, transport) is transport
            and self.transport in (None, transport)
            and self.qtype in (None, qtype)
        )


class Ending(StrEnum):
    """What happens to a TCP connection after a reply (ignored over UDP)."""

    KEEP = "keep"  # read the next query
    CLOSE = "close"  # orderly close (FIN)
    RESET = "reset"  # abortive close (RST)
    HANG = "hang"  # stay open and silent until the client leaves or the server stops


@dataclass(frozen=True, slots=True)
class Reply:
    """What the server does for one query."""

    data: bytes = b""  # exactly what goes on the wire (TCP: with length prefix); b"": nothing
    delay: float = 0.0
    other_port: bool = False  # UDP: send from a second socket
    ending: Ending = Ending.KEEP
    # UDP: datagrams sent first, each (bytes, from the second socket): an off-path spoofer's
    # or a broken middlebox's copies racing the answer (RFC 5452 9.1).
    before: tuple[tuple[bytes, bool], ...] = ()


def plan_reply(
    query: dns.message.Message,
    response: dns.message.Message,
    faults: Sequence[Fault],
    transport: Transport,
) -> Reply:
    """Decide what to send for ``query``, whose normal answer is ``response`` (modified here).

    Without a fault this is the honest reply: the response rendered within the client's buffer
    (TC=1 and no records when it does not fit, RFC 2181 9) and framed for the transport.
    """
    qtype = query.question[0].rdtype if query.question else None
    fault = next((f for f in faults if f.applies_to(qtype, transport)), None)
    kind = fault.kind if fault is not None else None
    if kind is FaultKind.DROP:
        return Reply(ending=Ending.HANG)
    if kind is FaultKind.TRUNCATE and transport is Transport.TCP:
        return Reply(ending=Ending.CLOSE)
    if fault is not None:
        _alter(response, query, fault, transport)
    wire = _render(response, _size_limit(query, transport))
    if kind is FaultKind.STRAYS:
        return Reply(data=wire, before=_strays(query, response, wire))
    if kind is FaultKind.GARBAGE:
        wire = _garbage(query.id)
    sent = wire[: len(wire) // 2] if kind in (FaultKind.SHORT, FaultKind.TCP_RESET) else wire
    if transport is Transport.TCP:
        # A reset cuts a message whose length prefix promised more; SHORT announces its length.
        announced = len(wire) if kind is FaultKind.TCP_RESET else len(sent)
        sent = announced.to_bytes(2, "big") + sent
    return Reply(
        data=sent,
        delay=fault.seconds if fault is not None and kind is FaultKind.DELAY else 0.0,
        other_port=kind is FaultKind.OTHER_PORT,
        ending=Ending.RESET if kind is FaultKind.TCP_RESET else Ending.KEEP,
    )


def _alter(
    response: dns.message.Message,
    query: dns.message.Message,
    fault: Fault,
    transport: Transport,
) -> None:
    """Apply the faults that change the message itself."""
    match fault.kind:
        case FaultKind.TRUNCATE:
            _strip(response)
            response.flags |= dns.flags.TC
        case FaultKind.WRONG_ID:
            response.id = (query.id + 1) % 0x10000
        case FaultKind.WRONG_QUESTION if response.question:
            asked = response.question[0]
            response.question = [dns.rrset.RRset(_WRONG_NAME, asked.rdclass, asked.rdtype)]
        case FaultKind.RCODE:
            _strip(response)
            response.set_rcode(fault.rcode)
        case FaultKind.LAME:
            response.flags &= ~dns.flags.AA
        case FaultKind.HUGE if response.question:
            _pad(response, _MAX_MESSAGE)


def _strays(
    query: dns.message.Message, response: dns.message.Message, wire: bytes
) -> tuple[tuple[bytes, bool], ...]:
    """The answer with another id, an answer to another question, the answer from another
    port: each must be ignored by a client that waits for the right one."""
    wrong_id = ((query.id + 1) % 0x10000).to_bytes(2, "big") + wire[2:]
    strays = [(wrong_id, False)]
    if response.question:
        asked = response.question[0]
        other = dns.message.make_response(query)
        other.question = [dns.rrset.RRset(_WRONG_NAME, asked.rdclass, asked.rdtype)]
        other.flags = response.flags
        strays.append((other.to_wire(), False))
    strays.append((wire, True))
    return tuple(strays)


def _strip(response: dns.message.Message) -> None:
    response.answer.clear()
    response.authority.clear()
    response.additional.clear()


def _size_limit(query: dns.message.Message, transport: Transport) -> int:
    if transport is Transport.TCP:
        return _MAX_MESSAGE
    if query.edns < 0:
        return _CLASSIC_UDP
    return min(max(query.payload, _CLASSIC_UDP), _MAX_MESSAGE)


def _render(response: dns.message.Message, limit: int) -> bytes:
    try:
        return response.to_wire(max_size=limit)
    except dns.exception.TooBig:
        _strip(response)
        response.flags |= dns.flags.TC
        return response.to_wire(max_size=limit)


def _pad(response: dns.message.Message, size: int) -> None:
    """Fill the additional section with distinct TXT records up to ``size`` bytes of wire."""
    owner = response.question[0].name
    room = size - len(response.to_wire(max_size=_MAX_MESSAGE))
    # Each record: owner as a 2-byte compression pointer, 10 bytes of type, class, TTL and
    # length, then the character-string (1 length byte + up to 255 bytes).
    overhead, longest = 12 + 1, 255
    lengths: list[int] = []
    while room > overhead:
        lengths.append(min(longest, room - overhead))
        room -= overhead + lengths[-1]
    rdatas = [
        TXT(dns.rdataclass.IN, dns.rdatatype.TXT, [f"{i:05d}".encode().ljust(n, b"x")])
        for i, n in enumerate(lengths)
        if n >= 5
    ]
    if rdatas:
        response.additional.append(dns.rrset.from_rdata_list(owner, 0, rdatas))


def _garbage(query_id: int) -> bytes:
    """The query's id, then a header promising 65535 questions that never come: not DNS."""
    return query_id.to_bytes(2, "big") + b"\x84\x00\xff\xff\x00\x00\x00\x00\x00\x00garbage"
