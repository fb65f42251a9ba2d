"""Issue 8, bad input: configuration, state file and command line never end in a traceback.

Already pinned elsewhere, and cited in RELIABILITY.md rather than repeated: arbitrary TOML-shaped
data only ever raises ConfigError (tests/config/test_config.py), exit 78 and one ``config_invalid``
JSON line for a bad config at startup (tests/service/test_systemd.py), the old config kept on a bad
reload (tests/service/test_signals.py), StateError for each kind of damaged state file
(tests/service/test_store.py), eight bad arguments by name with exit 3 (tests/e2e/test_cli.py).

Added here:
- configuration: hypothesis injects known problems (wrong types, unknown keys, bad durations
  and percents, bad zone names, a duplicate zone, an unreadable secret file) into a valid file
  on disk; every injected problem comes back with its key path, secrets never do; the real
  ``--serve`` and ``--validate-config`` exit 78 with all of them listed;
- state file, through the real ``dnssec-watchdog --serve``: truncated, garbage, newer and
  unknown schema versions, another application's database, read-only directory and file. Each
  exits 73 with one JSON line naming the file and what to do, sends no READY=1, and leaves the
  file (and its -wal) byte for byte as it was: the outbox is never silently lost. The
  documented recovery (quarantine) then starts clean and keeps the old file;
- command line: hypothesis garbage in every option: exit 3, at most one line, no traceback.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from service_harness import SERVICE_BIN, NotifySocket, ServiceProcess, service_env

from watchdog import cli
from watchdog.config.parse import load_config
from watchdog.errors import ConfigError
from watchdog.service.store import Delivery, Store, quarantine

HOOK_URL = "https://hooks.example/services/T0KEN-input-url-5e1f"
HOOK_KEY = "hmac-input-key-8a2c"

# --- configuration -------------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON escapes are TOML basic-string escapes
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"


def to_toml(data: dict[str, Any]) -> str:
    """A TOML document for ``data``: tables, arrays of tables, quoted keys."""
    lines = []
    for section, body in data.items():
        tables = body if isinstance(body, list) else [body]
        for table in tables:
            lines.append(f"[[{section}]]" if isinstance(body, list) else f"[{section}]")
            lines += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def valid_config() -> dict[str, Any]:
    return {
        "watchdog": {"state_path": "state.sqlite3", "interval": "5m", "resolver": "127.0.0.1:9"},
        "defaults": {"warn_before": "10%"},
        "zone": [
            {"name": "example.com", "servers": ["127.0.0.1:5353"]},
            {"name": "example.org", "renotify": "1d"},
        ],
        "webhook": [{"name": "ops", "url_file": "hook-url", "hmac_secret_file": "hook-key"}],
    }


def write_files(directory: Path, data: dict[str, Any]) -> Path:
    (directory / "hook-url").write_text(HOOK_URL + "\n")
    (directory / "hook-key").write_text(HOOK_KEY + "\n")
    (directory / "a-directory").mkdir(exist_ok=True)
    path = directory / "watchdog.toml"
    path.write_text(to_toml(data))
    return path


# Each injection changes ``data`` and returns the key path its problem must be reported under.
# The bad values are written by hand: what counts as bad is the specification, not the parser.
_Injection = Callable[[dict[str, Any], st.DataObject], str]
_WATCHDOG_KEYS = ["interval", "jitter", "query_timeout", "retries", "max_concurrency",
                  "resolver", "log_level", "state_path", "delivery_timeout"]  # fmt: skip
_WRONG_TYPES = st.sampled_from([True, False, [], [1, "a"], {"x": 1}, 1.5, -0.0])
_BAD_DURATIONS = ["5 minutes", "-3s", "1x", "", "m", "1.5h", "soon", "7d7", "h1", "1e3s", "3 s s"]
_BAD_PERCENTS = ["150%", "10%%", "-5%", "%", "1e3%", "100.5%", "ten%", "10 %%"]
_BAD_NAMES = ["a..b", "exa mple.com", "*.example.com", "", " ", "ex@mple.com", "a" * 64 + ".com",
              "example.com..", "ex\\000ample.com", "ex%ample.com"]  # fmt: skip


def _wrong_type(data: dict[str, Any], draw: st.DataObject) -> str:
    key = draw.draw(st.sampled_from(_WATCHDOG_KEYS), label="key")
    data["watchdog"][key] = draw.draw(_WRONG_TYPES, label="value")
    return f"watchdog.{key}"


def _unknown_key(data: dict[str, Any], draw: st.DataObject) -> str:
    section = draw.draw(st.sampled_from(["watchdog", "defaults", "zone", "webhook"]))
    table = data[section][0] if isinstance(data[section], list) else data[section]
    name = draw.draw(st.from_regex(r"[a-z][a-z_]{0,11}", fullmatch=True).filter(
        lambda k: k not in _KNOWN), label="unknown key")  # fmt: skip
    table[name] = "x"
    return f"{section}[0].{name}" if isinstance(data[section], list) else f"{section}.{name}"


def _bad_duration(data: dict[str, Any], draw: st.DataObject) -> str:
    key = draw.draw(st.sampled_from(["interval", "query_timeout", "delivery_timeout"]))
    data["watchdog"][key] = draw.draw(st.sampled_from([*_BAD_DURATIONS, 0, -5]), label="value")
    return f"watchdog.{key}"


def _bad_percent(data: dict[str, Any], draw: st.DataObject) -> str:
    data["zone"][1]["warn_before"] = draw.draw(st.sampled_from(_BAD_PERCENTS), label="value")
    return "zone[1].warn_before"


def _bad_zone_name(data: dict[str, Any], draw: st.DataObject) -> str:
    data["zone"][0]["name"] = draw.draw(st.sampled_from(_BAD_NAMES), label="name")
    return "zone[0].name"


def _duplicate_zone(data: dict[str, Any], draw: st.DataObject) -> str:
    spelling = draw.draw(st.sampled_from(["example.org", "EXAMPLE.org.", "Example.Org"]))
    data["zone"].append({"name": spelling})
    return f"zone[{len(data['zone']) - 1}].name"


def _unreadable_secret(data: dict[str, Any], draw: st.DataObject) -> str:
    key = draw.draw(st.sampled_from(["url_file", "hmac_secret_file"]), label="key")
    data["webhook"][0][key] = draw.draw(st.sampled_from(["missing-file", "a-directory"]))
    return f"webhook[0].{key}"


INJECTIONS: dict[str, _Injection] = {
    "wrong type": _wrong_type,
    "unknown key": _unknown_key,
    "bad duration": _bad_duration,
    "bad percent": _bad_percent,
    "bad zone name": _bad_zone_name,
    "duplicate zone": _duplicate_zone,
    "unreadable secret file": _unreadable_secret,
}
_KNOWN = {
    *_WATCHDOG_KEYS,
    *("state_path", "jitter", "per_server_concurrency", "log_format", "delivery_backoff_base"),
    *("delivery_backoff_cap", "delivery_give_up_after", "warn_before", "skew_min", "skew_max"),
    *("powerdns_inception_skew", "renotify", "unreachable_after", "extra", "name", "servers"),
    *("trust_anchor", "kind", "url", "url_file", "url_env", "hmac_secret", "hmac_secret_file"),
    *("hmac_secret_env", "min_severity", "zones"),
}


def test_the_base_config_is_valid(tmp_path: Path) -> None:
    """Guards the generator: without injections the file loads."""
    config = load_config(write_files(tmp_path, valid_config()), env={})
    assert [z.name for z in config.zones] == ["example.com.", "example.org."]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(kinds=st.lists(st.sampled_from(sorted(INJECTIONS)), min_size=1, max_size=4, unique=True),
       draw=st.data())  # fmt: skip
def test_every_injected_problem_is_listed_with_its_key_path(
    tmp_path: Path, kinds: list[str], draw: st.DataObject
) -> None:
    """One to four problems at once in a real file: one ConfigError naming the file and each
    problem's key path; the secrets read from files are never quoted."""
    data = valid_config()
    expected = [INJECTIONS[kind](data, draw) for kind in kinds]
    path = write_files(tmp_path, data)
    with pytest.raises(ConfigError) as raised:
        load_config(path, env={})
    problems = raised.value.problems
    for key_path in expected:
        assert any(p.startswith(f"{key_path}: ") for p in problems), (key_path, problems)
    message = str(raised.value)
    assert message.startswith(str(path))
    assert HOOK_URL not in message and HOOK_KEY not in message
    assert "Traceback" not in message


