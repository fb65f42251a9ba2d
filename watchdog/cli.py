"""The ``dnssec-watchdog`` command: one-shot ``--check`` and the long-running ``--serve``.

The one-shot path is what Nagios runs every few minutes, so it imports only what it needs: the
service, the store, httpx and the config loader are imported lazily, by the modes that use them.
Every argument is checked before the first packet leaves; a bad one is one line on stderr that
names the argument, and exit code 3 (Nagios UNKNOWN).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import io
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from watchdog import __version__
from watchdog.config.coverage import APEX_ONLY, CoverageSettings
from watchdog.engine.assess import WarnBefore, ZonePolicy, assess_zone
from watchdog.engine.digits import ascii_int, is_ascii_digits
from watchdog.engine.profiles import Profile, parse_profile
from watchdog.engine.timeutil import parse_duration
from watchdog.errors import ConfigError, InvalidValueError, WatchdogError

if TYPE_CHECKING:
    from watchdog.config.parse import Config
    from watchdog.config.targets import ProbeSettings, ZoneTarget
    from watchdog.engine.assess import ZoneReport
    from watchdog.engine.observations import ZoneObservation

__all__ = ["main", "parse_at", "parse_zone_name"]

EXIT_UNKNOWN = 3  # Nagios UNKNOWN: bad arguments, no answer, internal error
EX_USAGE = 64  # sysexits: bad command line (service mode)
EX_CONFIG = 78  # sysexits: bad configuration; RestartPreventExitStatus=78 in the unit

_MAX_SECONDS = 2**31 - 1  # Unbound keeps val-sig-skew-* in an int; RRSIG times span 2^31 s

_T = TypeVar("_T")


class _UsageError(WatchdogError):
    """A bad command line; exit code depends on the mode."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


_HELP = {
    "server": "ask this authoritative server (repeatable); skips NS discovery",
    "resolver": "recursive resolver (IP) for discovery and the parent's DS; default: the system's",
    "trust-anchor": "DS or DNSKEY records to trust instead of the parent's DS",
    "profile": "validators whose deadline drives the exit code: strict (default: BIND, Knot "
    "Resolver, Google), powerdns, unbound, knot-dns",
    "warn-before": 'warn this long before expiry: "36h", "7d" or "10%%" of the lifetime (default)',
    "transfer": "cover the whole zone: transfer it (AXFR) from this server each time its "
    "serial changes, and compare every server with it",
    "tsig": "sign the transfer with the TSIG key in this BIND-style key file",
    "walk": "cover the whole zone by walking its NSEC chain (when no transfer is allowed)",
    "sample": "RRsets of the zone asked of each server per check, compared with the transfer (16)",
    "at": 'judge what was fetched as if now were TIME: RFC 3339 or "+2d", "-1h"',
    "format": "text (default: the timeline), json (the report, schema 1), nagios (one status "
    "line), prometheus (zone metrics for node_exporter's textfile collector)",
}
FORMATS = ("text", "json", "nagios", "prometheus")


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="dnssec-watchdog",
        allow_abbrev=False,
        description="Watch DNSSEC signatures on every authoritative server and tell people "
        "before validators start to fail.",
        epilog="Exit codes with --check follow the Nagios plugin API: 0 OK, 1 WARNING, "
        "2 CRITICAL (strict-fail, skew-exhausted, bogus), 3 UNKNOWN (no server answered, "
        "not signed, bad arguments). Several zones: the worst.",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="check ZONEs once and exit")
    mode.add_argument("--serve", action="store_true", help="run the watch service (--config)")
    mode.add_argument("--validate-config", action="store_true", help="check --config and exit")
    p.add_argument("zones", nargs="*", metavar="ZONE", help="zones to check")
    add = p.add_argument
    add("--zones-file", metavar="PATH", help="zones to check, one per line, # comments")
    add("--config", metavar="PATH", help="config file; with --check, its zones and settings")
    add("--server", action="append", default=[], metavar="HOST[:PORT]", help=_HELP["server"])
    add("--resolver", metavar="ADDR[:PORT]", help=_HELP["resolver"])
    add("--trust-anchor", metavar="TEXT|@FILE", help=_HELP["trust-anchor"])
    add("--profile", default="strict", metavar="NAME", help=_HELP["profile"])
    add("--warn-before", metavar="DURATION|PERCENT", help=_HELP["warn-before"])
    add("--skew-min", type=_seconds, metavar="SECONDS", help="Unbound val-sig-skew-min (3600)")
    add("--skew-max", type=_seconds, metavar="SECONDS", help="Unbound val-sig-skew-max (86400)")
    add("--transfer", metavar="HOST[:PORT]", help=_HELP["transfer"])
    add("--tsig", metavar="@FILE", help=_HELP["tsig"])
    add("--walk", action="store_true", help=_HELP["walk"])
    add("--sample", type=_count, metavar="N", help=_HELP["sample"])
    add("--at", metavar="TIME", help=_HELP["at"])
    out = p.add_mutually_exclusive_group()
    out.add_argument("--format", type=_output_format, metavar="FORMAT", help=_HELP["format"])
    out.add_argument("--json", action="store_true", help="the same as --format json")
    out.add_argument("--nagios", action="store_true", help="the same as --format nagios")
    out.add_argument("-q", "--quiet", action="store_true", help="print nothing; exit code only")
    add("--timeout", type=_positive_float, metavar="SECONDS", help="per-query timeout (2)")
    add("--version", action="version", version=f"dnssec-watchdog {__version__}")
    return p


