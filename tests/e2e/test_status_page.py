"""The status page on the running service: real zones on 127.0.0.1, the real ``--serve``, and
Debian's headless chromium reading ``/`` and a zone page (zones in deadline order, the SVG
timeline, markup from DNS shown as text and never run), plus the JSON API and the headers.

The hostile zone is found by NS discovery: its NS names, served by our authoritative server,
carry ``<script>`` and an ``<img onerror>`` (a DNS label may hold any byte); they have no
address, so they end up in the findings as text, which is exactly what must stay text.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from chromium import dump_dom, screenshot
from service_harness import (
    DAY,
    HOUR,
    ServiceProcess,
    SignedZone,
    ZoneServer,
    config_text,
    signed,
    wait_until,
)

from watchdog.demo.signer import ds_records, make_keys, sign_zone

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
XSS = "xss.test."
SCRIPT_LABEL = r"<script>alert\(1\)</script>"
IMG_LABEL = r"<img\032src=x\032onerror=alert\(2\)>"
SECRET_URL_TOKEN = "s3cr3t-url-token"
HMAC = "hmac-key-never-shown"
# In deadline order: already failing, then failing now (nothing answers), then by time left.
ORDER = ["fail.test.", XSS, "warn.test.", "ok.test."]


def hostile_zone() -> SignedZone:
    """A signed zone whose only NS names are markup, with no address records."""
    records = (
        "@ 3600 IN SOA ns hostmaster 1 7200 3600 1209600 300\n"
        f"@ 3600 IN NS {SCRIPT_LABEL}.{XSS}\n"
        f"@ 3600 IN NS {IMG_LABEL}.{XSS}\n"
    )
    keys = make_keys()
    now = int(time.time())
    zone = sign_zone(XSS, records, keys, now - DAY, now + 9 * DAY, "nsec")
    return SignedZone(XSS, zone, tuple(ds_records(keys, XSS)))


@dataclass(frozen=True)
class Running:
    base: str
    service: ServiceProcess


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """The service watching four zones in four states, its listener on a free loopback port."""
    tmp = tmp_path_factory.mktemp("status")
    zones = [
        signed("ok.test.", expires_in=5 * DAY),
        signed("warn.test.", expires_in=12 * HOUR),
        signed("fail.test.", expires_in=-HOUR),
    ]
    xss = hostile_zone()
    with ZoneServer([*zones, xss]) as dns:
        text = config_text(
            tmp / "state.sqlite3",
            dns.port,
            zones,
            settings={"interval": "1h", "metrics_listen": "127.0.0.1:0"},
            webhooks=[
                {
                    "name": "ops",
                    "kind": "generic",
                    "url": f"http://127.0.0.1:9/hook?token={SECRET_URL_TOKEN}",
                    "hmac_secret": HMAC,
                    "min_severity": "warning",
                }
            ],
        )
        anchor = "\n".join(xss.anchor)
        text += f"\n[[zone]]\nname = \"{XSS}\"\ntrust_anchor = '''\n{anchor}\n'''\n"
        (tmp / "config.toml").write_text(text)
        with ServiceProcess(tmp / "config.toml") as service:
            listening = service.wait_for_log("http_listening", timeout=30)
            for name in ORDER:
                service.wait_for_log("zone_checked", zone=name, timeout=60)
            base = f"http://127.0.0.1:{listening['port']}"
            # The snapshot is re-sorted once a second: wait until it holds every check.
            wait_until(
                lambda: len(json.loads(fetch(base + "/api/v1/zones")[2])["zones"]) == len(ORDER),
                deadline=time.time() + 15,
                alive=service.died,
                what="every zone on the status page",
            )
            yield Running(base, service)
            service.stop()


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback)
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def rows(dom: str) -> list[str]:
    """Zone names of the index table, in the order the browser shows them."""
    return [m for m in re.findall(r'<a class="mono" href="/zones/[^"]*">([^<]*)</a>', dom)]


def test_index_in_a_browser_lists_zones_by_deadline(running: Running) -> None:
    """chromium's DOM of / has the zones in deadline order, each with a severity word."""
    dom = dump_dom(running.base + "/")
    assert rows(dom)[:4] == ORDER
    for word in ("STRICT FAIL", "WARNING", "OK"):
        assert f">{word}</span>" in dom
    shot = screenshot(running.base + "/", "status-index.png")
    assert shot.stat().st_size > 10_000


def test_zone_page_in_a_browser_draws_the_timeline(running: Running) -> None:
    """chromium's DOM of a zone page holds the SVG timeline with its markers and a server bar."""
    dom = dump_dom(running.base + "/zones/warn.test.")
    svg = dom[dom.index('<svg id="timeline"') : dom.index("</svg>")]
    for label in ("inception", "warning", "strict fail", "skew exhausted", "now"):
        assert f">{label}</text>" in svg
    assert "127.0.0.1:" in svg  # the one server's bar is labelled with its address
    shot = screenshot(running.base + "/zones/warn.test.", "status-zone.png", size=(1280, 1400))
    assert shot.stat().st_size > 10_000


@pytest.mark.parametrize("path", ["/", "/zones/xss.test.", "/?q=xss"])
def test_markup_from_dns_stays_text_in_the_browser(running: Running, path: str) -> None:
    """NS names with <script> and <img onerror> show as text: no such element is built."""
    dom = dump_dom(running.base + path)
    lowered = dom.lower()
    assert "<script" not in lowered and "<img" not in lowered
    if path.startswith("/zones/"):
        # The findings name the NS names: the text is there, escaped, for people to read.
        assert "&lt;script&gt;alert" in dom and "&lt;img" in dom


def test_every_page_has_the_security_headers_and_no_secret(running: Running) -> None:
    """CSP and nosniff on every page and API answer; the webhook URL and HMAC key nowhere."""
    paths = ["/", "/zones/fail.test.", "/zones/none.test.", "/?page=x", "/api/v1/zones"]
    paths += ["/api/v1/zones/fail.test."]
    for path in paths:
        status, headers, body = fetch(running.base + path)
        assert status in (200, 400, 404), path
        assert headers["Content-Security-Policy"] == CSP, path
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert SECRET_URL_TOKEN.encode() not in body and HMAC.encode() not in body, path
        assert b"127.0.0.1:9/" not in body, path


def test_json_api_matches_the_page(running: Running) -> None:
    """/api/v1/zones lists the same zones in the same order, with last and next check."""
    status, headers, body = fetch(running.base + "/api/v1/zones")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    doc: dict[str, Any] = json.loads(body)
    assert [z["name"] for z in doc["zones"]] == ORDER
    fail = doc["zones"][0]
    assert fail["severity"] == "strict_fail" and fail["status"] == "CRITICAL"
    assert fail["last_check"] and fail["next_check"]
    status, _, body = fetch(running.base + "/api/v1/zones/fail.test.")
    events = json.loads(body)["events"]
    assert events and events[0]["new_severity"] == "strict_fail"
    assert {d["webhook"] for d in events[0]["deliveries"]} == {"ops"}
