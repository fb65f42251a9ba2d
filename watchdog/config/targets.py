"""What the prober is given, parsed once at the boundary: ``ZoneTarget``, ``ProbeSettings``, and
the one parser of each part that comes as text (server addresses, trust anchors, extra names,
zone name labels), shared by the config file (``watchdog.config.parse``) and the command line
(``watchdog.cli``), so that both accept the same text and the prober never parses a string.

Every parser raises InvalidValueError naming the text; ASCII digits only where digits are meant.
dnspython is imported inside the functions that use it: any dnspython module loads ``socket``
(dns._features -> importlib.metadata -> email.utils), and the import contract keeps that out
of the pure packages (tests/test_import_contract.py).
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from watchdog.config.coverage import APEX_ONLY, CoverageSettings
from watchdog.engine.digits import ascii_int
from watchdog.errors import InvalidValueError

if TYPE_CHECKING:
    import dns.name
    import dns.rdata
    import dns.rdatatype
    import dns.tokenizer
    from dns.rdtypes.ANY.DNSKEY import DNSKEY
    from dns.rdtypes.ANY.DS import DS

__all__ = [
    "AnchorSyntaxError",
    "ProbeSettings",
    "TrustAnchor",
    "ZoneTarget",
    "anchor_file",
    "bad_zone_label",
    "parse_extra",
    "parse_server",
    "parse_trust_anchor",
    "quote",
]

_LABEL = re.compile(rb"[a-z0-9_/-]+")  # "/" for RFC 2317 classless reverse zones
_HOST_CHARS = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789-_")
_ZONE_FLAG = 0x0100  # RFC 4034 2.1.1
_ANCHOR_FILE = re.compile(r"@(\S+)\s*")  # "@ IN DS ..." are records at the apex, not a file


@dataclass(frozen=True, slots=True)
class ProbeSettings:
    """Timeouts, retries and concurrency of the prober; ``resolver`` None = /etc/resolv.conf."""

    timeout: float = 2.0
    retries: int = 2
    max_concurrency: int = 256
    per_server_concurrency: int = 8
    resolver: tuple[str, int] | None = None
    validators: tuple[tuple[str, int], ...] = ()  # validating resolvers to ask beside


@dataclass(frozen=True, slots=True)
class TrustAnchor:
    """A configured anchor for one zone: DS records, DNSKEY records, or both."""

    zone: dns.name.Name
    ds: tuple[DS, ...] = ()
    dnskeys: tuple[DNSKEY, ...] = ()


@dataclass(frozen=True, slots=True)
class ZoneTarget:
    """One zone to probe, every part parsed; empty ``servers``: discover them (NS lookup)."""

    zone: str  # lower case, ASCII (IDNA), with the final dot
    servers: tuple[tuple[str, int], ...] = ()  # (IP address or host name, port): parse_server
    trust_anchor: TrustAnchor | None = None  # replaces the parent's DS: parse_trust_anchor
    extra: tuple[tuple[dns.name.Name, dns.rdatatype.RdataType], ...] = ()  # parse_extra
    coverage: CoverageSettings = APEX_ONLY  # or the whole zone: transfer, walk (coverage.py)


def quote(text: str, limit: int = 60) -> str:
    """``text`` for an error message: in quotes, shortened, escaped when not printable."""
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f'"{text}"' if text.isprintable() else json.dumps(text)


# -- zone names and server addresses --------------------------------------------------------


def bad_zone_label(name: dns.name.Name) -> str | None:
    """The first label of a canonical zone name outside letters, digits, "-", "_" (and "/",
    RFC 2317 classless reverse zones), for display; None when every label fits. Used by the
    config and by ``--check`` alike, so both accept the same zone names."""
    for label in name.labels:
        if label and not _LABEL.fullmatch(label):
            return label.decode("ascii", "backslashreplace")
    return None


# A large config names the same few servers in every zone: each text is parsed once.
@functools.lru_cache(maxsize=4096)
def parse_server(text: str, default_port: int = 53, *, ip_only: bool = False) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address -> (host, port).

    IP addresses come back in canonical form, host names in lower case without the final dot;
    with ``ip_only`` (a resolver, which must be reachable without one) no host names. An
    all-numeric host name is a mistyped IPv4 address, refused. Raises InvalidValueError
    quoting the text.
    """
    raw = text.strip()
    host, port_text = raw, ""
    if raw.startswith("["):
        end = raw.find("]")
        if end < 0 or (end + 1 < len(raw) and raw[end + 1] != ":"):
            raise InvalidValueError(f'server "{text}": expected "[IPv6]" or "[IPv6]:port"')
        host, port_text = raw[1:end], raw[end + 2 :]
        if end + 1 < len(raw) and not port_text:
            raise InvalidValueError(f'server "{text}": missing port after ":"')
        if not _is_ip(host, 6):
            raise InvalidValueError(f'server "{text}": "{host}" is not an IPv6 address')
    elif raw.count(":") == 1:
        host, port_text = raw.split(":")
        if not port_text:
            raise InvalidValueError(f'server "{text}": missing port after ":"')
    port = default_port
    if port_text:
        try:  # ASCII only: str.isdigit() also accepts "³", which int() refuses
            port = ascii_int(port_text, "port", minimum=1, maximum=65535)
        except InvalidValueError:
            raise InvalidValueError(f'server "{text}": port must be 1 to 65535') from None
    if not host:
        raise InvalidValueError(f'server "{text}": no host')
    try:
        return str(ipaddress.ip_address(host)), port
    except ValueError:
        pass
    if ":" in host:
        raise InvalidValueError(f'server "{text}": "{host}" is not an IPv6 address')
    if ip_only or not host.strip("0123456789."):
        raise InvalidValueError(f'server "{text}": "{host}" is not an IP address')
    return _host_name(text, host), port