def _every_problem(directory: Path) -> tuple[Path, list[str]]:
    data = valid_config()
    data["watchdog"]["retries"] = True
    data["watchdog"]["intervall"] = "5m"
    data["watchdog"]["query_timeout"] = "5 minutes"
    data["zone"][1]["warn_before"] = "150%"
    data["zone"][0]["name"] = "a..b"
    data["zone"].append({"name": "EXAMPLE.org."})
    data["webhook"][0]["url_file"] = "missing-file"
    keys = [
        *("watchdog.retries", "watchdog.intervall", "watchdog.query_timeout"),
        *("zone[1].warn_before", "zone[0].name", "zone[2].name", "webhook[0].url_file"),
    ]
    return write_files(directory, data), keys


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SERVICE_BIN), *args], capture_output=True, text=True, timeout=60,
                          env=service_env(env), check=False)  # fmt: skip


def test_serve_with_every_kind_of_problem_exits_78_listing_all(tmp_path: Path) -> None:
    """The real service at startup: exit 78, one JSON line listing every key path, no secret,
    no traceback, no READY=1."""
    path, keys = _every_problem(tmp_path)
    with NotifySocket(tmp_path / "notify.sock") as sd:
        result = _run("--serve", "--config", str(path), env={"NOTIFY_SOCKET": sd.address})
        sd.sync()
        assert sd.received() == []
    assert result.returncode == 78
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    (entry,) = [e for e in lines if e["event"] == "config_invalid"]
    for key in keys:
        assert any(p.startswith(f"{key}: ") for p in entry["problems"]), (key, entry)
    assert HOOK_URL not in result.stderr and "Traceback" not in result.stderr


