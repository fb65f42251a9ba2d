"""A real systemd for the unit's tests: a minimal Debian booted by ``systemd-nspawn -b``.

The host has no systemd as PID 1, so ``systemctl`` cannot run the unit here; a container can.
The root is made once with ``debootstrap --variant=minbase`` from the Debian mirror apt already
uses (read from apt's sources, never hard-coded) and kept in ``CACHE`` between runs; each test
session boots a copy of it. The container shares the host's network namespace, so the servers
and receivers a test starts on 127.0.0.1 are the ones the service inside reaches, and nothing
else is. ``--register=no --keep-unit`` because no systemd-machined runs on the host.

Commands run inside through ``nsenter`` into the container's PID 1 (all namespaces), so
``systemctl`` and ``journalctl`` talk to the container's own systemd.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Self

from .process import LabError, StartupError, die_with_parent, wait_until

__all__ = ["CACHE", "Container", "debian_root", "nspawn_missing"]

CACHE = Path(os.environ.get("DNSSEC_WATCHDOG_TEST_CACHE", "/var/cache/dnssec-watchdog-tests"))
# What the root holds beyond minbase: systemd to boot, dbus for systemctl, Python for the
# installer's virtual environment.
_PACKAGES = ("systemd", "systemd-sysv", "dbus", "python3", "python3-venv")
_BOOT_TIMEOUT = 90.0


def nspawn_missing() -> list[str]:
    """The commands this module needs that are not installed (Debian: systemd-container,
    debootstrap)."""
    return [c for c in ("systemd-nspawn", "debootstrap", "nsenter") if shutil.which(c) is None]


def _apt_mirror() -> tuple[str, str]:
    """The Debian mirror and suite apt uses on this host, from its sources files."""
    codename = ""
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            codename = line.partition("=")[2].strip().strip('"')
    sources = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    for path in sources:  # deb822: "URIs: ..." then "Suites: ..."
        for stanza in path.read_text().split("\n\n"):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
            suites = re.search(r"^Suites:\s*(\S+)", stanza, re.M)
            if uris and suites and "security" not in suites.group(1):
                return uris.group(1), suites.group(1)
    sources_list = Path("/etc/apt/sources.list")
    if sources_list.exists():
        for line in sources_list.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and "security" not in parts[2]:
                return parts[1], parts[2]
    if not codename:
        raise LabError("cannot tell which Debian release this is (/etc/os-release)")
    raise LabError("no Debian mirror in apt's sources: cannot debootstrap a container root")


def debian_root() -> Path:
    """The cached minimal root (made on first use: about 1.5 min and 300 MB)."""
    mirror, suite = _apt_mirror()
    root = CACHE / f"debian-{suite}-minbase"
    if (root / "usr/lib/systemd/systemd").exists() and (root / "usr/bin/python3").exists():
        return root
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = CACHE / f".{root.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    command = [
        "debootstrap",
        "--variant=minbase",
        f"--include={','.join(_PACKAGES)}",
        suite,
        str(partial),
        mirror,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1200, check=False)
    if result.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        raise LabError(f"debootstrap exited {result.returncode}: {result.stderr[-2000:]}")
    partial.rename(root)  # atomic: a half-made root is never taken for a cached one
    return root


class Container:
    """A booted copy of ``base`` in ``workdir``; a context manager (stop() is idempotent)."""

    def __init__(self, base: Path, workdir: Path, *, name: str = "wdtest") -> None:
        self.root = workdir / "root"
        self.name = name
        self._base = base
        self.log_file = workdir / "nspawn.log"
        self._process: subprocess.Popen[bytes] | None = None
        self.leader = 0

    def prepare(self) -> Self:
        """Copy the base root (no boot yet): files may be placed in ``root`` before start."""
        if not self.root.exists():
            subprocess.run(["cp", "-a", f"{self._base}/.", str(self.root)], check=True, timeout=600)
        return self

    def run_unbooted(self, *argv: str, timeout: float = 600.0) -> str:
        """Run a command in the root without booting it (e.g. the installer)."""
        command = ["systemd-nspawn", "-q", "-D", str(self.root), "--register=no", "--keep-unit"]
        command += ["--pipe", *argv]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise LabError(
                f"{' '.join(argv)} in the container exited {result.returncode}: "
                f"{result.stdout[-1500:]}{result.stderr[-1500:]}"
            )
        return result.stdout

    def start(self) -> Self:
        """Boot it and wait until its systemd says the system is running."""
        self.prepare()
        command = ["systemd-nspawn", "-q", "-D", str(self.root), "-b", "--register=no"]
        command += ["--keep-unit", "--console=pipe", "-M", self.name]
        with self.log_file.open("wb") as log:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        try:
            wait_until(self._find_leader, timeout=_BOOT_TIMEOUT, what="the container's systemd")
            wait_until(self._booted, timeout=_BOOT_TIMEOUT, what="the container to finish booting")
        except StartupError as exc:
            log_tail = self.log_file.read_text(errors="replace")[-2000:]
            self.stop()
            raise StartupError(f"{exc}; nspawn said:\n{log_tail}") from exc
        return self

    def _find_leader(self) -> bool:
        if self._process is None or self._process.poll() is not None:
            raise StartupError(f"systemd-nspawn exited: {self.log_file.read_text()[-2000:]}")
        for status in Path("/proc").glob("[0-9]*/status"):
            try:
                text = status.read_text()
            except OSError:
                continue
            if (
                re.search(rf"^PPid:\s*{self._process.pid}$", text, re.M)
                and "Name:\tsystemd\n" in text
            ):
                self.leader = int(status.parent.name)
                return True
        return False

    def _booted(self) -> bool:
        state = self.run("systemctl", "is-system-running", check=False).stdout.strip()
        return state in ("running", "degraded")

    def run(
        self, *argv: str, check: bool = True, timeout: float = 60.0, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the booted container (its mounts, PIDs, users)."""
        if not self.leader:
            raise LabError("the container is not running")
        command = ["nsenter", "-t", str(self.leader), "-a", "--", *argv]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False, input=input
        )
        if check and result.returncode != 0:
            raise LabError(
                f"{' '.join(argv)} exited {result.returncode}: {result.stdout[-1500:]}"
                f"{result.stderr[-1500:]}"
            )
        return result

    def systemctl_show(self, unit: str, *properties: str) -> dict[str, str]:
        """``systemctl show -p ...`` as a mapping."""
        out = self.run("systemctl", "show", unit, *(f"-p{p}" for p in properties)).stdout
        return dict(line.partition("=")[::2] for line in out.splitlines() if "=" in line)

    def journal(self, unit: str) -> str:
        """The unit's journal, as text."""
        return self.run("journalctl", "--no-pager", "-o", "cat", "-u", unit, check=False).stdout

    def write(self, path: str, text: str, mode: int = 0o644) -> None:
        """Write a file inside the root (works booted or not: it is a directory on the host)."""
        target = self.root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(mode)

    def stop(self) -> None:
        """Power it off; if it does not go within 30 s, kill its PID 1 (and so everything)."""
        process, self._process = self._process, None
        if process is None:
            return
        if self.leader and process.poll() is None:
            subprocess.run(
                ["nsenter", "-t", str(self.leader), "-a", "--", "systemctl", "poweroff"],
                capture_output=True,
                timeout=30,
                check=False,
            )
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            if self.leader:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.leader, signal.SIGKILL)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        self.leader = 0

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
