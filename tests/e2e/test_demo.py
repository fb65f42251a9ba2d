"""``make demo`` in CI: the fast demo runs end to end and shows all four webhook events in order.

The demo (watchdog.demo) runs the real watch service against a zone on 127.0.0.1 that expires
within seconds and is then re-signed; its receiver prints one line per webhook it gets.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from service_harness import service_env

# What a person watching the demo must see: warning, then strict validators failing, then even
# Unbound failing, then the recovery after the re-signing (DESIGN.md 2 and 4).
_EXPECTED = [
    ("RAISED", "ok", "warning"),
    ("RAISED", "warning", "strict_fail"),
    ("RAISED", "strict_fail", "skew_exhausted"),
    ("RECOVERED", "skew_exhausted", "ok"),
]
# "  [webhook +  8.4s] RAISED    warning -> strict_fail"
_WEBHOOK_LINE = re.compile(r"\[webhook \+\s*[\d.]+s\]\s+(\w+)\s+(\w+) -> (\w+)")


@pytest.mark.slow
def test_fast_demo_shows_all_four_events_in_order() -> None:
    """``python -m watchdog.demo --fast`` exits 0 after printing the four events in order."""
    result = subprocess.run(
        [sys.executable, "-m", "watchdog.demo", "--fast"],
        capture_output=True,
        text=True,
        timeout=120,
        env=service_env(),
        check=False,
    )
    events = [match.groups() for match in _WEBHOOK_LINE.finditer(result.stdout)]
    assert events == _EXPECTED, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
