"""Webhook bodies: generic JSON against its schema, HMAC as a receiver checks it, Slack blocks."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

import watchdog
from watchdog.alerting.payloads import (
    EVENT_HEADER,
    SIGNATURE_HEADER,
    event_body,
    render,
    sign,
    signature_headers,
    slack_body,
    verify_signature,
)
from watchdog.engine.alerts import (
    AlertEvent,
    AlertPolicy,
    AlertState,
    Condition,
    Origin,
    transition_zone,
)
from watchdog.engine.assess import assess_zone
from watchdog.engine.findings import Finding, Severity
from watchdog.engine.observations import (
    RRsetObservation,
    ServerObservation,
    SignatureObservation,
    Verification,
    ZoneObservation,
)
from watchdog.errors import InvalidValueError
from watchdog.render.sentences import summarize

HOUR, DAY, WRAP = 3600, 86400, 2**32
T0 = 1_800_000_000  # 2027-01-15T08:00:00Z
LIFE = 14 * DAY  # Unbound skew of a 14-day signature: 1 day
ORIGIN = Origin("watchdog-1.example.net", "0.1.0")
SECRET = b"hmac-key-that-must-never-leak-7f3a"
NS1 = ("192.0.2.1:53", "ns1.example.com.")
NS2 = ("192.0.2.53:53", "ns2.example.com.")
STALE_IN = 2 * HOUR + 13 * 60 + 7  # ns2's signatures expire 2h 13m 7s after T0
SCHEMA = json.loads(
    (Path(watchdog.__file__).parent / "schemas" / "event-v1.json").read_text("utf-8")
)


def iso(t: int) -> str:
    """RFC 3339 the way a receiver would print it, independently of watchdog.engine.timeutil."""
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def server(
    where: tuple[str, str],
    expiration: int,
    *,
    serial: int = 2027011501,
    silent: bool = False,
    bogus: bool = False,
    problems: tuple[Finding, ...] = (),
) -> ServerObservation:
    if silent:
        return ServerObservation(where[0], where[1], reachable=False)

    def sig(rtype: str) -> SignatureObservation:
        bad = bogus and rtype == "SOA"
        return SignatureObservation(
            "example.com.",
            rtype,
            1111 if rtype == "SOA" else 2222,
            13,
            (expiration - LIFE) % WRAP,
            expiration % WRAP,
            3600,
            Verification.BOGUS if bad else Verification.VALID,
            reason="RSA/ECDSA verification failed" if bad else "",
        )

    rrsets = tuple(RRsetObservation("example.com.", t, 3600, (sig(t),)) for t in ("SOA", "DNSKEY"))
    return ServerObservation(where[0], where[1], serial=serial, rrsets=rrsets, problems=problems)


def events_for(
    *observations: tuple[int, ZoneObservation], policy: AlertPolicy | None = None
) -> list[AlertEvent]:
    states: dict[Condition, AlertState] = {}
    events: list[AlertEvent] = []
    for now, obs in observations:
        states, new = transition_zone(
            states, assess_zone(obs, now), policy or AlertPolicy(), ORIGIN
        )
        events.extend(new)
    return events


def zone(
    *servers: ServerObservation, name: str = "example.com.", signed: bool = True
) -> ZoneObservation:
    return ZoneObservation(name, servers, signed=signed)


def stale_ns2(now: int = T0) -> ZoneObservation:
    """ns1 re-signed; ns2 lost its primary: older serial, signatures expiring at T0 + STALE_IN."""
    return zone(
        server(NS1, T0 + 10 * DAY),
        server(NS2, T0 + STALE_IN, serial=2027011400),
    )


def resigned() -> ZoneObservation:
    """Both servers carry fresh 14-day signatures expiring at T0 + 10 days."""
    return zone(server(NS1, T0 + 10 * DAY), server(NS2, T0 + 10 * DAY))


def expired(by: int) -> ZoneObservation:
    return zone(server(NS1, T0 - by), server(NS2, T0 - by))


# One event per state a receiver must be able to read.
SCENARIOS: dict[str, Callable[[], AlertEvent]] = {
    "warning-stale-server": lambda: events_for((T0, stale_ns2()))[0],
    "strict-fail": lambda: events_for((T0, expired(2 * HOUR)))[0],
    "skew-exhausted": lambda: events_for((T0, expired(2 * DAY)))[0],
    "recovered": lambda: events_for((T0, expired(2 * HOUR)), (T0 + HOUR, resigned()))[1],
    "renotify": lambda: events_for((T0 - DAY, stale_ns2()), (T0, stale_ns2()))[1],
    "bogus": lambda: events_for(
        (T0, zone(server(NS1, T0 + 10 * DAY), server(NS2, T0 + 10 * DAY, bogus=True)))
    )[0],
    "unreachable": lambda: events_for(
        *[
            (T0 + i * HOUR, zone(server(NS1, T0 + 10 * DAY), server(NS2, 0, silent=True)))
            for i in range(3)
        ]
    )[0],
    "renotify-unconfirmed": lambda: events_for(
        (T0 - DAY, expired(2 * HOUR)),
        (T0, zone(server(NS1, 0, silent=True), server(NS2, 0, silent=True), signed=False)),
    )[1],
    "unsigned": lambda: events_for(
        (T0, zone(*(ServerObservation(a, n) for a, n in (NS1, NS2)), signed=False))
    )[0],
}


@pytest.fixture(params=sorted(SCENARIOS))
def event(request: pytest.FixtureRequest) -> AlertEvent:
    return SCENARIOS[request.param]()


# --- generic body ----------------------------------------------------------------------------


def test_schema_is_valid_draft_2020_12() -> None:
    """The published schema is itself a valid JSON Schema 2020-12 document."""
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_generic_body_validates_against_the_schema(event: AlertEvent) -> None:
    """Every kind of event renders a body the documented schema accepts, fields and formats."""
    request = render(event, "generic", None, T0)
    body = json.loads(request.body)
    validator = jsonschema.Draft202012Validator(
        SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    assert list(validator.iter_errors(body)) == []
    assert body["schema"] == 1
    assert request.headers[EVENT_HEADER] == body["id"] == event.id
    assert request.headers["Content-Type"] == "application/json"
    assert SIGNATURE_HEADER not in request.headers


def test_generic_body_names_deadlines_and_the_stale_server() -> None:
    """Deadlines are E+1 and E+skew+1 of ns2's signature, and ns2 is the one named."""
    body = event_body(SCENARIOS["warning-stale-server"]())
    e = T0 + STALE_IN
    assert body["zone"] == "example.com."
    assert (body["condition"], body["kind"]) == ("expiry", "raised")
    assert (body["old_severity"], body["new_severity"], body["resolved"]) == (
        "ok",
        "warning",
        False,
    )
    d = body["deadlines"]
    assert d["strict_fail_at"] == iso(e + 1)
    assert d["skew_exhausted_at"] == iso(e + DAY + 1)
    assert d["warning_at"] == iso(e - LIFE // 10)
    assert d["unbound_skew"] == DAY
    assert d["signature"]["server"] == NS2[0]
    assert d["signature"]["server_name"] == NS2[1]
    assert d["signature"]["expiration"] == iso(e)
    assert d["signature"]["inception"] == iso(e - LIFE)
    assert {(s["address"], s["serial"]) for s in body["servers"]} == {
        (NS1[0], 2027011501),
        (NS2[0], 2027011400),
    }
    assert "stale_serial" in {f["code"] for f in body["findings"]}
    assert body["watchdog"] == {"host": ORIGIN.host, "version": ORIGIN.version}


def test_same_event_renders_the_same_bytes() -> None:
    """The outbox may re-render: identical events give identical bodies."""
    first, second = SCENARIOS["strict-fail"](), SCENARIOS["strict-fail"]()
    assert render(first, "generic", None, T0).body == render(second, "generic", None, T0 + 99).body


# --- summaries -------------------------------------------------------------------------------


def test_summary_of_a_warning_names_times_and_the_stale_server() -> None:
    """The line from the brief: strict deadline with its moment, Unbound's, the stale server."""
    e = T0 + STALE_IN
    assert summarize(SCENARIOS["warning-stale-server"]()) == (
        f"example.com: strict validators fail in 2h 13m ({iso(e + 1)}); Unbound in 1d 2h 13m; "
        "stale server ns2 192.0.2.53"
    )


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        (
            "strict-fail",
            "example.com: signatures expired; strict validators fail since "
            f"{iso(T0 - 2 * HOUR + 1)} (1h 59m ago); Unbound fails in 22h "
            f"({iso(T0 - 2 * HOUR + DAY + 1)})",
        ),
        (
            "skew-exhausted",
            f"example.com: signatures expired; every validator fails since "
            f"{iso(T0 - 2 * DAY + DAY + 1)} (23h 59m ago), strict validators since "
            f"{iso(T0 - 2 * DAY + 1)}",
        ),
        (
            "recovered",
            f"example.com: recovered from strict fail; strict validators fail in 9d 23h "
            f"({iso(T0 + 10 * DAY + 1)}); Unbound in 10d 23h",
        ),
        (
            "renotify",
            # Since the warning threshold itself (10% of 14 d before ns2's expiry), not the check.
            f"example.com: still warning since {iso(T0 + STALE_IN - LIFE // 10)}; "
            "strict validators fail in 2h 13m "
            f"({iso(T0 + STALE_IN + 1)}); Unbound in 1d 2h 13m; stale server ns2 192.0.2.53",
        ),
        (
            "renotify-unconfirmed",
            # The warning began at its threshold: E = T0 - 2h, warning 10% of 14 d before.
            f"example.com: still warning since {iso(T0 - 2 * HOUR - LIFE // 10)}; "
            "not confirmed by this check: "
            "ns1 192.0.2.1, ns2 192.0.2.53 not answering",
        ),
        (
            "unreachable",
            "example.com: unreachable: ns2 192.0.2.53 not answering (3 consecutive failed checks)",
        ),
    ],
)
def test_summary_wording_per_state(scenario: str, expected: str) -> None:
    """Expired, skew exhausted, recovered, reminder and unreachable each read as they should."""
    assert summarize(SCENARIOS[scenario]()) == expected


