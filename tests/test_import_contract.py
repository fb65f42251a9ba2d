"""The import contract: the pure packages (engine, config, render) load no I/O.

Each module is imported alone in a fresh interpreter, which reports what ``sys.modules`` holds
afterwards; none of the I/O modules of the standard library, httpx, nor any module of the
shell packages (probe, service, alerting) may be among them (DESIGN.md 3). A module that needs
one of them belongs in the shell, or imports it where the I/O happens.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import watchdog

PURE_PACKAGES = ("watchdog.engine", "watchdog.config", "watchdog.render")
FORBIDDEN = ("socket", "asyncio", "sqlite3", "httpx", "ssl", "selectors")
SHELL_PACKAGES = ("watchdog.probe", "watchdog.service", "watchdog.alerting")

_ROOT = Path(watchdog.__file__).parent


def _modules(package: str) -> list[str]:
    """``package`` and every module in it, found on disk (importing them here would taint
    this interpreter, not the fresh one each test starts)."""
    path = _ROOT.joinpath(*package.split(".")[1:])
    return [package, *(f"{package}.{m.name}" for m in pkgutil.iter_modules([str(path)]))]


def loaded_after_import(module: str) -> set[str]:
    """The names in ``sys.modules`` of a fresh interpreter after ``import module``."""
    program = (
        "import importlib, json, sys\n"
        f"importlib.import_module({module!r})\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", program],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout))


def violations(loaded: set[str]) -> list[str]:
    """The loaded modules a pure module must not bring in."""
    return sorted(
        name
        for name in loaded
        if name in FORBIDDEN
        or name.startswith(FORBIDDEN_PREFIXES)
        or name in SHELL_PACKAGES
        or name.startswith(tuple(f"{p}." for p in SHELL_PACKAGES))
    )


FORBIDDEN_PREFIXES = tuple(f"{name}." for name in FORBIDDEN)


@pytest.mark.parametrize("module", [m for p in PURE_PACKAGES for m in _modules(p)])
def test_pure_module_loads_no_io(module: str) -> None:
    """Importing a module of engine, config or render loads no socket, asyncio, sqlite3,
    httpx, ssl, nor any probe, service or alerting module."""
    assert violations(loaded_after_import(module)) == []


def test_every_pure_package_has_modules() -> None:
    """The walk above finds the modules (an empty walk would pass vacuously)."""
    for package in PURE_PACKAGES:
        assert len(_modules(package)) > 1, package


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("watchdog.probe.dnsio", {"socket", "asyncio"}),
        ("watchdog.service.store", {"sqlite3"}),
        ("watchdog.alerting.delivery", {"httpx", "watchdog.alerting.delivery"}),
    ],
)
def test_the_check_sees_a_shell_module(module: str, expected: set[str]) -> None:
    """The same check run on shell modules reports their I/O: it can fail."""
    assert expected <= set(violations(loaded_after_import(module)))
