"""The sentences people read: one wording for the terminal, Nagios, webhooks and Slack."""

from __future__ import annotations

import json
import re

import pytest
from observations import one_server

from watchdog.alerting.payloads import event_body, slack_body
from watchdog.engine.alerts import AlertPolicy, Origin, transition_zone
from watchdog.engine.assess import ZoneReport, assess_zone
from watchdog.engine.findings import Severity
from watchdog.engine.timeutil import rfc3339
from watchdog.render.check import nagios_line, render_zone
from watchdog.render.sentences import (
    finding_reason,
    no_timeline_reason,
    server_label,
    threshold_label,
)

DAY = 86400
T0 = 1_800_000_000
ZONE = "example.com."


def _report(expires_in: int) -> ZoneReport:
    """One server whose SOA and DNSKEY signatures (14 days long) expire ``expires_in`` after T0."""
    return assess_zone(one_server(ZONE, T0 + expires_in), T0)


@pytest.mark.parametrize(
    ("threshold", "future", "past"),
    [
        ("warning", "warning at", "warning since"),
        ("strict_fail", "strict validators fail at", "strict validators failing since"),
        ("skew_exhausted", "Unbound (skew 3600 s) fails at", "Unbound (skew 3600 s) failing since"),
    ],
)
def test_a_threshold_is_ahead_until_its_second_comes(
    threshold: str, future: str, past: str
) -> None:
    """A threshold's own second already counts as reached (it is the first failing second)."""
    assert threshold_label(threshold, T0 + 1, T0, 3600) == future
    assert threshold_label(threshold, T0, T0, 3600) == past


def test_every_output_tells_the_same_strict_fail_second() -> None:
    """Terminal, Nagios, the webhook summary and Slack name one strict-fail second alike."""
    report = _report(3600)
    assert report.deadlines is not None
    at = rfc3339(report.deadlines.strict_fail_at)
    _, events = transition_zone({}, report, AlertPolicy(), Origin("host", "0"))
    # Webhooks round the span to the minute, Nagios keeps the seconds: the moment is the same.
    said = re.compile(rf"strict validators fail in [0-9dhms ]+ \({at}\)")
    assert said.search(event_body(events[0])["summary"])
    assert said.search(json.dumps(slack_body(events[0])))
    assert said.search(nagios_line([report]))
    terminal = render_zone(report)
    assert "strict validators fail at" in terminal and at in terminal


def test_reasons_without_a_timeline() -> None:
    """Why there is nothing to count down to: unsigned, unserved, or nothing verifies."""
    assert "nothing to watch" in no_timeline_reason(signed=False, served=True)
    assert "no server served the zone" in no_timeline_reason(signed=True, served=False)
    assert "no signature verifies" in no_timeline_reason(signed=True, served=True)


def test_a_finding_reason_names_code_and_server() -> None:
    """Nagios names the worst finding's code and where it was seen, or the severity alone."""
    assert finding_reason("a.", Severity.BOGUS, "ds_mismatch", None) == "a. bogus: ds_mismatch"
    assert finding_reason("a.", Severity.UNKNOWN, "lame", "192.0.2.1:53") == (
        "a. unknown: lame on 192.0.2.1:53"
    )
    assert finding_reason("a.", Severity.STRICT_FAIL, None, None) == "a. strict fail"


def test_servers_are_named_short_inside_the_zone() -> None:
    """An NS inside the zone is named relative to it; port 53 is left out, others kept."""
    assert server_label("192.0.2.53:53", "ns2.example.com.", ZONE) == "ns2 192.0.2.53"
    assert server_label("[2001:db8::1]:53", "ns.other.net.", ZONE) == "ns.other.net 2001:db8::1"
    assert server_label("127.0.0.1:5353", None, ZONE) == "127.0.0.1:5353"
    assert server_label("parent", None, ZONE) == "the parent's DS"