def test_summary_of_bogus_and_unknown_quotes_the_finding() -> None:
    """Bogus and unknown say so and quote what the engine found, on one line."""
    bogus = summarize(SCENARIOS["bogus"]())
    assert bogus.startswith("example.com: bogus: ")
    assert "192.0.2.53:53" in bogus and "1111" in bogus
    unknown = summarize(SCENARIOS["unsigned"]())
    assert unknown.startswith("example.com: cannot judge: ") and "not" in unknown
    assert "\n" not in bogus + unknown


# --- HMAC ------------------------------------------------------------------------------------


def receiver_accepts(header: str, body: bytes, secret: bytes, now: int) -> bool:
    """A receiver's own check, written from the README recipe with hmac/hashlib only."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    t = int(fields["t"])
    if abs(now - t) > 300:
        return False
    expected = hmac.new(secret, str(t).encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"])


def test_signature_verifies_with_an_independent_receiver(event: AlertEvent) -> None:
    """The header on a rendered request checks out with a receiver's own HMAC code."""
    request = render(event, "generic", SECRET, T0)
    header = request.headers[SIGNATURE_HEADER]
    assert header.startswith(f"t={T0},v1=")
    assert receiver_accepts(header, request.body, SECRET, T0 + 5)
    assert verify_signature(header, request.body, SECRET, T0 + 5)


