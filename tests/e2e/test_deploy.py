"""deploy/: the systemd unit passes systemd's own checks, and install.sh stages a working install.

``systemd-analyze verify`` and ``systemd-analyze security --offline=true`` judge the unit file as
systemd would load it; the installer runs for real under DESTDIR (it creates a virtual
environment and pip-installs this checkout, so it needs the package registries: marked slow).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from service_harness import SERVICE_BIN, service_env, signed, write_config

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "deploy" / "dnssec-watchdog.service"
INSTALL = REPO / "deploy" / "install.sh"
INSTALLED_BIN = "/opt/dnssec-watchdog/venv/bin/dnssec-watchdog"
MAX_EXPOSURE = 2.0  # issue 6: "rates it 2.0 or lower"


def _unit_settings(text: str) -> dict[str, list[str]]:
    """Every ``Key=value`` of the unit, in order; keys may repeat (systemd.syntax(7))."""
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;[":
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def _systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    return path


@pytest.fixture
def testable_unit(tmp_path: Path) -> Path:
    """A copy of the unit whose commands name this venv's real binary (/opt is not installed
    here); the file name stays dnssec-watchdog.service, which systemd takes as the unit name."""
    text = UNIT.read_text()
    assert INSTALLED_BIN in text
    copy = tmp_path / UNIT.name
    copy.write_text(text.replace(INSTALLED_BIN, str(SERVICE_BIN)))
    return copy


def test_unit_passes_systemd_analyze_verify(testable_unit: Path) -> None:
    """``systemd-analyze verify`` loads the unit without an error or warning about it."""
    analyze = _systemd_analyze()
    result = subprocess.run(
        [analyze, "verify", str(testable_unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    about_unit = [
        line for line in (result.stdout + result.stderr).splitlines() if UNIT.name in line
    ]
    assert result.returncode == 0, result.stderr
    assert about_unit == []


def test_unit_exposure_is_two_or_lower(testable_unit: Path) -> None:
    """``systemd-analyze security --offline=true`` rates the hardened unit 2.0 or lower."""
    analyze = _systemd_analyze()
    result = subprocess.run(
        [analyze, "security", "--offline=true", "--no-pager", str(testable_unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if "--offline" in result.stderr and "unrecognized" in result.stderr:
        pytest.skip("this systemd-analyze has no --offline (systemd < 250)")
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", result.stdout)
    assert match, f"no overall exposure level in:\n{result.stdout}\n{result.stderr}"
    assert float(match[1]) <= MAX_EXPOSURE, match[0]


def test_unit_matches_what_the_service_does() -> None:
    """The unit waits for READY=1, gives the loop a watchdog, reloads with SIGHUP, does not
    restart after a bad config (exit 78), and hands the secrets over as credentials."""
    settings = _unit_settings(UNIT.read_text())
    assert settings["Type"] == ["notify"]
    assert settings["NotifyAccess"] == ["main"]  # sd_notify comes from the main process only
    assert settings["Restart"] == ["on-failure"]
    assert "78" in settings["RestartPreventExitStatus"][0].split()
    assert settings["ExecReload"] == ["/bin/sh -c 'kill -HUP $MAINPID'"]
    assert settings["WatchdogSec"]
    # The shutdown bound for in-flight deliveries is 10 s: systemd must wait longer.
    assert int(settings["TimeoutStopSec"][0].removesuffix("s")) > 10
    (start,) = settings["ExecStart"]
    assert start.split() == [
        INSTALLED_BIN,
        "--serve",
        "--config",
        "/etc/dnssec-watchdog/config.toml",
    ]
    assert settings["LoadCredential"] == ["secret:/etc/dnssec-watchdog/credentials"]


def test_bad_config_is_refused_by_the_main_process_only() -> None:
    """No ExecStartPre= config check: RestartPreventExitStatus= looks only at the main process
    (systemd.service(5); systemd/systemd#11868), so a pre-check exiting 78 would be restarted
    every RestartSec= forever. ExecStart --serve checks the config and exits 78 itself."""
    settings = _unit_settings(UNIT.read_text())
    assert not any("--validate-config" in c for c in settings.get("ExecStartPre", []))


def test_unit_main_process_exits_with_a_restart_preventing_status(
    tmp_path: Path, testable_unit: Path
) -> None:
    """The unit's ExecStart command line, given a broken config, exits with a status that
    RestartPreventExitStatus= names; its binary validates a good config with exit 0."""
    settings = _unit_settings(testable_unit.read_text())
    argv = settings["ExecStart"][0].split()
    config_at = argv.index("--config") + 1
    bad = tmp_path / "bad.toml"
    bad.write_text("[watchdog]\nintervall = 1\n")
    argv[config_at] = str(bad)
    code = subprocess.run(
        argv, capture_output=True, timeout=60, check=False, env=service_env()
    ).returncode
    assert str(code) in settings["RestartPreventExitStatus"][0].split()

    good = write_config(tmp_path, 53, [signed("ok.test.", expires_in=86400)])
    validated = subprocess.run(
        [argv[0], "--validate-config", "--config", str(good)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert validated.returncode == 0


# -- install.sh ---------------------------------------------------------------------------------


def _checkout_copy(directory: Path) -> Path:
    """This checkout's files without caches or builds: pip builds in the source tree, and the
    test must leave the real one as it found it."""
    skip = shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", ".*cache", ".hypothesis", "__pycache__"
    )
    return Path(shutil.copytree(REPO, directory, ignore=skip))


def _install(checkout: Path, root: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(DESTDIR=str(root), PYTHON=sys.executable)
    return subprocess.run(
        ["sh", str(checkout / "deploy" / "install.sh"), "--no-start"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )


@pytest.mark.slow
def test_install_sh_stages_an_idempotent_install(tmp_path: Path) -> None:
    """DESTDIR install: venv, reference config, credentials directory and unit in place; the
    installed command runs; a second run keeps the edited config and still works."""
    root = tmp_path / "root"
    checkout = _checkout_copy(tmp_path / "checkout")
    first = _install(checkout, root)
    assert first.returncode == 0, first.stderr

    prefix = root / "opt" / "dnssec-watchdog"
    etc = root / "etc" / "dnssec-watchdog"
    command = prefix / "venv" / "bin" / "dnssec-watchdog"
    assert os.access(command, os.X_OK)
    assert (etc / "config.toml").read_text() == (REPO / "config.toml").read_text()
    assert stat.S_IMODE((etc / "credentials").stat().st_mode) == 0o700
    unit = root / "etc" / "systemd" / "system" / UNIT.name
    assert unit.read_text() == UNIT.read_text()
    assert (prefix / "README.md").is_file()

    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    ran = subprocess.run(
        [str(command), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert (ran.returncode, ran.stdout.strip()) == (0, f"dnssec-watchdog {version}")
    # A regular install: the code lives in the venv, not in this checkout.
    where = subprocess.run(
        [
            str(prefix / "venv" / "bin" / "python"),
            "-c",
            "import watchdog; print(watchdog.__file__)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert Path(where.stdout.strip()).is_relative_to(prefix / "venv"), where.stdout

    edited = (etc / "config.toml").read_text() + "\n# local edit: keep me\n"
    (etc / "config.toml").write_text(edited)
    second = _install(checkout, root)
    assert second.returncode == 0, second.stderr
    assert (etc / "config.toml").read_text() == edited
    assert "kept the existing" in second.stdout
    again = subprocess.run(
        [str(command), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert again.returncode == 0


def test_install_sh_refuses_an_old_python(tmp_path: Path) -> None:
    """PYTHON pointing to something that is not Python 3.11+ stops the installer with a hint
    before it creates anything."""
    root = tmp_path / "root"
    env = {**os.environ, "DESTDIR": str(root), "PYTHON": str(tmp_path / "no-python")}
    result = subprocess.run(
        ["sh", str(INSTALL), "--no-start"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode != 0
    assert "PYTHON=" in result.stderr
    assert not root.exists()
