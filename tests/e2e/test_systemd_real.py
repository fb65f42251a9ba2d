"""The unit under a real systemd: a minimal Debian booted by systemd-nspawn (tests/lab/container).

``systemd-analyze`` (test_deploy.py) judges the unit file; here systemd runs it. The package is
installed inside by ``deploy/install.sh --no-start`` from wheels built on the host (the
container has no network of its own to fetch them; it shares the host's, so it reaches the
zone server and webhook receiver this test starts on 127.0.0.1, and nothing else). Checked: the
unit starts and reports READY=1, runs as a DynamicUser with its StateDirectory, reads its
webhook URL from the LoadCredential directory, reloads, survives its hardening with
``SystemCallErrorNumber=`` reset (a filtered syscall then kills instead of failing with EPERM),
is restarted after SIGKILL, and stays stopped after exit 78 (a bad config).

Slow (the first run makes the cached root: about 1.5 min and 300 MB; each run copies and boots
it and installs the package: about a minute); needs root.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lab.container import Container, debian_root, nspawn_missing
from receivers import Receiver
from service_harness import DAY, HOUR, SignedZone, ZoneServer, config_text, signed

from watchdog.probe.pool import share

pytestmark = [pytest.mark.systemd, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
UNIT = "dnssec-watchdog.service"
ZONE = "sd.test."
STATE = Path("/var/lib/dnssec-watchdog/state.sqlite3")
CONFIG = "/etc/dnssec-watchdog/config.toml"
DROP_IN = "/etc/systemd/system/dnssec-watchdog.service.d/test.conf"
# The test's own drop-in: restart quickly (the unit's 10 s would only slow the test down).
FAST_RESTART = "[Service]\nRestartSec=1s\n"
KILL_DROP_IN = DROP_IN.replace("test.conf", "kill.conf")
WATCHDOG_DROP_IN = DROP_IN.replace("test.conf", "watchdog.conf")


def _requirements() -> None:
    missing = nspawn_missing()
    reason = ""
    if os.geteuid() != 0:
        reason = "needs root (systemd-nspawn boots a container)"
    elif missing:
        reason = f"not installed: {', '.join(missing)} (Debian: systemd-container, debootstrap)"
    if reason and os.environ.get("CI"):
        pytest.fail(f"CI: {reason}")
    if reason:
        pytest.skip(reason)


def _wheels(directory: Path) -> Path:
    """This checkout and its dependencies as wheels, plus what building it needs."""
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "-w", str(directory), str(REPO)], check=True, timeout=600)
    subprocess.run(
        [*pip, "download", "-d", str(directory), "setuptools>=68", "wheel", "pip"],
        check=True,
        timeout=600,
    )
    return directory


def _copy_checkout(target: Path) -> None:
    """The files of this checkout, as install.sh copies them (no venv, no git, no caches)."""
    skip = {".venv", ".git", "build", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".cache"}

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        parts = set(Path(info.name).parts)
        return None if parts & skip or info.name.endswith(".egg-info") else info

    archive = target.with_suffix(".tar")
    with tarfile.open(archive, "w") as tar:
        tar.add(REPO, arcname=".", filter=keep)
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="tar")
    archive.unlink()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    """The webhook receiver on the host's loopback (the container shares it)."""
    with Receiver() as r:
        yield r


@pytest.fixture(scope="module")
def zone() -> SignedZone:
    """A zone whose signatures are in their warning window: the service alerts at once."""
    return signed(ZONE, expires_in=12 * HOUR)


@pytest.fixture(scope="module")
def worker_zones() -> list[SignedZone]:
    """Healthy zones, at least one of them probed by worker 1 of 2 (watchdog.probe.pool.share)."""
    names = [f"w{i}.sd.test." for i in range(16)]
    chosen = [*names[:2], next(n for n in names[2:] if share(n, 2) == 1)]
    return [signed(n, expires_in=5 * DAY) for n in chosen]


@pytest.fixture(scope="module")
def zone_server(zone: SignedZone, worker_zones: list[SignedZone]) -> Iterator[ZoneServer]:
    """The zones' authoritative server (and the config's resolver) on 127.0.0.1."""
    with ZoneServer([zone, *worker_zones]) as server:
        yield server


@pytest.fixture(scope="module")
def config(zone: SignedZone, zone_server: ZoneServer) -> Callable[..., str]:
    """The service config for the container, with ``[watchdog]`` keys overridden."""
    hook = {"name": "ops", "kind": "generic", "url_file": "secret_hook", "min_severity": "warning"}

    def text(*extra: SignedZone, **settings: str | int) -> str:
        keys: dict[str, str | int] = {"interval": "5s", **settings}
        zones = [zone, *extra]
        return config_text(STATE, zone_server.port, zones, webhooks=[hook], settings=keys)

    return text


