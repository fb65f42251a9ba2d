"""Alert latency: from a predicted threshold crossing to the webhook request arriving.

A zone signed with a signature that expires ~45 s from now is served by NSD on a free
loopback port; the real service (``dnssec-watchdog --serve``) watches it with warn_before
20 s and one generic webhook to a loopback HTTP receiver. The service checks the zone at start,
predicts warning_at = E - 20 and strict_fail_at = E + 1, sleeps, and fires at each crossing.
Delay = arrival time of the webhook request - the crossing second (as predicted by the engine
from the signature itself, so the benchmark does not trust the service's own figures).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from lab import NsdServer, make_signed_zone
from receivers import Receiver

__all__ = ["measure"]

_ZONE = "alert.bench-alert."
_LIFETIME = 45  # seconds from now to the signature's expiration
_WARN = 20  # warn_before, seconds
_STOP_TIMEOUT = 15.0


def _config(path: Path, state: Path, server: str, anchor: str, url: str) -> None:
    path.write_text(
        "\n".join(
            [
                "[watchdog]",
                f'state_path = "{state}"',
                'interval = "15m"',
                'jitter = "1s"',
                'log_format = "json"',
                'resolver = "127.0.0.1:9"',  # never used (servers and anchor are given)
                "[[zone]]",
                f'name = "{_ZONE}"',
                f'servers = ["{server}"]',
                f'trust_anchor = "{anchor}"',
                f'warn_before = "{_WARN}s"',
                "[[webhook]]",
                'name = "bench"',
                'kind = "generic"',
                f'url = "{url}"',
                'min_severity = "warning"',
                "",
            ]
        )
    )


def measure(python: Path, work: Path) -> dict[str, Any]:
    """Run the service until both crossings have been announced (bounded), return delays."""
    work.mkdir(parents=True, exist_ok=True)
    for stale in work.glob("state.sqlite3*"):
        stale.unlink()
    now = int(time.time())
    expiration = now + _LIFETIME
    zone = make_signed_zone(work / "zone", _ZONE, inception=now - 3600, expiration=expiration)
    crossings = {"warning": expiration - _WARN, "strict_fail": expiration + 1}
    deadline = time.monotonic() + _LIFETIME + 30
    with NsdServer(work / "nsd", [zone]) as nsd, Receiver() as receiver:
        config = work / "config.toml"
        _config(
            config, work / "state.sqlite3", f"{nsd.address}:{nsd.port}", zone.ds[0], receiver.url()
        )
        log = (work / "service.log").open("w")
        service = subprocess.Popen(
            [str(python.parent / "dnssec-watchdog"), "--serve", "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"},
            start_new_session=True,
        )
        try:
            while time.monotonic() < deadline and len(receiver.requests) < len(crossings):
                if service.poll() is not None:
                    break
                time.sleep(0.1)
        finally:
            service.send_signal(signal.SIGTERM)
            try:
                service.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.killpg(service.pid, signal.SIGKILL)
                service.wait(timeout=_STOP_TIMEOUT)
            log.close()
        delays = {}
        for request in receiver.requests:
            body = json.loads(request.body)
            severity = str(body.get("new_severity"))
            if severity in crossings and severity not in delays:
                delays[severity] = round(request.received_at - crossings[severity], 3)
    return {
        "zone": _ZONE,
        "signature_lifetime_s": _LIFETIME + 3600,
        "warn_before_s": _WARN,
        "delays_s": delays,
        "webhooks_received": len(receiver.requests),
        "service_exit": service.returncode,
    }
