"""Issue 13 acceptance: a real signer loop stops, and the `signer` warning beats the expiry one.

ldns-signzone re-signs a zone every few seconds with a short validity and NSD serves each new
version (restarted on the same port after each re-sign); the real ``dnssec-watchdog --serve``
checks it every second and posts to a real HTTP receiver on 127.0.0.1. Once the watchdog has
learned the cadence, re-signing stops: the ``signer`` condition must be raised before the
expiry warning (10% of the lifetime before expiry), and both recover once the zone is re-signed.
How many seconds earlier goes to stdout and tests/.e2e-signer-stall.txt.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from lab import LAB_BINARIES, NsdServer, ZoneKeys, make_signed_zone, make_zone_keys
from lab import free_port as dns_free_port
from receivers import Receiver
from service_harness import ServiceProcess, UdpSink, WatchedZone, wait_until, write_config
from webhook_events import EXPIRY_SETTINGS, json_body

ZONE = "stall.test."
LIFETIME = 60  # validity of each signature
RESIGN = 4  # the signer's cadence
LEARN = 6  # re-signs before it stops: enough refreshes seen to leave "learning"
REPORT = Path(__file__).resolve().parents[1] / ".e2e-signer-stall.txt"


def _events(receiver: Receiver, condition: str) -> list[tuple[float, dict[str, object]]]:
    found = []
    for request in receiver.requests:
        body = json_body(request)
        if body["condition"] == condition:
            found.append((request.received_at, body))
    return found


class _Signer:
    """Re-signs the zone with fresh dates and has NSD serve the new file."""

    def __init__(self, workdir: Path, keys: ZoneKeys, served: Path, nsd: NsdServer) -> None:
        self.workdir, self.keys, self.served, self.nsd = workdir, keys, served, nsd
        self.serial = 1

    def resign(self) -> int:
        self.serial += 1
        now = int(time.time())
        zone = make_signed_zone(
            self.workdir,
            ZONE,
            inception=now,
            expiration=now + LIFETIME,
            keys=self.keys,
            serial=self.serial,
        )
        shutil.copyfile(zone.zone_file, self.served)
        self.nsd.stop()
        self.nsd.start()
        return now


@pytest.mark.realdns
@pytest.mark.slow
def test_signer_warning_arrives_before_the_expiry_warning(
    tmp_path: Path, require_binaries: Callable[..., None]
) -> None:
    """A signer re-signing every 4 s stops: the service raises `signer` (at the receiver)
    before `expiry` warning, names the cadence in the summary, and both recover on re-sign."""
    require_binaries(*LAB_BINARIES)
    keys = make_zone_keys(tmp_path / "keys", ZONE)
    now = int(time.time())
    first = make_signed_zone(
        tmp_path / "zones", ZONE, inception=now, expiration=now + LIFETIME, keys=keys
    )
    with contextlib.ExitStack() as stack:
        nsd = stack.enter_context(NsdServer(tmp_path / "nsd", [first], port=dns_free_port()))
        receiver = stack.enter_context(Receiver())
        resolver = stack.enter_context(UdpSink())
        config = write_config(
            tmp_path,
            resolver.port,
            [WatchedZone(first.origin, first.ds)],
            servers=[f"{nsd.address}:{nsd.port}"],
            settings={**EXPIRY_SETTINGS, "interval": "1s"},
            defaults={"unreachable_after": 5},
            webhook_url=receiver.url("/hook"),
        )
        service = stack.enter_context(ServiceProcess(config))
        signer = _Signer(tmp_path / "zones", keys, first.zone_file, nsd)
        for _ in range(LEARN):
            time.sleep(RESIGN)
            last = signer.resign()
        stopped = time.time()
        expiry_warning_due = last + LIFETIME - LIFETIME // 10  # warn_before 10%
        wait_until(
            lambda: bool(_events(receiver, "expiry")),
            deadline=last + LIFETIME + 10,
            what="the expiry warning",
            alive=service.died,
        )
        signer_events = _events(receiver, "signer")
        assert signer_events, f"no signer event before the expiry warning; got {receiver.requests}"
        signer_at, signer_body = signer_events[0]
        expiry_at, expiry_body = _events(receiver, "expiry")[0]
        assert (signer_body["kind"], signer_body["new_severity"]) == ("raised", "warning")
        assert (expiry_body["kind"], expiry_body["new_severity"]) == ("raised", "warning")
        assert signer_at < expiry_at
        summary = str(signer_body["summary"])
        assert "signer stalled" in summary and "refreshed at least every" in summary
        assert "before the expiry warning" in summary
        assert any(f["code"] == "signer_stalled" for f in signer_body["findings"])  # type: ignore[attr-defined, index]

        signer.resign()
        wait_until(
            lambda: any(b["resolved"] for _, b in _events(receiver, "signer")),
            deadline=time.time() + 15,
            what="the signer recovery",
            alive=service.died,
        )
        assert service.stop() == 0
    lead = expiry_at - signer_at
    figures = (
        f"signer stall e2e: re-signed every {RESIGN} s with {LIFETIME} s validity, stopped at "
        f"{stopped:.1f}; signer warning received {signer_at - stopped:.1f} s after the stop, "
        f"expiry warning {expiry_at - stopped:.1f} s after it (due at "
        f"{expiry_warning_due - stopped:.1f} s): the signer warning came {lead:.1f} s earlier\n"
    )
    print(figures)
    REPORT.write_text(figures)
