"""Validating resolvers as the oracle: Unbound, BIND named, Knot Resolver, PowerDNS Recursor.

Each one listens on a free loopback port, trusts ONLY the DS records it is given (no root
anchor), forwards the given zones to one upstream (an NsdServer) and has root hints pointing at
127.0.0.1, so it never contacts anything outside loopback. Each starts with an empty cache.
Unbound can also take the upstream as a stub-zone (``stub=True``): it then iterates from it as
from a parent's authoritative server, following its delegations.

Clocks: ``CLOCK`` says how a validator is put at a chosen second (see lab.clock). Unbound and
named take ``fake_now`` (a frozen libfaketime clock); kresd and pdns-recursor run on the real
clock and the caller shifts the signature dates instead (lab.oracle.observe does both).
After a query, clock_reading(qname) returns the second the validator itself logged for it,
the proof that the fake clock (or the real second) really applied.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

import dns.name
import dns.rdataclass

from watchdog.engine.profiles import DEFAULT_SETTINGS, ValidatorSettings

from .clock import faketime_environment
from .dnsquery import answers
from .process import ClockNotConfirmedError, Daemon, LabError, binary
from .zones import parse_ds

__all__ = [
    "VALIDATORS",
    "Clock",
    "ClockReading",
    "Kresd",
    "Named",
    "PdnsRecursor",
    "Unbound",
    "Validator",
]

_ROOT_HINTS = ".  3600000 IN NS a.root.lab.\na.root.lab.  3600000 IN A 127.0.0.1\n"


class Clock(StrEnum):
    """How a validator is put at a chosen second."""

    FROZEN = "frozen libfaketime clock"
    SHIFTED = "real clock, signature dates shifted"


@dataclass(frozen=True, slots=True)
class ClockReading:
    """The second a validator's own log gives for a query, and the log line saying so."""

    second: int
    line: str


class Validator(Daemon):
    """A validating resolver; subclasses write its config and read its log.

    ``zones``: origins forwarded to ``upstream`` (address, port). ``trust_anchors``: DS records
    in presentation format, the only anchors it trusts. ``fake_now``: freeze its clock at this
    POSIX second (only validators with CLOCK FROZEN). ``settings``: the knobs of the engine's
    profiles, written into the config where the validator has them. A test that fakes the
    clock must check clock_reading(qname).second after its query (lab.observe does).
    """

    CLOCK: ClassVar[Clock]
    BINARIES: ClassVar[tuple[str, ...]]  # for lab.missing_binaries
    PRODUCT: ClassVar[str]
    VERSION_COMMAND: ClassVar[tuple[str, ...]]
    VERSION_PATTERN: ClassVar[str]  # its first group is the version
    # A logged query; its groups are the epoch second and the name, unless _clock_lines says.
    _QUERY_LINE: ClassVar[re.Pattern[str]]

    def __init__(
        self,
        workdir: Path,
        *,
        zones: Sequence[str],
        trust_anchors: Sequence[str],
        upstream: tuple[str, int],
        fake_now: int | None = None,
        settings: ValidatorSettings = DEFAULT_SETTINGS,
        address: str = "127.0.0.1",
        port: int | None = None,
    ):
        super().__init__(Path(workdir), address=address, port=port)
        if fake_now is not None and self.CLOCK is not Clock.FROZEN:
            raise LabError(f"{self.name} cannot run on a frozen clock: shift signature dates")
        if not upstream[0].startswith("127."):
            raise LabError(f"the lab only forwards to loopback, not {upstream[0]}")
        self.zones = tuple(dns.name.from_text(zone).to_text() for zone in zones)
        self.trust_anchors = tuple(trust_anchors)
        self.upstream = upstream
        self.fake_now = fake_now
        self.settings = settings
        self._scratch: list[Path] = []

    @classmethod
    def version(cls) -> str:
        """Name and version, e.g. "unbound 1.17.1", from the validator's own version command."""
        return f"{cls.PRODUCT} {_version(cls.VERSION_COMMAND, cls.VERSION_PATTERN)}"

    def clock_reading(self, qname: str) -> ClockReading:
        """The second this validator logged for its query of ``qname``; raises if none."""
        wanted = dns.name.from_text(qname)
        for second, logged, line in self._clock_lines():
            if dns.name.from_text(logged) == wanted:
                return ClockReading(second, line)
        raise ClockNotConfirmedError(
            f"{self.name} logged no query for {qname}, so its clock is unconfirmed\n"
            + self.log_tail()
        )

    def _clock_lines(self) -> list[tuple[int, str, str]]:
        """(second, query name, line) for every query the validator logged."""
        return [
            (int(match[1]), match[2], match[0])
            for match in self._QUERY_LINE.finditer(self.log_text())
        ]

    def _ready(self) -> bool:
        # A CHAOS query needs no recursion, so it leaves the cache empty; any answer will do.
        return answers(self.address, self.port, "version.bind", "TXT", rdclass=dns.rdataclass.CH)

    def _short_directory(self) -> Path:
        """A fresh directory with a short path, removed by stop()."""
        path = Path(tempfile.mkdtemp(prefix=f"lab-{self.name}-"))
        self._scratch.append(path)
        return path

    def _cleanup(self) -> None:
        while self._scratch:
            shutil.rmtree(self._scratch.pop(), ignore_errors=True)

    def _root_hints(self) -> Path:
        path = self.workdir / "root.hints"
        path.write_text(_ROOT_HINTS)
        return path

    def _upstream_text(self, separator: str) -> str:
        return f"{self.upstream[0]}{separator}{self.upstream[1]}"


