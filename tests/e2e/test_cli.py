"""``dnssec-watchdog --check`` against real NSD servers: exit codes, JSON contract, golden output.

Zones are signed by ldns-signzone with chosen dates and served by NSD on 127.0.0.1; ``--at``
fixes the moment they are judged at, so every state (ok, warning, strict-fail, skew-exhausted,
bogus, unreachable, unsigned) is reached without waiting. Expected deadlines are derived by hand
from the signing dates (DESIGN.md 2), never from the command's own output. The golden files
come from the committed fixture zones of tests/e2e/golden/zones (fixed keys and dates; see
tests/e2e/golden/regenerate.py); only the random NSD ports are normalised.

Nothing here reaches beyond loopback: every run names its servers (--server) and either a trust
anchor or a loopback "resolver" (an NSD serving the parent zone ``test.``, or a closed port).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from lab import (
    NsdServer,
    SignedZone,
    UnsignedZone,
    free_port,
    make_signed_zone,
    make_unsigned_zone,
    make_zone_keys,
    missing_binaries,
    tamper_soa,
)

from watchdog.cli import main, parse_at

pytestmark = pytest.mark.realdns

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent / "golden"
SCHEMA = json.loads((REPO / "watchdog" / "schemas" / "check-v1.json").read_text())
LAB_TOOLS = ("nsd", "ldns-keygen", "ldns-signzone", "ldns-key2ds")

NOW = 1_893_456_000  # 2030-01-01T00:00:00Z: the lab zones are judged at this moment
AT = "2030-01-01T00:00:00Z"
HOUR, DAY = 3600, 86400
CLOSED = "127.0.0.1:9"  # discard port, nothing listens: a "resolver" that can never leak
UPDATE = bool(os.environ.get("DNSSEC_WATCHDOG_UPDATE_GOLDEN"))


def _require_lab() -> None:
    missing = missing_binaries(LAB_TOOLS)
    if missing and os.environ.get("CI"):
        pytest.fail(f"CI: not installed: {', '.join(missing)}")
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (sh tests/install-debian-deps.sh)")


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def json(self) -> dict[str, Any]:
        assert self.out.startswith("{"), f"exit {self.code}, stderr: {self.err}"
        document: dict[str, Any] = json.loads(self.out)
        jsonschema.Draft202012Validator(SCHEMA).validate(document)
        return document


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run main(argv) in-process; stdout and stderr captured."""

    def run(*argv: str) -> Result:
        code = main(list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def _command() -> list[str]:
    script = Path(sys.executable).parent / "dnssec-watchdog"
    return [str(script)] if script.exists() else [sys.executable, "-m", "watchdog.cli"]


def run_process(*argv: str, env: dict[str, str] | None = None) -> Result:
    """The installed console script as a subprocess, as Nagios runs it."""
    base = {k: v for k, v in os.environ.items() if k != "DNSSEC_WATCHDOG_DEBUG"}
    done = subprocess.run(
        [*_command(), *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env={**base, **(env or {})},
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


# --- lab zones in every state, one NSD for all ----------------------------------------------


@dataclass(frozen=True)
class Lab:
    server: str
    zones: dict[str, SignedZone]
    other_keys_ds: str  # a DS of a key that signs nothing: a broken chain

    def check(self, zone: str, *extra: str) -> list[str]:
        """Arguments to check ``zone`` on the lab server, anchored by its own DS."""
        return [
            "--check",
            zone,
            "--server",
            self.server,
            "--trust-anchor",
            self.zones[zone.rstrip(".") + "."].ds[0],
            "--resolver",
            CLOSED,
            "--at",
            AT,
            *extra,
        ]


# name: (inception, expiration) relative to NOW
_DATES = {
    "ok.test.": (NOW - DAY, NOW + 13 * DAY),
    "warning.test.": (NOW - 13 * DAY, NOW + DAY),
    "strict.test.": (NOW - 14 * DAY, NOW - HOUR),
    "skew.test.": (NOW - 16 * DAY, NOW - 2 * DAY),
    "notyet.test.": (NOW + HOUR, NOW + 14 * DAY),
    "bogus.test.": (NOW - DAY, NOW + 13 * DAY),
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One NSD serving a zone in each state, the parent ``test.`` and an unsigned zone."""
    _require_lab()
    work = tmp_path_factory.mktemp("cli-lab")
    zones = {
        name: make_signed_zone(work, name, inception=i, expiration=e)
        for name, (i, e) in _DATES.items()
    }
    tamper_soa(zones["bogus.test."].zone_file)
    unsigned = make_unsigned_zone(work, "unsigned.test.")
    parent = make_unsigned_zone(work, "test.", records=["unsigned IN NS ns1.unsigned"])
    stranger = make_zone_keys(work, "ok.test.")
    ds = subprocess.run(
        ["ldns-key2ds", "-n", "-2", f"{stranger.ksk}.key"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with NsdServer(work / "nsd", [*zones.values(), unsigned, parent]) as nsd:
        yield Lab(f"{nsd.address}:{nsd.port}", zones, ds)


# --- states: exit code, JSON, deadlines derived by hand -------------------------------------


def test_warning_zone_exits_1_with_hand_derived_deadlines(
    lab: Lab, cli: Callable[..., Result]
) -> None:
    """A 14-day signature expiring in 1 day warns: deadlines E - 10% L, E + 1, E + 1 d + 1."""
    result = cli(*lab.check("warning.test", "--json"))
    assert result.code == 1, result.err
    zone = result.json()["zones"][0]
    assert zone["name"] == "warning.test."
    assert zone["severity"] == "warning"
    assert zone["status"] == "WARNING"
    # E = 2030-01-02T00:00:00Z, L = 14 d: warn 1.4 d = 33 h 36 m before E; skew = 86400 (max).
    assert zone["deadlines"] == {
        "warning_at": "2029-12-31T14:24:00Z",
        "strict_fail_at": "2030-01-02T00:00:01Z",
        "skew_exhausted_at": "2030-01-03T00:00:01Z",
    }
    assert zone["unbound_skew_seconds"] == 86400
    earliest = zone["earliest"]
    assert earliest["server"] == lab.server
    assert earliest["inception"] == "2029-12-19T00:00:00Z"
    assert earliest["expiration"] == "2030-01-02T00:00:00Z"
    assert earliest["algorithm"] == 13
    zsk = lab.zones["warning.test."].keys.zsk.name  # Kwarning.test.+013+NNNNN signs the SOA
    assert earliest["key_tag"] == int(zsk.rsplit("+", 1)[1])
    assert [s["address"] for s in zone["servers"]] == [lab.server]
    assert zone["servers"][0]["serial"] == 1
    assert zone["servers"][0]["state"] == "warning"


@pytest.mark.parametrize(
    ("zone", "code", "severity", "deadlines"),
    [
        (
            "ok.test",
            0,
            "ok",
            # E = 2030-01-14T00:00:00Z; 10% of 14 d = 1 d 9 h 36 m
            ("2030-01-12T14:24:00Z", "2030-01-14T00:00:01Z", "2030-01-15T00:00:01Z"),
        ),
        (
            "strict.test",
            2,
            "strict_fail",
            # E = 2029-12-31T23:00:00Z, L = 14 d - 1 h: skew 86400 still (L / 10 > max)
            ("2029-12-30T13:30:00Z", "2029-12-31T23:00:01Z", "2030-01-01T23:00:01Z"),
        ),
        (
            "skew.test",
            2,
            "skew_exhausted",
            # E = 2029-12-30T00:00:00Z, L = 14 d
            ("2029-12-28T14:24:00Z", "2029-12-30T00:00:01Z", "2029-12-31T00:00:01Z"),
        ),
    ],
)
def test_each_expiry_state_has_its_exit_code_and_deadlines(
    lab: Lab,
    cli: Callable[..., Result],
    zone: str,
    code: int,
    severity: str,
    deadlines: tuple[str, str, str],
) -> None:
    """ok, strict-fail and skew-exhausted zones: Nagios code, severity, hand-derived deadlines."""
    result = cli(*lab.check(zone, "--json"))
    assert result.code == code, result.err
    document = result.json()
    assert document["exit_code"] == code
    z = document["zones"][0]
    assert z["severity"] == severity
    assert (
        z["deadlines"]["warning_at"],
        z["deadlines"]["strict_fail_at"],
        z["deadlines"]["skew_exhausted_at"],
    ) == deadlines


def test_bogus_zone_is_critical_and_names_the_bad_signature(
    lab: Lab, cli: Callable[..., Result]
) -> None:
    """A SOA changed after signing: CRITICAL, with a signature_bogus finding on the SOA."""
    result = cli(*lab.check("bogus.test", "--json"))
    assert result.code == 2
    zone = result.json()["zones"][0]
    assert zone["severity"] == "bogus"
    bad = [f for s in zone["servers"] for f in s["findings"] if f["severity"] == "bogus"]
    assert [(f["code"], f["type"]) for f in bad] == [("signature_bogus", "SOA")]


def test_trust_anchor_of_another_key_is_critical(lab: Lab, cli: Callable[..., Result]) -> None:
    """A DS that matches no served DNSKEY breaks the chain: bogus, exit 2."""
    argv = lab.check("ok.test", "--json")
    argv[argv.index("--trust-anchor") + 1] = lab.other_keys_ds
    result = cli(*argv)
    assert result.code == 2
    zone = result.json()["zones"][0]
    assert zone["severity"] == "bogus"
    assert zone["chain"] == "broken"


def test_signature_from_the_future_fails_strict_but_not_unbound(
    lab: Lab, cli: Callable[..., Result]
) -> None:
    """Inception 1 h ahead: strict validators reject now (2), Unbound's skew covers it (1)."""
    strict = cli(*lab.check("notyet.test"))
    assert strict.code == 2
    assert re.search(r"\n +signatures valid from +2030-01-01T01:00:00Z +in 1h\n", strict.out)
    assert cli(*lab.check("notyet.test", "--profile", "unbound", "-q")).code == 1


def test_unreachable_server_is_unknown(cli: Callable[..., Result]) -> None:
    """No server answers: UNKNOWN (3), severity unreachable, no deadlines."""
    port = free_port()
    result = cli(
        "--check", "example.test", "--server", f"127.0.0.1:{port}", "--resolver", CLOSED,
        "--json", "--timeout", "0.5",
    )  # fmt: skip
    assert result.code == 3
    zone = result.json()["zones"][0]
    assert zone["severity"] == "unreachable"
    assert zone["deadlines"] == {
        "warning_at": None,
        "strict_fail_at": None,
        "skew_exhausted_at": None,
    }
    assert zone["servers"][0]["state"] == "unreachable"


def test_one_dead_server_of_two_is_a_warning(lab: Lab, cli: Callable[..., Result]) -> None:
    """The zone still resolves from the live server; the dead one is a WARNING, not UNKNOWN."""
    dead = f"127.0.0.1:{free_port()}"
    result = cli(*lab.check("ok.test", "--server", dead, "--json", "--timeout", "0.5"))
    assert result.code == 1
    zone = result.json()["zones"][0]
    assert zone["status"] == "WARNING"
    assert {s["address"]: s["state"] for s in zone["servers"]} == {
        lab.server: "ok",
        dead: "unreachable",
    }


def test_unsigned_zone_is_unknown_and_says_not_signed(lab: Lab, cli: Callable[..., Result]) -> None:
    """An unsigned zone is never OK: UNKNOWN, a not_signed finding, and the words "not signed"."""
    argv = ["--check", "unsigned.test", "--server", lab.server, "--resolver", lab.server]
    result = cli(*argv, "--json")
    assert result.code == 3
    zone = result.json()["zones"][0]
    assert zone["signed"] is False
    assert zone["severity"] == "unknown"
    assert [f["code"] for f in zone["findings"]] == ["not_signed"]
    text = cli(*argv)
    assert text.code == 3
    assert text.out.splitlines()[0] == "unsigned.test.  UNKNOWN  not signed"


# --- settings that move the deadlines -------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "warning_at", "skew_exhausted_at", "skew"),
    [
        # 36 h before E = 2030-01-02T00:00:00Z
        (["--warn-before", "36h"], "2029-12-31T12:00:00Z", "2030-01-03T00:00:01Z", 86400),
        # 50% of 14 d = 7 d before E
        (["--warn-before", "50%"], "2029-12-26T00:00:00Z", "2030-01-03T00:00:01Z", 86400),
        # L / 10 = 120960 lowered to skew-max 7200
        (["--skew-max", "7200"], "2029-12-31T14:24:00Z", "2030-01-02T02:00:01Z", 7200),
        # min 200000 raises 120960; max 300000 leaves it
        (
            ["--skew-min", "200000", "--skew-max", "300000"],
            "2029-12-31T14:24:00Z",
            "2030-01-04T07:33:21Z",
            200000,
        ),
        # min > max: max wins (Unbound applies min, then max)
        (
            ["--skew-min", "90000", "--skew-max", "80000"],
            "2029-12-31T14:24:00Z",
            "2030-01-02T22:13:21Z",
            80000,
        ),
    ],
)
def test_policy_options_move_the_deadlines(
    lab: Lab,
    cli: Callable[..., Result],
    options: list[str],
    warning_at: str,
    skew_exhausted_at: str,
    skew: int,
) -> None:
    """--warn-before, --skew-min and --skew-max change exactly the deadline they govern."""
    zone = cli(*lab.check("warning.test", "--json", *options)).json()["zones"][0]
    assert zone["deadlines"]["warning_at"] == warning_at
    assert zone["deadlines"]["strict_fail_at"] == "2030-01-02T00:00:01Z"
    assert zone["deadlines"]["skew_exhausted_at"] == skew_exhausted_at
    assert zone["unbound_skew_seconds"] == skew


@pytest.mark.parametrize(
    ("zone", "at", "profile", "code"),
    [
        ("strict.test", AT, "strict", 2),
        ("strict.test", AT, "powerdns", 2),
        ("strict.test", AT, "unbound", 1),  # Unbound validates until E + 86400 + 1
        ("skew.test", AT, "unbound", 2),
        ("ok.test", "2030-01-14T00:00:00Z", "strict", 1),  # at E: still valid for RFC 4035
        ("ok.test", "2030-01-14T00:00:00Z", "knot-dns", 2),  # knotd: expired at E itself
        ("ok.test", "2030-01-14T00:00:01Z", "strict", 2),
    ],
)
def test_profile_decides_the_exit_code(
    lab: Lab, cli: Callable[..., Result], zone: str, at: str, profile: str, code: int
) -> None:
    """--profile picks whose deadline drives the exit code; the JSON severity stays strict."""
    argv = lab.check(zone, "--json", "--profile", profile)
    argv[argv.index("--at") + 1] = at
    result = cli(*argv)
    assert result.code == code
    assert result.json()["profile"] == profile


def test_at_offset_is_relative_to_the_real_clock(lab: Lab, cli: Callable[..., Result]) -> None:
    """--at +1d judges the answers one day after the command started; fetched_at stays real."""
    argv = lab.check("ok.test", "--json")
    argv[argv.index("--at") + 1] = "+1d"
    document = cli(*argv).json()
    checked = datetime.fromisoformat(document["checked_at"])
    fetched = datetime.fromisoformat(document["fetched_at"])
    # started <= fetched, and the probe of one loopback zone takes far less than a minute
    assert timedelta(days=1, minutes=-1) < checked - fetched <= timedelta(days=1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+2d", NOW + 2 * DAY),
        ("-90m", NOW - 90 * 60),
        ("+1d12h", NOW + DAY + 12 * HOUR),
        ("2030-01-01T00:00:00Z", NOW),
        ("2030-01-01t00:00:00z", NOW),
        ("2030-01-01T02:00:00+02:00", NOW),
        ("2030-01-01T00:00:00.9Z", NOW),
    ],
)
def test_parse_at(text: str, expected: int) -> None:
    """--at takes RFC 3339 with a zone, or a signed duration from now."""
    assert parse_at(text, NOW) == expected


# --- several zones, zones file, config ------------------------------------------------------


def test_several_zones_exit_with_the_worst(lab: Lab, cli: Callable[..., Result]) -> None:
    """ok + warning + strict-fail + unsigned: CRITICAL wins over UNKNOWN and WARNING."""
    argv = ["--check", "ok.test", "warning.test", "--server", lab.server, "--resolver",
            lab.server, "--at", AT, "strict.test", "unsigned.test", "--json"]  # fmt: skip
    result = cli(*argv)
    assert result.code == 2
    document = result.json()
    assert [z["name"] for z in document["zones"]] == [
        "ok.test.",
        "warning.test.",
        "strict.test.",
        "unsigned.test.",
    ]
    assert [z["status"] for z in document["zones"]] == ["OK", "WARNING", "CRITICAL", "UNKNOWN"]
    assert document["status"] == "CRITICAL"


def test_zones_file_with_comments(lab: Lab, cli: Callable[..., Result], tmp_path: Path) -> None:
    """--zones-file: one zone a line, # comments and blank lines ignored, duplicates once."""
    listing = tmp_path / "zones.txt"
    listing.write_text(
        "# watched zones\nok.test\n\n  warning.test.  # the one that warns\nOK.TEST\n"
    )
    argv = ["--check", "--zones-file", str(listing), "--server", lab.server,
            "--resolver", lab.server, "--at", AT, "--json"]  # fmt: skip
    result = cli(*argv)
    assert result.code == 1
    assert [z["name"] for z in result.json()["zones"]] == ["ok.test.", "warning.test."]


def test_config_supplies_each_zones_settings(
    lab: Lab, cli: Callable[..., Result], tmp_path: Path
) -> None:
    """--config: every zone with its own servers, anchor and warn_before; ZONE narrows it."""
    config = tmp_path / "watchdog.toml"
    anchor = tmp_path / "ok.ds"
    anchor.write_text(lab.zones["ok.test."].ds[0] + "\n")
    config.write_text(
        f'[watchdog]\nresolver = "{CLOSED}"\n\n'
        f'[[zone]]\nname = "ok.test"\nservers = ["{lab.server}"]\n'
        f'trust_anchor = "@{anchor}"\nwarn_before = "14d"\n\n'
        f'[[zone]]\nname = "warning.test"\nservers = ["{lab.server}"]\n'
        f'trust_anchor = "{lab.zones["warning.test."].ds[0]}"\n'
    )
    both = cli("--check", "--config", str(config), "--at", AT, "--json")
    zones = {z["name"]: z for z in both.json()["zones"]}
    assert set(zones) == {"ok.test.", "warning.test."}
    # warn_before 14 d of the config: E = 2030-01-14 -> warning from 2029-12-31
    assert zones["ok.test."]["deadlines"]["warning_at"] == "2029-12-31T00:00:00Z"
    assert zones["ok.test."]["severity"] == "warning"
    assert zones["ok.test."]["chain"] == "trust_anchor"
    one = cli("--check", "--config", str(config), "warning.test", "--at", AT, "--json")
    assert [z["name"] for z in one.json()["zones"]] == ["warning.test."]


# --- the console script, as Nagios runs it --------------------------------------------------


def test_console_script_exit_code_and_nagios_line(lab: Lab) -> None:
    """`dnssec-watchdog --check ZONE --nagios`: exit 1, one line, perfdata in seconds."""
    result = run_process(*lab.check("warning.test", "--nagios"))
    assert result.code == 1, result.err
    assert result.err == ""
    lines = result.out.splitlines()
    assert len(lines) == 1
    status, perf = lines[0].split(" | ")
    assert status.startswith("DNSSEC WARNING - warning.test. warning: strict validators fail in 1d")
    # strict fail 2030-01-02T00:00:01Z is 86401 s after AT; warn from 120960 s before E + 1 s
    # ranges "N:" alert below N: WARNING once at most 120961 s are left, CRITICAL at 0
    assert perf == (
        "'warning.test. strict_fail'=86401s;120962:;1: 'warning.test. skew_exhausted'=172801s;;1:"
    )


def test_console_script_plain_output_is_uncoloured_when_piped(lab: Lab) -> None:
    """Piped output has no escape codes; exit code 0 for an OK zone."""
    result = run_process(*lab.check("ok.test"))
    assert result.code == 0, result.err
    assert "\x1b[" not in result.out
    assert result.out.startswith("ok.test.  OK\n")


def _pty_run(argv: list[str], env: dict[str, str]) -> str:
    """Run with stdout on a pseudo-terminal; return what it printed."""
    import pty

    main_fd, child_fd = pty.openpty()
    try:
        base = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}
        done = subprocess.run(
            [*_command(), *argv],
            stdout=child_fd,
            stderr=subprocess.PIPE,
            timeout=60,
            env={**base, "TERM": "xterm", **env},
            check=False,
        )
        os.close(child_fd)
        child_fd = -1
        chunks = []
        while True:
            try:
                chunk = os.read(main_fd, 65536)
            except OSError:  # EIO: the writer is gone and everything was read
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert done.returncode == 1
        return b"".join(chunks).decode()
    finally:
        os.close(main_fd)
        if child_fd >= 0:
            os.close(child_fd)


def test_colour_on_a_terminal_unless_no_color(lab: Lab) -> None:
    """On a TTY the severity is coloured; NO_COLOR (any non-empty value) turns colour off."""
    argv = lab.check("warning.test")
    assert "\x1b[33mWARNING\x1b[0m" in _pty_run(argv, {})
    assert "\x1b[" not in _pty_run(argv, {"NO_COLOR": "1"})


def _fenced(argv: list[str]) -> list[str]:
    """``argv`` with loopback-only servers and resolver added where it names none: should a
    bad argument slip through, the check it starts still never leaves 127.0.0.1."""
    fence = [("--server", CLOSED), ("--resolver", CLOSED)]
    return argv + [x for option, value in fence if option not in argv for x in (option, value)]


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["--check", "exa mple.com"], "ZONE"),
        (["--check", "a..b"], "ZONE"),
        (["--check", "example.com", "--server", "127.0.0.1:99999"], "--server"),
        (["--check", "example.com", "--server", "127.0.0.1:5\u00b3"], "--server"),
        (["--check", "example.com", "--resolver", "not an address"], "--resolver"),
        (["--check", "example.com", "--warn-before", "soon"], "--warn-before"),
        (["--check", "example.com", "--trust-anchor", "example.com. IN DS 1 2"], "--trust-anchor"),
        (["--check", "example.com", "--zones-file", "/nonexistent/zones"], "--zones-file"),
        (["--check", "example.com", "--at", "tomorrow"], "--at"),
    ],
)
def test_console_script_bad_argument_is_one_line_and_exit_3(argv: list[str], names: str) -> None:
    """Garbage in any argument: exit 3 and one line on stderr naming it, no traceback."""
    result = run_process(*_fenced(argv))
    assert result.code == 3
    assert result.out == ""
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("dnssec-watchdog: ")
    assert names in lines[0]


