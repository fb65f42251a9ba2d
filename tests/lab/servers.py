"""Authoritative servers of the lab: NSD serving signed or plain zone files on loopback."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import dns.exception
import dns.rcode

from .dnsquery import ask
from .process import Daemon, binary

__all__ = ["NsdServer", "ServedZone"]


class ServedZone(Protocol):
    """Anything with an origin and a zone file: SignedZone, UnsignedZone."""

    @property
    def origin(self) -> str: ...

    @property
    def zone_file(self) -> Path: ...


class NsdServer(Daemon):
    """``nsd -d`` on a loopback address and a free port, serving ``zones``.

    Its config, pid file, zone list and log live in ``workdir``; no database, no remote control,
    no IPv6. start() returns once NSD answers SOA for every zone (timeout ``start_timeout``).
    ``address``/``port`` say where to query it. stop() then start() again serves the zones anew
    on the same port, e.g. after re-signing (SignedZone files are read at start).

        with NsdServer(tmp_path, [zone]) as nsd:
            ask(nsd.address, nsd.port, zone.origin, "SOA", recursion_desired=False)
    """

    name = "nsd"

    def __init__(
        self,
        workdir: Path,
        zones: Sequence[ServedZone],
        *,
        address: str = "127.0.0.1",
        port: int | None = None,
        provide_xfr: bool = False,
        tsig_keys: Mapping[str, tuple[str, str]] | None = None,
    ):
        super().__init__(Path(workdir), address=address, port=port)
        if not zones:
            raise ValueError("NsdServer needs at least one zone")
        self.zones = tuple(zones)
        # provide_xfr: AXFR allowed from 127.0.0.0/8; tsig_keys: origin -> (key name, base64
        # hmac-sha256 secret), a zone listed there transfers only with that key.
        self.provide_xfr = provide_xfr
        self.tsig_keys = dict(tsig_keys or {})

    def _prepare(self, port: int) -> list[str]:
        config = self.workdir / "nsd.conf"
        lines = [
            "server:",
            f"  ip-address: {self.address}@{port}",
            f"  port: {port}",
            '  username: ""',
            '  chroot: ""',
            f'  zonesdir: "{self.workdir}"',
            f'  pidfile: "{self.workdir / "nsd.pid"}"',
            '  database: ""',
            f'  zonelistfile: "{self.workdir / "zone.list"}"',
            f'  xfrdfile: "{self.workdir / "xfrd.state"}"',
            f'  xfrdir: "{self.workdir}"',
            "  server-count: 1",
            "  do-ip4: yes",
            "  do-ip6: no",
            f'  logfile: "{self.log_file}"',
            "  verbosity: 1",
            "remote-control:",
            "  control-enable: no",
        ]
        for name, secret in dict(self.tsig_keys.values()).items():
            lines += [
                "key:",
                f'  name: "{name}"',
                "  algorithm: hmac-sha256",
                f'  secret: "{secret}"',
            ]
        for zone in self.zones:
            lines += ["zone:", f'  name: "{zone.origin}"', f'  zonefile: "{zone.zone_file}"']
            if self.provide_xfr:
                key = self.tsig_keys.get(zone.origin)
                lines.append(f"  provide-xfr: 127.0.0.0/8 {key[0] if key else 'NOKEY'}")
        config.write_text("\n".join(lines) + "\n")
        return [binary("nsd"), "-d", "-c", str(config)]

    def _ready(self) -> bool:
        return all(self._serves(zone.origin) for zone in self.zones)

    def _serves(self, origin: str) -> bool:
        try:
            response = ask(
                self.address, self.port, origin, "SOA", recursion_desired=False, timeout=0.2
            )
        except (dns.exception.DNSException, OSError):
            return False
        return response.rcode() == dns.rcode.NOERROR and bool(response.answer)