def _host_name(text: str, host: str) -> str:
    import dns.exception
    import dns.name

    try:
        name = dns.name.from_text(host)
    except (dns.exception.DNSException, ValueError) as exc:
        raise InvalidValueError(f'server "{text}": "{host}" is not a host name ({exc})') from None
    if name == dns.name.root or not all(_hostname_label(label) for label in name.labels[:-1]):
        raise InvalidValueError(f'server "{text}": "{host}" is not a host name or IP address')
    return name.to_text(omit_final_dot=True).lower()


def _hostname_label(label: bytes) -> bool:
    return 0 < len(label) <= 63 and all(c in _HOST_CHARS for c in label.lower())


def _is_ip(text: str, version: int | None = None) -> bool:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return version is None or address.version == version


# -- extra names ------------------------------------------------------------------------------


def parse_extra(text: str, zone: dns.name.Name) -> tuple[dns.name.Name, dns.rdatatype.RdataType]:
    """An extra RRset to watch, "NAME TYPE": NAME relative to ``zone`` ("@" is the apex) unless
    it ends with a dot or with the zone's name; at or below the zone."""
    import dns.exception
    import dns.name
    import dns.rdatatype

    parts = text.split()
    if len(parts) != 2:
        raise InvalidValueError(f'{quote(text)} is not "NAME TYPE"; use e.g. "www A" or "@ MX"')
    name, kind = parts
    try:
        rdtype = dns.rdatatype.from_text(kind)
    except (dns.exception.DNSException, ValueError):
        raise InvalidValueError(
            f"{quote(text)}: {quote(kind)} is not a DNS record type (A, AAAA, MX, TXT, ...)"
        ) from None
    # RFC 4035 3.1.1: RRSIGs come with the data they cover (servers refuse or answer partially
    # when asked for them); meta types (ANY, AXFR, OPT...) and type 0 are not RRsets at all.
    if rdtype in (dns.rdatatype.RRSIG, dns.rdatatype.NONE) or dns.rdatatype.is_metatype(rdtype):
        raise InvalidValueError(
            f"{quote(text)}: {dns.rdatatype.to_text(rdtype)} cannot be "
            "watched; name the type it covers"
        )
    try:
        owner = dns.name.from_text(name, None).canonicalize()
    except (dns.exception.DNSException, ValueError) as exc:
        raise InvalidValueError(f"{quote(text)}: {quote(name)} is not a DNS name: {exc}") from None
    if name == "@":
        owner = zone
    elif not owner.is_absolute():
        full = owner.derelativize(dns.name.root)
        owner = full if full.is_subdomain(zone) else owner.derelativize(zone)
    if not owner.is_subdomain(zone):
        raise InvalidValueError(f'{quote(text)}: {owner} is not in zone "{zone}"')
    return owner, rdtype


