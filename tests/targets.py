"""Zone targets from text, as a person writes them, for tests: every part goes through the
parsers the config file and the command line use (watchdog.config.targets)."""

from __future__ import annotations

from collections.abc import Iterable

import dns.name

from watchdog.config.coverage import APEX_ONLY, CoverageSettings
from watchdog.config.targets import ZoneTarget, parse_extra, parse_server, parse_trust_anchor

__all__ = ["zone_target"]


def zone_target(
    zone: str,
    servers: Iterable[str] = (),
    trust_anchor: str | None = None,
    extra: Iterable[tuple[str, str]] = (),
    coverage: CoverageSettings = APEX_ONLY,
) -> ZoneTarget:
    """A ZoneTarget for ``zone``: servers "host[:port]", anchor records, extra (name, type)."""
    apex = dns.name.from_text(zone)
    return ZoneTarget(
        zone,
        tuple(parse_server(text) for text in servers),
        parse_trust_anchor(trust_anchor, apex) if trust_anchor is not None else None,
        tuple(parse_extra(f"{name} {rdtype}", apex) for name, rdtype in extra),
        coverage,
    )