@pytest.fixture(scope="module")
def booted(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[Container]:
    """The container with the package installed by install.sh, booted; the unit not started."""
    _requirements()
    work = tmp_path_factory.mktemp("systemd")
    container = Container(debian_root(), work).prepare()
    wheels = _wheels(work / "wheels")
    shutil.copytree(wheels, container.root / "root/wheels")
    _copy_checkout(container.root / "root/src")
    out = container.run_unbooted(
        "env",
        "PIP_NO_INDEX=1",
        "PIP_FIND_LINKS=/root/wheels",
        "sh",
        "/root/src/deploy/install.sh",
        "--no-start",
    )
    assert "dnssec-watchdog" in out  # it printed the installed version
    # The secret: only the credential directory holds the receiver's URL.
    container.write("/etc/dnssec-watchdog/credentials/hook", receiver.url("/sd"), 0o600)
    container.write(DROP_IN, FAST_RESTART)
    with container:
        yield container


@pytest.fixture
def unit(booted: Container, config: Callable[..., str]) -> Iterator[Container]:
    """The unit started with a good config; stopped (and its failed state reset) afterwards."""
    booted.write(CONFIG, config())
    booted.run("systemctl", "daemon-reload")
    booted.run("systemctl", "start", UNIT, timeout=90)  # Type=notify: returns after READY=1
    yield booted
    booted.run("systemctl", "stop", UNIT, check=False, timeout=60)
    booted.run("systemctl", "reset-failed", UNIT, check=False)
    booted.run("rm", "-f", KILL_DROP_IN, WATCHDOG_DROP_IN, check=False)
    booted.run("systemctl", "daemon-reload")


def _wait(what: str, condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.5)


def _errno_action(unit: Container) -> str:
    return unit.systemctl_show(UNIT, "SystemCallErrorNumber")["SystemCallErrorNumber"]


def _state(unit: Container) -> str:
    return unit.systemctl_show(UNIT, "ActiveState")["ActiveState"]


def _events(receiver: Receiver, path: str = "/sd") -> list[dict[str, object]]:
    return [json.loads(r.body) for r in receiver.requests if r.path == path]


def test_starts_ready_as_a_dynamic_user_and_alerts_with_its_credential(
    unit: Container, receiver: Receiver
) -> None:
    """READY=1 makes the unit active; it runs as a DynamicUser, keeps its state in its
    StateDirectory, and delivers to the URL it read from LoadCredential."""
    shown = unit.systemctl_show(UNIT, "ActiveState", "SubState", "MainPID", "StatusText")
    assert (shown["ActiveState"], shown["SubState"]) == ("active", "running")
    assert shown["StatusText"], "the service sends a STATUS= line"
    status = unit.run("cat", f"/proc/{shown['MainPID']}/status").stdout
    uid = int(next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:")))
    assert 61184 <= uid <= 65519, f"a DynamicUser uid, not {uid}"  # systemd.exec(5)
    unit.run("test", "-s", f"/var/lib/private/dnssec-watchdog/{STATE.name}")
    _wait("the warning event", lambda: any(e["zone"] == ZONE for e in _events(receiver)))
    event = next(e for e in _events(receiver) if e["zone"] == ZONE)
    assert (event["condition"], event["new_severity"]) == ("expiry", "warning")


def test_reload_rereads_the_config(unit: Container, config: Callable[..., str]) -> None:
    """``systemctl reload`` (SIGHUP) re-reads the config and stays active; a bad edit is
    refused on reload and the running config kept."""
    unit.write(CONFIG, config(interval="7s"))
    unit.run("systemctl", "reload", UNIT, timeout=60)
    unit.write(CONFIG, "this is not TOML [")
    unit.run("systemctl", "reload", UNIT, timeout=60)
    _wait(
        "config_reload_failed in the journal", lambda: "config_reload_failed" in unit.journal(UNIT)
    )
    assert _state(unit) == "active"


def test_hardening_holds_with_the_kill_action(unit: Container, receiver: Receiver) -> None:
    """With ``SystemCallErrorNumber=`` reset, any syscall outside the filter kills the service:
    it still starts, checks, delivers and reloads, and is never restarted."""
    assert _errno_action(unit) == "1"  # the unit's EPERM
    unit.write(KILL_DROP_IN, "[Service]\nSystemCallErrorNumber=\n")
    unit.run("systemctl", "daemon-reload")
    # systemd 252 shows the kill action as SECCOMP_ERROR_NUMBER_KILL (INT_MAX - 1).
    assert _errno_action(unit) in ("", "kill", "2147483646")
    before = len(_events(receiver))
    restarts = unit.systemctl_show(UNIT, "NRestarts")["NRestarts"]
    unit.run("sh", "-c", f"rm -f /var/lib/private/dnssec-watchdog/{STATE.name}*")
    unit.run("systemctl", "restart", UNIT, timeout=90)
    _wait("the event again (fresh state)", lambda: len(_events(receiver)) > before)
    unit.run("systemctl", "reload", UNIT, timeout=60)
    time.sleep(6)  # a few more checks (interval 5 s) under the filter
    shown = unit.systemctl_show(UNIT, "ActiveState", "NRestarts", "Result")
    assert shown == {"ActiveState": "active", "NRestarts": restarts, "Result": "success"}


def test_restarted_after_sigkill(unit: Container) -> None:
    """SIGKILL of the main process: Restart=on-failure brings it back (RestartSec shortened)."""
    first = unit.systemctl_show(UNIT, "MainPID", "NRestarts")
    unit.run("systemctl", "kill", "--kill-whom=main", "--signal=KILL", UNIT)

    def back() -> bool:
        now = unit.systemctl_show(UNIT, "MainPID", "NRestarts", "ActiveState")
        return now["ActiveState"] == "active" and now["MainPID"] not in ("0", first["MainPID"])

    _wait("a new main process", back)
    restarts = int(unit.systemctl_show(UNIT, "NRestarts")["NRestarts"])
    journal = unit.run("journalctl", "--no-pager", "-n", "60", check=False).stdout
    assert restarts == int(first["NRestarts"]) + 1, journal  # one kill, one restart


def test_stays_stopped_after_exit_78(unit: Container, config: Callable[..., str]) -> None:
    """A config error exits 78 (EX_CONFIG): RestartPreventExitStatus keeps it stopped."""
    restarts = unit.systemctl_show(UNIT, "NRestarts")["NRestarts"]
    unit.write(CONFIG, config(interval="not a duration"))
    unit.run("systemctl", "restart", UNIT, check=False, timeout=60)
    _wait("the failed state", lambda: _state(unit) == "failed")
    time.sleep(3)  # three RestartSec periods: a restart would have happened by now
    shown = unit.systemctl_show(UNIT, "ActiveState", "ExecMainStatus", "NRestarts")
    assert shown == {"ActiveState": "failed", "ExecMainStatus": "78", "NRestarts": restarts}
    assert "config_invalid" in unit.journal(UNIT)


_CHILDREN = """
import pathlib, sys
for status in pathlib.Path("/proc").glob("[0-9]*/status"):
    fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
    if fields["PPid"].strip() == sys.argv[1]:
        print(status.parent.name)
"""


def test_a_wedged_worker_stops_the_pings_and_systemd_restarts_the_service(
    unit: Container, config: Callable[..., str], worker_zones: list[SignedZone]
) -> None:
    """SIGSTOP a probe worker (stuck in the kernel, swapped out): its zones go unchecked, the
    service withholds WATCHDOG=1, and systemd's watchdog (WatchdogSec shortened to 10 s by a
    drop-in) kills and restarts it; the new service checks every zone again."""
    unit.write(WATCHDOG_DROP_IN, "[Service]\nWatchdogSec=10s\n")
    unit.write(CONFIG, config(*worker_zones, probe_workers=2))
    unit.run("systemctl", "daemon-reload")
    unit.run("systemctl", "restart", UNIT, timeout=90)
    first = unit.systemctl_show(UNIT, "MainPID", "NRestarts", "WatchdogUSec")
    assert first["WatchdogUSec"] == "10s"
    _wait("every zone checked", lambda: unit.journal(UNIT).count("zone_checked") >= 4)
    (worker,) = unit.run("python3", "-c", _CHILDREN, first["MainPID"]).stdout.split()
    unit.run("sh", "-c", f"kill -STOP {worker}")

    def restarted() -> bool:
        now = unit.systemctl_show(UNIT, "MainPID", "ActiveState")
        return now["ActiveState"] == "active" and now["MainPID"] not in ("0", first["MainPID"])

    _wait("systemd's watchdog to restart the service", restarted, timeout=120)
    journal = unit.journal(UNIT)
    assert "watchdog_ping_withheld" in journal, journal[-3000:]
    assert "Watchdog timeout" in unit.run("journalctl", "--no-pager", check=False).stdout
    restarts = int(unit.systemctl_show(UNIT, "NRestarts")["NRestarts"])
    assert restarts == int(first["NRestarts"]) + 1