# -- trust anchors ----------------------------------------------------------------------------


def anchor_file(text: str) -> str | None:
    """The path in trust anchor text that names a file ("@/etc/example.com.ds"), else None."""
    match = _ANCHOR_FILE.fullmatch(text)
    return match[1] if match else None


class AnchorSyntaxError(InvalidValueError):
    """Trust anchor text that is not records in presentation (zone file) format."""

    def __init__(self, zone: dns.name.Name, line: int, detail: str) -> None:
        self.line = line  # the line where the record starts, from 1
        self.detail = detail
        super().__init__(
            f"trust anchor for {zone}: not in presentation format (line {line}: {detail})"
        )


# One DS record a line, as dnssec-dsfromkey and ldns-key2ds print them (owner, TTL, class IN,
# DS, key tag, algorithm number, digest type, hex digest): read without the tokenizer, which
# takes a Python call per character (~10 times the work, and most of a large config's loading
# time). Anything else, and anything this path cannot build, takes the general path; both give
# the same records (tests/config/test_targets.py).
_DS_LINE = re.compile(
    r"[ \t]*(\S+)[ \t]+(?:(\d{1,9})[ \t]+)?(?:IN[ \t]+)?DS[ \t]+(\d{1,5})[ \t]+(\d{1,3})[ \t]+"
    r"(\d{1,3})[ \t]+([0-9A-F \t]+?)[ \t]*",
    re.ASCII | re.IGNORECASE,
)


def parse_trust_anchor(text: str, zone: dns.name.Name) -> TrustAnchor:
    """DS and/or DNSKEY records in presentation (zone file) format, owned by ``zone``.

    Accepts what ``dnssec-dsfromkey``, ``ldns-key2ds`` and ``K*.key`` files print (comments,
    parentheses, TTL and class IN optional, names relative to the zone). Each record is read
    by dnspython's parser of its type, without a zone file reader. Raises AnchorSyntaxError for
    text that is not records, InvalidValueError for records that cannot be an anchor.
    """
    import dns.rdatatype
    from dns.rdtypes.ANY.DNSKEY import DNSKEY
    from dns.rdtypes.ANY.DS import DS

    records = _ds_lines(text, zone) or _records(text, zone)
    strangers = {o for o, _ in records if o is not zone and not o.is_subdomain(zone)}
    if strangers:
        outside = ", ".join(sorted(o.to_text() for o in strangers))
        raise InvalidValueError(
            f"trust anchor for {zone}: owner must be the zone {zone}, not {outside}"
        )
    ds: dict[DS, None] = {}
    keys: dict[DNSKEY, None] = {}
    for owner, rdata in records:
        problem = None
        if owner is not zone and owner != zone:
            problem = f"owner must be the zone {zone}"
        elif isinstance(rdata, DS):
            ds[rdata] = None
        elif not isinstance(rdata, DNSKEY):
            problem = "only DS and DNSKEY records can be anchors"
        elif not rdata.flags & _ZONE_FLAG or rdata.protocol != 3:
            problem = f"not a zone key (flags {rdata.flags})"
        else:
            keys[rdata] = None
        if problem is not None:
            kind = dns.rdatatype.to_text(rdata.rdtype)
            raise InvalidValueError(f"trust anchor for {zone}: {owner} {kind}: {problem}")
    if not ds and not keys:
        raise InvalidValueError(f"trust anchor for {zone}: no DS or DNSKEY record in it")
    return TrustAnchor(zone, tuple(ds), tuple(keys))


