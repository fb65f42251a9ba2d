"""The ``dnssec-watchdog`` command: one-shot ``--check`` and the long-running ``--serve``.

The one-shot path is what Nagios runs every few minutes, so it imports only what it needs: the
service, the store, httpx and structlog are imported lazily, by ``--serve`` alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from . import __version__
from .assess import WarnBefore, ZonePolicy, assess_zone
from .errors import InvalidValueError, WatchdogError
from .profiles import parse_profile
from .timeutil import parse_duration

if TYPE_CHECKING:
    from .assess import ZoneReport
    from .config import Config
    from .observations import ZoneObservation
    from .probe import ProbeSettings, ZoneTarget

__all__ = ["main", "parse_at"]

EXIT_UNKNOWN = 3  # Nagios UNKNOWN: bad arguments, no answer, internal error
EX_USAGE = 64  # sysexits: bad command line (service mode)
EX_CONFIG = 78  # sysexits: bad configuration; RestartPreventExitStatus=78 in the unit


class _UsageError(WatchdogError):
    """A bad command line; exit code depends on the mode."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="dnssec-watchdog",
        description="Watch DNSSEC signatures on every authoritative server and tell people "
        "before validators start to fail.",
        epilog="Exit codes with --check follow the Nagios plugin API: 0 OK, 1 WARNING, "
        "2 CRITICAL (strict-fail, skew-exhausted, bogus), 3 UNKNOWN.",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="check ZONEs once and exit")
    mode.add_argument("--serve", action="store_true", help="run the watch service (--config)")
    mode.add_argument(
        "--validate-config",
        action="store_true",
        help="load --config, list every problem, and exit (0 good, 78 bad)",
    )
    p.add_argument("zones", nargs="*", metavar="ZONE", help="zones to check")
    p.add_argument(
        "--zones-file", type=Path, metavar="PATH", help="zones to check, one per line, # comments"
    )
    p.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help="config file (with --check: every zone in it, with its settings)",
    )
    p.add_argument(
        "--server",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="ask this authoritative server (repeatable); skips NS discovery",
    )
    p.add_argument(
        "--resolver",
        metavar="ADDR[:PORT]",
        help="recursive resolver for discovery and DS (default: the system's)",
    )
    p.add_argument(
        "--trust-anchor",
        metavar="TEXT|@FILE",
        help="DS or DNSKEY records to trust instead of the parent's DS",
    )
    p.add_argument(
        "--profile",
        default="strict",
        metavar="NAME",
        help="validator profile whose deadline drives the exit code: strict "
        "(default), powerdns, unbound, knot-dns",
    )
    p.add_argument(
        "--warn-before",
        metavar="DURATION|PERCENT",
        help='warn this long before expiry: "36h", "7d" or "10%%" of the lifetime',
    )
    p.add_argument(
        "--skew-min",
        type=_seconds,
        metavar="SECONDS",
        help="Unbound val-sig-skew-min (default 3600)",
    )
    p.add_argument(
        "--skew-max",
        type=_seconds,
        metavar="SECONDS",
        help="Unbound val-sig-skew-max (default 86400)",
    )
    p.add_argument(
        "--at",
        metavar="TIME",
        help='judge what was fetched as if now were TIME: RFC 3339 or "+2d", "-1h"',
    )
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the JSON report (schema 1)")
    out.add_argument("--nagios", action="store_true", help="print one Nagios status line")
    out.add_argument("-q", "--quiet", action="store_true", help="print nothing; exit code only")
    p.add_argument(
        "--timeout", type=_positive_float, metavar="SECONDS", help="per-query timeout (default 2)"
    )
    p.add_argument("--version", action="version", version=f"dnssec-watchdog {__version__}")
    return p


def _seconds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'"{text}" is not a whole number of seconds') from None
    if value < 0:
        raise argparse.ArgumentTypeError(f'"{text}" must not be negative')
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'"{text}" is not a number of seconds') from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f'"{text}" must be more than 0 and at most 3600')
    return value


def parse_at(text: str, now: int) -> int:
    """``--at``: an RFC 3339 time ("2026-12-01T14:00:00Z") or an offset from now ("+2d")."""
    value = text.strip()
    if value[:1] in "+-" and value[1:2].isdigit():
        sign = -1 if value[0] == "-" else 1
        try:
            return now + sign * parse_duration(value[1:])
        except InvalidValueError:
            pass
    else:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return int(parsed.timestamp())
    raise InvalidValueError(
        f'--at "{text}" is not an RFC 3339 time with a zone ("2026-12-01T14:00:00Z") or an '
        'offset ("+2d", "-90m")'
    )


def _read_lines(path: Path, what: str) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise InvalidValueError(f"{what} {path}: cannot read it: {reason}") from None
    return [ln.split("#", 1)[0].strip() for ln in text.splitlines() if ln.split("#", 1)[0].strip()]


def _normalize_zone(text: str, where: str) -> str:
    import dns.exception
    import dns.name

    try:
        name = dns.name.from_text(text.strip())
    except (dns.exception.DNSException, UnicodeError) as exc:
        raise InvalidValueError(f'{where}: "{text}" is not a valid zone name: {exc}') from None
    return name.to_text().lower()


@dataclass(frozen=True, slots=True)
class _Job:
    target: ZoneTarget
    policy: ZonePolicy


