"""Daemons of the lab: start in their own process group, wait with a timeout, stop the group.

Every process the lab starts is a session leader (``start_new_session=True``), so stopping it
reaches its forked children too (NSD forks a server and xfrd) without touching anything else.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = [
    "ClockNotConfirmedError",
    "Daemon",
    "LabError",
    "StartupError",
    "ToolError",
    "binary",
    "die_with_parent",
    "free_port",
    "run_tool",
    "wait_until",
]

_POLL_INTERVAL = 0.02
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded before any fork, used in the child


class LabError(Exception):
    """Base of every error the lab raises: the lab itself, not the code under test, failed."""


class ToolError(LabError):
    """A command-line tool (ldns-keygen, ldns-signzone, ...) failed."""


class StartupError(LabError):
    """A daemon did not come up (exited, or did not answer before its timeout)."""


class ClockNotConfirmedError(LabError):
    """The validator's own log does not prove it ran at the clock the test asked for."""


def binary(name: str) -> str:
    """The absolute path of command ``name`` (daemons live in /usr/sbin, often off PATH)."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    found = shutil.which(name, path=search)
    if found is None:
        raise ToolError(f"{name} is not installed (see tests/install-debian-deps.sh)")
    return found


def run_tool(args: Sequence[str], *, cwd: Path | None = None, timeout: float = 30.0) -> str:
    """Run a short-lived tool and return its stdout; a failure raises ToolError with stderr."""
    command = [binary(args[0]), *args[1:]]
    try:
        done = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise ToolError(f"{' '.join(args)} did not finish within {timeout} s") from exc
    if done.returncode != 0:
        raise ToolError(
            f"{' '.join(args)} exited with {done.returncode}: {done.stderr.strip() or done.stdout}"
        )
    return done.stdout


def free_port(address: str = "127.0.0.1") -> int:
    """A port that is free for both UDP and TCP on ``address`` right now.

    Another process may take it before the daemon binds it; Daemon.start retries on a new port
    when the daemon exits during start-up.
    """
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((address, 0))
            port: int = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((address, port))
                except OSError:
                    continue
                return port
    raise LabError(f"no port free for both UDP and TCP on {address}")


def wait_until(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; raise StartupError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise StartupError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(_POLL_INTERVAL)


class Daemon:
    """A long-running server under test control; subclasses say how to configure and probe it.

    Subclasses implement ``_prepare(port) -> argv`` (write config files) and ``_ready() -> bool``
    (does it answer yet?), and may override ``_environment()``. Use as a context manager or call
    start()/stop() (stop is idempotent, so it is safe in a fixture finaliser).
    """

    name = "daemon"
    start_timeout = 10.0
    stop_timeout = 3.0
    start_attempts = 3

    def __init__(self, workdir: Path, *, address: str = "127.0.0.1", port: int | None = None):
        if not address.startswith("127."):
            raise LabError(f"the lab only uses loopback addresses, not {address}")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.address = address
        self._fixed_port = port
        self.port = port or 0
        self.log_file = self.workdir / f"{self.name}.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    # -- to implement -------------------------------------------------------------------------

    def _prepare(self, port: int) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    def _environment(self) -> Mapping[str, str]:
        return os.environ

    def _cleanup(self) -> None:
        """Remove what _prepare made outside ``workdir``; runs after every stop."""

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        """Start the daemon and wait until it answers; retries on a new port if it dies early."""
        if self._process is not None:
            return self
        problem = ""
        for _ in range(self.start_attempts):
            self.port = self._fixed_port or free_port(self.address)
            argv = self._prepare(self.port)
            with self.log_file.open("ab") as log:
                self._log_offset = log.tell()
                self._process = subprocess.Popen(
                    argv,
                    cwd=self.workdir,
                    env=dict(self._environment()),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=die_with_parent,
                )
            try:
                wait_until(self._up, timeout=self.start_timeout, what=f"{self.name} to answer")
                return self
            except StartupError as exc:
                problem = str(exc)
                self.stop()
            except BaseException:
                self.stop()
                raise
            if self._fixed_port:
                break
        raise StartupError(f"{self.name} did not start: {problem}\n{self.log_tail()}")

    def _up(self) -> bool:
        assert self._process is not None
        if _has_exited(self._process):
            raise StartupError(f"{self.name} exited during start-up")
        # Probing before the port is bound costs a whole probe timeout: look first.
        return _udp_bound(self.address, self.port) and self._ready()

    def stop(self) -> None:
        """Stop the whole process group: SIGTERM, then SIGKILL after ``stop_timeout``."""
        process, self._process = self._process, None
        if process is None:
            return
        try:
            self._signal_group(process, signal.SIGTERM)
            deadline = time.monotonic() + self.stop_timeout
            while not _has_exited(process) and time.monotonic() < deadline:
                time.sleep(_POLL_INTERVAL)
            # Children may outlive the leader; its unreaped zombie still holds the group id.
            self._signal_group(process, signal.SIGKILL)
        finally:
            process.wait(timeout=self.stop_timeout)
            self._cleanup()

    @staticmethod
    def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
        if process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)

    @property
    def running(self) -> bool:
        """Whether it was started and has not exited."""
        return self._process is not None and not _has_exited(self._process)

    def log_text(self) -> str:
        """What the daemon wrote to stdout and stderr since its last start."""
        try:
            with self.log_file.open("rb") as log:
                log.seek(self._log_offset)
                return log.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        tail = self.log_text().splitlines()[-lines:]
        return f"--- last lines of {self.log_file} ---\n" + "\n".join(tail)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _has_exited(process: subprocess.Popen[bytes]) -> bool:
    """Whether the leader has exited, without reaping it: its zombie keeps the group id ours."""
    if process.returncode is not None:
        return True
    flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
    return os.waitid(os.P_PID, process.pid, flags) is not None


def _udp_bound(address: str, port: int) -> bool:
    """Whether some socket is bound to UDP ``address``:``port`` (Linux /proc/net/udp)."""
    try:
        table = Path("/proc/net/udp").read_text()
    except OSError:
        return True  # cannot tell: let the probe decide
    wanted = f"{socket.inet_aton(address)[::-1].hex().upper()}:{port:04X}"
    return any(line.split()[1] == wanted for line in table.splitlines()[1:] if line.strip())


def die_with_parent() -> None:
    """In the child before exec (``preexec_fn``): SIGKILL it if the test process dies.

    Daemons run in their own session, so a CI timeout that kills the test run's process group
    would not reach them; this does, even when no finally block gets to run. The parent is the
    thread that started the child: start children from the main thread.
    """
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
