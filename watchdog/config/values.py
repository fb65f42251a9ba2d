"""Value parsers of the configuration: one function per kind of value (duration, zone name,
server address, trust anchor, URL...). Each takes the raw TOML value and returns the parsed one
or raises InvalidValueError with a message that never repeats a secret. Internal to config.py.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from watchdog.config.targets import (
    AnchorSyntaxError,
    TrustAnchor,
    bad_zone_label,
    parse_extra,
    parse_server,
    parse_trust_anchor,
)
from watchdog.config.targets import quote as _quote
from watchdog.engine.assess import WarnBefore
from watchdog.engine.timeutil import format_duration, parse_duration
from watchdog.errors import InvalidValueError

if TYPE_CHECKING:
    import dns.name
    import dns.rdatatype

__all__: list[str] = []  # internal to watchdog.config.parse


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _join(path: str, key: object) -> str:
    name = key if isinstance(key, str) else repr(key)
    return f"{path}.{name}" if path else name


def _unknown_key(key: object, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1) if isinstance(key, str) else []
    if close:
        return f'unknown key; did you mean "{close[0]}"?'
    return f"unknown key; known keys: {', '.join(known)}"


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


def _dns_name(text: str, origin: dns.name.Name | None = None) -> dns.name.Name:
    """``text`` as a DNS name, relative to ``origin`` (None: the root)."""
    import dns.exception
    import dns.name

    if not text or any(c.isspace() for c in text):
        raise InvalidValueError(f"{_quote(text)} is not a DNS name")
    try:
        return dns.name.from_text(text, dns.name.root if origin is None else origin)
    except (dns.exception.DNSException, ValueError) as exc:
        raise InvalidValueError(f"{_quote(text)} is not a valid DNS name: {exc}") from None


def _zone_name(value: object) -> str:
    return _zone_origin(value)[0]


# A zone name already in the form _zone_origin gives (lower case, ASCII letters, digits, "-",
# "_"): its labels are taken as they are, without dnspython's text parser (IDNA, escapes),
# most of a large config's zone-name work.
_PLAIN_ZONE = re.compile(r"(?:[a-z0-9_-]{1,63}\.)+|\.", re.ASCII)


def _zone_origin(value: object) -> tuple[str, dns.name.Name]:
    """A zone name (lower case, ASCII (IDNA), labels as bad_zone_label allows), as text with
    the final dot and as a dnspython name."""
    import dns.name

    text = _string(value).strip()
    if not text:
        raise InvalidValueError('is empty; use a zone name such as "example.com"')
    plain = text if text.endswith(".") else text + "."
    if plain == ".":
        return plain, dns.name.root
    if _PLAIN_ZONE.fullmatch(plain) and len(plain) <= 254:  # 255 octets on the wire
        return plain, dns.name.Name(plain.encode().split(b"."))
    name = _dns_name(text).canonicalize()
    shown = bad_zone_label(name)
    if shown is not None:
        raise InvalidValueError(
            f'{_quote(text)}: the label "{shown}" is not a zone name label '
            '(letters, digits, "-", "_")'
        )
    return name.to_text(), name


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
    """(host, port) with the IP address in canonical form or the host name in lower case, by
    the parser the command line uses too (one rule); the message adds the accepted forms."""
    text = _string(value).strip()
    if ip_only:
        examples = '"system", "192.0.2.53" or "[2001:db8::53]:53"'
    else:
        examples = '"192.0.2.1", "ns1.example:5353" or "[2001:db8::1]:53"'
    try:
        return parse_server(text, ip_only=ip_only)
    except InvalidValueError:
        raise InvalidValueError(f"{_quote(text)} is not a server address; use {examples}") from None


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


def _extra_entry(
    value: object, origin: dns.name.Name
) -> tuple[dns.name.Name, dns.rdatatype.RdataType]:
    return parse_extra(_string(value), origin)


def _trust_anchor(text: str, zone: dns.name.Name, file: Path | None) -> TrustAnchor:
    """The anchor in ``text`` (read from ``file``); InvalidValueError says what is wrong,
    naming the line (and the file) of a syntax error."""
    try:
        return parse_trust_anchor(text, zone)
    except AnchorSyntaxError as exc:
        at = f"line {exc.line}{f' of {file}' if file else ''}"
        raise InvalidValueError(
            f"not DS or DNSKEY records in zone-file format ({at}: {exc.detail})"
        ) from None
    except InvalidValueError as exc:
        raise InvalidValueError(f"{exc} (in {file})" if file else str(exc)) from None


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