def test_validate_config_lists_the_same_problems(tmp_path: Path) -> None:
    """``--validate-config`` on the same file: exit 78, each key path on stderr, no traceback."""
    path, keys = _every_problem(tmp_path)
    result = _run("--validate-config", "--config", str(path))
    assert result.returncode == 78
    assert all(f"{key}: " in result.stderr for key in keys)
    assert HOOK_URL not in result.stderr and "Traceback" not in result.stderr


# --- the state file, through the real command ---------------------------------------------

_CAN_DROP_DAC = os.geteuid() != 0 or shutil.which("setpriv") is not None


def _service_config(directory: Path, state: Path) -> Path:
    path = directory / "watchdog.toml"
    path.write_text(
        f'[watchdog]\nstate_path = "{state}"\nresolver = "127.0.0.1:9"\n'
        f'query_timeout = "1s"\nretries = 0\n\n[[zone]]\nname = "ok.test"\n'
        f'servers = ["127.0.0.1:9"]\n'
    )
    return path


def _with_outbox(state: Path, count: int = 3, size: int = 20) -> None:
    with Store(state) as store:
        store.enqueue([Delivery(f"ev-{i}", "ops", b"x" * size) for i in range(count)])


def _truncate(state: Path) -> None:
    _with_outbox(state, count=2000, size=500)
    with state.open("r+b") as handle:
        handle.truncate(state.stat().st_size // 2)


def _garbage(state: Path) -> None:
    state.write_bytes(b"not a database, a shopping list\n" * 300)


def _schema(version: int) -> Callable[[Path], None]:
    def damage(state: Path) -> None:
        _with_outbox(state)
        with contextlib.closing(sqlite3.connect(state)) as conn, conn:
            conn.execute("UPDATE schema_version SET version = ?", (version,))

    return damage


def _foreign(state: Path) -> None:
    with contextlib.closing(sqlite3.connect(state)) as conn, conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
        conn.execute("INSERT INTO invoices VALUES (1, 9.5)")


def _read_only_directory(state: Path) -> None:
    _with_outbox(state)
    state.parent.chmod(0o555)


def _read_only_file(state: Path) -> None:
    _with_outbox(state)
    state.chmod(0o444)


# (damage, words the error must contain, whether it needs file modes to bind root)
STATE_FAULTS: dict[str, tuple[Callable[[Path], None], str, bool]] = {
    "truncated": (_truncate, "is damaged", False),
    "garbage": (_garbage, "is damaged", False),
    "newer-schema": (_schema(99), "schema version 99", False),
    "unknown-older-schema": (_schema(0), "cannot upgrade", False),
    "another-application": (_foreign, "another application", False),
    "read-only-directory": (_read_only_directory, "is not writable", True),
    "read-only-file": (_read_only_file, "is not readable and writable", True),
}


def _digests(state: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(state.parent.glob(f"{state.name}*"))
    }


def _serve_bound_by_file_modes(config: Path, notify: str) -> subprocess.CompletedProcess[str]:
    """The real service; as root, without the capabilities that let root ignore file modes."""
    command = [str(SERVICE_BIN), "--serve", "--config", str(config)]
    if os.geteuid() == 0:
        command = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search,-fowner", "--",
                   *command]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=60,
                          env=service_env({"NOTIFY_SOCKET": notify}), check=False)  # fmt: skip


@pytest.mark.parametrize("case", sorted(STATE_FAULTS))
def test_an_unusable_state_file_exits_73_and_keeps_the_file(tmp_path: Path, case: str) -> None:
    """The service refuses to start on it: exit 73, one JSON line naming the file and the
    cure, no READY=1, and the file and its -wal untouched (nothing of the outbox is lost)."""
    damage, words, needs_modes = STATE_FAULTS[case]
    if needs_modes and not _CAN_DROP_DAC:
        pytest.skip("running as root without setpriv: file modes cannot bind the service")
    directory = tmp_path / "state"
    directory.mkdir()
    state = directory / "state.sqlite3"
    damage(state)
    before = _digests(state)
    config = _service_config(tmp_path, state)
    try:
        with NotifySocket(tmp_path / "notify.sock") as sd:
            result = _serve_bound_by_file_modes(config, sd.address)
            sd.sync()
            assert sd.received() == []
    finally:
        directory.chmod(0o755)
        state.chmod(0o644)
    assert result.returncode == 73, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]  # JSON only: no traceback
    (entry,) = [e for e in lines if e["event"] == "state_unusable"]
    assert str(state) in entry["error"] and words in entry["error"], entry
    assert _digests(state) == before


