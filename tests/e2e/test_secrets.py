"""Issue 8: webhook URLs and HMAC keys never leave the process through any error path.

The real service (``dnssec-watchdog --serve``, a subprocess) watches a zone that is in its
warning window, so its first check fires an event for four webhooks whose receivers all fail
differently: connection refused, a redirect to another host, an answer later than the delivery
timeout, and a TLS certificate nobody trusts. Their URLs and HMAC keys carry recognizable
tokens, given inline, through the environment and through files. While the deliveries fail,
are retried and given up, a SIGHUP brings a broken config (a bad URL, a key on a Slack webhook).

Then no token may appear in: any stderr log line (JSON, as under systemd), the STATUS strings
sent to the notify socket, the bytes of the SQLite state file, its -wal and -shm (read while
the service runs, and again after SIGTERM), or the one-line errors of ``--validate-config`` and
``--check --config``. tests/alerting/test_delivery.py and tests/config/test_config.py check the same
at the module level. The Redactor of watchdog.service.logsetup is only the second line of defence:
it knows whole URLs and keys, so a path that leaked a URL's path or query alone would be caught
here.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from receivers import Receiver, Reply, free_port, tls_contexts
from service_harness import (
    HOUR,
    SERVICE_BIN,
    NotifySocket,
    ServiceProcess,
    SignedZone,
    ZoneServer,
    config_text,
    service_env,
    signed,
)

ZONE = "secret.test."
# Recognizable tokens: each must be absent everywhere, alone and inside its URL.
PATH_TOKEN = "PATHTOKEN7f3a9c"
QUERY_TOKEN = "QUERYTOKEN2b8e41"
USER_TOKEN = "USERTOKEN55d1"
PASSWORD_TOKEN = "PASSWORDTOKEN9e07"
FILE_TOKEN = "FILETOKEN0c6d2e"
HMAC_INLINE = "HMACINLINE4a1f88"
HMAC_ENV = "HMACENVIRON3d9b27"
HMAC_FILE = "HMACFILE61e0c5"
RELOAD_TOKEN = "RELOADTOKEN8f2a6b"
TOKENS = (PATH_TOKEN, QUERY_TOKEN, USER_TOKEN, PASSWORD_TOKEN, FILE_TOKEN, HMAC_INLINE, HMAC_ENV,
          HMAC_FILE, RELOAD_TOKEN)  # fmt: skip
WEBHOOKS = ("refused", "redirect", "slow", "tls")


@pytest.fixture(scope="module")
def zone() -> SignedZone:
    """12 hours left of a 10-day signature: a warning at the first check."""
    return signed(ZONE, expires_in=12 * HOUR)


def _webhooks(urls: dict[str, str], *, broken: bool = False) -> str:
    """Four webhooks: URLs inline, from the environment and from a file; HMAC keys likewise.
    ``broken`` adds two a reload must refuse without quoting them."""
    refused, tls = urls["refused"], urls["tls"]
    text = f"""
[[webhook]]
name = "refused"
url = "{refused}"
hmac_secret = "{HMAC_INLINE}"

[[webhook]]
name = "redirect"
url_env = "SECRET_REDIRECT_URL"
hmac_secret_env = "SECRET_HMAC"

[[webhook]]
name = "slow"
url_file = "slow-url"
hmac_secret_file = "hmac-key"

[[webhook]]
name = "tls"
url = "{tls}"
"""
    if broken:  # what a reload must refuse without quoting
        text += f"""
[[webhook]]
name = "broken"
url = "ftp://{USER_TOKEN}:{RELOAD_TOKEN}@hooks.example/{RELOAD_TOKEN}"

[[webhook]]
name = "slack-with-key"
kind = "slack"
url = "{tls}"
hmac_secret = "{RELOAD_TOKEN}"
"""
    return text


def _state_bytes(state: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(state.parent.glob(f"{state.name}*")))


def _leaks(text: str | bytes) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [t for t in TOKENS if t.encode() in data]


@pytest.fixture
def receivers(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The four failing receivers' URLs, each carrying secret tokens."""
    server_tls, _ = tls_contexts(tmp_path)
    with (
        Receiver(default=Reply(302, {"Location": "http://127.0.0.2:1/elsewhere"})) as redirect,
        Receiver(default=Reply(delay=30)) as slow,
        Receiver(tls=server_tls) as tls,
    ):
        yield {
            "refused": f"http://{USER_TOKEN}:{PASSWORD_TOKEN}@127.0.0.1:{free_port()}"
            f"/hook/{PATH_TOKEN}?token={QUERY_TOKEN}",
            "redirect": redirect.url(f"/hook/{PATH_TOKEN}?token={QUERY_TOKEN}"),
            "slow": slow.url(f"/services/{FILE_TOKEN}"),
            "tls": tls.url(f"/hook/{PATH_TOKEN}"),
        }