def test_signature_fails_for_a_changed_body_wrong_key_or_old_timestamp() -> None:
    """One changed byte, another key, or a replay after the tolerance: both checks refuse."""
    body = render(SCENARIOS["bogus"](), "generic", None, T0).body
    header = sign(body, SECRET, T0)
    tampered = body.replace(b'"bogus"', b'"okay!"', 1)
    assert tampered != body
    for args in [(tampered, SECRET, T0), (body, b"another-key", T0), (body, SECRET, T0 + 301)]:
        assert not receiver_accepts(header, *args)
        assert not verify_signature(header, *args)
    assert verify_signature(header, body, SECRET, T0 + 300)  # the tolerance is inclusive
    assert not verify_signature(header, body, SECRET, T0 - 301)  # from the future
    assert not verify_signature(header, body, SECRET, T0 + 60, tolerance=30)


def test_resigning_at_send_time_keeps_the_body() -> None:
    """The notifier stores the body once and signs it again at each attempt."""
    request = render(SCENARIOS["strict-fail"](), "generic", SECRET, T0)
    later = signature_headers(request.body, SECRET, T0 + 3600)[SIGNATURE_HEADER]
    assert later != request.headers[SIGNATURE_HEADER]
    assert receiver_accepts(later, request.body, SECRET, T0 + 3601)
    assert not receiver_accepts(request.headers[SIGNATURE_HEADER], request.body, SECRET, T0 + 3601)