def test_quarantine_is_the_documented_way_back(tmp_path: Path) -> None:
    """After exit 73 on a damaged file: quarantine() moves it aside unchanged, and the service
    then starts on a fresh state and says READY=1."""
    state = tmp_path / "state.sqlite3"
    _garbage(state)
    damaged = state.read_bytes()
    config = _service_config(tmp_path, state)
    assert _run("--serve", "--config", str(config)).returncode == 73
    moved = quarantine(state)
    assert moved.read_bytes() == damaged
    with (
        NotifySocket(tmp_path / "notify.sock") as sd,
        ServiceProcess(config, env={"NOTIFY_SOCKET": sd.address}) as service,
    ):
        sd.wait_for(lambda m: m.fields.get("READY") == "1", timeout=30)
        assert service.stop() == 0
    assert moved.read_bytes() == damaged
    with Store(state) as fresh:
        assert fresh.entries() == []


# --- the command line ---------------------------------------------------------------------

_DEAD = "127.0.0.1:9"  # discard port: a valid value still never leaves loopback
# What a shell can hand over: no NUL; undecodable bytes arrive as U+DC80..U+DCFF (PEP 383).
_ARG_TEXT = st.text(
    st.characters(codec="utf-8", exclude_characters="\x00")
    | st.sampled_from([chr(c) for c in range(0xDC80, 0xDD00, 7)]),
    max_size=40,
)
_TRICKY = st.sampled_from(["", " ", "-", "--", "-1", "0", "1e309", "nan", "inf", "-inf", "@",
                           "@/", "@/nonexistent", "[::1", "[::1]:", ":53", "127.0.0.1:0",
                           "99999999999999999999", "%", "100%", "1d1d", "+", "+-1d", "\t", "..",
                           "2026-13-45T25:61:61Z", "\udcff\udcfe", "x" * 5000])  # fmt: skip
OPTIONS = ["--server", "--resolver", "--trust-anchor", "--profile", "--warn-before",
           "--skew-min", "--skew-max", "--at", "--timeout", "--zones-file", "--config"]  # fmt: skip


def _main(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(argv)
    return code, err.getvalue()


@settings(max_examples=300, deadline=None)
@given(option=st.sampled_from([*OPTIONS, "ZONE"]), value=_ARG_TEXT | _TRICKY)
def test_garbage_in_any_argument_is_exit_3_and_one_line(option: str, value: str) -> None:
    """Any text in any option (or as the zone): exit 3, at most one stderr line, never a
    traceback or an "internal error". Servers and resolver are dead loopback ports, so a value
    that happens to be valid ends as UNKNOWN (3) without leaving 127.0.0.1."""
    base = ["--check", "--server", _DEAD, "--resolver", _DEAD]
    if option == "ZONE":
        argv = [*base, "--", value]
    else:
        argv = [*_replace_option(base, option, value), "example.test"]
    code, err = _main(argv)
    assert code == 3, (argv, err)
    assert len(err.splitlines()) <= 1, err
    assert "Traceback" not in err and "internal error" not in err, err


def _replace_option(argv: list[str], option: str, value: str) -> list[str]:
    if option in argv:
        out = list(argv)
        out[out.index(option) + 1] = value
        return out
    return [*argv, f"{option}={value}"]


@pytest.mark.parametrize("raw", [b"\xff\xfe", b"exa\xc3mple.test", b"--at=\xe9t\xe9"])
def test_undecodable_bytes_from_the_shell_are_one_line(raw: bytes) -> None:
    """Bytes that are not UTF-8 (a Latin-1 terminal): the real command answers one line, 3."""
    argv = [os.fsencode(str(SERVICE_BIN)), b"--check", b"--server", _DEAD.encode(),
            b"--resolver", _DEAD.encode(), raw if raw.startswith(b"--") else b"--"]  # fmt: skip
    if not raw.startswith(b"--"):
        argv.append(raw)
    else:
        argv.insert(-1, b"example.test")
    result = subprocess.run(argv, capture_output=True, timeout=60, env=service_env(), check=False)
    assert result.returncode == 3
    assert len(result.stderr.splitlines()) <= 1 and b"Traceback" not in result.stderr
