"""Issue 5 acceptance, end to end: the real service announces every crossing on time.

NSD serves a zone signed by ldns-signzone to expire seconds from now, with a small Unbound skew
(skew_min 0, skew_max a few seconds) and a short warn_before. ``dnssec-watchdog --serve`` runs
as a real subprocess from a TOML config written here (static server = NSD, trust anchor = the
lab's DS, resolver = a loopback UDP port the test watches, which must hear nothing) and posts to
two real HTTP receivers on 127.0.0.1: a generic webhook signed with HMAC and a Slack webhook.
The moments the events must arrive at come from the engine (``signature_timeline`` on the
signing dates, with the zone policy the service itself loads), cross-checked against the
DESIGN.md 1 arithmetic.

The regular interval is longer than the gaps between crossings, so an event that arrives on
time can only have come from the scheduler's predicted crossing, not from a regular check.

The per-event delays and the captured bodies go to tests/.e2e-report.txt (and to stdout with
``pytest -s``). The harness at the top is shared with tests/test_service_restart.py.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import hmac
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pytest
from lab import LAB_BINARIES, NsdServer, SignedZone, make_signed_zone, make_zone_keys
from lab import free_port as dns_free_port
from receivers import Receiver, RecordedRequest

from watchdog.assess import signature_timeline
from watchdog.config import load_config

__all__ = [
    "EVENT_HEADER",
    "LIFECYCLE",
    "SIGNATURE_HEADER",
    "Predicted",
    "ServiceProcess",
    "Transition",
    "UdpSink",
    "config_text",
    "count_rows",
    "hmac_valid",
    "predict",
    "wait_until",
    "write_report",
]


# The wire names of the generic webhook (watchdog/payloads.py), spelled out: a rename is a
# breaking change for every receiver, and this test should notice it.
EVENT_HEADER = "x-dnssec-watchdog-event"
SIGNATURE_HEADER = "x-dnssec-watchdog-signature"
WATCHDOG = Path(sys.executable).with_name("dnssec-watchdog")
REPORT = Path(__file__).with_name(".e2e-report.txt")
_U32 = 1 << 32

ZONE = "e2e.test."
HMAC_ENV = "E2E_WEBHOOK_HMAC"
HMAC_SECRET = "e2e-hmac-key-4f9c2a7d1b"
URL_TOKEN = "T0KEN-e2e-9d8c7b"  # in the webhook path: a secret that must never be logged
LIFETIME = 40  # Unbound skew floor(40 / 10) = 4, capped to SKEW_MAX
EXPIRES_IN = 14
WARN_BEFORE = 6
SKEW_MAX = 3
INTERVAL = 10  # longer than any gap between crossings (7, 7, 3 s)
ON_TIME = 2.0  # issue 5: each event within 2 s of its predicted second


# -- harness (also used by test_service_restart.py) ----------------------------------------------


@dataclass(frozen=True)
class Predicted:
    """The first second of each state, as the engine computes it for the signed zone."""

    warning: int
    strict_fail: int
    skew_exhausted: int
    unbound_skew: int


def predict(zone: SignedZone, config: Path, env: Mapping[str, str]) -> Predicted:
    """The engine's timeline of the zone's signatures under the policy the service loads."""
    policy = load_config(config, env).zones[0].policy
    t = signature_timeline(zone.inception % _U32, zone.expiration % _U32, zone.inception, policy)
    return Predicted(t.warning_at, t.strict_fail_at, t.skew_exhausted_at, t.unbound_skew)


@dataclass(frozen=True)
class Transition:
    """One expected event of the expiry condition: (kind, old -> new)."""

    kind: str
    old: str
    new: str

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> Transition:
        return cls(body["kind"], body["old_severity"], body["new_severity"])

    def __str__(self) -> str:
        return f"{self.kind} {self.old} -> {self.new}"


LIFECYCLE = (
    Transition("raised", "ok", "warning"),
    Transition("raised", "warning", "strict_fail"),
    Transition("raised", "strict_fail", "skew_exhausted"),
    Transition("recovered", "skew_exhausted", "ok"),
)


def config_text(
    *,
    state: Path,
    origin: str,
    server: str,
    anchor: Sequence[str],
    webhooks: Sequence[Mapping[str, str]],
    interval: int,
    warn_before: int,
    skew_max: int,
    resolver: int,
    backoff_cap: int = 2,
    log_level: str = "info",
) -> str:
    """A service config watching ``origin`` on ``server`` alone ("127.0.0.1:port"), trusting
    the ``anchor`` DS records, with nothing outside loopback."""
    hooks = "".join(
        "\n[[webhook]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in hook.items())
        for hook in webhooks
    )
    return f"""\
