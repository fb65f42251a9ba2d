"""The status page's pure side: row order, filters, pages, hostile query strings, escaping, JSON.

Reports come from the real engine (assess_zone) fed with hand-built observations; the expected
order and times follow from the signature dates given here (DESIGN.md 2).
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import jsonschema
import pytest

from watchdog.engine.assess import ZonePolicy, ZoneReport, assess_zone
from watchdog.engine.findings import Finding, Severity
from watchdog.engine.observations import (
    ChainStatus,
    RRsetObservation,
    ServerObservation,
    SignatureObservation,
    Verification,
    ZoneObservation,
)
from watchdog.errors import InvalidValueError
from watchdog.render.snapshot import (
    DeliveryState,
    SentEvent,
    StatusQuery,
    StatusSnapshot,
    WebhookDelivery,
    ZoneStatus,
    parse_query,
    select,
)
from watchdog.render.status import StatusResponse, respond

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "watchdog/schemas/check-v1.json").read_text()
)
ZONE_SCHEMA = {"$defs": SCHEMA["$defs"], **SCHEMA["$defs"]["zone"]}
DAY = 86400
I = 1_893_456_000  # 2030-01-01T00:00:00Z
NOW = I + 10 * DAY
A, B = "192.0.2.1:53", "192.0.2.2:53"
HOSTILE = '<script>alert(1)</script><img src=x onerror="alert(2)"><b>bold</b>&amp;'
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def sig(zone: str, expiration: int, inception: int = I) -> SignatureObservation:
    return SignatureObservation(
        zone, "SOA", 1111, 13, inception, expiration % 2**32, 3600, Verification.VALID
    )


def served(zone: str, address: str, expiration: int, name: str | None = None) -> ServerObservation:
    rrsets = (RRsetObservation(zone, "SOA", 3600, (sig(zone, expiration),)),)
    return ServerObservation(address, name, True, 7, rrsets)


def silent(address: str) -> ServerObservation:
    problem = Finding("timeout", Severity.UNREACHABLE, f"{address}: no answer", address)
    return ServerObservation(address, None, False, None, (), (problem,))


def zone_report(
    zone: str, *servers: ServerObservation, problems: tuple[Finding, ...] = ()
) -> ZoneReport:
    obs = ZoneObservation(zone, servers, ChainStatus.TRUST_ANCHOR, problems=problems)
    return assess_zone(obs, NOW, ZonePolicy())


def expiring(zone: str, days: float, next_check: int | None = None) -> ZoneStatus:
    """A zone whose single server's SOA signature expires ``days`` after NOW."""
    report = zone_report(zone, served(zone, A, NOW + int(days * DAY)))
    return ZoneStatus(zone, report, NOW + 900 if next_check is None else next_check)


def bogus(zone: str) -> ZoneStatus:
    bad = SignatureObservation(zone, "SOA", 1111, 13, I, NOW + 20 * DAY, 3600, Verification.BOGUS)
    obs = ServerObservation(A, None, True, 7, (RRsetObservation(zone, "SOA", 3600, (bad,)),))
    return ZoneStatus(zone, zone_report(zone, obs), NOW + 60)


def snapshot(*zones: ZoneStatus) -> StatusSnapshot:
    return StatusSnapshot.build(NOW, zones)


def get(snap: StatusSnapshot, target: str) -> StatusResponse:
    response = respond(snap, "GET", target, NOW)
    assert response is not None
    return response


class _Elements(HTMLParser):
    """Every element the browser's parser would build, with its attributes; text kept apart."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(body: bytes) -> _Elements:
    parser = _Elements()
    parser.feed(body.decode())
    return parser


def zone_order(body: bytes) -> list[str]:
    """The zone names of the index table's rows, in order, as text."""
    elements = parse(body)
    hrefs = [a.get("href") or "" for tag, a in elements.tags if tag == "a"]
    return [h for h in hrefs if h.startswith("/zones/")]


# --- order ------------------------------------------------------------------------------------


def test_rows_soonest_deadline_first_problems_ahead_of_ok_pending_last() -> None:
    """Failed zones first, then bogus/unreachable, then by deadline; unchecked zones last."""
    zones = [
        expiring("later.test.", 30),
        ZoneStatus("unchecked.test.", None, NOW + 5),
        expiring("soon.test.", 0.5),
        bogus("bogus.test."),
        expiring("failed.test.", -2),
        ZoneStatus("dark.test.", zone_report("dark.test.", silent(A)), NOW + 60),
        expiring("middle.test.", 5),
    ]
    body = get(snapshot(*zones), "/").body
    assert zone_order(body) == [
        "/zones/failed.test.",  # strict-fail moment two days ago
        "/zones/bogus.test.",  # failing now (bogus outranks unreachable at the same moment)
        "/zones/dark.test.",
        "/zones/soon.test.",
        "/zones/middle.test.",
        "/zones/later.test.",
        "/zones/unchecked.test.",
    ]


