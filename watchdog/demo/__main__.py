"""``make demo``: watch a zone cross every threshold, then recover, in about two minutes.

Everything runs in this one process on 127.0.0.1 and needs no Debian package: the pure-Python
authoritative server (watchdog.demo.authserver) serves a zone signed to expire shortly, a small
webhook receiver prints each event as it arrives, and the real watch service (watchdog.service.loop)
watches the zone with a demo config. When the zone has gone all the way to skew-exhausted, the
demo re-signs it and waits for the recovery; then everything stops and the temporary files go.

    python -m watchdog.demo           # about 2 minutes
    python -m watchdog.demo --fast    # about 25 seconds (CI)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from watchdog.config.parse import load_config
from watchdog.engine.timeutil import rfc3339
from watchdog.service.logsetup import Redactor, configure_logging
from watchdog.service.loop import Service
from watchdog.service.store import Store

from .authserver import AuthServer
from .receiver import ReceivedRequest, WebhookReceiver
from .signer import DEMO_RECORDS, ds_records, make_keys, sign_zone

ZONE = "demo.example."
EXPECTED = [
    ("raised", "warning"),
    ("raised", "strict_fail"),
    ("raised", "skew_exhausted"),
    ("recovered", "ok"),
]


@dataclass(frozen=True)
class Timing:
    """The demo's clock: seconds from start for each moment (and the settings that give them)."""

    expires_in: int  # E - start
    lifetime: int  # E - I
    warn_before: int
    skew_max: int  # Unbound skew = min(lifetime/10, skew_max) with skew_min 0
    interval: int
    budget: int  # give up after this many seconds

    @classmethod
    def choose(cls, fast: bool) -> Timing:
        if fast:
            return cls(expires_in=8, lifetime=60, warn_before=5, skew_max=5, interval=3, budget=60)
        return cls(
            expires_in=40, lifetime=300, warn_before=30, skew_max=30, interval=10, budget=170
        )


def _config_text(state: Path, port: int, ds: list[str], url: str, t: Timing) -> str:
    anchor = "\n".join(f"{ZONE} IN DS {d}" for d in ds)
    return f"""\
[watchdog]
state_path = "{state}"
interval = "{t.interval}s"
jitter = "0s"
resolver = "127.0.0.1:{port}"
query_timeout = "1s"
retries = 1
log_format = "console"
log_level = "warning"
metrics_listen = "127.0.0.1:0"
delivery_backoff_base = "1s"
delivery_backoff_cap = "5s"

[defaults]
warn_before = "{t.warn_before}s"
skew_min = 0
skew_max = {t.skew_max}
renotify = "24h"

[[zone]]
name = "{ZONE}"
servers = ["127.0.0.1:{port}"]
trust_anchor = '''
{anchor}
'''

[[webhook]]
name = "demo-receiver"
kind = "generic"
url = "{url}"
min_severity = "warning"
"""


class _Printer:
    """Prints each webhook event readably and remembers what arrived."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.events: list[tuple[str, str]] = []
        self.arrived = asyncio.Event()

    def __call__(self, request: ReceivedRequest) -> None:
        try:
            body = json.loads(request.body)
            kind, new = body["kind"], body["new_severity"]
            old, summary = body["old_severity"], body["summary"]
        except (ValueError, KeyError, TypeError):
            print(f"  [receiver] a request that is not an event ({len(request.body)} bytes)")
            return
        self.events.append((kind, new))
        offset = request.received_at - self.start
        print(
            f"  [webhook +{offset:5.1f}s] {kind.upper():<9} {old} -> {new}\n"
            f"                    {summary}",
            flush=True,
        )
        self.arrived.set()

    async def wait_for(self, count: int, deadline: float) -> bool:
        while len(self.events) < count:
            self.arrived.clear()
            remaining = deadline - time.time()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), remaining)
        return True


async def _print_status_address(service: Service) -> None:
    """The status page's address, once the listener is up (it stays up while the demo runs)."""
    for _ in range(50):
        if service.telemetry.listening is not None:
            host, port = service.telemetry.listening
            print(f"status page: http://{host}:{port}/ (while the demo runs)\n", flush=True)
            return
        await asyncio.sleep(0.1)
    print("status page: not listening (see the log)\n", flush=True)


async def run_demo(fast: bool, workdir: Path) -> int:
    t = Timing.choose(fast)
    start = time.time()
    now = int(start)
    keys = make_keys()
    expiration = now + t.expires_in
    zone = sign_zone(ZONE, DEMO_RECORDS, keys, expiration - t.lifetime, expiration, "nsec")
    skew = min(t.lifetime // 10, t.skew_max)
    print(f"demo zone {ZONE} signed until {rfc3339(expiration)}; predicted:")
    print(f"  warning         at {rfc3339(expiration - t.warn_before)}")
    print(f"  strict fail     at {rfc3339(expiration + 1)}  (BIND, Knot Resolver, PowerDNS)")
    print(f"  skew exhausted  at {rfc3339(expiration + skew + 1)}  (Unbound, skew {skew} s)")
    printer = _Printer(start)
    redactor = Redactor()
    configure_logging("console", redactor, level=logging.WARNING)
    async with AuthServer([zone]) as server, WebhookReceiver(printer) as receiver:
        redactor.update([receiver.url])
        config_path = workdir / "demo.toml"
        config_path.write_text(
            _config_text(
                workdir / "state.sqlite3", server.port, ds_records(keys, ZONE), receiver.url, t
            )
        )
        config = load_config(config_path)
        with Store(config.service.state_path) as store:
            service = Service(config, store, redactor=redactor)
            task = asyncio.create_task(service.run())
            print(
                f"watching {ZONE} on 127.0.0.1:{server.port}, checking every {t.interval}s "
                "and at each predicted crossing",
                flush=True,
            )
            await _print_status_address(service)
            ok = await printer.wait_for(3, start + t.budget - t.interval - 5)
            if ok:
                now = int(time.time())
                print(
                    f"\nre-signing {ZONE} (valid for another hour); waiting for recovery\n",
                    flush=True,
                )
                server.replace_zone(
                    sign_zone(ZONE, DEMO_RECORDS, keys, now - 60, now + 3600, "nsec", serial=2)
                )
                ok = await printer.wait_for(4, start + t.budget)
            service.stop()
            await asyncio.wait_for(task, 30)
    got = printer.events
    if got[: len(EXPECTED)] == EXPECTED and ok:
        print(f"\nall four events arrived in order in {time.time() - start:.0f}s; demo done")
        return 0
    print(f"\ndemo FAILED: expected {EXPECTED}, got {got}", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m watchdog.demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--fast", action="store_true", help="compressed timeline (~25 s)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dnssec-watchdog-demo-") as tmp:
        try:
            return asyncio.run(run_demo(args.fast, Path(tmp)))
        except KeyboardInterrupt:
            print("\ninterrupted; cleaned up")
            return 130


if __name__ == "__main__":
    sys.exit(main())