# --- golden human output from the committed fixture zones -----------------------------------

_FIXTURES = GOLDEN / "zones"
_GOLDEN_KSK = _FIXTURES / f"{(_FIXTURES / 'golden.test.ksk').read_text().strip()}.key"
_BOGUS_KSK = _FIXTURES / f"{(_FIXTURES / 'bogus.test.ksk').read_text().strip()}.key"
# What the random ports become in the golden files (same width: the columns stay put).
_PRIMARY, _SECONDARY, _DEAD = "127.0.0.1:53001", "127.0.0.1:53002", "127.0.0.1:53009"


@dataclass(frozen=True)
class Fixture:
    primary: str  # serves golden.test. freshly signed
    secondary: str  # serves golden.test. signed two weeks earlier: a stale secondary
    dead: str  # nothing listens

    def normalise(self, text: str) -> str:
        for real, shown in ((self.primary, _PRIMARY), (self.secondary, _SECONDARY),
                            (self.dead, _DEAD)):  # fmt: skip
            assert len(real) == len(shown), f"{real}: the golden files assume 5-digit ports"
            text = text.replace(real, shown)
        return text


def _five_digit_port() -> int:
    for _ in range(100):  # Linux hands out 32768-60999 by default: the first one fits
        port = free_port()
        if port >= 10000:
            return port
    pytest.skip("no 5-digit free port; the golden files assume one")