def _seconds(text: str) -> int:
    try:
        value = ascii_int(text, "seconds")
    except InvalidValueError:
        raise argparse.ArgumentTypeError(f'"{text}" is not a whole number of seconds') from None
    if not 0 <= value <= _MAX_SECONDS:
        raise argparse.ArgumentTypeError(f'"{text}" must be 0 to {_MAX_SECONDS} seconds')
    return value


def _count(text: str) -> int:
    """A whole number of things (ASCII digits), e.g. --sample's RRsets per server."""
    try:
        return ascii_int(text, "count", minimum=0, maximum=1_000_000)
    except InvalidValueError:
        raise argparse.ArgumentTypeError(
            f'"{text}" is not a whole number from 0 to 1000000'
        ) from None


def _output_format(text: str) -> str:
    value = text.strip().lower()
    if value not in FORMATS:
        raise argparse.ArgumentTypeError(f'"{text}" is not one of: {", ".join(FORMATS)}')
    return value


def _positive_float(text: str) -> float:
    # ASCII only: float() also reads "٣", "３" and "1_0" (watchdog.engine.digits).
    whole, _, fraction = text.strip().partition(".")
    if not all(is_ascii_digits(part) for part in (whole, fraction) if part) or not (
        whole or fraction
    ):
        raise argparse.ArgumentTypeError(f'"{text}" is not a number of seconds')
    value = float(f"{whole or 0}.{fraction or 0}")
    if not 0 < value <= 3600:  # also rejects nan and inf
        raise argparse.ArgumentTypeError(f'"{text}" must be more than 0 and at most 3600')
    return value


def parse_at(text: str, now: int) -> int:
    """``--at``: an RFC 3339 time ("2026-12-01T14:00:00Z") or an offset from now ("+2d")."""
    value = text.strip()
    result: int | None = None
    if value[:1] in ("+", "-") and is_ascii_digits(value[1:2]):
        try:
            span = parse_duration(value[1:])
        except InvalidValueError:
            pass
        else:
            result = now - span if value[0] == "-" else now + span
    elif value:
        try:
            parsed = datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            result = int(parsed.timestamp())
    if result is None:
        raise InvalidValueError(
            f'--at "{text}": not an RFC 3339 time with a zone ("2026-12-01T14:00:00Z") or an '
            'offset ("+2d", "-90m")'
        )
    if not 0 <= result < 253402300800:  # 1970 to 9999, what RFC 3339 can write
        raise InvalidValueError(f'--at "{text}": must fall between 1970 and 9999')
    return result


def parse_zone_name(text: str, where: str) -> str:
    """A zone name as given by a person: lower case, absolute, IDNA; ``where`` names the source.

    The same label rule as the config file: letters, digits, "-", "_" (and "/", RFC 2317).
    """
    import dns.exception
    import dns.name

    from watchdog.config.targets import bad_zone_label

    value = text.strip()
    if not value or any(c.isspace() for c in value):
        raise InvalidValueError(f'{where} "{text}": not a zone name (empty or with spaces)')
    try:
        name = dns.name.from_text(value).canonicalize()
    except (dns.exception.DNSException, UnicodeError, ValueError) as exc:
        raise InvalidValueError(f'{where} "{text}": not a zone name ({exc})') from None
    shown = bad_zone_label(name)
    if shown is not None:
        raise InvalidValueError(
            f'{where} "{text}": the label "{shown}" is not a zone name label '
            '(letters, digits, "-", "_")'
        )
    return name.to_text()