def test_no_secret_in_logs_status_or_state_on_any_error_path(
    tmp_path: Path, zone: SignedZone, receivers: dict[str, str]
) -> None:
    """Refused, redirected, timed out, TLS-rejected and given-up deliveries, and a rejected
    reload: no token in stderr, STATUS, the state file or its -wal/-shm."""
    state = tmp_path / "state.sqlite3"
    (tmp_path / "slow-url").write_text(receivers["slow"] + "\n")
    (tmp_path / "hmac-key").write_text(HMAC_FILE + "\n")
    env = {"SECRET_REDIRECT_URL": receivers["redirect"], "SECRET_HMAC": HMAC_ENV}
    extra = 'delivery_timeout = "1s"\ndelivery_give_up_after = "4s"\nlog_level = "debug"\n'
    config = tmp_path / "config.toml"
    with ZoneServer([zone]) as dns, NotifySocket(tmp_path / "notify.sock") as sd:
        base = config_text(state, dns.port, [zone], watchdog_extra=extra)
        config.write_text(base + _webhooks(receivers))
        with ServiceProcess(config, env={**env, "NOTIFY_SOCKET": sd.address}) as service:
            service.wait_for_log("alert_fired", zone=ZONE, timeout=30)
            for name in WEBHOOKS:
                service.wait_for_log("delivery_failed", webhook=name, timeout=30)
            for name in WEBHOOKS:
                service.wait_for_log("delivery_gave_up", webhook=name, timeout=45)
            config.write_text(base + _webhooks(receivers, broken=True))
            service.send(signal.SIGHUP)
            rejected = service.wait_for_log("config_reload_failed", timeout=30)
            running_state = _state_bytes(state)
            assert service.stop() == 0
            stderr = "".join(service.raw)
        sd.sync()
        statuses = [m.fields.get("STATUS", "") for m in sd.received()]
    errors = {e["error"] for e in service.logs if e.get("event") == "delivery_failed"}
    assert any("connection refused" in e for e in errors), errors
    assert any("redirect not followed" in e for e in errors), errors
    assert any("timeout" in e for e in errors), errors
    assert any("TLS certificate verification failed" in e for e in errors), errors
    assert {"webhook[4].url", "webhook[5].hmac_secret"} <= {
        p.split(":")[0] for p in rejected["problems"]
    }
    assert any("warning" in s for s in statuses), statuses
    assert _leaks(stderr) == []
    assert _leaks("\n".join(statuses)) == []
    assert b"outbox" in running_state and _leaks(running_state) == []
    assert _leaks(_state_bytes(state)) == []


def _one_shot(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SERVICE_BIN), *args], capture_output=True, text=True, timeout=60,
                          env=service_env(env), check=False)  # fmt: skip


def test_no_secret_in_the_errors_of_the_commands(tmp_path: Path, zone: SignedZone) -> None:
    """``--validate-config`` and ``--check --config`` on a config whose secrets are wrong in
    every way: exit 78 / 3, the key paths named, no token quoted."""
    (tmp_path / "hmac-key").write_text(HMAC_FILE)
    urls = {name: f"https://{USER_TOKEN}:{PASSWORD_TOKEN}@hooks.example/{PATH_TOKEN}"
            for name in WEBHOOKS}  # fmt: skip
    text = config_text(tmp_path / "state.sqlite3", 9, [zone]) + _webhooks(urls, broken=True)
    text += f'\n[[webhook]]\nname = "env-typo"\nurl_env = "{QUERY_TOKEN} x"\n'
    config = tmp_path / "config.toml"
    config.write_text(text)
    env = {"SECRET_REDIRECT_URL": f"ftp://{PATH_TOKEN}", "SECRET_HMAC": HMAC_ENV}
    validated = _one_shot("--validate-config", "--config", str(config), env=env)
    checked = _one_shot("--check", "--config", str(config), env=env)
    assert validated.returncode == 78 and checked.returncode == 3
    for result in (validated, checked):
        assert "webhook[4].url" in result.stderr and "webhook[6].url_env" in result.stderr
        assert _leaks(result.stdout + result.stderr) == []