[watchdog]
state_path = {json.dumps(str(state))}
interval = "{interval}s"
jitter = "0s"
# Static servers and a trust anchor need no resolver; should anything ask one, it asks a
# loopback port the test watches, never /etc/resolv.conf's.
resolver = "127.0.0.1:{resolver}"
query_timeout = "1s"
retries = 1
log_format = "json"
log_level = "{log_level}"
delivery_timeout = "5s"
delivery_backoff_base = "1s"
delivery_backoff_cap = "{backoff_cap}s"

[defaults]
warn_before = "{warn_before}s"
skew_min = 0
skew_max = {skew_max}
renotify = "24h"

[[zone]]
name = "{origin}"
servers = ["{server}"]
trust_anchor = '''
{chr(10).join(anchor)}
'''
{hooks}"""


def hmac_valid(request: RecordedRequest, secret: str) -> tuple[bool, int | None]:
    """(signature matches, signed timestamp) by the documented recipe: the header is
    ``t=<unix>,v1=<hex>`` with v1 = HMAC-SHA256(secret, f"{t}." + body), computed here with
    hmac/hashlib alone, not with the watchdog's own helper."""
    fields = dict(
        part.split("=", 1) for part in request.headers.get(SIGNATURE_HEADER, "").split(",") if part
    )
    if "t" not in fields or "v1" not in fields or not fields["t"].isdigit():
        return False, None
    expected = hmac.new(
        secret.encode(), fields["t"].encode() + b"." + request.body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, fields["v1"]), int(fields["t"])


def wait_until(
    condition: Callable[[], bool],
    *,
    deadline: float,
    what: str,
    alive: Callable[[], str | None] = lambda: None,
) -> None:
    """Poll ``condition`` until wall-clock ``deadline``; fail early if ``alive`` reports death."""
    while not condition():
        problem = alive()
        if problem is not None:
            pytest.fail(f"while waiting for {what}: {problem}")
        if time.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def iso_seconds(text: str) -> int:
    """A body's RFC 3339 UTC timestamp as POSIX seconds, parsed independently of the package."""
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent() -> None:
    # Runs in the child before exec: if pytest itself is killed, so is the service.
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class ServiceProcess:
    """``dnssec-watchdog --serve --config PATH`` as a real process, its JSON log in a file.

    Leaving the ``with`` block kills it if the test did not stop it, so no process outlives
    the test.
    """

    def __init__(self, config: Path, log: Path, env: Mapping[str, str] | None = None) -> None:
        self.config = config
        self.log = log
        # Not under systemd here, whatever runs the tests.
        inherited = {
            k: v
            for k, v in os.environ.items()
            if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
        }
        self.env = inherited | dict(env or {})
        self._process: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None

    def __enter__(self) -> Self:
        assert WATCHDOG.exists(), f"{WATCHDOG} is missing: install the package into the venv"
        with self.log.open("ab") as out:
            self._process = subprocess.Popen(
                [str(WATCHDOG), "--serve", "--config", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                preexec_fn=_die_with_parent,
            )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process is not None and self._process.poll() is None:
            self.kill()

    def died(self) -> str | None:
        """None while it runs; else how it ended, with the end of its log."""
        assert self._process is not None
        if self._process.poll() is None:
            return None
        tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-15:])
        return f"the service exited with {self._process.returncode}:\n{tail}"

    def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM, as systemd stops it; its exit status."""
        return self._end(signal.SIGTERM, timeout)

    def kill(self) -> int:
        """SIGKILL: no flush, no cleanup, as in a crash or an OOM kill."""
        return self._end(signal.SIGKILL, 10.0)

    def _end(self, signum: int, timeout: float) -> int:
        assert self._process is not None
        with contextlib.suppress(ProcessLookupError):
            self._process.send_signal(signum)
        try:
            self.returncode = self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
            pytest.fail(f"the service did not exit within {timeout} s of signal {signum}")
        return self.returncode

    def log_events(self) -> list[dict[str, Any]]:
        """Every JSON log line so far (other lines, if any, are skipped)."""
        events = []
        for line in self.log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict):
                    events.append(event)
        return events


class UdpSink:
    """A UDP port on 127.0.0.1 that answers nothing and counts what it is sent: the resolver of
    the test configs, so a query to a resolver is seen, and never leaves loopback."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.setblocking(False)
        self.port: int = self._socket.getsockname()[1]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self._socket.close()

    def received(self) -> int:
        """How many datagrams arrived so far."""
        count = 0
        with contextlib.suppress(BlockingIOError):
            while True:
                self._socket.recv(4096)
                count += 1
        return count