class Unbound(Validator):
    """unbound -d, logging every query with its epoch timestamp (frozen clock when faked).

    ``stub=True`` declares the zones as stub-zones on ``upstream`` rather than forward-zones:
    Unbound treats it as the zones' authoritative server and follows its referrals (to child
    servers on other loopback addresses). With no ``trust_anchors`` it fetches DNSSEC data and
    judges none, for a client that validates itself.
    """

    name = "unbound"
    CLOCK = Clock.FROZEN
    BINARIES = ("unbound", "libfaketime")
    PRODUCT = "unbound"
    VERSION_COMMAND = ("unbound", "-V")
    VERSION_PATTERN = r"Version (\S+)"
    _QUERY_LINE = re.compile(r"^\[(\d+)\] unbound\[[\d:]+\] info: \S+ (\S+) \S+ IN$", re.M)

    def __init__(self, workdir: Path, *, stub: bool = False, **options: Any) -> None:
        super().__init__(workdir, **options)
        self.stub = stub

    def _prepare(self, port: int) -> list[str]:
        config = self.workdir / "unbound.conf"
        lines = [
            "server:",
            f"  interface: {self.address}@{port}",
            f"  port: {port}",
            "  do-ip6: no",
            '  username: ""',
            '  chroot: ""',
            f'  directory: "{self.workdir}"',
            f'  pidfile: "{self.workdir / "unbound.pid"}"',
            "  use-syslog: no",
            '  logfile: ""',
            "  log-time-ascii: no",
            "  verbosity: 1",
            "  log-queries: yes",
            "  log-servfail: yes",
            "  val-log-level: 2",
            "  num-threads: 1",
            "  so-reuseport: no",
            f'  root-hints: "{self._root_hints()}"',
            "  do-not-query-localhost: no",
            '  module-config: "validator iterator"',
            "  trust-anchor-signaling: no",
            "  prefetch: no",
            "  prefetch-key: no",
            "  ede: yes",
            f"  val-sig-skew-min: {self.settings.skew_min}",
            f"  val-sig-skew-max: {self.settings.skew_max}",
        ]
        lines += [f'  trust-anchor: "{anchor}"' for anchor in self.trust_anchors]
        # RFC 6761 names (test., invalid., ...) are built-in local zones in unbound.
        lines += [f'  local-zone: "{zone}" transparent' for zone in self.zones]
        lines += ["remote-control:", "  control-enable: no"]
        kind = "stub" if self.stub else "forward"
        for zone in self.zones:
            lines += [f"{kind}-zone:", f'  name: "{zone}"']
            lines += [f"  {kind}-addr: {self._upstream_text('@')}"]
        config.write_text("\n".join(lines) + "\n")
        return [binary("unbound"), "-d", "-c", str(config)]

    def _environment(self) -> Mapping[str, str]:
        if self.fake_now is None:
            return super()._environment()
        return faketime_environment(self.fake_now)