def test_a_rotated_secret_can_be_checked_alongside_the_old_one() -> None:
    """A header carrying two v1 values verifies with either key (secret rotation)."""
    body = b'{"schema":1}'
    old, new = sign(body, b"old-key", T0), sign(body, b"new-key", T0)
    both = f"{old},v1={new.split('v1=')[1]}"
    assert verify_signature(both, body, b"old-key", T0)
    assert verify_signature(both, body, b"new-key", T0)
    assert not verify_signature(both, body, b"third-key", T0)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        "t=,v1=00",
        "t=abc,v1=00",
        "v1=00",
        f"t={T0}",
        f"t={T0},t={T0},v1=00",
        "t=١٧٠٠٠٠٠٠٠٠,v1=00",  # Arabic-Indic digits: isdigit() but not a timestamp
        f"t={T0},v1=ü",
        "t=" + "9" * 5000 + ",v1=00",  # beyond int() digit limit
    ],
)
def test_malformed_signature_headers_are_refused_quietly(header: str) -> None:
    """Whatever arrives in the header, verification says False and never raises."""
    assert verify_signature(header, b"{}", SECRET, T0) is False


def test_secret_never_appears_in_body_or_headers(event: AlertEvent) -> None:
    """Neither body nor headers carry the HMAC key, in either webhook kind."""
    for kind in ("generic", "slack"):
        request = render(event, kind, SECRET, T0)
        text = request.body.decode("utf-8") + "".join(request.headers.values())
        assert SECRET.decode() not in text
        assert SECRET.hex() not in text


def test_bad_render_arguments_are_clear_errors() -> None:
    """An empty secret or an unknown webhook kind is refused, naming the problem."""
    event = SCENARIOS["bogus"]()
    with pytest.raises(InvalidValueError, match="secret is empty"):
        render(event, "generic", b"", T0)
    with pytest.raises(InvalidValueError, match="teams"):
        render(event, "teams", None, T0)  # type: ignore[arg-type]


# --- Slack -----------------------------------------------------------------------------------


def check_text(obj: dict[str, Any], limit: int, types: set[str]) -> None:
    assert obj["type"] in types
    assert set(obj) <= {"type", "text", "emoji", "verbatim"}
    assert "emoji" not in obj or obj["type"] == "plain_text"  # emoji is a plain_text option
    assert isinstance(obj["text"], str) and 1 <= len(obj["text"]) <= limit
    if obj["type"] == "mrkdwn":  # &, <, > must be escaped (we never send links)
        assert "<" not in obj["text"] and ">" not in obj["text"]
        assert "&" not in re.sub("&(amp|lt|gt);", "", obj["text"])  # no half escape


def check_block_kit(body: dict[str, Any]) -> None:
    """Slack's documented block rules: types, required fields, lengths, counts."""
    assert set(body) == {"text", "blocks"}
    assert isinstance(body["text"], str) and body["text"].strip()
    blocks = body["blocks"]
    assert 1 <= len(blocks) <= 50
    assert blocks[0]["type"] == "header"
    for block in blocks:
        if block["type"] == "header":
            assert set(block) <= {"type", "text", "block_id"}
            check_text(block["text"], 150, {"plain_text"})
        elif block["type"] == "section":
            assert set(block) <= {"type", "text", "fields", "block_id", "accessory"}
            assert "text" in block or "fields" in block
            if "text" in block:
                check_text(block["text"], 3000, {"plain_text", "mrkdwn"})
            if "fields" in block:
                assert 1 <= len(block["fields"]) <= 10
                for field in block["fields"]:
                    check_text(field, 2000, {"plain_text", "mrkdwn"})
        elif block["type"] == "context":
            assert set(block) <= {"type", "elements", "block_id"}
            assert 1 <= len(block["elements"]) <= 10
            for element in block["elements"]:
                check_text(element, 3000, {"plain_text", "mrkdwn"})
        else:
            pytest.fail(f"unexpected block type {block['type']}")