@pytest.fixture(scope="module")
def fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fixture]:
    """Two NSDs serving the committed zones: a primary and a secondary that stopped updating."""
    _require_lab()
    work = tmp_path_factory.mktemp("golden")
    common = [
        UnsignedZone("bogus.test.", _FIXTURES / "bogus.test.signed"),
        UnsignedZone("unsigned.test.", _FIXTURES / "unsigned.test.zone"),
    ]
    primary_zones = [
        UnsignedZone("golden.test.", _FIXTURES / "golden.test.fresh"),
        UnsignedZone("test.", _FIXTURES / "test.zone"),
        *common,
    ]
    secondary_zones = [UnsignedZone("golden.test.", _FIXTURES / "golden.test.stale"), *common]
    with (
        NsdServer(work / "a", primary_zones, port=_five_digit_port()) as a,
        NsdServer(work / "b", secondary_zones, port=_five_digit_port()) as b,
    ):
        yield Fixture(
            f"{a.address}:{a.port}", f"{b.address}:{b.port}", f"127.0.0.1:{_five_digit_port()}"
        )


def _golden_argv(f: Fixture, case: str, work: Path) -> list[str]:
    both = ["--server", f.primary, "--server", f.secondary]
    golden = ["golden.test", *both, "--trust-anchor", f"@{_GOLDEN_KSK}", "--resolver", CLOSED]
    if case == "multi" or case == "multi-nagios":
        config = work / "multi.toml"
        servers = json.dumps([f.primary, f.secondary])
        zones = [("golden.test", f'"@{_GOLDEN_KSK}"'), ("bogus.test", f'"@{_BOGUS_KSK}"')]
        config.write_text(
            f'[watchdog]\nresolver = "{f.primary}"\n\n'
            + "".join(
                f'[[zone]]\nname = "{name}"\nservers = {servers}\ntrust_anchor = {anchor}\n\n'
                for name, anchor in zones
            )
            + f'[[zone]]\nname = "unsigned.test"\nservers = {servers}\n'
        )
        extra = ["--nagios"] if case == "multi-nagios" else []
        return ["--check", "--config", str(config), "--at", "2030-01-13T00:00:00Z", *extra]
    at = {
        "ok": "2030-01-05T00:00:00Z",
        "warning": "2030-01-13T00:00:00Z",
        "strict-fail": "2030-01-15T06:00:00Z",
        "skew-exhausted": "2030-01-17T00:00:00Z",
        "dead-secondary": "2030-01-13T00:00:00Z",
    }[case]
    if case == "dead-secondary":
        golden[golden.index(f.secondary)] = f.dead
    return ["--check", *golden, "--at", at, "--timeout", "0.5"]


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("ok", 0),
        ("warning", 1),
        ("strict-fail", 2),
        ("skew-exhausted", 2),
        ("dead-secondary", 1),
        ("multi", 2),
        ("multi-nagios", 2),
    ],
)
def test_golden_output(
    fixture: Fixture,
    cli: Callable[..., Result],
    case: str,
    code: int,
    tmp_path: Path,
) -> None:
    """The human (and Nagios) output for fixed zones at a fixed --at is exactly the golden file."""
    result = cli(*_golden_argv(fixture, case, tmp_path))
    assert result.err == ""
    assert result.code == code
    path = GOLDEN / f"{case}.txt"
    text = fixture.normalise(result.out)
    if UPDATE:
        path.write_text(text)
    assert text == path.read_text()
    assert not re.search(r"127\.0\.0\.1:(?!5300[129])\d+", text)