class Named(Validator):
    """BIND named -g (logs to stderr with local-time stamps; TZ=UTC) with its query log on."""

    name = "named"
    CLOCK = Clock.FROZEN
    BINARIES = ("named", "libfaketime", "libc_malloc_debug")
    PRODUCT = "BIND"
    VERSION_COMMAND = ("named", "-v")
    VERSION_PATTERN = r"BIND (\S+)"
    _QUERY_LINE = re.compile(
        r"^(\d\d-\w{3}-\d{4} \d\d:\d\d:\d\d)\.\d+ client .*: query: (\S+) IN \S+ .*$", re.M
    )

    def _prepare(self, port: int) -> list[str]:
        config = self.workdir / "named.conf"
        anchors = []
        for text in self.trust_anchors:
            owner, ds = parse_ds(text)
            fields = f"{ds.key_tag} {ds.algorithm} {ds.digest_type}"
            anchors.append(f'  {owner} static-ds {fields} "{ds.digest.hex()}";')
        forward = self._upstream_text(" port ")
        zones = [
            f'zone "{zone}" {{ type forward; forward only; forwarders {{ {forward}; }}; }};'
            for zone in self.zones
        ]
        config.write_text(
            "\n".join(
                [
                    "options {",
                    f'  directory "{self.workdir}";',
                    f'  pid-file "{self.workdir / "named.pid"}";',
                    f'  session-keyfile "{self.workdir / "session.key"}";',
                    f'  managed-keys-directory "{self.workdir}";',
                    f"  listen-on port {port} {{ {self.address}; }};",
                    "  listen-on-v6 { none; };",
                    "  recursion yes;",
                    "  allow-query { 127.0.0.0/8; };",
                    "  allow-recursion { 127.0.0.0/8; };",
                    "  dnssec-validation yes;",
                    "  trust-anchor-telemetry no;",
                    "  empty-zones-enable no;",
                    "  querylog yes;",
                    "  notify no;",
                    "  max-cache-size 32m;",
                    "};",
                    "controls { };",  # no rndc channel on port 953
                    "trust-anchors {",
                    *anchors,
                    "};",
                    f'zone "." {{ type hint; file "{self._root_hints()}"; }};',
                    *zones,
                ]
            )
            + "\n"
        )
        return [binary("named"), "-g", "-4", "-n", "1", "-c", str(config)]

    def _environment(self) -> Mapping[str, str]:
        if self.fake_now is None:
            return {**super()._environment(), "TZ": "UTC"}
        return faketime_environment(self.fake_now, malloc_debug=True)

    def _clock_lines(self) -> list[tuple[int, str, str]]:
        return [
            (_utc_seconds(match[1], "%d-%b-%Y %H:%M:%S"), match[2], match[0])
            for match in self._QUERY_LINE.finditer(self.log_text())
        ]


class Kresd(Validator):
    """Knot Resolver in forward mode (stub mode does not validate), on the real clock.

    A policy rule logs each query's timestamp, the very clock reading kresd validates with
    (lib/layer/validate.c passes qry->timestamp.tv_sec to the RRSIG checks).
    """

    name = "kresd"
    CLOCK = Clock.SHIFTED
    BINARIES = ("kresd",)
    PRODUCT = "Knot Resolver"
    VERSION_COMMAND = ("kresd", "--version")
    VERSION_PATTERN = r"Knot Resolver, version (\S+)"
    _QUERY_LINE = re.compile(r"^watchdog-lab clock (\d+)\.\d+ (\S+)$", re.M)

    def _prepare(self, port: int) -> list[str]:
        config = self.workdir / "kresd.conf"
        # Its control socket lives in the run directory: keep that path short (sun_path limit).
        self._rundir = self._short_directory()
        suffixes = ", ".join(f"todname('{zone}')" for zone in self.zones)
        lines = [
            # Nothing that primes or probes the root, or signals/updates root trust anchors.
            *(
                f"modules.unload('{module}')"
                for module in (
                    "priming",
                    "detect_time_skew",
                    "ta_signal_query",
                    "ta_sentinel",
                    "ta_update",
                )
            ),
            "trust_anchors.remove('.')",
            *(f"trust_anchors.add('{anchor}')" for anchor in self.trust_anchors),
            "modules.load('hints > iterate')",
            f"hints.root_file('{self._root_hints()}')",
            f"cache.open(10 * MB, 'lmdb://{self._rundir / 'cache'}')",
            f"net.listen('{self.address}', {port}, {{ kind = 'dns' }})",
            # qry.timestamp is the clock reading the validate layer judges signatures by.
            "policy.add(function(req, qry)",
            "  io.stderr:write(string.format('watchdog-lab clock %d.%06d %s\\n',",
            "    tonumber(qry.timestamp.tv_sec), tonumber(qry.timestamp.tv_usec),",
            "    kres.dname2str(qry.sname)))",
            "  io.stderr:flush()",
            "end)",
            f"policy.add(policy.suffix(policy.FORWARD({{'{self._upstream_text('@')}'}}),"
            f" {{ {suffixes} }}))",
        ]
        config.write_text("\n".join(lines) + "\n")
        return [binary("kresd"), "-n", "-c", str(config), str(self._rundir)]


