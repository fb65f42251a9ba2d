"""Issue 17 acceptance: hostile webhook receivers beside a good one cannot silence the service.

The real service (``dnssec-watchdog --serve``, a subprocess) sends every event to five
receivers on 127.0.0.1: a good one, and four that misbehave as found in the wild:

- ``retry-after``: 429 with ``Retry-After: \\xb3`` (one non-ASCII byte; "³".isdigit() is true,
  int("³") raises: this killed the notifier before);
- ``endless``: 200 and a body that never ends (a raw socket);
- ``error``: 500 forever;
- ``silent``: reads the request and never answers (a raw socket).

The good receiver gets every event, the ones of the first check and the one of a zone added by
a reload after the hostile lanes failed twice each; the service stays up with its memory within
a loose bound; the log names each bad receiver, and no receiver URL appears in it.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from receivers import RawReceiver, Receiver, Reply
from service_harness import DAY, HOUR, ServiceProcess, ZoneServer, signed, write_config

FIRST = ("warn.test.", "fail.test.")
ADDED = "later.test."
HOSTILE = ("retry-after", "endless", "error", "silent")
_RSS_SLACK_KB = 64 * 1024  # loose: a leak per attempt would grow without bound, not by this


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def _zones_heard(receiver: Receiver) -> set[str]:
    return {json.loads(r.body)["zone"] for r in receiver.requests}


def _wait_heard(receiver: Receiver, zones: set[str]) -> None:
    deadline = time.monotonic() + 60
    while (heard := _zones_heard(receiver)) != zones:
        assert time.monotonic() < deadline, f"after 60 s the good receiver heard of {heard}"
        time.sleep(0.05)


def test_hostile_receivers_cannot_silence_the_good_one(tmp_path: Path) -> None:
    """Good receiver: every event, before and after a reload; the service stays up, bounded;
    each hostile receiver is named in the log; no URL is."""
    zones = {
        "warn.test.": signed("warn.test.", expires_in=12 * HOUR),
        "fail.test.": signed("fail.test.", expires_in=-60),
        ADDED: signed(ADDED, expires_in=12 * HOUR),
        "ok.test.": signed("ok.test.", expires_in=5 * DAY),
    }
    with (
        ZoneServer(list(zones.values())) as dns,
        Receiver(default=Reply(200)) as good,
        Receiver(default=Reply(429, headers={"Retry-After": "\xb3"})) as retry_after,
        RawReceiver("endless") as endless,
        Receiver(default=Reply(500)) as error,
        RawReceiver("silent") as silent,
    ):
        urls = {
            "good": good.url("/good-secret-path"),
            "retry-after": retry_after.url("/retry-after-secret-path"),
            "endless": endless.url("/endless-secret-path"),
            "error": error.url("/error-secret-path"),
            "silent": silent.url("/silent-secret-path"),
        }
        hooks = [
            {"name": name, "kind": "generic", "url": url, "min_severity": "warning"}
            for name, url in urls.items()
        ]
        settings = {"interval": "1h", "delivery_timeout": "1s"}

        def config(names: list[str]) -> Path:
            watched = [zones[n] for n in names]
            return write_config(tmp_path, dns.port, watched, webhooks=hooks, settings=settings)

        path = config([*FIRST, "ok.test."])
        with ServiceProcess(path) as service:
            for name in HOSTILE:
                if name != "endless":  # a 200 is delivered: its body is never read
                    service.wait_for_log("delivery_failed", webhook=name, timeout=60)
            _wait_heard(good, set(FIRST))
            rss_before = _rss_kb(service._require().pid)
            mark = service.mark()
            for name in ("retry-after", "error", "silent"):  # a retry failed too
                service.wait_for_log("delivery_failed", webhook=name, after=mark, timeout=60)
            config([*FIRST, "ok.test.", ADDED])
            service.send(signal.SIGHUP)
            service.wait_for_log("config_reloaded", after=mark, timeout=60)
            _wait_heard(good, {*FIRST, ADDED})  # the added zone's warning came too
            assert service.died() is None
            rss_after = _rss_kb(service._require().pid)
            assert service.stop() == 0
        raw = "".join(service.raw)
    assert rss_after - rss_before < _RSS_SLACK_KB, (rss_before, rss_after)
    assert not service.events("task_crashed")
    failed = service.events("delivery_failed")
    named = {e["webhook"] for e in failed}
    assert named == {"retry-after", "error", "silent"}
    assert service.events("delivery_sent", webhook="endless")  # named too: a 200 is delivered
    errors = {e["webhook"]: e["error"] for e in failed}
    assert errors["retry-after"] == "HTTP 429"
    assert errors["error"] == "HTTP 500"
    assert "timeout" in errors["silent"]
    assert endless.connections >= 1 and silent.connections >= 1
    for url in urls.values():
        assert url.split("/")[-1] not in raw
