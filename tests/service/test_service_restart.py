"""Issue 5 acceptance: a crash and a receiver outage lose no event and invent no new id.

The real service (``dnssec-watchdog --serve``, a subprocess) watches an NSD zone whose signatures
run out within seconds, and posts to two real receivers on 127.0.0.1 (generic with HMAC, and
Slack). The story, in three runs of the service on one state file:

1. both receivers are down while the warning, strict_fail and skew_exhausted events fire; the
   service is killed with SIGKILL;
2. the receivers are up, the generic one holds the first request without answering; the
   service is killed again while that request is in flight;
3. the zone has been re-signed; the service starts a third time, sends everything still
   pending and announces the recovery; SIGTERM stops it with exit status 0.

Every transition must reach each receiver, always under one event id (X-DNSSEC-Watchdog-Event
and the body agree). Delivering the same id twice is allowed (at-least-once: the request held
in step 2 must come again) and is counted in tests/.e2e-report.txt; two ids for one transition
are not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lab import LAB_BINARIES, NsdServer, make_signed_zone, make_zone_keys
from lab import free_port as dns_free_port
from receivers import Receiver, RecordedRequest, Reply, free_port
from service_harness import (
    ServiceProcess,
    UdpSink,
    WatchedZone,
    count_rows,
    signed,
    wait_until,
    write_config,
)
from webhook_events import (
    EVENT_HEADER,
    EXPIRY_SETTINGS,
    LIFECYCLE,
    Transition,
    expiry_defaults,
    hmac_valid,
    json_body,
    predict,
    write_report,
)

from watchdog.config.parse import load_config
from watchdog.demo.authserver import AuthServer
from watchdog.errors import StateError
from watchdog.service.logsetup import Redactor
from watchdog.service.loop import Service
from watchdog.service.store import CycleResult, Store

ZONE = "restart.test."
HMAC_ENV = "RESTART_WEBHOOK_HMAC"
HMAC_SECRET = "restart-hmac-key-71c3e0"
LIFETIME = 40
EXPIRES_IN = 10
WARN_BEFORE = 5
SKEW_MAX = 2


def _outbox_events(state: Path) -> int:
    """Distinct events in the service's outbox (two webhooks: two rows per event)."""
    return count_rows(state, "outbox") // 2


def _fired(run: ServiceProcess) -> list[str]:
    """The event ids a run of the service announced (logged once stored)."""
    return [e["event_id"] for e in run.events("alert_fired")]


def _whole(requests: list[RecordedRequest]) -> list[RecordedRequest]:
    """The requests that arrived whole: SIGKILL can cut one off after its headers, and a
    receiver discards a body shorter than its Content-Length; that is no delivery."""
    return [r for r in requests if len(r.body) == int(r.headers.get("content-length", -1))]