def _ds_lines(text: str, zone: dns.name.Name) -> list[tuple[dns.name.Name, dns.rdata.Rdata]]:
    """The records of ``text`` when every line is blank or one plain DS record; else []."""
    import dns.exception
    import dns.name
    import dns.rdataclass
    import dns.rdatatype
    from dns.rdtypes.ANY.DS import DS

    # The zone's text without to_text(): its labels joined, when none needs escaping.
    apex = b".".join(zone.labels).decode() if bad_zone_label(zone) is None else zone.to_text()
    records: list[tuple[dns.name.Name, dns.rdata.Rdata]] = []
    for line in text.splitlines():
        match = _DS_LINE.fullmatch(line)
        if match is None:
            if line.strip():
                return []
            continue
        owner, _, tag, algorithm, digest_type, digest = match.groups()
        try:
            # dnspython's rdata constructors carry no annotations.
            record = DS(  # type: ignore[no-untyped-call]
                dns.rdataclass.IN,
                dns.rdatatype.DS,
                int(tag),
                int(algorithm),
                int(digest_type),
                bytes.fromhex("".join(digest.split())),
            )
            name = (
                zone if owner == "@" or owner.lower() == apex else dns.name.from_text(owner, zone)
            )
        except (dns.exception.DNSException, ValueError):
            return []  # the general path says what is wrong, and where
        records.append((name, record))
    return records


def _records(text: str, zone: dns.name.Name) -> list[tuple[dns.name.Name, dns.rdata.Rdata]]:
    """(owner, rdata) of each record in ``text``; AnchorSyntaxError at the first bad one."""
    import dns.tokenizer

    tok = dns.tokenizer.Tokenizer(text)
    records: list[tuple[dns.name.Name, dns.rdata.Rdata]] = []
    owner = zone  # as in a zone file, a record without an owner has the one before it
    while True:
        line = tok.line_number
        try:
            token = tok.get(want_leading=True)
            if token.is_eof():
                return records
            line = tok.line_number
            if token.is_eol():
                continue
            if token.is_whitespace():
                token = tok.get()
                if token.is_eol_or_eof():
                    tok.unget(token)
                    continue
            else:
                owner = _owner(token, zone)
                token = tok.get()
            records.append((owner, _record(token, tok, zone)))
        except (dns.exception.DNSException, ValueError) as exc:
            raise AnchorSyntaxError(zone, line, str(exc) or type(exc).__name__) from None


def _owner(token: dns.tokenizer.Token, zone: dns.name.Name) -> dns.name.Name:
    import dns.name

    if not token.is_identifier() or token.value.startswith("$"):
        raise ValueError(
            f"{quote(token.value)} is not an owner name ($ directives are not taken here)"
        )
    return dns.name.from_text(token.value, zone)


def _record(
    token: dns.tokenizer.Token, tok: dns.tokenizer.Tokenizer, zone: dns.name.Name
) -> dns.rdata.Rdata:
    """The rest of a record after its owner: [TTL] [class] type RDATA (TTL and class in
    either order, as RFC 1035 5.1 allows); ``token`` is the first of them."""
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype
    import dns.ttl

    seen_ttl = seen_class = False
    while token.is_identifier():
        value = token.value
        if not seen_ttl and value[:1] in "0123456789":
            if not value.isascii():
                raise ValueError(f"{quote(value)} is not a TTL")
            dns.ttl.from_text(value)  # checked, not kept: an anchor is not a cached answer
            seen_ttl = True
        elif not seen_class and value.upper() in ("IN", "CH", "HS", "CS", "ANY", "NONE"):
            if value.upper() != "IN":
                raise ValueError(f"class {value}: trust anchors are class IN")
            seen_class = True
        else:
            rdtype = dns.rdatatype.from_text(value)
            return dns.rdata.from_text(
                dns.rdataclass.IN, rdtype, tok, origin=zone, relativize=False
            )
        token = tok.get()
    raise ValueError("expecting a record type")