def test_severity_is_a_word_beside_the_colour() -> None:
    """Each row's severity reads without colour: the word is in the badge."""
    body = get(snapshot(expiring("w.test.", 0.5), expiring("ok.test.", 30)), "/").body.decode()
    assert ">WARNING</span>" in body and ">OK</span>" in body


def test_row_shows_times_worst_server_and_coverage() -> None:
    """A row holds the strict and Unbound moments (relative and UTC), the blamed server, the
    report's coverage mode, and the last and next check."""
    zone = "two.test."
    report = zone_report(zone, served(zone, A, NOW + 20 * DAY), served(zone, B, NOW + DAY))
    body = get(snapshot(ZoneStatus(zone, report, NOW + 600)), "/").body.decode()
    cells = re.findall(r'<td class="num">(.*?)</td>', body)
    assert cells[2] == 'in 1d<br><span class="muted">2030-01-12T00:00:01Z</span>'
    assert cells[3] == 'in 2d<br><span class="muted">2030-01-13T00:00:01Z</span>'
    assert cells[4].startswith(f'<span class="mono">{B}</span>')
    assert cells[5:8] == [
        "apex",
        'now<br><span class="muted">2030-01-11T00:00:00Z</span>',
        'in 10m<br><span class="muted">2030-01-11T00:10:00Z</span>',
    ]


# --- filters and pages ------------------------------------------------------------------------


def test_filters_by_severity_and_name_keep_the_counts() -> None:
    """``severity`` and ``q`` narrow the rows; the counts at the top still cover every zone."""
    snap = snapshot(
        expiring("alpha.test.", 0.5), expiring("Beta.test.", 0.6), expiring("gamma.test.", 30)
    )
    chosen = select(snap, parse_query("severity=warning&q=BET"))
    assert [z.name for z in chosen.rows] == ["Beta.test."]
    assert chosen.counts == {"warning": 2, "ok": 1}
    assert zone_order(get(snap, "/?severity=ok").body) == ["/zones/gamma.test."]


def test_pages_of_200_rows() -> None:
    """450 zones make three pages (200, 200, 50) with links between them; page 4 is refused."""
    snap = snapshot(*(expiring(f"z{i:04}.test.", 1 + i / 100) for i in range(450)))
    first, third = get(snap, "/").body, get(snap, "/?page=3").body
    assert len(zone_order(first)) == 200 and zone_order(first)[0] == "/zones/z0000.test."
    assert len(zone_order(third)) == 50 and zone_order(third)[-1] == "/zones/z0449.test."
    assert b'href="/?page=2"' in first and b"page 1 of 3" in first
    assert get(snap, "/?page=4").status == 400


@pytest.mark.parametrize(
    "query",
    [
        "page=0",
        "page=-1",
        "page=%D9%A3",  # ARABIC-INDIC DIGIT THREE
        "page=1e3",
        "page=9999999",
        "page=1&page=2",
        "severity=fatal",
        "sort=name",
        "q=%FF%FE",  # not UTF-8
        "q=a%00b",
        "q=" + "a" * 2000,
        "severity=ok&q=a&page=1&x=1",
    ],
)
def test_hostile_query_strings_are_refused(query: str) -> None:
    """Anything but the documented parameters, once each, with valid values, is a 400."""
    with pytest.raises(InvalidValueError):
        parse_query(query)
    response = get(snapshot(expiring("a.test.", 3)), "/?" + query)
    assert response.status == 400
    assert not [t for t, _ in parse(response.body).tags if t in ("script", "img")]


def test_link_parameters_are_encoded() -> None:
    """A search holding markup and quotes comes back in the search box as text."""
    query = parse_query("q=%22%3E%3Cb%3E%26x")
    assert query == StatusQuery(None, '"><b>&x', 1)
    body = get(snapshot(expiring("a.test.", 3)), "/?q=%22%3E%3Cb%3E%26x").body.decode()
    assert 'value="&quot;&gt;&lt;b&gt;&amp;x"' in body
    assert "<b>" not in body


# --- escaping ---------------------------------------------------------------------------------


def hostile_zone() -> ZoneStatus:
    zone = f"x{HOSTILE}.test."
    problem = Finding("lame", Severity.WARNING, f"message {HOSTILE}", A, zone, "SOA")
    report = zone_report(
        zone, served(zone, A, NOW + DAY, name=f"ns{HOSTILE}."), silent(B), problems=(problem,)
    )
    event = SentEvent(
        "e1", "expiry", "raised", "ok", "warning", NOW - 60,
        (WebhookDelivery(f"hook{HOSTILE}", DeliveryState.RETRYING, 2, NOW + 30, None, 503),),
    )  # fmt: skip
    return ZoneStatus(zone, report, NOW + 60, events=(event,))


