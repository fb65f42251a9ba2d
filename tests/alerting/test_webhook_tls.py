"""Webhook TLS: the system's trust store by default, a webhook's own ca_file for an internal CA."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from receivers import Receiver, Reply, tls_contexts
from structlog.testing import capture_logs

from watchdog.alerting.delivery import RetryPolicy, WebhookDelivery, WebhookTarget
from watchdog.config.parse import parse_config
from watchdog.errors import ConfigError
from watchdog.service.store import Delivery, DeliveryStatus, Store

FAST = RetryPolicy(base=0.02, cap=0.05, give_up_after=60)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh state file, closed after the test."""
    with Store(tmp_path / "state.db") as opened:
        yield opened


async def _wait(check: Any, what: str) -> None:
    deadline = time.monotonic() + 20
    while not check():
        assert time.monotonic() < deadline, f"not within 20 s: {what}"
        await asyncio.sleep(0.02)


async def test_a_private_ca_is_trusted_only_where_its_webhook_names_it(
    store: Store, tmp_path: Path
) -> None:
    """One receiver with a private CA: the webhook with ca_file delivers; the one without (the
    system's store) is refused, logged, retried and kept pending, never dropped."""
    server_tls, _ = tls_contexts(tmp_path)
    ca_file = tmp_path / "receiver-cert.pem"  # self-signed with CA:true: its own root
    store.enqueue([Delivery("ev-1", name, b"{}", {}) for name in ("internal", "system")])
    stop = asyncio.Event()
    with Receiver(tls=server_tls, default=Reply(204)) as receiver, capture_logs() as logs:
        url = receiver.url("/hook")
        targets = [
            WebhookTarget("internal", url, ca_file=ca_file),
            WebhookTarget("system", url),
        ]
        async with WebhookDelivery(store, targets, policy=FAST) as notifier:
            task = asyncio.create_task(notifier.run(stop))
            await _wait(lambda: _entry(store, "internal").status == "delivered", "delivered")
            await _wait(lambda: _entry(store, "system").attempts >= 2, "two refused attempts")
            stop.set()
            await asyncio.wait_for(task, timeout=10)
        requests = receiver.requests
    assert len(requests) == 1  # the refused lane never got as far as a request
    refused = _entry(store, "system")
    assert refused.status == DeliveryStatus.PENDING
    assert refused.last_error is not None and "TLS certificate verification failed" in (
        refused.last_error
    )
    failed = [e for e in logs if e["event"] == "delivery_failed"]
    assert failed and {e["webhook"] for e in failed} == {"system"}
    assert all(url not in str(e) for e in logs)


async def test_an_unusable_ca_file_is_logged_and_its_deliveries_kept(
    store: Store, tmp_path: Path
) -> None:
    """A ca_file that is not PEM: webhook_ca_unusable names webhook and file; every attempt
    fails verification and the entry stays pending."""
    server_tls, _ = tls_contexts(tmp_path)
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    store.enqueue([Delivery("ev-1", "internal", b"{}", {})])
    stop = asyncio.Event()
    with Receiver(tls=server_tls) as receiver, capture_logs() as logs:
        url = receiver.url()
        target = WebhookTarget("internal", url, ca_file=broken)
        async with WebhookDelivery(store, [target], policy=FAST) as notifier:
            task = asyncio.create_task(notifier.run(stop))
            await _wait(lambda: _entry(store, "internal").attempts >= 2, "two attempts")
            stop.set()
            await asyncio.wait_for(task, timeout=10)
        assert receiver.requests == []
    (unusable,) = [e for e in logs if e["event"] == "webhook_ca_unusable"]
    assert (unusable["webhook"], unusable["ca_file"]) == ("internal", str(broken))
    assert _entry(store, "internal").status == DeliveryStatus.PENDING


def _entry(store: Store, webhook: str) -> Any:
    [entry] = store.entries(webhook=webhook)
    return entry


def _config(tmp_path: Path, **hook: Any) -> Any:
    data = {
        "zone": [{"name": "example.com"}],
        "webhook": [{"name": "ops", "url_env": "HOOK", **hook}],
    }
    env = {"HOOK": "https://hooks.example/secret-path"}
    return parse_config(
        data, source=str(tmp_path / "config.toml"), read_file=lambda p: p.read_text(), env=env
    )


def test_ca_file_is_read_relative_to_the_config(tmp_path: Path) -> None:
    """ca_file: a PEM file next to the config is accepted and resolved to its path."""
    tls_contexts(tmp_path)
    (hook,) = _config(tmp_path, ca_file="receiver-cert.pem").webhooks
    assert hook.ca_file == tmp_path / "receiver-cert.pem"


@pytest.mark.parametrize(
    ("value", "http", "words"),
    [
        ("missing.pem", False, "cannot read"),
        ("not-pem.txt", False, "holds no PEM certificate"),
        ("receiver-cert.pem", True, "applies to https:// receivers only"),
        (5, False, "expected a file path"),
    ],
)
def test_a_bad_ca_file_is_a_config_problem(
    tmp_path: Path, value: object, http: bool, words: str
) -> None:
    """A missing, non-PEM or misplaced ca_file is named with its key path; no URL in it."""
    tls_contexts(tmp_path)
    (tmp_path / "not-pem.txt").write_text("hello\n")
    data = {
        "zone": [{"name": "example.com"}],
        "webhook": [{"name": "ops", "url_env": "HOOK", "ca_file": value}],
    }
    url = "http://hooks.example/secret-path" if http else "https://hooks.example/secret-path"
    with pytest.raises(ConfigError) as caught:
        parse_config(
            data,
            source=str(tmp_path / "config.toml"),
            read_file=lambda p: p.read_text(),
            env={"HOOK": url},
        )
    (problem,) = caught.value.problems
    assert problem.startswith("webhook[0].ca_file: ") and words in problem, problem
    assert "secret-path" not in problem
