"""What the operator's own validating resolvers say about a zone (``[watchdog] validators``).

Each check asks each configured validator for the zone's SOA and DNSKEY with RD and DO set
and CD clear (so it validates, RFC 4035 3.2.2), and records the rcode, the AD bit and the
Extended DNS Error codes (RFC 8914). EDE codes are recorded, never taken as the verdict:
validators send wrong ones at times. The engine (watchdog.engine.validators) compares the
answers with its own prediction. A validator that does not answer is recorded as such.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

from watchdog.engine.observations import ValidatorAnswer
from watchdog.probe.dnsio import EDNS_PAYLOAD, format_address

__all__ = ["ask_validators"]

_QUESTIONS = (dns.rdatatype.SOA, dns.rdatatype.DNSKEY)


async def ask_validators(
    zone: dns.name.Name,
    validators: Sequence[tuple[str, int]],
    *,
    attempt_timeout: float,
    retries: int,
) -> tuple[ValidatorAnswer, ...]:
    """Every validator's answer for ``zone``, in the order configured."""
    return tuple(
        await asyncio.gather(
            *(_ask(zone, host, port, attempt_timeout, retries) for host, port in validators)
        )
    )


async def _ask(
    zone: dns.name.Name, host: str, port: int, attempt_timeout: float, retries: int
) -> ValidatorAnswer:
    address = format_address(host, port)
    answers = await asyncio.gather(
        *(_query(zone, rdtype, host, port, attempt_timeout, retries) for rdtype in _QUESTIONS)
    )
    errors = [a for a in answers if isinstance(a, str)]
    if errors:
        return ValidatorAnswer(address, "", False, (), errors[0])
    messages = [a for a in answers if isinstance(a, dns.message.Message)]
    rcodes = [m.rcode() for m in messages]
    # The worse of the two: a SERVFAIL on either question is a SERVFAIL for the zone.
    rcode = next((r for r in rcodes if r != dns.rcode.NOERROR), dns.rcode.NOERROR)
    codes = sorted({int(e.code) for m in messages for e in m.extended_errors()})
    authenticated = all(m.flags & dns.flags.AD for m in messages)
    return ValidatorAnswer(address, dns.rcode.to_text(rcode), authenticated, tuple(codes))


async def _query(
    zone: dns.name.Name,
    rdtype: dns.rdatatype.RdataType,
    host: str,
    port: int,
    attempt_timeout: float,
    retries: int,
) -> dns.message.Message | str:
    """The validator's answer, or why there is none (one line, for the report)."""
    query = dns.message.make_query(zone, rdtype, want_dnssec=True, use_edns=0, payload=EDNS_PAYLOAD)
    query.flags |= dns.flags.RD | dns.flags.AD  # AD in a query: "tell me" (RFC 6840 5.7)
    where = f"{format_address(host, port)}: {zone} {dns.rdatatype.to_text(rdtype)}"
    for _ in range(retries + 1):
        try:
            answer, _tcp = await dns.asyncquery.udp_with_fallback(
                query, host, timeout=attempt_timeout, port=port
            )
        except dns.exception.Timeout:
            continue
        except (OSError, dns.exception.DNSException) as exc:
            return f"{where}: {exc}"
        return answer
    return f"{where}: no answer within {attempt_timeout:g} s ({retries + 1} attempts)"