def _read_text(path: str, option: str) -> str:
    if not path.strip():
        raise InvalidValueError(f"{option}: no file name given")
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidValueError(f"{option} {path}: not UTF-8 text") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InvalidValueError(f"{option} {path}: cannot read it: {reason}") from None


def _zones_file(path: str) -> list[str]:
    names = []
    for number, line in enumerate(_read_text(path, "--zones-file").splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if entry:
            names.append(parse_zone_name(entry, f"--zones-file {path} line {number}:"))
    return names


def _option(option: str, convert: Callable[[str], _T], text: str) -> _T:
    """``convert(text)``, its error message led by the option it came from."""
    try:
        return convert(text)
    except InvalidValueError as exc:
        message = str(exc)
        # 'server "x": ...' and 'warn_before "x" ...' name the value already: name the option.
        for noun in ("server ", "warn_before "):
            if message.startswith(noun + '"'):
                raise InvalidValueError(f"{option} {message[len(noun) :]}") from None
        raise InvalidValueError(f"{option}: {message}") from None


def _warn_before(text: str) -> WarnBefore:
    warn = WarnBefore.parse(text)
    if warn.seconds is not None and warn.seconds > _MAX_SECONDS:
        raise InvalidValueError(f'"{text}" is longer than any signature can live (68 years)')
    return warn


def _trust_anchor_text(text: str) -> str:
    from watchdog.config.targets import anchor_file

    if not text.strip():
        raise InvalidValueError("--trust-anchor: empty; give DS or DNSKEY records or @FILE")
    named = anchor_file(text)
    return text if named is None else _read_text(named, "--trust-anchor")


def _coverage(args: argparse.Namespace, base: CoverageSettings) -> CoverageSettings:
    """The zone's coverage settings with --transfer, --tsig, --walk and --sample applied."""
    from watchdog.config.coverage import parse_tsig_key
    from watchdog.config.targets import anchor_file, parse_server

    changes: dict[str, Any] = {}
    if args.transfer is not None:
        changes["transfer"] = _option("--transfer", parse_server, args.transfer)
    if args.tsig is not None:
        path = anchor_file(args.tsig)  # the same "@FILE" form as --trust-anchor's
        if path is None:
            # Not echoed: a secret pasted here by mistake would end up in the terminal log.
            raise InvalidValueError("--tsig: give the key file as @FILE, not the key itself")
        changes["tsig"] = _option(
            "--tsig", functools.partial(parse_tsig_key, where=path), _read_text(path, "--tsig")
        )
    if args.walk:
        changes["walk"] = True
    if args.sample is not None:
        changes["sample"] = args.sample
    result = replace(base, **changes)
    if result.tsig is not None and result.transfer is None:
        raise _UsageError("--tsig: a TSIG key without --transfer HOST[:PORT]")
    return result


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
    warn = args.warn_before if args.warn_before is not None else policy.warn_before
    return ZonePolicy(settings=settings, warn_before=warn)


def _jobs(args: argparse.Namespace) -> tuple[list[_Job], Config | None]:
    """The zones to check with their targets and policies, and the loaded config if any."""
    from watchdog.config.targets import ZoneTarget, parse_server

    servers = tuple(_option("--server", parse_server, text) for text in args.server)
    anchor = _trust_anchor_text(args.trust_anchor) if args.trust_anchor is not None else None
    names = [parse_zone_name(z, "ZONE") for z in args.zones]
    if args.zones_file is not None:
        names += _zones_file(args.zones_file)
    jobs: list[_Job] = []
    config: Config | None = None
    if args.config is not None:
        from watchdog.config.parse import load_config

        try:
            config = load_config(Path(args.config))
        except ConfigError as exc:
            raise ConfigError(exc.problems, source=f"--config {exc.source}") from None
        wanted = set(names)
        for zone in config.zones:
            if not wanted or zone.name in wanted:
                target = ZoneTarget(
                    zone.name,
                    servers or zone.servers,
                    zone.trust_anchor,
                    zone.extra,
                    _coverage(args, zone.coverage),
                )
                jobs.append(_Job(target, _override_policy(zone.policy, args)))
    for name in names:  # zones not in the config are checked with the defaults
        target = ZoneTarget(name, servers, coverage=_coverage(args, APEX_ONLY))
        jobs.append(_Job(target, _override_policy(ZonePolicy(), args)))
    if not jobs:
        raise _UsageError("no zone to check: give ZONE arguments, --zones-file or --config")
    unique: dict[str, _Job] = {}
    for job in jobs:  # a zone named twice is checked once, with its first (config) settings
        unique.setdefault(job.target.zone, job)
    if anchor is not None:  # the same records for every zone: each must own them
        return [_with_anchor(job, anchor) for job in unique.values()], config
    return list(unique.values()), config


def _with_anchor(job: _Job, text: str) -> _Job:
    """``job`` with the --trust-anchor records instead of the config's or the parent's."""
    import dns.name

    from watchdog.config.targets import parse_trust_anchor

    zone = dns.name.from_text(job.target.zone)
    parse = functools.partial(parse_trust_anchor, zone=zone)
    return replace(
        job, target=replace(job.target, trust_anchor=_option("--trust-anchor", parse, text))
    )


def _probe_settings(args: argparse.Namespace, config: Config | None) -> ProbeSettings:
    from watchdog.config.targets import ProbeSettings, parse_server

    settings = ProbeSettings() if config is None else config.service.probe_settings()
    if args.resolver is not None:
        # ip_only: naming the resolver by a host name would need a resolver to find it.
        resolver = _option(
            "--resolver", functools.partial(parse_server, ip_only=True), args.resolver
        )
        settings = replace(settings, resolver=resolver)
    if args.timeout is not None:
        settings = replace(settings, timeout=args.timeout)
    return settings


async def _probe_all(
    jobs: Sequence[_Job], settings: ProbeSettings, workers: int
) -> list[ZoneObservation]:
    """Every job's observation, in order: in this process, or with ``workers`` > 1 (the
    config's probe_workers) shared among it and worker processes as the service shares them."""
    targets = [j.target for j in jobs]
    if workers < 2 or len(targets) < 2:
        from watchdog.probe.prober import Prober

        async with Prober(settings) as prober:
            return await prober.probe_many(targets)
    from watchdog.probe.pool import ProbePool

    # The workers' log lines go to stderr; a clean check logs nothing there either.
    level = "debug" if os.environ.get("DNSSEC_WATCHDOG_DEBUG") else "error"
    found: list[ZoneObservation | None] = [None] * len(targets)
    # An equal share for this process: unlike the service's, it judges nothing while it probes.
    pool = ProbePool(settings, min(workers, len(targets)), log_level=level, local_weight=1.0)
    async with pool, contextlib.aclosing(pool.probe_each(targets)) as done:
        async for index, observation in done:
            found[index] = observation
    return [o for o in found if o is not None]


class _Discard(io.TextIOBase):
    """A text stream that swallows what is written to it."""

    def write(self, text: str) -> int:
        return len(text)


@contextlib.contextmanager
def _logs_off_stdout() -> Iterator[None]:
    """Keep whatever the prober prints (structlog's default logger prints to the sys.stdout of
    the moment) out of stdout, where the report or the JSON goes.

    What it logs (an unreachable address family, a parent key that could not be fetched) is
    also a finding in the report; with DNSSEC_WATCHDOG_DEBUG set it goes to stderr instead.
    No logging library is imported or configured for this: a clean check never logs.
    """
    sink = sys.stderr if os.environ.get("DNSSEC_WATCHDOG_DEBUG") else _Discard()
    with contextlib.redirect_stdout(sink):
        yield


def _colour() -> bool:
    # no-color.org: NO_COLOR set and not empty disables colour, whatever its value.
    return (
        sys.stdout.isatty()
        and not os.environ.get("NO_COLOR")
        and os.environ.get("TERM", "") != "dumb"
    )


def _check(args: argparse.Namespace) -> int:
    from watchdog.render.check import exit_code, nagios_line, render_text, to_json

    profile: Profile = _option("--profile", parse_profile, args.profile)
    if args.warn_before is not None:
        args.warn_before = _option("--warn-before", _warn_before, args.warn_before)
    started = int(time.time())
    at = parse_at(args.at, started) if args.at is not None else None
    jobs, config = _jobs(args)
    settings = _probe_settings(args, config)
    with _logs_off_stdout():
        workers = config.service.probe_workers if config is not None else 1
        observations = asyncio.run(_probe_all(jobs, settings, workers))
    fetched = int(time.time())
    now = at if at is not None else fetched
    reports: list[ZoneReport] = [
        assess_zone(obs, now, job.policy) for obs, job in zip(observations, jobs, strict=True)
    ]
    output = args.format or ("json" if args.json else "nagios" if args.nagios else "text")
    if output == "json":
        import json

        document = to_json(reports, now, profile=profile, fetched_at=fetched)
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    elif output == "nagios":
        sys.stdout.write(nagios_line(reports, profile) + "\n")
    elif output == "prometheus":
        from watchdog.service.metrics import textfile
        from watchdog.service.snapshot import zone_state

        sys.stdout.write(textfile(zone_state(r) for r in reports))
    elif not args.quiet:
        sys.stdout.write(render_text(reports, _colour(), profile))
    sys.stdout.flush()
    return exit_code(reports, profile)


def _validate_config(path: Path) -> int:
    """``--validate-config``: every problem on stderr, exit 0 or 78. Only the config loader is
    imported: ExecStartPre= runs this before every start, on configs of thousands of zones."""
    from watchdog.config.parse import load_config

    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"dnssec-watchdog: {exc}", file=sys.stderr)
        return EX_CONFIG
    print(f"{path}: ok, {len(config.zones)} zones, {len(config.webhooks)} webhooks")
    return 0


