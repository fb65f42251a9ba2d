"""Value parsers of the configuration: one function per kind of value (duration, zone name,
server address, trust anchor, URL...). Each takes the raw TOML value and returns the parsed one
or raises InvalidValueError with a message that never repeats a secret. Internal to config.py.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from pathlib import Path
from urllib.parse import urlsplit

import dns.exception
import dns.name
import dns.rdatatype
import dns.zonefile

from watchdog.engine.assess import WarnBefore
from watchdog.engine.timeutil import format_duration, parse_duration
from watchdog.errors import InvalidValueError
from watchdog.probe.discovery import parse_server
from watchdog.probe.verify import parse_trust_anchor

__all__ = ["bad_zone_label"]  # the rest is internal to watchdog.config.parse


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LABEL = re.compile(rb"[a-z0-9_/-]+")  # "/" for RFC 2317 classless reverse zones


def _join(path: str, key: object) -> str:
    name = key if isinstance(key, str) else repr(key)
    return f"{path}.{name}" if path else name


def _unknown_key(key: object, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1) if isinstance(key, str) else []
    if close:
        return f'unknown key; did you mean "{close[0]}"?'
    return f"unknown key; known keys: {', '.join(known)}"


def _quote(text: str, limit: int = 60) -> str:
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f'"{text}"' if text.isprintable() else json.dumps(text)


_KINDS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a float"),
    (str, "a string"),
    ((list, tuple), "an array"),
    (Mapping, "a table"),
    (datetime, "a date-time"),
    (date, "a date"),
    (time, "a time"),
)


def _describe(value: object, secret: bool = False) -> str:
    """A value for an error message: a secret, an array or a table by its type only."""
    kind = next((k for t, k in _KINDS if isinstance(value, t)), f"a {type(value).__name__}")
    if secret or not isinstance(value, bool | int | float | str):
        return kind
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _quote(value)
    text = str(value)
    return text if len(text) <= 30 else kind


def _string(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidValueError(f"expected a string, got {_describe(value)}")
    return value


def _name(value: object) -> str:
    text = _string(value).strip()
    if not text:
        raise InvalidValueError("is empty")
    return text


def _path(value: object) -> Path:
    return Path(_name(value))


def _whole(value: object, minimum: int = 0, unit: str = "", maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValueError(f"expected a whole number{unit}, got {_describe(value)}")
    if value < minimum:
        floor = "must not be negative" if minimum == 0 else f"must be at least {minimum}"
        raise InvalidValueError(f"{floor}, got {value}")
    if maximum is not None and value > maximum:
        raise InvalidValueError(f"must be at most {maximum}, got {value}")
    return value


def _duration(value: object, minimum: int = 0) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str):
        try:
            seconds = parse_duration(value)
        except ValueError:
            raise InvalidValueError(
                f'{_quote(value)} is not a duration: use a number with a unit, like "90m", '
                '"36h", "7d" or "3600s"'
            ) from None
    else:
        raise InvalidValueError(
            f'expected a duration string like "15m" (or whole seconds), got {_describe(value)}'
        )
    if seconds < minimum:
        raise InvalidValueError(
            f"must be at least {format_duration(minimum)}, got {_describe(value)}"
        )
    return seconds


def _choice(value: object, options: Sequence[str]) -> str:
    text = _string(value).strip().lower()
    if text in options:
        return text
    close = difflib.get_close_matches(text, options, n=1)
    hint = f'; did you mean "{close[0]}"?' if close else ""
    raise InvalidValueError(f"{_quote(_string(value))} is not one of: {', '.join(options)}{hint}")


def _warn_before(value: object) -> WarnBefore:
    if isinstance(value, int) and not isinstance(value, bool):
        return WarnBefore(seconds=_duration(value), percent=None)
    if not isinstance(value, str):
        raise InvalidValueError(
            f'expected a percent like "10%" or a duration like "36h", got {_describe(value)}'
        )
    text = value
    try:
        return WarnBefore.parse(text)
    except ValueError:
        if re.fullmatch(r"\s*\d+(\.\d+)?\s*%\s*", text, re.ASCII):
            raise InvalidValueError(
                f"{_quote(text)} is over 100%; a percent of the signature lifetime must be "
                "0% to 100%"
            ) from None
        raise InvalidValueError(
            f'{_quote(text)} is not a duration ("36h", "7d") or a percent ("10%")'
        ) from None


def _dns_name(text: str, origin: dns.name.Name) -> dns.name.Name:
    if not text or any(c.isspace() for c in text):
        raise InvalidValueError(f"{_quote(text)} is not a DNS name")
    try:
        return dns.name.from_text(text, origin)
    except (dns.exception.DNSException, ValueError) as exc:
        raise InvalidValueError(f"{_quote(text)} is not a valid DNS name: {exc}") from None


def bad_zone_label(name: dns.name.Name) -> str | None:
    """The first label of a canonical zone name outside letters, digits, "-", "_" (and "/",
    RFC 2317 classless reverse zones), for display; None when every label fits. Used by the
    config and by ``--check`` alike, so both accept the same zone names."""
    for label in name.labels:
        if label and not _LABEL.fullmatch(label):
            return label.decode("ascii", "backslashreplace")
    return None


def _zone_name(value: object) -> str:
    text = _string(value).strip()
    if not text:
        raise InvalidValueError('is empty; use a zone name such as "example.com"')
    name = _dns_name(text, dns.name.root).canonicalize()
    shown = bad_zone_label(name)
    if shown is not None:
        raise InvalidValueError(
            f'{_quote(text)}: the label "{shown}" is not a zone name label '
            '(letters, digits, "-", "_")'
        )
    return name.to_text()


def _zone_pattern(value: object, zones: Sequence[str]) -> str:
    text = _name(value).lower()
    if any(c in text for c in "*?["):  # matched against the ASCII (xn--) form of zone names
        return _glob_pattern(text)
    name = _zone_name(text)
    if name not in zones:
        close = difflib.get_close_matches(name, zones, n=1)
        hint = f'; did you mean "{close[0]}"?' if close else "; add a [[zone]] or use a pattern"
        raise InvalidValueError(f"{_quote(name)} is not a configured zone{hint}")
    return name


def _glob_pattern(text: str) -> str:
    text = text.strip().lower()
    return text if text.endswith((".", "*")) else text + "."


def _server(value: object, ip_only: bool = False) -> tuple[str, int]:
    """(host, port) with the IP address in canonical form or the host name in lower case.

    The prober's own parser decides the syntax, so what loads here is what it accepts; the config
    adds two rules of its own on top.
    """
    text = _string(value).strip()
    if ip_only:
        examples = '"system", "192.0.2.53" or "[2001:db8::53]:53"'
    else:
        examples = '"192.0.2.1", "ns1.example:5353" or "[2001:db8::1]:53"'
    bad = InvalidValueError(f"{_quote(text)} is not a server address; use {examples}")
    try:
        host, port = parse_server(text)
    except InvalidValueError:
        raise bad from None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        # Host names are for zone servers only (the resolver must be reachable without one);
        # an all-numeric name is a mistyped IPv4 address, not a host.
        if ip_only or re.fullmatch(r"[\d.]+", host, re.ASCII):
            raise bad from None
    return host, port


def _zone_server(value: object) -> str:
    """A server as ServerObservation.address names it: "host:port", IPv6 in brackets."""
    host, port = _server(value)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


_LISTEN = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<v4>[0-9.]+)):(?P<port>[0-9]{1,5})")


def _listen(value: object) -> tuple[str, int]:
    """``metrics_listen``: an IP address and a port, "127.0.0.1:9153" or "[::1]:9153"; port 0
    takes any free port (the service logs the one it got). ASCII digits only: the pattern's
    ``[0-9]`` never matches "³" or other digits ``int()`` would refuse or misread."""
    text = _string(value).strip()
    bad = InvalidValueError(
        f"{_quote(text)} is not a listen address; use an IP address and a port, like "
        '"127.0.0.1:9153" or "[::1]:9153"'
    )
    match = _LISTEN.fullmatch(text)
    if match is None:
        raise bad
    host = match["v6"] or match["v4"]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise bad from None
    if (match["v6"] is not None) != (address.version == 6):
        raise bad
    port = int(match["port"])
    if port > 65535:
        raise InvalidValueError(f"{_quote(text)}: the port must be 0 to 65535")
    return str(address), port


def _resolver(value: object) -> tuple[str, int] | None:
    if isinstance(value, str) and value.strip().lower() == "system":
        return None
    return _server(value, ip_only=True)


def _extra_entry(value: object, origin: dns.name.Name) -> tuple[str, str]:
    text = _string(value)
    parts = text.split()
    if len(parts) != 2:
        raise InvalidValueError(f'{_quote(text)} is not "NAME TYPE"; use e.g. "www A" or "@ MX"')
    owner = _dns_name(parts[0], origin).canonicalize()
    if not owner.is_subdomain(origin):
        raise InvalidValueError(f'{_quote(text)}: {owner} is not in zone "{origin}"')
    try:
        rdtype = dns.rdatatype.from_text(parts[1])
    except (dns.exception.DNSException, ValueError):
        raise InvalidValueError(
            f"{_quote(text)}: {_quote(parts[1])} is not a DNS record type (A, AAAA, MX, TXT, ...)"
        ) from None
    # DESIGN.md 2: never query RRSIG directly (servers refuse or answer partially); meta types
    # (ANY, AXFR, OPT...) are not RRsets at all.
    if rdtype == dns.rdatatype.RRSIG or dns.rdatatype.is_metatype(rdtype):
        raise InvalidValueError(
            f"{_quote(text)}: {dns.rdatatype.to_text(rdtype)} cannot be "
            "watched; name the type it covers"
        )
    return owner.to_text(), dns.rdatatype.to_text(rdtype)


def _anchor_syntax_error(text: str, zone: dns.name.Name) -> tuple[int, str] | None:
    """(line, message) of the first zone-file syntax error in anchor text, or None."""
    try:
        dns.zonefile.read_rrsets(text, origin=zone, relativize=False, default_ttl=0, rdclass=None)
    except (dns.exception.DNSException, ValueError) as exc:
        match = re.match(r"<input>:(\d+):\s*(.*)", str(exc), re.DOTALL)
        return (int(match[1]), match[2]) if match else (0, str(exc))
    return None


def _anchor_problem(text: str, zone: dns.name.Name, file: Path | None) -> str | None:
    """What is wrong with trust anchor text for ``zone`` (read from ``file``), or None."""
    error = _anchor_syntax_error(text, zone)
    if error is not None:
        line, message = error
        # dnspython names the line after the record when it had read its end of line already;
        # if the lines before that one hold the same error, the record is on the line before.
        head = "\n".join(text.splitlines()[: line - 1])
        if line > 1 and (earlier := _anchor_syntax_error(head, zone)) and earlier[1] == message:
            line -= 1
        at = f"line {line}{f' of {file}' if file else ''}: " if line else ""
        return f"not DS or DNSKEY records in zone-file format ({at}{message})"
    try:  # the prober's own check, so that what loads here is what it accepts
        parse_trust_anchor(text, zone.to_text())
    except InvalidValueError as exc:
        return f"{exc} (in {file})" if file else str(exc)
    return None


def _is_http_url(url: str) -> bool:
    if any(c.isspace() or not c.isprintable() for c in url):
        return False
    try:
        parts = urlsplit(url)
        return (
            parts.scheme in ("http", "https")
            and bool(parts.hostname)
            and (parts.port is None or parts.port > 0)
        )
    except ValueError:
        return False