def count_rows(state: Path, table: str) -> int:
    """Rows in a table of the service's state file, read-only (WAL lets a reader in while it
    runs); 0 before the file or the table exists."""
    if not state.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=1.0)
    except sqlite3.Error:
        return 0
    try:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608
    except sqlite3.Error:
        return 0
    finally:
        conn.close()


def write_report(section: str, lines: Sequence[str]) -> None:
    """Replace this section of tests/.e2e-report.txt (other modules keep theirs) and print it."""
    text = "\n".join(lines)
    print(f"\n== {section} ==\n{text}")
    sections: dict[str, str] = {}
    if REPORT.exists():
        name = None
        for line in REPORT.read_text().splitlines():
            if line.startswith("== ") and line.endswith(" =="):
                name = line[3:-3]
                sections[name] = ""
            elif name is not None:
                sections[name] += line + "\n"
    sections[section] = text + "\n"
    REPORT.write_text("".join(f"== {k} ==\n{v}\n" for k, v in sorted(sections.items())))


# -- the end-to-end test -------------------------------------------------------------------------


@pytest.fixture
def lab_ready(require_binaries: Callable[..., None]) -> None:
    """NSD and the ldns tools are installed (skipped, or failed in CI, otherwise)."""
    require_binaries(*LAB_BINARIES)


@dataclass(frozen=True)
class _Arrival:
    transition: Transition
    predicted: int | None  # None for the recovery, which no engine can predict
    request: RecordedRequest

    @property
    def delay(self) -> float | None:
        return None if self.predicted is None else self.request.received_at - self.predicted


def _body(request: RecordedRequest) -> dict[str, Any]:
    body = json.loads(request.body)
    assert isinstance(body, dict)
    return body