@pytest.mark.parametrize("path", ["/", "/zones/", "/?q=%3Cscript%3E"])
def test_markup_from_dns_is_text(path: str) -> None:
    """Zone, server, finding and webhook names with markup render as text, never as elements."""
    z = hostile_zone()
    target = path + _quote(z.name) if path == "/zones/" else path
    response = get(snapshot(z), target)
    assert response.status == 200
    elements = parse(response.body)
    tags = {t for t, _ in elements.tags}
    assert not tags & {"script", "img", "b"}
    assert not any(k.startswith("on") for _, attrs in elements.tags for k in attrs)
    assert HOSTILE in "".join(elements.text)  # shown, as text


def _quote(name: str) -> str:
    return quote(name, safe="")


def test_every_response_carries_the_security_headers() -> None:
    """CSP and nosniff on pages, errors and the JSON API alike."""
    snap = snapshot(expiring("a.test.", 3))
    targets = (
        "/",
        "/zones/a.test.",
        "/zones/none.",
        "/?page=x",
        "/api/v1/zones",
        "/api/v1/zones/a.",
    )
    for target in targets:
        headers = dict(get(snap, target).headers)
        assert headers["Content-Security-Policy"] == CSP
        assert headers["X-Content-Type-Options"] == "nosniff"


def test_other_paths_are_not_the_status_pages() -> None:
    """Only the status routes answer; other paths are left to the listener, POST is refused."""
    snap = snapshot(expiring("a.test.", 3))
    assert respond(snap, "GET", "/metrics", NOW) is None
    post = respond(snap, "POST", "/", NOW)
    assert post is not None and post.status == 405


# --- the zone page ----------------------------------------------------------------------------


def test_zone_page_draws_the_timeline_and_one_bar_per_server() -> None:
    """The SVG names every threshold and now; each server has a bar, the stale one ends sooner."""
    zone = "stale.test."
    report = zone_report(zone, served(zone, A, NOW + 20 * DAY), served(zone, B, NOW + DAY))
    events = (
        SentEvent("e2", "expiry", "raised", "ok", "warning", NOW - 60, (
            WebhookDelivery("ops", DeliveryState.DELIVERED, 1, None, NOW - 59, 204),
            WebhookDelivery("chat", DeliveryState.RETRYING, 3, NOW + 120, None, 503),
            WebhookDelivery("pager", DeliveryState.GIVEN_UP, 8, None, NOW - 1, 410),
        )),
    )  # fmt: skip
    body = get(snapshot(ZoneStatus(zone, report, NOW + 60, events)), "/zones/stale.test.")
    elements = parse(body.body)
    svg_text = "".join(elements.text)
    for label in ("inception", "warning", "strict fail", "skew exhausted", "now"):
        assert label in svg_text
    bars = [a for t, a in elements.tags if t == "rect" and a.get("opacity") is None][1:]
    assert len(bars) == 2
    widths = [float(a["width"] or 0) for a in bars]
    assert widths[1] < widths[0]  # B's signatures expire 19 days earlier
    text = " ".join(elements.text)
    assert "ops: delivered 59s ago" in text
    assert "chat: retrying (3 attempts, last HTTP 503; next attempt in 2m)" in text
    assert "pager: given up after 8 attempts" in text


def test_unknown_zone_is_404() -> None:
    """A zone not watched is a 404 on the page and the API alike."""
    snap = snapshot(expiring("a.test.", 3))
    assert get(snap, "/zones/b.test.").status == 404
    assert get(snap, "/api/v1/zones/b.test.").status == 404
    assert get(snap, "/zones/a.test").status == 200  # the final dot may be left out


# --- JSON -------------------------------------------------------------------------------------


def test_api_zones_are_check_v1_zone_objects_plus_times() -> None:
    """/api/v1/zones lists check-v1 zone objects, with last and next check, in deadline order."""
    snap = snapshot(
        expiring("b.test.", 10, next_check=NOW + 300),
        expiring("a.test.", 1),
        ZoneStatus("new.test.", None, NOW + 5),
    )
    doc = json.loads(get(snap, "/api/v1/zones").body)
    assert [z["name"] for z in doc["zones"]] == ["a.test.", "b.test."]
    assert doc["pending"] == [{"name": "new.test.", "next_check": "2030-01-11T00:00:05Z"}]
    b = doc["zones"][1]
    assert (b["last_check"], b["next_check"]) == ("2030-01-11T00:00:00Z", "2030-01-11T00:05:00Z")
    assert b["deadlines"]["strict_fail_at"] == "2030-01-21T00:00:01Z"
    for z in doc["zones"]:
        core = {k: v for k, v in z.items() if k not in ("last_check", "next_check")}
        jsonschema.validate(core, ZONE_SCHEMA)


def test_api_zone_has_events_with_delivery_states() -> None:
    """/api/v1/zones/<zone> adds the events and each webhook's delivery state."""
    z = hostile_zone()
    doc = json.loads(get(snapshot(z), "/api/v1/zones/" + _quote(z.name)).body)
    assert doc["name"] == z.name
    assert doc["events"][0]["deliveries"][0] == {
        "webhook": f"hook{HOSTILE}",
        "state": "retrying",
        "attempts": 2,
        "next_attempt_at": "2030-01-11T00:00:30Z",
        "finished_at": None,
        "last_status": 503,
    }
