"""The benchmark's servers, all on port 53 of loopback addresses (DNSViz cannot take a port).

NSD serves every generated zone and the parent ``bench.`` on 127.0.53.1 and 127.0.53.2. Unbound
on 127.0.53.3 resolves through them: a stub zone for ``bench.`` and root hints naming
127.0.53.1 (which refuses the root), so a resolver question can never leave 127.0.0.0/8.
Both come from the test lab's Daemon (own process group, bounded start and stop).
"""

from __future__ import annotations

import socket
from pathlib import Path

import dns.exception
import dns.rcode
from lab.dnsquery import ask
from lab.process import Daemon, binary

from .gen import PARENT, SERVERS, ZoneSet, zone_name

__all__ = ["RESOLVER", "BenchNsd", "BenchUnbound", "port_53_free"]

RESOLVER = "127.0.53.3"
PORT = 53


def port_53_free(address: str) -> bool:
    """Whether UDP port 53 on ``address`` can be bound (nothing else serves there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((address, PORT))
        except OSError:
            return False
    return True


class BenchNsd(Daemon):
    """``nsd -d`` on port 53 of both SERVERS addresses, serving the first ``count`` zones and the
    parent (rate limiting off: the benchmark is one client asking very fast)."""

    name = "nsd"
    start_timeout = 120.0  # loading 10,000 zone files takes a while
    stop_timeout = 10.0
    start_attempts = 1

    def __init__(self, workdir: Path, zones: ZoneSet, count: int) -> None:
        super().__init__(Path(workdir).resolve(), address=SERVERS[0], port=PORT)
        self.zones = zones
        self.count = min(count, zones.count)

    def _prepare(self, port: int) -> list[str]:
        config = self.workdir / "nsd.conf"
        lines = ["server:"]
        lines += [f"  ip-address: {address}@{port}" for address in SERVERS]
        lines += [
            f"  port: {port}",
            '  username: ""',
            '  chroot: ""',
            f'  zonesdir: "{self.zones.root}"',
            f'  pidfile: "{self.workdir / "nsd.pid"}"',
            '  database: ""',
            f'  zonelistfile: "{self.workdir / "zone.list"}"',
            f'  xfrdfile: "{self.workdir / "xfrd.state"}"',
            f'  xfrdir: "{self.workdir}"',
            "  server-count: 1",
            "  do-ip4: yes",
            "  do-ip6: no",
            "  rrl-ratelimit: 0",
            "  rrl-whitelist-ratelimit: 0",
            f'  logfile: "{self.log_file}"',
            "  verbosity: 0",
            "remote-control:",
            "  control-enable: no",
            "zone:",
            f'  name: "{PARENT}"',
            f'  zonefile: "{self.zones.parent_file}"',
        ]
        for i in range(self.count):
            lines += ["zone:", f'  name: "{zone_name(i)}"']
            lines += [f'  zonefile: "{self.zones.signed_file(i)}"']
        config.write_text("\n".join(lines) + "\n")
        return [binary("nsd"), "-d", "-c", str(config)]

    def _ready(self) -> bool:
        names = {PARENT, zone_name(0), zone_name(self.count - 1)}
        return all(_serves(address, name) for address in SERVERS for name in names)


class BenchUnbound(Daemon):
    """A non-validating Unbound on RESOLVER port 53 (DNSViz validates itself) with ``bench.`` as a
    stub zone on the two NSD addresses; its own cache only."""

    name = "unbound"
    start_timeout = 20.0
    start_attempts = 1

    def __init__(self, workdir: Path) -> None:
        super().__init__(Path(workdir).resolve(), address=RESOLVER, port=PORT)

    def _prepare(self, port: int) -> list[str]:
        hints = self.workdir / "root.hints"
        hints.write_text(
            f". 3600000 IN NS a.root.bench-lab.\na.root.bench-lab. 3600000 IN A {SERVERS[0]}\n"
        )
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
            f'  logfile: "{self.log_file}"',
            "  verbosity: 0",
            "  num-threads: 1",
            "  so-reuseport: no",
            f'  root-hints: "{hints}"',
            "  do-not-query-localhost: no",
            '  module-config: "iterator"',
            "  qname-minimisation: no",
            "  prefetch: no",
            "  msg-cache-size: 64m",
            "  rrset-cache-size: 128m",
            "  ratelimit: 0",
            "remote-control:",
            "  control-enable: no",
            "stub-zone:",
            f'  name: "{PARENT}"',
            *(f"  stub-addr: {address}@{PORT}" for address in SERVERS),
        ]
        config.write_text("\n".join(lines) + "\n")
        return [binary("unbound"), "-d", "-c", str(config)]

    def _ready(self) -> bool:
        return _serves(self.address, PARENT, recursive=True)


def _serves(address: str, origin: str, *, recursive: bool = False) -> bool:
    try:
        response = ask(address, PORT, origin, "SOA", recursion_desired=recursive, timeout=0.5)
    except (dns.exception.DNSException, OSError):
        return False
    return response.rcode() == dns.rcode.NOERROR and bool(response.answer)