_NO_ROUTE = """
import sys
from watchdog.probe import dnsio
dnsio.family_reachable = lambda host, port: False  # the fault: no route to any address
from watchdog.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("debug", [False, True])
def test_log_events_never_reach_stdout(lab: Lab, debug: bool) -> None:
    """The prober logs a cut-off address family: --json stays pure JSON; the event shows on
    stderr only with DNSSEC_WATCHDOG_DEBUG."""
    argv = lab.check("ok.test", "--json", "--server", "[::1]:53")
    env = {k: v for k, v in os.environ.items() if k != "DNSSEC_WATCHDOG_DEBUG"}
    if debug:
        env["DNSSEC_WATCHDOG_DEBUG"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", _NO_ROUTE, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    findings = Result(done.returncode, done.stdout, done.stderr).json()["zones"][0]["findings"]
    assert "family_unreachable" in [f["code"] for f in findings]
    assert ("family_unreachable" in done.stderr) is debug


_DS = "x.example. IN DS 1 13 2 " + "ab" * 32


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--check", ""], "ZONE"),
        (["--check", "exa mple.com"], "ZONE"),
        (["--check", "a..b"], "ZONE"),
        (["--check", "ex@mple.com"], "ZONE"),
        (["--check", "a" * 64 + ".com"], "ZONE"),
        (["--check", "--zones-file", "{tmp}/missing"], "--zones-file"),
        (["--check", "--zones-file", "{tmp}"], "--zones-file"),
        (["--check", "--zones-file", "{tmp}/zones"], "--zones-file {tmp}/zones line 3"),
        (["--check", "--zones-file", "{tmp}/binary"], "--zones-file"),
        (["--check", "--config", "{tmp}/missing.toml"], "--config"),
        (["--check", "--config", "{tmp}/bad.toml"], "--config {tmp}/bad.toml: zone[0].name"),
        (["--check", "x.example", "--server", "127.0.0.1:0"], "--server"),
        (["--check", "x.example", "--server", ""], "--server"),
        (["--check", "x.example", "--server", "[::1"], "--server"),
        (["--check", "x.example", "--server", "bad host!"], "--server"),
        (["--check", "x.example", "--resolver", "dns.example"], "--resolver"),
        (["--check", "x.example", "--resolver", "127.0.0.1:abc"], "--resolver"),
        (["--check", "x.example", "--trust-anchor", "garbage"], "--trust-anchor"),
        (["--check", "x.example", "--trust-anchor", ""], "--trust-anchor"),
        (["--check", "x.example", "--trust-anchor", "@{tmp}/missing"], "--trust-anchor"),
        (["--check", "y.example", "--trust-anchor", _DS], "--trust-anchor"),
        (["--check", "x.example", "y.example", "--trust-anchor", _DS], "--trust-anchor"),
        (["--check", "x.example", "--profile", "bind"], "--profile"),
        (["--check", "x.example", "--warn-before", "soon"], "--warn-before"),
        (["--check", "x.example", "--warn-before", "200%"], "--warn-before"),
        (["--check", "x.example", "--warn-before", "99999999999d"], "--warn-before"),
        (["--check", "x.example", "--skew-min", "abc"], "--skew-min"),
        (["--check", "x.example", "--skew-min", "-1"], "--skew-min"),
        (["--check", "x.example", "--skew-max", "99999999999"], "--skew-max"),
        (["--check", "x.example", "--at", "tomorrow"], "--at"),
        (["--check", "x.example", "--at", "2030-01-01T00:00:00"], "--at"),
        (["--check", "x.example", "--at", ""], "--at"),
        (["--check", "x.example", "--at", "+99999999999d"], "--at"),
        (["--check", "x.example", "--timeout", "0"], "--timeout"),
        (["--check", "x.example", "--timeout", "nan"], "--timeout"),
        (["--check", "x.example", "--timeout", "abc"], "--timeout"),
        (["--check", "x.example", "--skew-min"], "--skew-min"),
        (["--check", "x.example", "--no-such-option"], "--no-such-option"),
        (["--check", "x.example", "--json", "--nagios"], "--nagios"),
        (["--check"], "ZONE"),
        (["x.example"], "--check"),
    ],
)
def test_every_bad_argument_is_one_line_and_exit_3(
    cli: Callable[..., Result], tmp_path: Path, argv: list[str], named: str
) -> None:
    """Garbage in any argument: exit 3, nothing on stdout, one stderr line naming it."""
    (tmp_path / "zones").write_text("ok.example\n# fine\nbad zone\n")
    (tmp_path / "binary").write_bytes(b"\xff\xfe\x00zone\n")
    (tmp_path / "bad.toml").write_text("[[zone]]\nname = 3\n")
    result = cli(*_fenced([arg.replace("{tmp}", str(tmp_path)) for arg in argv]))
    assert result.code == 3
    assert result.out == ""
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("dnssec-watchdog: ")
    assert named.replace("{tmp}", str(tmp_path)) in lines[0]
    assert "Traceback" not in result.err
    assert "internal error" not in result.err