def _lost_values(args: argparse.Namespace) -> None:
    """CPython 3.11's argparse turns "--opt=--" into [] instead of the text "--": refuse it as a
    missing value, instead of letting a list reach code that expects a string."""
    for name, value in vars(args).items():
        if name == "zones":
            continue
        values = value if name == "server" else [value]
        if any(isinstance(v, list) for v in values):
            raise _UsageError(f"argument --{name.replace('_', '-')}: expected one argument")


def _run(argv: list[str]) -> int:
    args = _build_parser().parse_intermixed_args(argv)
    _lost_values(args)
    if args.serve or args.validate_config:
        if args.config is None:
            raise _UsageError("--serve and --validate-config need --config PATH")
        if args.validate_config:
            return _validate_config(Path(args.config))
        from watchdog.service.main import run_service

        return run_service(Path(args.config))
    if not args.check:
        raise _UsageError("say what to do: --check ZONE..., --serve --config PATH, or --help")
    return _check(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # A command line with --check is Nagios's (exit 3 on any error), even when a garbage value
    # such as "--server --serve" also names a service mode.
    serving = ("--serve" in argv or "--validate-config" in argv) and "--check" not in argv
    try:
        return _run(argv)
    except _UsageError as exc:
        print(f"dnssec-watchdog: {_error_text(exc)}", file=sys.stderr)
        return EX_USAGE if serving else EXIT_UNKNOWN
    except WatchdogError as exc:
        print(f"dnssec-watchdog: {_error_text(exc)}", file=sys.stderr)
        return EX_CONFIG if serving and isinstance(exc, ConfigError) else EXIT_UNKNOWN
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`); say nothing more, and do not fail at exit either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_UNKNOWN
    except Exception as exc:
        if os.environ.get("DNSSEC_WATCHDOG_DEBUG"):
            raise
        detail = _printable(f"{type(exc).__name__}: {exc}")
        print(f"dnssec-watchdog: internal error (please report it): {detail}", file=sys.stderr)
        return EXIT_UNKNOWN


def _printable(text: str) -> str:
    """``text`` with every character that is not printable (a newline, a terminal escape, an
    undecodable byte from the shell) escaped: a value quoted in an error cannot break it into
    several lines or drive the terminal."""
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
    )


def _error_text(exc: WatchdogError) -> str:
    """One line per error; a configuration with several problems lists them one a line."""
    if isinstance(exc, ConfigError) and len(exc.problems) > 1:
        where = f"{exc.source}: " if exc.source else ""
        listed = "".join(f"\n  - {_printable(p)}" for p in exc.problems)
        return f"{_printable(where)}{len(exc.problems)} problems:{listed}"
    return _printable(str(exc))


if __name__ == "__main__":
    sys.exit(main())