class PdnsRecursor(Validator):
    """PowerDNS Recursor with its query log on ("Question" lines carry ts=epoch.millis)."""

    name = "pdns-recursor"
    CLOCK = Clock.SHIFTED
    BINARIES = ("pdns_recursor",)
    PRODUCT = "PowerDNS Recursor"
    VERSION_COMMAND = ("pdns_recursor", "--version")
    VERSION_PATTERN = r"PowerDNS Recursor (\S+)"
    _QUERY_LINE = re.compile(r'^.*msg="Question".*$', re.M)
    _FIELD = re.compile(r'(\w+)="([^"]*)"')

    def _prepare(self, port: int) -> list[str]:
        # The control socket goes in socket-dir: keep that path short (sun_path limit).
        self._socket_dir = self._short_directory()
        anchors = ["clearTA()"]
        for text in self.trust_anchors:
            owner, ds = parse_ds(text)
            anchors.append(f"addTA('{owner}', '{ds.to_text()}')")
        lua = self.workdir / "trust-anchors.lua"
        lua.write_text("\n".join(anchors) + "\n")
        upstream = self._upstream_text(":")
        forwards = ", ".join(f"{zone}={upstream}" for zone in self.zones)
        settings = {
            "local-address": self.address,
            "local-port": str(port),
            "socket-dir": str(self._socket_dir),
            "daemon": "no",
            "disable-syslog": "yes",
            "log-timestamp": "yes",
            "quiet": "no",
            "loglevel": "6",
            "threads": "1",
            "reuseport": "no",
            "dnssec": "validate",
            # Forwarders are exempt from dont-query (which lists 127.0.0.0/8).
            "forward-zones": forwards,
            "lua-config-file": str(lua),
            "hint-file": str(self._root_hints()),
            "security-poll-suffix": "",
            "extended-resolution-errors": "yes",
            "signature-inception-skew": str(self.settings.powerdns_inception_skew),
        }
        (self.workdir / "recursor.conf").write_text(
            "".join(f"{key}={value}\n" for key, value in settings.items())
        )
        return [binary("pdns_recursor"), f"--config-dir={self.workdir}"]

    def _clock_lines(self) -> list[tuple[int, str, str]]:
        lines = []
        for match in self._QUERY_LINE.finditer(self.log_text()):
            fields = dict(self._FIELD.findall(match[0]))
            if "ts" in fields and "qname" in fields:
                lines.append((int(float(fields["ts"])), fields["qname"], match[0]))
        return lines


VALIDATORS: tuple[type[Validator], ...] = (Unbound, Named, Kresd, PdnsRecursor)


def _utc_seconds(text: str, layout: str) -> int:
    return int(datetime.strptime(text, layout).replace(tzinfo=UTC).timestamp())


@functools.cache
def _version(command: tuple[str, ...], pattern: str) -> str:
    done = subprocess.run(
        [binary(command[0]), *command[1:]],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    output = done.stdout + done.stderr
    match = re.search(pattern, output)
    if match is None:
        raise LabError(f"cannot read a version from {' '.join(command)}: {output[:200]!r}")
    return match[1]