def _override_policy(policy: ZonePolicy, args: argparse.Namespace) -> ZonePolicy:
    settings = policy.settings
    if args.skew_min is not None:
        settings = replace(settings, skew_min=args.skew_min)
    if args.skew_max is not None:
        settings = replace(settings, skew_max=args.skew_max)
    warn = WarnBefore.parse(args.warn_before) if args.warn_before else policy.warn_before
    return ZonePolicy(settings=settings, warn_before=warn)


def _trust_anchor(text: str | None) -> str | None:
    if text is None:
        return None
    if text.startswith("@"):
        return "\n".join(_read_lines(Path(text[1:]), "--trust-anchor"))
    return text


def _jobs(args: argparse.Namespace) -> tuple[list[_Job], Config | None]:
    """The zones to check with their targets and policies, and the loaded config if any."""
    from .probe import ZoneTarget, parse_server, parse_trust_anchor

    servers = tuple(args.server)
    for s in servers:
        parse_server(s)  # raises InvalidValueError naming the text
    anchor = _trust_anchor(args.trust_anchor)
    names = [(_normalize_zone(z, "zone"), "command line") for z in args.zones]
    if args.zones_file is not None:
        names += [
            (_normalize_zone(z, f"--zones-file {args.zones_file}"), "file")
            for z in _read_lines(args.zones_file, "--zones-file")
        ]
    jobs: list[_Job] = []
    config: Config | None = None
    base = ZonePolicy()
    if args.config is not None:
        from .config import load_config

        config = load_config(args.config)
        wanted = {n for n, _ in names}
        for zone in config.zones:
            if wanted and zone.name not in wanted:
                continue
            target = ZoneTarget(
                zone=zone.name,
                servers=servers or zone.servers,
                trust_anchor=anchor or zone.trust_anchor,
                extra=zone.extra,
            )
            jobs.append(_Job(target, _override_policy(zone.policy, args)))
        names = [(n, w) for n, w in names if n not in {j.target.zone for j in jobs}]
    for name, _ in names:
        jobs.append(
            _Job(
                ZoneTarget(zone=name, servers=servers, trust_anchor=anchor),
                _override_policy(base, args),
            )
        )
    if not jobs:
        raise _UsageError("no zone to check: give ZONE arguments, --zones-file or --config")
    for job in jobs:
        if job.target.trust_anchor:
            parse_trust_anchor(job.target.trust_anchor, job.target.zone)
    unique: dict[str, _Job] = {}
    for job in jobs:  # a zone named twice is checked once, with its first settings
        unique.setdefault(job.target.zone, job)
    return list(unique.values()), config


def _probe_settings(args: argparse.Namespace, config: Config | None) -> ProbeSettings:
    from .probe import ProbeSettings, parse_server

    settings = ProbeSettings()
    if config is not None:
        settings = config.service.probe_settings()
    if args.resolver:
        settings = replace(settings, resolver=parse_server(args.resolver))
    if args.timeout is not None:
        settings = replace(settings, timeout=args.timeout)
    return settings


async def _probe_all(jobs: Sequence[_Job], settings: ProbeSettings) -> list[ZoneObservation]:
    from .probe import Prober

    async with Prober(settings) as prober:
        return list(await prober.probe_many([j.target for j in jobs]))


def _check(args: argparse.Namespace) -> int:
    import json

    from .report import exit_code, nagios_line, render_text, to_json

    profile = parse_profile(args.profile)
    jobs, config = _jobs(args)
    settings = _probe_settings(args, config)
    started = int(time.time())
    at = parse_at(args.at, started) if args.at else None
    observations = asyncio.run(_probe_all(jobs, settings))
    now = at if at is not None else int(time.time())
    reports: list[ZoneReport] = [
        assess_zone(obs, now, job.policy) for obs, job in zip(observations, jobs, strict=True)
    ]
    if args.json:
        print(json.dumps(to_json(reports, now), indent=2))
    elif args.nagios:
        print(nagios_line(reports, profile))
    elif not args.quiet:
        colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        sys.stdout.write(render_text(reports, colour))
    return exit_code(reports, profile)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    serving = "--serve" in argv or "--validate-config" in argv
    try:
        args = _build_parser().parse_args(argv)
        if args.serve or args.validate_config:
            if args.config is None:
                raise _UsageError("--serve and --validate-config need --config PATH")
            from .service import run_service, validate_config

            if args.validate_config:
                return validate_config(args.config)
            return run_service(args.config)
        if not args.check:
            raise _UsageError("say what to do: --check ZONE..., --serve --config PATH, or --help")
        return _check(args)
    except _UsageError as exc:
        print(f"dnssec-watchdog: {exc}", file=sys.stderr)
        return EX_USAGE if serving else EXIT_UNKNOWN
    except WatchdogError as exc:
        print(f"dnssec-watchdog: {exc}", file=sys.stderr)
        from .errors import ConfigError

        return EX_CONFIG if serving and isinstance(exc, ConfigError) else EXIT_UNKNOWN
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if os.environ.get("DNSSEC_WATCHDOG_DEBUG"):
            raise
        print(
            f"dnssec-watchdog: internal error (please report it): {type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        return EXIT_UNKNOWN


if __name__ == "__main__":
    sys.exit(main())