@pytest.mark.realdns
@pytest.mark.slow
def test_service_announces_each_crossing_within_2s_and_the_recovery(
    tmp_path: Path, lab_ready: None
) -> None:
    """A zone running out of signatures gets one webhook per transition, in order (warning,
    strict_fail, skew_exhausted), each within 2 s of the second the engine predicted, then one
    recovery once the zone is re-signed; both webhooks agree on ids, the generic one is
    HMAC-signed at send time, no secret reaches the log, and SIGTERM exits 0."""
    keys = make_zone_keys(tmp_path / "keys", ZONE)
    start = int(time.time())
    expiration = start + EXPIRES_IN
    zone = make_signed_zone(
        tmp_path / "zones", ZONE, inception=expiration - LIFETIME, expiration=expiration, keys=keys
    )
    env = {HMAC_ENV: HMAC_SECRET}
    with contextlib.ExitStack() as stack:
        nsd = stack.enter_context(NsdServer(tmp_path / "nsd", [zone], port=dns_free_port()))
        generic = stack.enter_context(Receiver())
        slack = stack.enter_context(Receiver())
        resolver = stack.enter_context(UdpSink())
        config = tmp_path / "watchdog.toml"
        config.write_text(
            config_text(
                state=tmp_path / "state.sqlite3",
                origin=zone.origin,
                server=f"{nsd.address}:{nsd.port}",
                anchor=zone.ds,
                webhooks=[
                    {
                        "name": "ops",
                        "kind": "generic",
                        "url": generic.url(f"/hook/{URL_TOKEN}"),
                        "hmac_secret_env": HMAC_ENV,
                    },
                    {
                        "name": "chat",
                        "kind": "slack",
                        "url": slack.url(f"/services/{URL_TOKEN}"),
                        "min_severity": "strict_fail",
                    },
                ],
                interval=INTERVAL,
                warn_before=WARN_BEFORE,
                skew_max=SKEW_MAX,
                resolver=resolver.port,
            )
        )
        predicted = predict(zone, config, env)
        # The engine agrees with DESIGN.md 1-2 arithmetic, so the targets below are not merely
        # the code under test agreeing with itself.
        skew = min(max(LIFETIME // 10, 0), SKEW_MAX)
        assert predicted == Predicted(
            expiration - WARN_BEFORE, expiration + 1, expiration + skew + 1, skew
        )
        service = stack.enter_context(ServiceProcess(config, tmp_path / "service.log", env))
        crossings = [predicted.warning, predicted.strict_fail, predicted.skew_exhausted]
        arrivals: list[_Arrival] = []
        for count, (transition, at) in enumerate(zip(LIFECYCLE, crossings, strict=False), 1):
            wait_until(
                lambda n=count: len(generic.requests) >= n,  # type: ignore[misc]
                deadline=at + INTERVAL + 5,
                what=f"event {count} ({transition})",
                alive=service.died,
            )
            arrivals.append(_Arrival(transition, at, generic.requests[count - 1]))

        # Re-sign with the same keys (the DS stays valid) and serve it from a new NSD on the
        # same port; the next regular check sees it and recovers.
        now = int(time.time())
        resigned = make_signed_zone(
            tmp_path / "zones", ZONE, inception=now - 60, expiration=now + 3600, keys=keys, serial=2
        )
        nsd.stop()
        stack.enter_context(NsdServer(tmp_path / "nsd-resigned", [resigned], port=nsd.port))
        served_at = time.time()
        wait_until(
            lambda: len(generic.requests) >= 4,
            deadline=served_at + INTERVAL + 10,
            what="the recovery event",
            alive=service.died,
        )
        arrivals.append(_Arrival(LIFECYCLE[3], None, generic.requests[3]))
        wait_until(
            lambda: len(slack.requests) >= 3,
            deadline=time.time() + 10,
            what="the Slack events",
            alive=service.died,
        )
        status = service.terminate()
        log_text = service.log.read_text(errors="replace")
        log_events = service.log_events()
        resolver_queries = resolver.received()
    generic_requests, slack_requests = generic.requests, slack.requests

    stored = {
        e["event_id"]: datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).timestamp()
        for e in log_events
        if e.get("event") == "alert_fired"
    }
    _report(arrivals, served_at, stored, slack_requests)
    assert status == 0, log_text[-3000:]

    # One event per transition, in order, nothing more (after the flush on SIGTERM too).
    bodies = [_body(r) for r in generic_requests]
    assert [Transition.of(b) for b in bodies] == list(LIFECYCLE)
    assert {b["zone"] for b in bodies} == {ZONE}
    assert {b["condition"] for b in bodies} == {"expiry"}
    assert [b["sequence"] for b in bodies] == [1, 2, 3, 4]
    ids = [r.headers[EVENT_HEADER] for r in generic_requests]
    assert ids == [b["id"] for b in bodies]
    assert len(set(ids)) == 4
    fired = [e for e in log_events if e.get("event") == "alert_fired"]
    assert [e["event_id"] for e in fired] == ids

    # On time: never before the predicted second (the state cannot be seen before it begins),
    # and within 2 s of it.
    for arrival in arrivals[:3]:
        assert arrival.delay is not None
        assert 0 <= arrival.delay <= ON_TIME, (
            f"{arrival.transition}: predicted {arrival.predicted}, arrived "
            f"{arrival.request.received_at:.3f} ({arrival.delay:+.3f} s)"
        )

    # The bodies announce the predicted seconds of the signatures that were served.
    for body in bodies[:3]:
        d = body["deadlines"]
        assert iso_seconds(d["warning_at"]) == predicted.warning
        assert iso_seconds(d["strict_fail_at"]) == predicted.strict_fail
        assert iso_seconds(d["skew_exhausted_at"]) == predicted.skew_exhausted
        assert d["unbound_skew"] == predicted.unbound_skew
        assert iso_seconds(d["signature"]["expiration"]) == expiration
    assert iso_seconds(bodies[3]["deadlines"]["strict_fail_at"]) == resigned.expiration + 1

    # HMAC-SHA256 with the configured key, by the documented recipe, stamped when sent.
    for request in generic_requests:
        valid, signed_at = hmac_valid(request, HMAC_SECRET)
        assert valid, request.headers
        assert signed_at is not None and abs(request.received_at - signed_at) <= 2

    # Slack hears strict_fail and worse, and the recovery of what it heard; same event ids.
    slack_ids = [r.headers[EVENT_HEADER] for r in slack_requests]
    assert slack_ids == ids[1:]
    for request, event_id in zip(slack_requests, slack_ids, strict=True):
        body = _body(request)
        assert body["text"] and body["blocks"]
        assert event_id in json.dumps(body["blocks"])
        assert SIGNATURE_HEADER not in request.headers

    # Secrets never reach the log; nothing was asked of a resolver.
    assert URL_TOKEN not in log_text and HMAC_SECRET not in log_text
    assert resolver_queries == 0
    assert not [e for e in log_events if e.get("level") in ("error", "critical")]


def _report(
    arrivals: Sequence[_Arrival],
    served_at: float,
    stored: Mapping[str, float],
    slack: Sequence[RecordedRequest],
) -> None:
    """Per event: the predicted second, when the service had checked and stored it (its
    alert_fired log line), and when the generic receiver got it."""
    lines = [
        f"{'event':<38}{'predicted second':<22}{'stored':>9}{'arrived':>9}",
        f"{'':<60}{'(s after the predicted second)':>18}",
    ]
    for a in arrivals:
        at = stored.get(a.request.headers[EVENT_HEADER])
        if a.predicted is None:
            lines.append(
                f"{a.transition!s:<38}not predictable: arrived "
                f"{a.request.received_at - served_at:+.3f} s after NSD served the re-signed "
                f"zone (next regular check; interval {INTERVAL} s)"
            )
            continue
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(a.predicted))
        kept = "?" if at is None else f"{at - a.predicted:+.3f}"
        lines.append(f"{a.transition!s:<38}{when:<22}{kept:>9}{a.delay:>+9.3f}")
    lines.append("")
    lines.append("generic body (strict_fail):")
    lines.append(json.dumps(json.loads(arrivals[1].request.body), indent=2))
    headers = {k: v for k, v in arrivals[1].request.headers.items() if k.startswith("x-")}
    lines.append(f"generic headers: {json.dumps(headers)}")
    if slack:
        lines.append("")
        lines.append("slack body (strict_fail):")
        lines.append(json.dumps(json.loads(slack[0].body), indent=2, ensure_ascii=False))
    write_report("service end to end", lines)


def test_service_logs_at_the_configured_level(tmp_path: Path) -> None:
    """log_level = "warning" in the config silences the service's info events (zone_checked,
    service_started) while it runs a check and stops."""
    with UdpSink() as resolver:
        config = tmp_path / "watchdog.toml"
        config.write_text(
            config_text(
                state=tmp_path / "state.sqlite3",
                origin="quiet.test.",
                server=f"127.0.0.1:{dns_free_port()}",  # nothing listens: refused at once
                anchor=[f"quiet.test. IN DS 12345 13 2 {'ab' * 32}"],
                webhooks=[],
                interval=INTERVAL,
                warn_before=WARN_BEFORE,
                skew_max=SKEW_MAX,
                resolver=resolver.port,
                log_level="warning",
            )
        )
        with ServiceProcess(config, tmp_path / "service.log") as service:
            wait_until(
                lambda: count_rows(tmp_path / "state.sqlite3", "zone_summary") >= 1,
                deadline=time.time() + 15,
                what="the first check",
                alive=service.died,
            )
            assert service.terminate() == 0
    levels = Counter(e.get("level") for e in service.log_events())
    assert levels["info"] == 0 and levels["debug"] == 0, service.log.read_text()