def test_slack_body_follows_block_kit_rules(event: AlertEvent) -> None:
    """Every event renders header, severity section, timeline and context within the limits."""
    body = json.loads(render(event, "slack", None, T0).body)
    check_block_kit(body)
    context = body["blocks"][-1]
    assert context["type"] == "context"
    line = context["elements"][0]["text"]
    assert ORIGIN.host in line and ORIGIN.version in line and event.id in line
    assert event.zone.rstrip(".") in body["blocks"][0]["text"]["text"]


def test_slack_timeline_fields_and_blamed_server() -> None:
    """The warning shows when each validator class fails and which server is behind."""
    body = slack_body(SCENARIOS["warning-stale-server"]())
    fields = " ".join(f["text"] for f in body["blocks"][1]["fields"])
    e = T0 + STALE_IN
    assert iso(e + 1) in fields and iso(e + DAY + 1) in fields and iso(e - LIFE // 10) in fields
    assert "ns2 192.0.2.53" in fields
    assert "WARNING" in body["blocks"][1]["text"]["text"]


def test_slack_emoji_follow_severity() -> None:
    """Each rung of the ladder gets its own header emoji, and recovery is green."""
    headers = {
        name: slack_body(SCENARIOS[name]())["blocks"][0]["text"]["text"].split()[0]
        for name in ("warning-stale-server", "strict-fail", "skew-exhausted", "recovered", "bogus")
    }
    assert len(set(headers.values())) == len(headers)
    assert headers["recovered"] == ":large_green_circle:"


def test_slack_clips_huge_and_hostile_text() -> None:
    """A 250-character zone and a 5000-character message with <!channel> stay within the rules."""
    labels = ["a" * 63, "b" * 63, "c" * 63, "d" * 57]
    name = ".".join(labels) + "."
    noisy = Finding("malformed_answer", Severity.UNKNOWN, "<!channel> " + "&" * 5000, NS1[0])
    obs = ZoneObservation(
        name,
        (
            server(NS1, T0 + 10 * DAY, problems=(noisy,)),
            server(NS2, T0 + 10 * DAY),
        ),
    )
    (event,) = events_for((T0, obs))
    body = slack_body(event)
    check_block_kit(body)
    assert len(body["blocks"][0]["text"]["text"]) == 150
    assert "&lt;!channel&gt; &amp;&amp;" in body["blocks"][1]["text"]["text"]


# --- over real HTTP --------------------------------------------------------------------------


Received = list[tuple[dict[str, str], bytes]]


def receiver_class(store: Received) -> type[BaseHTTPRequestHandler]:
    """A webhook receiver that records each POST (headers lower-cased) and answers 204."""

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            store.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Receiver


@pytest.fixture
def receiver() -> Iterator[tuple[str, Received]]:
    store: Received = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), receiver_class(store))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}/hook", store
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_a_real_receiver_verifies_what_was_posted(
    receiver: tuple[str, Received],
) -> None:
    """POSTed over loopback HTTP, the bytes and headers arrive intact and verify."""
    url, received = receiver
    request = render(SCENARIOS["skew-exhausted"](), "generic", SECRET, T0)
    with httpx.Client(trust_env=False, timeout=5) as client:
        response = client.post(url, content=request.body, headers=request.headers)
    assert response.status_code == 204
    ((headers, body),) = received
    assert body == request.body
    assert receiver_accepts(headers[SIGNATURE_HEADER.lower()], body, SECRET, T0 + 1)
    assert json.loads(body)["id"] == headers[EVENT_HEADER.lower()]
