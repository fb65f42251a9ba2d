"""Coverage settings of a zone (apex, zone transfer or NSEC walk) and TSIG keys for transfers.

A TSIG key comes from a BIND-style key file -> a TsigKey (RFC 8945).

The file is what ``tsig-keygen`` and ``ldns-keygen`` users already have::

    key "transfer.example." { algorithm hmac-sha256; secret "base64..."; };

Pure: text in, value out. The secret never appears in a repr or an error message.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field

from watchdog.errors import InvalidValueError

__all__ = [
    "APEX_ONLY",
    "DEFAULT_SAMPLE",
    "DEFAULT_WALK_LIMIT",
    "TSIG_ALGORITHMS",
    "CoverageSettings",
    "TsigKey",
    "parse_tsig_key",
]

DEFAULT_WALK_LIMIT = 10_000  # names; a bigger zone wants a transfer
DEFAULT_SAMPLE = 16  # names per server per check compared with the transfer

# RFC 8945 6 (hmac-sha256 mandatory, hmac-md5 and hmac-sha1 deprecated but still met).
TSIG_ALGORITHMS = (
    "hmac-md5",
    "hmac-sha1",
    "hmac-sha224",
    "hmac-sha256",
    "hmac-sha384",
    "hmac-sha512",
)

_KEY = re.compile(r'\s*key\s+"?([A-Za-z0-9._-]+)"?\s*\{(.*?)\}\s*;?\s*', re.DOTALL)
_CLAUSE = re.compile(r'\s*(algorithm|secret)\s+"?([^";\s]+)"?\s*;', re.DOTALL)
_COMMENT = re.compile(r"(#|//)[^\n]*")


@dataclass(frozen=True, slots=True)
class TsigKey:
    """A TSIG key: its name (with the final dot), algorithm and secret (hidden from repr)."""

    name: str
    algorithm: str
    secret: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class CoverageSettings:
    """How much of a zone a check covers: the apex only (no transfer, no walk), the whole zone
    by transfer from ``transfer`` ((host, port), as parse_server gives it), or by walking the
    NSEC chain (``walk``). A transfer wins over a walk when both are set."""

    transfer: tuple[str, int] | None = None
    tsig: TsigKey | None = None
    walk: bool = False
    walk_limit: int = DEFAULT_WALK_LIMIT
    sample: int = DEFAULT_SAMPLE

    @property
    def mode(self) -> str:
        """ "transfer", "walk" or "apex": what this check tries first."""
        if self.transfer is not None:
            return "transfer"
        return "walk" if self.walk else "apex"


APEX_ONLY = CoverageSettings()


def parse_tsig_key(text: str, where: str) -> TsigKey:
    """The one ``key "name" { algorithm ...; secret "..."; };`` clause of ``text``.

    ``where`` names the file for errors; the secret is never quoted back.
    """
    body = _COMMENT.sub("", text)
    match = _KEY.fullmatch(body)
    if match is None:
        raise InvalidValueError(
            f'{where} is not a BIND key file; expected key "name" {{ algorithm hmac-sha256; '
            'secret "..."; };'
        )
    name, clauses = match[1], match[2]
    found: dict[str, str] = {}
    rest = _CLAUSE.sub(lambda m: found.setdefault(m[1], m[2]) and "", clauses)
    if rest.strip() or set(found) != {"algorithm", "secret"}:
        raise InvalidValueError(
            f"{where}: the key {name} needs exactly one algorithm and one secret clause"
        )
    algorithm = found["algorithm"].lower()
    if algorithm not in TSIG_ALGORITHMS:
        raise InvalidValueError(
            f"{where}: algorithm {found['algorithm']!r} of key {name} is not one of "
            f"{', '.join(TSIG_ALGORITHMS)}"
        )
    try:
        secret = base64.b64decode(found["secret"], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidValueError(f"{where}: the secret of key {name} is not base64") from None
    if not secret:
        raise InvalidValueError(f"{where}: the secret of key {name} is empty")
    return TsigKey(name.lower().rstrip(".") + ".", algorithm, secret)
