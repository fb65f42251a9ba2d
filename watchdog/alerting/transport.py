"""How a webhook attempt talks TLS, and how its transport errors are told without the URL.

Trust: the system's store (OpenSSL's default paths, /etc/ssl/certs on Debian) unless a webhook
names its own ``ca_file`` (an internal CA). Errors: httpx's messages may quote the URL, which is
a secret, so an error is described from its type and root cause (errno, TLS reason), then
scrubbed of every part of the URL.
"""

from __future__ import annotations

import os
import re
import ssl
from pathlib import Path

import httpx
import structlog

__all__ = ["ca_context", "describe_transport_error"]

log = structlog.get_logger(__name__)

_URL_PATTERN = re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)


_TRANSPORT_ERRORS: tuple[tuple[type[httpx.HTTPError], str], ...] = (
    (httpx.ConnectTimeout, "connect timeout"),
    (httpx.ReadTimeout, "read timeout"),
    (httpx.WriteTimeout, "write timeout"),
    (httpx.PoolTimeout, "connection pool timeout"),
    (httpx.ConnectError, "connection failed"),
    (httpx.ReadError, "read error"),
    (httpx.WriteError, "write error"),
    (httpx.RemoteProtocolError, "receiver broke the HTTP protocol"),
    (httpx.ProxyError, "proxy error"),
    (httpx.UnsupportedProtocol, "unsupported protocol"),
)


def ca_context(webhook: str, ca_file: Path) -> ssl.SSLContext:
    """A context trusting only the CA certificates of ``ca_file``. One that cannot be read
    trusts nothing: that webhook's deliveries fail (logged, retried, never dropped) until the
    file is fixed and the config reloaded."""
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or type(exc)
        log.error("webhook_ca_unusable", webhook=webhook, ca_file=str(ca_file), error=str(reason))
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def describe_transport_error(exc: httpx.HTTPError, url: str) -> str:
    """A short, secret-free description of a transport error: httpx messages may quote the URL."""
    kinds = (text for kind, text in _TRANSPORT_ERRORS if isinstance(exc, kind))
    summary = next(kinds, f"HTTP error ({type(exc).__name__})")
    detail = _root_cause(exc)
    return _scrub(f"{summary}: {detail}" if detail else summary, url)


def _root_cause(exc: BaseException) -> str:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return f"TLS certificate verification failed ({current.verify_message})"
        if isinstance(current, ssl.SSLError):
            return f"TLS error ({current.reason})"
        if isinstance(current, OSError) and current.errno:
            # From the errno only: asyncio's message quotes the address ("Connect call failed").
            return os.strerror(current.errno).lower()
        current = current.__cause__ or current.__context__
    return ""


def _scrub(text: str, url: str) -> str:
    parsed = httpx.URL(url)
    secrets = [url, str(parsed), parsed.host, parsed.query.decode(), parsed.userinfo.decode()]
    if len(parsed.path) > 1:
        secrets.append(parsed.path)
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "<webhook>")
    return _URL_PATTERN.sub("<url>", text)[:300]
