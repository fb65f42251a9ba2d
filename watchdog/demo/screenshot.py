"""The README's picture of the status page: ``python -m watchdog.demo.screenshot [PNG]``.

Everything on 127.0.0.1, in this process: the demo's signer and authoritative server serve a
few zones in different states (healthy, warning, a secondary that stopped following its
primary, expired, a tampered signature, a server that does not answer), the real watch service
checks them and serves its status page, two webhooks show a delivery and a retry, and Debian's
headless chromium takes the picture of ``/`` (and of one zone page with ``--zone-png``).
Default output: docs/status.png.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import dns.zone

from watchdog.config.parse import load_config
from watchdog.demo.authserver import AuthServer
from watchdog.demo.browser import BrowserError, screenshot
from watchdog.demo.faults import Fault, FaultKind
from watchdog.demo.receiver import WebhookReceiver
from watchdog.demo.signer import DEMO_RECORDS, ZoneKeys, ds_records, make_keys, sign_zone
from watchdog.service.logsetup import Redactor, configure_logging
from watchdog.service.loop import Service
from watchdog.service.store import Store

__all__ = ["main"]

DAY, HOUR = 86400, 3600
_WAIT = 60.0  # seconds for every zone's first check


def _signed(
    name: str, keys: ZoneKeys, expires_in: int, tampered: Sequence[tuple[str, str]] = ()
) -> dns.zone.Zone:
    now = int(time.time())
    start, end = now - 13 * DAY, now + expires_in
    return sign_zone(name, DEMO_RECORDS, keys, start, end, "nsec", tampered=tampered)


def _zone_toml(name: str, servers: Sequence[int], keys: ZoneKeys) -> str:
    anchor = "\n".join(f"{name} IN DS {d}" for d in ds_records(keys, name))
    listed = ", ".join(f'"127.0.0.1:{p}"' for p in servers)
    return f"[[zone]]\nname = \"{name}\"\nservers = [{listed}]\ntrust_anchor = '''\n{anchor}\n'''\n"


async def _run(png: Path, zone_png: Path | None, workdir: Path) -> int:
    keys = {n: make_keys() for n in ("demo", "shop", "stale", "expired", "broken", "dark")}
    primary = [
        _signed("demo.example.", keys["demo"], 20 * HOUR),
        _signed("shop.example.", keys["shop"], 12 * DAY),
        _signed("stale.example.", keys["stale"], 12 * DAY),
        _signed("expired.example.", keys["expired"], -3 * HOUR),
        _signed("broken.example.", keys["broken"], 9 * DAY, tampered=[("@", "SOA")]),
    ]
    secondary = [_signed("stale.example.", keys["stale"], 30 * HOUR)]  # stopped following
    dark = [_signed("dark.example.", keys["dark"], 9 * DAY)]
    async with (
        AuthServer(primary) as one,
        AuthServer(secondary) as two,
        AuthServer(dark, faults=[Fault(FaultKind.DROP)]) as three,
        WebhookReceiver(lambda request: None) as receiver,
    ):
        zones = [
            _zone_toml("demo.example.", [one.port], keys["demo"]),
            _zone_toml("shop.example.", [one.port], keys["shop"]),
            _zone_toml("stale.example.", [one.port, two.port], keys["stale"]),
            _zone_toml("expired.example.", [one.port], keys["expired"]),
            _zone_toml("broken.example.", [one.port], keys["broken"]),
            _zone_toml("dark.example.", [three.port], keys["dark"]),
        ]
        config_path = workdir / "screenshot.toml"
        config_path.write_text(
            f'[watchdog]\nstate_path = "{workdir / "state.sqlite3"}"\ninterval = "15m"\n'
            f'jitter = "0s"\nresolver = "127.0.0.1:{one.port}"\nquery_timeout = "1s"\n'
            f'retries = 1\nlog_level = "error"\nmetrics_listen = "127.0.0.1:0"\n'
            'delivery_backoff_base = "30s"\n\n'
            + "\n".join(zones)
            + f'\n[[webhook]]\nname = "ops"\nkind = "generic"\nurl = "{receiver.url}"\n'
            'min_severity = "warning"\n\n[[webhook]]\nname = "pager"\nkind = "generic"\n'
            'url = "http://127.0.0.1:9/"\nmin_severity = "strict_fail"\n'
        )
        config = load_config(config_path)
        redactor = Redactor()
        configure_logging("console", redactor, level=logging.ERROR)
        with Store(config.service.state_path) as store:
            service = Service(config, store, redactor=redactor)
            task = asyncio.create_task(service.run())
            try:
                deadline = time.monotonic() + _WAIT
                while any(z.report is None for z in service.status_board.snapshot(0).zones):
                    if time.monotonic() > deadline:
                        print("screenshot: the zones were not all checked in time", file=sys.stderr)
                        return 1
                    await asyncio.sleep(0.5)
                await asyncio.sleep(7)  # a delivery attempt each, and the board's outbox read
                assert service.telemetry.listening is not None, "the listener is not up"
                host, port = service.telemetry.listening
                base = f"http://{host}:{port}"
                await asyncio.to_thread(screenshot, base + "/", png, (1180, 560))
                print(f"wrote {png}")
                if zone_png is not None:
                    page = base + "/zones/stale.example."
                    await asyncio.to_thread(screenshot, page, zone_png, (1180, 1250))
                    print(f"wrote {zone_png}")
            finally:
                service.stop()
                await asyncio.wait_for(task, 30)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m watchdog.demo.screenshot", description=__doc__)
    parser.add_argument("png", nargs="?", type=Path, default=Path("docs/status.png"))
    parser.add_argument("--zone-png", type=Path, help="also a zone page (stale.example.)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dnssec-watchdog-shot-") as tmp:
        try:
            return asyncio.run(_run(args.png.resolve(), args.zone_png, Path(tmp)))
        except BrowserError as exc:
            print(f"screenshot: {exc}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