@pytest.mark.realdns
@pytest.mark.slow
def test_crash_and_receiver_outage_deliver_every_event_under_one_id(
    tmp_path: Path, require_binaries: Callable[..., None]
) -> None:
    """Events that fired while the receivers were down, and one cut off in flight by SIGKILL,
    all arrive after restarts, each transition under exactly one id on both webhooks; the
    re-sent request is the same bytes with the same id; the restarts fire no event again."""
    require_binaries(*LAB_BINARIES)
    keys = make_zone_keys(tmp_path / "keys", ZONE)
    expiration = int(time.time()) + EXPIRES_IN
    zone = make_signed_zone(
        tmp_path / "zones", ZONE, inception=expiration - LIFETIME, expiration=expiration, keys=keys
    )
    env = {HMAC_ENV: HMAC_SECRET}
    state = tmp_path / "state.sqlite3"
    generic_port, slack_port = free_port(), free_port()
    runs: list[ServiceProcess] = []

    def service(run: int) -> ServiceProcess:
        runs.append(ServiceProcess(config, env=env, log=tmp_path / f"service-{run}.log"))
        return runs[-1]

    with contextlib.ExitStack() as stack:
        nsd = stack.enter_context(NsdServer(tmp_path / "nsd", [zone], port=dns_free_port()))
        resolver = stack.enter_context(UdpSink())
        config = write_config(
            tmp_path,
            resolver.port,
            [WatchedZone(zone.origin, zone.ds)],
            servers=[f"{nsd.address}:{nsd.port}"],
            settings={**EXPIRY_SETTINGS, "interval": "3600s"},
            defaults=expiry_defaults(WARN_BEFORE, SKEW_MAX),
            webhooks=[
                {
                    "name": "ops",
                    "kind": "generic",
                    "url": f"http://127.0.0.1:{generic_port}/hook",
                    "hmac_secret_env": HMAC_ENV,
                },
                {
                    "name": "chat",
                    "kind": "slack",
                    "url": f"http://127.0.0.1:{slack_port}/hook",
                    "min_severity": "warning",
                },
            ],
        )
        predicted = predict(zone, config, env)

        # 1. Receivers down (connection refused) while all three events fire; then SIGKILL.
        with service(1) as first:
            wait_until(
                lambda: _outbox_events(state) >= 3 and len(_fired(first)) >= 3,
                deadline=predicted.skew_exhausted + 15,
                what="three events stored in the outbox",
                alive=first.died,
            )
            assert first.kill() == -signal.SIGKILL
        assert first.events("delivery_failed")

        # 2. Receivers up; the generic one holds its first request; SIGKILL while it is held.
        generic = stack.enter_context(Receiver([Reply(hold=True)], port=generic_port))
        slack = stack.enter_context(Receiver(port=slack_port))
        with service(2) as second:
            wait_until(
                lambda: len(generic.requests) >= 1,
                deadline=time.time() + 15,
                what="the first redelivery",
                alive=second.died,
            )
            held = generic.requests[0]
            assert _whole([held])  # read whole; the receiver holds only its answer
            assert second.kill() == -signal.SIGKILL
        generic.release()

        # 3. The zone is re-signed; a third run sends the rest and announces the recovery.
        now = int(time.time())
        resigned = make_signed_zone(
            tmp_path / "zones", ZONE, inception=now - 60, expiration=now + 3600, keys=keys, serial=2
        )
        nsd.stop()
        stack.enter_context(NsdServer(tmp_path / "nsd-resigned", [resigned], port=nsd.port))

        def all_arrived() -> bool:
            generic_ids = [r.headers[EVENT_HEADER] for r in _whole(generic.requests)]
            slack_ids = {r.headers[EVENT_HEADER] for r in _whole(slack.requests)}
            return (
                len(set(generic_ids)) >= 4
                and len(slack_ids) >= 4
                and generic_ids.count(held.headers[EVENT_HEADER]) >= 2
            )

        with service(3) as third:
            wait_until(all_arrived, deadline=time.time() + 20, what="every event", alive=third.died)
            assert third.stop() == 0, third.log.read_text()[-3000:]
        resolver_queries = resolver.received()
    generic_requests, slack_requests = _whole(generic.requests), _whole(slack.requests)
    cut_off = len(generic.requests) + len(slack.requests) - len(generic_requests + slack_requests)
    fired = [event_id for run in runs for event_id in _fired(run)]
    logs = "".join(run.log.read_text(errors="replace") for run in runs)

    # Each transition under exactly one id, and every id is one of the four transitions.
    by_id: dict[str, Transition] = {}
    for request in generic_requests:
        body = json_body(request)
        assert request.headers[EVENT_HEADER] == body["id"]
        previous = by_id.setdefault(body["id"], Transition.of(body))
        assert previous == Transition.of(body)
    ids_of: dict[Transition, set[str]] = {}
    for event_id, transition in by_id.items():
        ids_of.setdefault(transition, set()).add(event_id)
    assert sorted(ids_of, key=LIFECYCLE.index) == list(LIFECYCLE)
    assert all(len(ids) == 1 for ids in ids_of.values()), ids_of
    # The restarts re-fired nothing: the service announced exactly these four ids, once each.
    assert sorted(fired) == sorted(by_id)

    # Slack got the same events under the same ids (its body names the id in its context line).
    slack_ids = {r.headers[EVENT_HEADER] for r in slack_requests}
    assert slack_ids == set(by_id)
    for request in slack_requests:
        assert request.headers[EVENT_HEADER] in json.dumps(json_body(request)["blocks"])

    # At-least-once: the request cut off by SIGKILL came again, byte for byte, same id; any
    # other repeat is also the same bytes under the same id.
    generic_counts = Counter(r.headers[EVENT_HEADER] for r in generic_requests)
    slack_counts = Counter(r.headers[EVENT_HEADER] for r in slack_requests)
    assert generic_counts[held.headers[EVENT_HEADER]] >= 2
    for requests in (generic_requests, slack_requests):
        bodies: dict[str, bytes] = {}
        for r in requests:
            assert bodies.setdefault(r.headers[EVENT_HEADER], r.body) == r.body

    # Signed with the configured key when sent, not when stored: every event was stored
    # during run 1, seconds before any receiver existed.
    for request in generic_requests:
        valid, signed_at = hmac_valid(request, HMAC_SECRET)
        assert valid and signed_at is not None
        assert abs(request.received_at - signed_at) <= 2
    assert HMAC_SECRET not in logs
    assert resolver_queries == 0

    order = [by_id[i] for i in dict.fromkeys(r.headers[EVENT_HEADER] for r in generic_requests)]
    write_report(
        "service restart",
        [
            f"generic: {len(generic_requests)} deliveries of {len(generic_counts)} events, "
            f"{len(generic_requests) - len(generic_counts)} duplicate(s) with the same id "
            f"(held in flight at SIGKILL: {by_id[held.headers[EVENT_HEADER]]})",
            f"slack:   {len(slack_requests)} deliveries of {len(slack_counts)} events, "
            f"{len(slack_requests) - len(slack_counts)} duplicate(s) with the same id",
            "transitions with more than one id: none",
            f"requests cut off mid-body by SIGKILL (not deliveries, not counted): {cut_off}",
            "generic first-arrival order: " + "; ".join(str(t) for t in order),
        ],
    )


