"""Queries the lab sends to its own servers, always to an explicit loopback address."""

from __future__ import annotations

from typing import NamedTuple

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype

__all__ = ["ValidatorAnswer", "answers", "ask", "query"]

_PAYLOAD = 1232  # DNS flag day 2020 buffer size, as the watchdog itself uses


class ValidatorAnswer(NamedTuple):
    """What a validating resolver said: unpacks as ``rcode, ad, ede_codes``."""

    rcode: dns.rcode.Rcode
    ad: bool
    ede_codes: tuple[int, ...]

    @property
    def validated(self) -> bool:
        """NOERROR with the AD bit: the resolver vouches the answer is secure."""
        return self.rcode == dns.rcode.NOERROR and self.ad

    def describe(self) -> str:
        """Short form for reports: "NOERROR AD", "SERVFAIL EDE 7"."""
        parts = [dns.rcode.to_text(self.rcode)]
        if self.ad:
            parts.append("AD")
        parts.extend(f"EDE {code}" for code in self.ede_codes)
        return " ".join(parts)


def ask(
    address: str,
    port: int,
    name: str,
    rtype: str | dns.rdatatype.RdataType,
    *,
    recursion_desired: bool = True,
    rdclass: dns.rdataclass.RdataClass = dns.rdataclass.IN,
    timeout: float = 5.0,
) -> dns.message.Message:
    """One query with DO=1 and EDNS buffer 1232, over UDP, retried over TCP on truncation."""
    if not address.startswith("127."):
        raise ValueError(f"the lab only queries loopback addresses, not {address}")
    message = dns.message.make_query(
        name, rtype, rdclass, use_edns=0, payload=_PAYLOAD, want_dnssec=True
    )
    if not recursion_desired:
        message.flags &= ~dns.flags.RD
    response, _ = dns.query.udp_with_fallback(message, address, port=port, timeout=timeout)
    return response


def query(
    address: str,
    port: int,
    name: str,
    rtype: str | dns.rdatatype.RdataType,
    *,
    timeout: float = 5.0,
) -> ValidatorAnswer:
    """Ask a validating resolver (RD=1, DO=1): rcode, AD flag and Extended DNS Error codes."""
    response = ask(address, port, name, rtype, timeout=timeout)
    ede = tuple(
        int(option.code) for option in response.options if isinstance(option, dns.edns.EDEOption)
    )
    return ValidatorAnswer(
        rcode=response.rcode(), ad=bool(response.flags & dns.flags.AD), ede_codes=ede
    )


def answers(
    address: str,
    port: int,
    name: str,
    rtype: str | dns.rdatatype.RdataType,
    *,
    rdclass: dns.rdataclass.RdataClass = dns.rdataclass.IN,
    timeout: float = 0.2,
) -> bool:
    """Whether anything at ``address``:``port`` answers this query at all (a readiness probe).

    The timeout is short because a probe sent before the server binds its port is lost (an
    unconnected UDP socket never sees the ICMP port-unreachable); callers poll.
    """
    try:
        ask(address, port, name, rtype, rdclass=rdclass, timeout=timeout)
    except (dns.exception.DNSException, OSError):
        return False
    return True
