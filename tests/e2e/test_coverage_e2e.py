"""Whole-zone coverage end to end: ``--check --transfer --tsig`` and the service with
``transfer``/``transfer_tsig_file`` in its config, against NSD on 127.0.0.1 (issue 12)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest
from lab import NsdServer, SignedZone, make_signed_zone, make_zone_keys, splice_rrsigs
from service_harness import ServiceProcess, UdpSink

from watchdog.cli import main

pytestmark = pytest.mark.realdns

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((REPO / "watchdog" / "schemas" / "check-v1.json").read_text())
DAY = 86400
ORIGIN = "deep.test."
DEEP = "a.b.c.deep.test."
CLOSED = "127.0.0.1:9"
SECRET = base64.b64encode(b"e2e-transfer-secret-32-bytes-ok!").decode()
KEY_FILE = f'key "xfr.deep.test." {{ algorithm hmac-sha256; secret "{SECRET}"; }};\n'


@dataclass(frozen=True)
class Lab:
    server: str
    zone: SignedZone
    key_file: Path
    now: int


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, require_binaries_module: None) -> Iterator[Lab]:
    """NSD serving deep.test. (TSIG-protected AXFR), whose a.b.c TXT expires 2 d before the
    rest: signed around the real clock, since the service judges at the real time."""
    work = tmp_path_factory.mktemp("coverage-lab")
    now = int(time.time())
    keys = make_zone_keys(work / "keys", ORIGIN)

    def signed(workdir: Path, expiration: int) -> SignedZone:
        return make_signed_zone(
            workdir,
            ORIGIN,
            inception=now - DAY,
            expiration=expiration,
            keys=keys,
            records=('a.b.c TXT "deep"', "www A 192.0.2.80"),
        )

    zone = signed(work / "z1", now + 20 * DAY)
    early = signed(work / "z2", now + 18 * DAY)
    splice_rrsigs(zone.zone_file, early.zone_file, DEEP, "TXT")
    key_file = work / "xfr.key"
    key_file.write_text(KEY_FILE)
    with NsdServer(
        work / "nsd", [zone], provide_xfr=True, tsig_keys={ORIGIN: ("xfr.deep.test.", SECRET)}
    ) as nsd:
        yield Lab(f"{nsd.address}:{nsd.port}", zone, key_file, now)


@pytest.fixture(scope="module")
def require_binaries_module() -> None:
    from lab import missing_binaries

    missing = missing_binaries(("nsd", "ldns-keygen", "ldns-signzone", "ldns-read-zone"))
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")


def check(lab: Lab, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    argv = ["--check", ORIGIN, "--server", lab.server, "--resolver", CLOSED]
    argv += ["--trust-anchor", lab.zone.ds[0], *extra]
    code = main(argv)
    return code, capsys.readouterr().out


def test_check_with_transfer_names_the_deep_rrset(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    """--transfer --tsig @FILE: JSON coverage "transfer" and the earliest is a.b.c TXT."""
    code, out = check(lab, capsys, "--transfer", lab.server, "--tsig", f"@{lab.key_file}", "--json")
    document = json.loads(out)
    jsonschema.Draft202012Validator(SCHEMA).validate(document)
    (zone,) = document["zones"]
    assert code == 0
    assert zone["coverage"]["mode"] == "transfer" and zone["coverage"]["rrsets"] >= 8
    assert zone["coverage"]["not_covered"] is None
    assert (zone["earliest"]["owner"], zone["earliest"]["type"]) == (DEEP, "TXT")


def test_check_at_the_deep_deadline_warns_and_counts(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    """Judged half a day before a.b.c TXT expires: WARNING; the report names the RRset and
    the finding counts the RRsets: "1 of N RRsets expire before"."""
    transfer = ("--transfer", lab.server, "--tsig", f"@{lab.key_file}", "--at", "+17d12h")
    code, out = check(lab, capsys, *transfer)
    assert code == 1
    assert f"set by {DEEP} TXT RRSIG" in out
    assert "coverage: transfer from" in out and "1 warning" in out
    code, out = check(lab, capsys, *transfer, "--json")
    (zone,) = json.loads(out)["zones"]
    (expiring,) = [f for f in zone["findings"] if f["code"] == "signature_expiring"]
    rrsets = zone["coverage"]["rrsets"]
    assert (
        expiring["owner"] == DEEP and f"1 of {rrsets} RRsets expire before" in expiring["message"]
    )
    assert zone["coverage"]["rrsets_by_state"] == {"ok": rrsets - 1, "warning": 1}


def test_check_apex_only_misses_it_and_says_so(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --transfer: OK at the same moment, and the report says it covers the apex."""
    code, out = check(lab, capsys, "--at", "+17d12h")
    assert code == 0
    assert "coverage: apex" in out and "below the apex" in out and "not checked" in out
    assert DEEP not in out


def test_bad_tsig_argument_is_refused_without_echoing_it(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    """--tsig with the key itself (not @FILE) is a usage error that does not repeat it."""
    code = main(
        ["--check", ORIGIN, "--server", lab.server, "--transfer", lab.server, "--tsig", SECRET]
    )
    err = capsys.readouterr().err
    assert code == 3 and "--tsig" in err and SECRET not in err


@pytest.mark.parametrize("value", ["x", "-1", "١٦"])
def test_a_bad_sample_is_a_usage_error(capsys: pytest.CaptureFixture[str], value: str) -> None:
    """--sample takes ASCII digits only; anything else is exit 3 naming the option."""
    code = main(["--check", ORIGIN, "--server", CLOSED, "--sample", value])
    err = capsys.readouterr().err
    assert code == 3 and "--sample" in err and "whole number" in err


def test_service_transfers_and_logs_the_deep_deadline(lab: Lab, tmp_path: Path) -> None:
    """The service with transfer + transfer_tsig_file in its config: zone_checked says
    coverage "transfer" and the deadline set by a.b.c TXT; no secret in the log."""
    (tmp_path / "xfr.key").write_text(KEY_FILE)
    with UdpSink() as resolver:
        config = tmp_path / "config.toml"
        anchor = "\n".join(lab.zone.ds)
        config.write_text(
            f'[watchdog]\nstate_path = "{tmp_path / "state.sqlite3"}"\ninterval = "2s"\n'
            f'jitter = "0s"\nresolver = "127.0.0.1:{resolver.port}"\nquery_timeout = "1s"\n'
            f"retries = 1\n[[zone]]\nname = {json.dumps(ORIGIN)}\n"
            f"servers = [{json.dumps(lab.server)}]\ntransfer = {json.dumps(lab.server)}\n"
            f'transfer_tsig_file = "xfr.key"\ntrust_anchor = """\n{anchor}\n"""\n'
        )
        with ServiceProcess(config) as service:
            first = service.wait_for_log("zone_checked", zone=ORIGIN)
            service.wait_for_log("zone_checked", after=service.mark(), zone=ORIGIN)
            service.stop()
    assert first["coverage"] == "transfer" and first["coverage_wanted"] == "transfer"
    assert first["set_by"] == f"{DEEP} TXT"
    assert SECRET not in "\n".join(service.raw)