class _FailingStore(Store):
    """Fault injection: the first ``failures`` cycle commits fail as on a full disk."""

    def __init__(self, path: Path, failures: int) -> None:
        super().__init__(path)
        self.failures = failures
        self.injected = 0

    def commit_cycle(self, *args: Any, **kwargs: Any) -> CycleResult:
        if self.injected < self.failures:
            self.injected += 1
            raise StateError(f"state file {self.path}: database or disk is full (injected)")
        return super().commit_cycle(*args, **kwargs)


async def test_failed_state_write_is_retried_and_loses_no_event(tmp_path: Path) -> None:
    """When the state file cannot be written, the zone stays scheduled and its event is not
    marked as announced: the next check stores and delivers it (once)."""
    zone = signed("statefail.test.", expires_in=3000, lifetime=3600)
    async with AuthServer([zone.zone]) as server:
        with Receiver() as receiver, UdpSink() as resolver:
            config_path = write_config(
                tmp_path,
                resolver.port,
                [zone],
                servers=[f"127.0.0.1:{server.port}"],
                settings={**EXPIRY_SETTINGS, "interval": "2s"},
                # already inside the warning window: an event at once
                defaults=expiry_defaults(warn_before=7200, skew_max=SKEW_MAX),
                webhooks=[{"name": "ops", "kind": "generic", "url": receiver.url()}],
            )
            with _FailingStore(tmp_path / "state.sqlite3", failures=1) as store:
                service = Service(load_config(config_path), store, redactor=Redactor())
                task = asyncio.create_task(service.run())
                try:
                    await receiver.async_wait_for(1, within=15)
                    await asyncio.sleep(0.5)  # room for a wrong second delivery to show
                finally:
                    service.stop()
                    status = await asyncio.wait_for(task, 30)
            assert store.injected == 1
    assert status == 0
    bodies = [json_body(r) for r in receiver.requests]
    assert [Transition.of(b) for b in bodies] == [LIFECYCLE[0]]
