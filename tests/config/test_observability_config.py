"""Configuration of the metrics listener and the heartbeat: values, problems, secrets, garbage."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchdog.config.parse import Config, HeartbeatConfig, parse_config
from watchdog.errors import ConfigError

PING_URL = "https://hc-ping.example/5a1e-heartbeat-s3cret"
FAIL_URL = "https://hc-ping.example/5a1e-heartbeat-s3cret/fail"
ENV = {"PING": PING_URL, "FAIL": FAIL_URL}


def parse(data: Mapping[str, Any], env: Mapping[str, str] = ENV) -> Config:
    full = {"zone": [{"name": "example.com"}], **data}
    return parse_config(full, source="t.toml", read_file=lambda p: p.read_text(), env=env)


def problems(data: Mapping[str, Any], env: Mapping[str, str] = ENV) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(data, env)
    return info.value.problems


# ---------------------------------------------------------------- metrics_listen


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9153", ("127.0.0.1", 9153)),
        (" 127.0.0.1:9153 ", ("127.0.0.1", 9153)),
        ("[::1]:9153", ("::1", 9153)),
        ("[0:0:0:0:0:0:0:1]:80", ("::1", 80)),
        ("0.0.0.0:9153", ("0.0.0.0", 9153)),
        ("[::]:9153", ("::", 9153)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("[2001:DB8::1]:65535", ("2001:db8::1", 65535)),
    ],
)
def test_metrics_listen_takes_an_address_and_a_port(text: str, expected: tuple[str, int]) -> None:
    """metrics_listen is an IP address (IPv6 in brackets) and a port, in canonical form."""
    assert parse({"watchdog": {"metrics_listen": text}}).service.metrics_listen == expected


def test_metrics_listen_is_off_by_default() -> None:
    """Without metrics_listen there is no listener."""
    assert parse({}).service.metrics_listen is None


@pytest.mark.parametrize(
    "text",
    [
        "9153",  # no address
        "127.0.0.1",  # no port
        "127.0.0.1:",
        "localhost:9153",  # a name would need a resolver to bind
        "::1:9153",  # IPv6 without brackets
        "[127.0.0.1]:9153",  # IPv4 in brackets
        "[::1]9153",
        "256.0.0.1:9153",
        "127.0.0.1:9153x",
        "127.0.0.1:-1",
        "127.0.0.1:9\u00b3",  # a superscript digit: isdigit() says yes, int() says no
        "127.0.0.1:\u0661\u0662",  # Arabic-Indic digits, which int() would read as 12
        "\uff11\uff12\uff17.0.0.1:9153",  # fullwidth digits in the address
        "127.0.0.1:91 53",
        "",
    ],
)
def test_metrics_listen_refuses_what_is_not_an_ip_and_ascii_port(text: str) -> None:
    """Names, missing parts, non-ASCII digits and garbage are one problem naming the key."""
    (problem,) = problems({"watchdog": {"metrics_listen": text}})
    assert problem.startswith("watchdog.metrics_listen: ")
    assert "is not a listen address" in problem
    assert '"127.0.0.1:9153"' in problem  # the hint shows the form


def test_metrics_listen_port_above_65535_is_named() -> None:
    """A port out of range says so."""
    assert problems({"watchdog": {"metrics_listen": "127.0.0.1:70000"}}) == [
        'watchdog.metrics_listen: "127.0.0.1:70000": the port must be 0 to 65535'
    ]


@pytest.mark.parametrize("value", [9153, True, ["127.0.0.1:9153"], {"a": 1}])
def test_metrics_listen_of_another_type_is_a_problem(value: object) -> None:
    """A number, a boolean, an array or a table is refused with its type."""
    (problem,) = problems({"watchdog": {"metrics_listen": value}})
    assert problem.startswith("watchdog.metrics_listen: expected a string, got ")


@given(st.text(max_size=40))
def test_metrics_listen_never_crashes_on_any_text(text: str) -> None:
    """Any text either parses to a valid (address, port) or is one named problem."""
    try:
        listen = parse({"watchdog": {"metrics_listen": text}}).service.metrics_listen
    except ConfigError as exc:
        assert len(exc.problems) == 1
        assert exc.problems[0].startswith("watchdog.metrics_listen: ")
    else:
        assert listen is not None
        assert 0 <= listen[1] <= 65535
        assert text.strip().endswith(f":{listen[1]}")


# ---------------------------------------------------------------- [heartbeat]


def test_heartbeat_from_env_with_defaults() -> None:
    """A [heartbeat] with only url_env pings every minute with GET, and no fail URL."""
    config = parse({"heartbeat": {"url_env": "PING"}})
    assert config.heartbeat == HeartbeatConfig(url=PING_URL)
    assert (config.heartbeat.interval, config.heartbeat.method) == (60, "GET")
    assert config.heartbeat.fail_url is None


def test_heartbeat_all_keys(tmp_path: Path) -> None:
    """interval, method (any case) and fail_url from a file are read."""
    (tmp_path / "fail").write_text(FAIL_URL + "\n")
    config = parse(
        {
            "heartbeat": {
                "url": PING_URL,
                "interval": "30s",
                "method": "Post",
                "fail_url_file": str(tmp_path / "fail"),
            }
        }
    )
    assert config.heartbeat == HeartbeatConfig(PING_URL, 30, "POST", FAIL_URL)


def test_no_heartbeat_table_means_no_heartbeat() -> None:
    """Without [heartbeat], nothing is pinged."""
    assert parse({}).heartbeat is None


def test_heartbeat_urls_are_secrets_the_redactor_learns() -> None:
    """Both URLs are among the config's secrets, and hidden from repr."""
    config = parse({"heartbeat": {"url_env": "PING", "fail_url_env": "FAIL"}})
    assert PING_URL in config.secrets()
    assert FAIL_URL in config.secrets()
    assert "s3cret" not in repr(config)


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ({}, ['heartbeat: no url; set url_env = "VARIABLE" or url_file']),
        (
            {"url_env": "PING", "url": PING_URL},
            ["heartbeat: url and url_env are both set; keep exactly one"],
        ),
        ({"url_env": "NOPE"}, ["heartbeat.url_env: environment variable NOPE is not set"]),
        (
            {"url": "ftp://hc-ping.example/5a1e-heartbeat-s3cret"},
            ["heartbeat.url: the value is not an http:// or https:// URL"],
        ),
        (
            {"url_env": "PING", "fail_url": "gopher://5a1e-heartbeat-s3cret"},
            ["heartbeat.fail_url: the value is not an http:// or https:// URL"],
        ),
        (
            {"url_env": "PING", "interval": "0s"},
            ['heartbeat.interval: must be at least 1s, got "0s"'],
        ),
        (
            {"url_env": "PING", "interval": "1\u00b3m"},
            [
                'heartbeat.interval: "1\u00b3m" is not a duration: use a number with a unit, '
                'like "90m", "36h", "7d" or "3600s"'
            ],
        ),
        (
            {"url_env": "PING", "method": "POTS"},
            ['heartbeat.method: "POTS" is not one of: get, post; did you mean "post"?'],
        ),
        (
            {"url_env": "PING", "method": "G\u0395T"},  # a Greek capital epsilon
            ['heartbeat.method: "G\u0395T" is not one of: get, post; did you mean "get"?'],
        ),
        (
            {"url_env": "PING", "method": 1},
            ["heartbeat.method: expected a string, got 1"],
        ),
        (
            {"url_env": "PING", "timeout": "5s"},
            ['heartbeat.timeout: unknown key; known keys: url, url_file, url_env, fail_url, '
             "fail_url_file, fail_url_env, interval, method"],
        ),
    ],
)  # fmt: skip
def test_heartbeat_problems_name_the_key_and_never_the_secret(
    table: dict[str, Any], expected: list[str]
) -> None:
    """Each bad [heartbeat] is a problem naming the key; no URL is ever quoted."""
    found = problems({"heartbeat": table})
    assert found == expected
    assert not any("s3cret" in p for p in found)


def test_heartbeat_that_is_not_a_table() -> None:
    """heartbeat = "url" is refused as not a table (the value is not echoed as a URL)."""
    assert problems({"heartbeat": 5}) == [
        "heartbeat: expected a table, got 5",
        'heartbeat: no url; set url_env = "VARIABLE" or url_file',
    ]


@given(st.text(max_size=20), st.text(max_size=20))
def test_heartbeat_interval_and_method_never_crash(interval: str, method: str) -> None:
    """Any text for interval and method parses or is refused as problems of those keys."""
    try:
        config = parse({"heartbeat": {"url_env": "PING", "interval": interval, "method": method}})
    except ConfigError as exc:
        assert all(
            p.startswith(("heartbeat.interval: ", "heartbeat.method: ")) for p in exc.problems
        )
    else:
        assert config.heartbeat is not None
        assert config.heartbeat.method in ("GET", "POST")
        assert config.heartbeat.interval >= 1
