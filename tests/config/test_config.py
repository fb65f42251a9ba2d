"""Configuration: the reference file, normalization, and every problem named with a hint."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import dns.name
import dns.rdatatype
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from watchdog.config.parse import (
    Config,
    ServiceConfig,
    WebhookConfig,
    ZoneConfig,
    load_config,
    parse_config,
    webhook_matches,
)
from watchdog.config.targets import parse_trust_anchor
from watchdog.config.values import _zone_origin
from watchdog.engine.assess import WarnBefore, ZonePolicy
from watchdog.engine.findings import Severity
from watchdog.engine.profiles import ValidatorSettings
from watchdog.errors import ConfigError

REFERENCE = Path(__file__).resolve().parents[2] / "config.toml"
HOOK_URL = "https://hooks.example/T0/B0/hook-url-secret"
ENV = {
    "HOOK_URL": HOOK_URL,
    "EMPTY": "",
    "FTP_URL": "ftp://hooks.example/ftp-url-secret",
    "HOOK_KEY": "hmac-key-secret",
}
DS = "example.com. IN DS 12345 13 2 " + "0123456789abcdef" * 4


def extra_text(zone: ZoneConfig) -> list[tuple[str, str]]:
    """A zone's extra names and types as text."""
    return [(name.to_text(), dns.rdatatype.to_text(rdtype)) for name, rdtype in zone.extra]


def read_real_file(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def parse(data: Mapping[str, Any], env: Mapping[str, str] = ENV, source: str = "t.toml") -> Config:
    return parse_config(data, source=source, read_file=read_real_file, env=env)


def problems(data: Mapping[str, Any], env: Mapping[str, str] = ENV) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(data, env)
    return info.value.problems


def minimal(**sections: Any) -> dict[str, Any]:
    """One valid zone, plus the given top-level sections."""
    return {"zone": [{"name": "example.com"}], **sections}


def webhook(**keys: Any) -> dict[str, Any]:
    return minimal(webhook=[{"name": "ops", "url_env": "HOOK_URL", **keys}])


# ---------------------------------------------------------------- the reference file


def reference_env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "secret_slack-url").write_text("https://hooks.slack.example/services/X\n")
    return {
        "DNSSEC_WATCHDOG_OPS_URL": HOOK_URL,
        "DNSSEC_WATCHDOG_OPS_HMAC": "hmac-key-secret",
        "CREDENTIALS_DIRECTORY": str(tmp_path),
    }


def test_reference_config_loads_with_documented_defaults(tmp_path: Path) -> None:
    """The shipped config.toml loads and states exactly the defaults of the issue."""
    config = load_config(REFERENCE, reference_env(tmp_path))
    s = config.service
    # The one key set apart from the defaults: the metrics listener, on loopback (issue 17).
    assert s == replace(ServiceConfig(), metrics_listen=("127.0.0.1", 9153))
    assert config.heartbeat is None
    assert (s.interval, s.resolver, s.log_format) == (15 * 60, None, "auto")
    assert s.state_path == Path("/var/lib/dnssec-watchdog/state.sqlite3")
    assert s.delivery_backoff_base <= s.delivery_backoff_cap
    (zone,) = config.zones
    assert zone == ZoneConfig(name="example.com.")
    assert zone.policy.warn_before == WarnBefore(seconds=None, percent=10.0)
    assert zone.policy.settings == ValidatorSettings(3600, 86400, 60)
    assert (zone.renotify, zone.unreachable_after) == (24 * 3600, 3)
    ops, slack = config.webhooks
    assert (ops.name, ops.kind, ops.url, ops.hmac_secret) == (
        "ops",
        "generic",
        HOOK_URL,
        "hmac-key-secret",
    )
    assert (ops.min_severity, ops.zones) == (Severity.WARNING, ("*",))
    assert (slack.kind, slack.url, slack.hmac_secret) == (
        "slack",
        "https://hooks.slack.example/services/X",
        None,
    )
    assert slack.min_severity is Severity.STRICT_FAIL
    assert config.source == str(REFERENCE)


DOCUMENTED = {
    "watchdog": [
        "state_path", "interval", "jitter", "resolver", "max_concurrency",
        "per_server_concurrency", "probe_workers", "query_timeout", "retries", "log_format",
        "log_level",
        "delivery_timeout", "delivery_backoff_base", "delivery_backoff_cap",
        "delivery_give_up_after", "metrics_listen", "validators",
    ],
    "defaults": [
        "warn_before", "skew_min", "skew_max", "powerdns_inception_skew", "renotify",
        "unreachable_after", "extra", "transfer", "transfer_tsig_file", "walk", "walk_limit",
        "sample", "stall_margin", "ignore",
    ],
    "zone": ["name", "servers", "trust_anchor"],
    "webhook": [
        "name", "kind", "url_env", "url_file", "url", "hmac_secret_env", "hmac_secret_file",
        "hmac_secret", "min_severity", "zones", "ca_file",
    ],
    "heartbeat": [
        "url_env", "url_file", "url", "interval", "method", "fail_url_env", "fail_url_file",
        "fail_url",
    ],
}  # fmt: skip


@pytest.mark.parametrize("key", [k for keys in DOCUMENTED.values() for k in keys])
def test_reference_config_documents_every_key(key: str) -> None:
    """Every key appears in config.toml (set or commented out) under a comment line."""
    lines = REFERENCE.read_text().splitlines()
    hits = [i for i, line in enumerate(lines) if re.match(rf"#? ?{key} = ", line)]
    assert hits, key
    assert any(lines[i - 1].startswith("#") for i in hits), f"{key} has no comment above it"


def test_reference_config_commented_examples_are_valid(tmp_path: Path) -> None:
    """Uncommenting the example zone settings still gives a valid configuration."""
    text = REFERENCE.read_text()
    for key in ("servers", "warn_before", "extra"):
        text = text.replace(f"# {key} = ", f"{key} = ")
    path = tmp_path / "config.toml"
    path.write_text(text)
    (zone,) = load_config(path, reference_env(tmp_path)).zones
    assert zone.servers == (
        ("192.0.2.1", 53),
        ("ns1.example.net", 5353),
        ("2001:db8::1", 53),
    )
    assert zone.policy.warn_before == WarnBefore(seconds=3 * 86400, percent=None)
    assert extra_text(zone) == [("www.example.com.", "A"), ("example.com.", "MX")]


# ---------------------------------------------------------------- bad configurations

SERVER_HINT = 'use "192.0.2.1", "ns1.example:5353" or "[2001:db8::1]:53"'
BAD: list[tuple[str, dict[str, Any], list[str]]] = [
    ("no zone", {}, ['zone: no [[zone]] table; add one with name = "example.com"']),
    ("zone as table", {"zone": {"name": "example.com"}},
     ["zone: expected an array of tables ([[zone]]), got a table"]),
    ("watchdog not a table", minimal(watchdog=5), ["watchdog: expected a table, got 5"]),
    ("interval wrong type", minimal(watchdog={"interval": True}),
     ['watchdog.interval: expected a duration string like "15m" (or whole seconds), got true']),
    ("interval garbage", minimal(watchdog={"interval": "15x"}),
     ['watchdog.interval: "15x" is not a duration: use a number with a unit, like "90m", '
      '"36h", "7d" or "3600s"']),
    ("interval zero", minimal(watchdog={"interval": 0}),
     ["watchdog.interval: must be at least 1s, got 0"]),
    ("jitter too long", minimal(watchdog={"interval": "1m", "jitter": "2m"}),
     ["watchdog.jitter: 2m must be shorter than watchdog.interval (1m); lower it"]),
    ("backoff base over cap",
     minimal(watchdog={"delivery_backoff_base": "2h", "delivery_backoff_cap": "1h"}),
     ["watchdog.delivery_backoff_base: 2h must not exceed watchdog.delivery_backoff_cap (1h)"]),
    ("resolver by name", minimal(watchdog={"resolver": "dns.example"}),
     ['watchdog.resolver: "dns.example" is not a server address; use "system", "192.0.2.53" '
      'or "[2001:db8::53]:53"']),
    ("log format typo", minimal(watchdog={"log_format": "jsn"}),
     ['watchdog.log_format: "jsn" is not one of: auto, json, console; did you mean "json"?']),
    ("concurrency zero", minimal(watchdog={"max_concurrency": 0}),
     ["watchdog.max_concurrency: must be at least 1, got 0"]),
    ("workers zero", minimal(watchdog={"probe_workers": 0}),
     ["watchdog.probe_workers: must be at least 1, got 0"]),
    ("workers too many", minimal(watchdog={"probe_workers": 1000}),
     ["watchdog.probe_workers: must be at most 64, got 1000"]),
    ("retries as string", minimal(watchdog={"retries": "2"}),
     ['watchdog.retries: expected a whole number, got "2"']),
    ("empty state path", minimal(watchdog={"state_path": " "}),
     ["watchdog.state_path: is empty"]),
    ("warn_before neither", {"zone": [{"name": "example.com"}, {"name": "a.example"},
                                      {"name": "b.example"},
                                      {"name": "example.org", "warn_before": "10d%"}]},
     ['zone[3].warn_before: "10d%" is not a duration ("36h", "7d") or a percent ("10%")']),
    ("warn_before as float", minimal(defaults={"warn_before": 0.1}),
     ['defaults.warn_before: expected a percent like "10%" or a duration like "36h", got 0.1']),
    ("percent over 100", minimal(defaults={"warn_before": "150%"}),
     ['defaults.warn_before: "150%" is over 100%; a percent of the signature lifetime must be '
      "0% to 100%"]),
    ("negative skew", {"zone": [{"name": "example.com", "skew_min": -1}]},
     ["zone[0].skew_min: must not be negative, got -1"]),
    ("skew as duration", minimal(defaults={"skew_max": "1h"}),
     ['defaults.skew_max: expected a whole number of seconds, got "1h"']),
    ("skew as float", minimal(defaults={"powerdns_inception_skew": 1.5}),
     ["defaults.powerdns_inception_skew: expected a whole number of seconds, got 1.5"]),
    ("renotify zero", minimal(defaults={"renotify": "0s"}),
     ['defaults.renotify: must be at least 1s, got "0s"']),
    ("unreachable_after zero", minimal(defaults={"unreachable_after": 0}),
     ["defaults.unreachable_after: must be at least 1, got 0"]),
    ("zone without name", {"zone": [{"servers": []}]},
     ['zone[0]: no name; add name = "example.com"']),
    ("empty label", {"zone": [{"name": "exa..mple.com"}]},
     ['zone[0].name: "exa..mple.com" is not a valid DNS name: A DNS label is empty.']),
    ("comma in name", {"zone": [{"name": "example,com"}]},
     ['zone[0].name: "example,com": the label "example,com" is not a zone name label '
      '(letters, digits, "-", "_")']),
    ("name not a string", {"zone": [{"name": 42}]},
     ["zone[0].name: expected a string, got 42"]),
    ("duplicate zone", {"zone": [{"name": "Example.COM"}, {"name": "example.com."}]},
     ['zone[1].name: "example.com." is already configured as zone[0]; list each zone once']),
    ("zone entry not a table", {"zone": ["example.com"]},
     ['zone[0]: expected a table, got "example.com"']),
    ("servers not an array", {"zone": [{"name": "example.com", "servers": "192.0.2.1"}]},
     ['zone[0].servers: expected an array, got "192.0.2.1"']),
    ("bad servers", {"zone": [{"name": "example.com", "servers": [
        "192.0.2.1:abc", "[2001:db8::1", "192.0.2.300", "[192.0.2.1]:53", "ns1.example:70000",
        "192.0.2.1", ":53", "192.0.2.1:5\u00b3"]}]},
     [f'zone[0].servers[0]: "192.0.2.1:abc" is not a server address; {SERVER_HINT}',
      f'zone[0].servers[1]: "[2001:db8::1" is not a server address; {SERVER_HINT}',
      f'zone[0].servers[2]: "192.0.2.300" is not a server address; {SERVER_HINT}',
      f'zone[0].servers[3]: "[192.0.2.1]:53" is not a server address; {SERVER_HINT}',
      f'zone[0].servers[4]: "ns1.example:70000" is not a server address; {SERVER_HINT}',
      f'zone[0].servers[6]: ":53" is not a server address; {SERVER_HINT}',
      f'zone[0].servers[7]: "192.0.2.1:5\u00b3" is not a server address; {SERVER_HINT}']),
    ("bad extra", {"zone": [{"name": "example.com", "extra": [
        "www", "www FOO", "@ RRSIG", "mail.example.org. A", "x ANY", 5]}]},
     ['zone[0].extra[0]: "www" is not "NAME TYPE"; use e.g. "www A" or "@ MX"',
      'zone[0].extra[1]: "www FOO": "FOO" is not a DNS record type (A, AAAA, MX, TXT, ...)',
      'zone[0].extra[2]: "@ RRSIG": RRSIG cannot be watched; name the type it covers',
      'zone[0].extra[3]: "mail.example.org. A": mail.example.org. is not in zone "example.com."',
      'zone[0].extra[4]: "x ANY": ANY cannot be watched; name the type it covers',
      "zone[0].extra[5]: expected a string, got 5"]),
    ("bad default extra reported once",
     {"defaults": {"extra": ["www FOO"]}, "zone": [{"name": "a.example"}, {"name": "b.example"}]},
     ['defaults.extra[0]: "www FOO": "FOO" is not a DNS record type (A, AAAA, MX, TXT, ...)']),
    ("default extra outside a zone",
     {"defaults": {"extra": ["www.a.example. A"]},
      "zone": [{"name": "a.example"}, {"name": "b.example"}]},
     ['defaults.extra[0]: "www.a.example. A": www.a.example. is not in zone "b.example."']),
    ("unreadable trust anchor",
     {"zone": [{"name": "example.com", "trust_anchor": "@/nonexistent/example.com.ds"}]},
     ["zone[0].trust_anchor: cannot read /nonexistent/example.com.ds: No such file or directory"]),
    ("trust anchor syntax", {"zone": [{"name": "example.com", "trust_anchor": "@ IN DS 1 2"}]},
     ["zone[0].trust_anchor: not DS or DNSKEY records in zone-file format "
      "(line 1: expecting an identifier)"]),
    # The prober's own anchor check (watchdog.probe.verify.parse_trust_anchor), with the key path.
    ("trust anchor of another type",
     {"zone": [{"name": "example.com", "trust_anchor": "example.com. IN A 192.0.2.1"}]},
     ["zone[0].trust_anchor: trust anchor for example.com.: example.com. A: only DS and DNSKEY "
      "records can be anchors"]),
    ("trust anchor of another zone",
     {"zone": [{"name": "example.org", "trust_anchor": DS}]},
     ["zone[0].trust_anchor: trust anchor for example.org.: owner must be the zone "
      "example.org., not example.com."]),
    ("trust anchor empty", {"zone": [{"name": "example.com", "trust_anchor": "; nothing\n"}]},
     ["zone[0].trust_anchor: trust anchor for example.com.: no DS or DNSKEY record in it"]),
    ("url and url_env", webhook(url=HOOK_URL),
     ["webhook[0]: url and url_env are both set; keep exactly one"]),
    ("no url", minimal(webhook=[{"name": "ops"}]),
     ['webhook[0]: no url; set url_env = "VARIABLE" or url_file']),
    ("missing variable", webhook(url_env="NOT_SET_ANYWHERE"),
     ["webhook[0].url_env: environment variable NOT_SET_ANYWHERE is not set"]),
    ("empty variable", webhook(url_env="EMPTY"), ["webhook[0].url_env: $EMPTY is empty"]),
    ("not an http url", webhook(url_env="FTP_URL"),
     ["webhook[0].url_env: $FTP_URL is not an http:// or https:// URL"]),
    ("unreadable url_file", minimal(webhook=[{"name": "ops", "url_file": "/nonexistent/hook"}]),
     ["webhook[0].url_file: cannot read /nonexistent/hook: No such file or directory"]),
    ("unknown kind", webhook(kind="teams"),
     ['webhook[0].kind: "teams" is not one of: generic, slack']),
    ("severity typo", webhook(min_severity="warn"),
     ['webhook[0].min_severity: "warn" is not one of: ok, warning, unknown, unreachable, '
      'strict_fail, skew_exhausted, bogus; did you mean "warning"?']),
    ("signed slack", webhook(kind="slack", hmac_secret_env="HOOK_KEY"),
     ['webhook[0].hmac_secret_env: Slack webhooks are not signed; remove it or set kind = '
      '"generic"']),
    ("two secrets", webhook(hmac_secret="x", hmac_secret_env="HOOK_KEY"),
     ["webhook[0]: hmac_secret and hmac_secret_env are both set; keep exactly one"]),
    ("zone typo", webhook(zones=["exmaple.com"]),
     ['webhook[0].zones[0]: "exmaple.com." is not a configured zone; did you mean '
      '"example.com."?']),
    ("no zones", webhook(zones=[]),
     ["webhook[0].zones: is empty; leave it out to match every zone"]),
    ("duplicate webhook", minimal(webhook=[{"name": "ops", "url_env": "HOOK_URL"}] * 2),
     ['webhook[1].name: "ops" is already used by webhook[0]; webhook names must be unique']),
    ("webhook without name", minimal(webhook=[{"url_env": "HOOK_URL"}]),
     ['webhook[0]: no name; add name = "ops" (it identifies the receiver)']),
]  # fmt: skip


@pytest.mark.parametrize(
    ("data", "expected"), [(d, e) for _, d, e in BAD], ids=[i for i, *_ in BAD]
)
def test_bad_config_names_each_problem(data: dict[str, Any], expected: list[str]) -> None:
    """Each bad configuration gives exactly these problems, with key path and hint."""
    assert problems(data) == expected


def test_several_problems_are_listed_at_once() -> None:
    """Problems in every section come back together, each on its own line."""
    data = {
        "watchdog": {"interval": 5.5, "log_format": "xml"},
        "defaults": {"skew_max": -3},
        "zone": [{"name": "example.com", "servers": ["x:y"]}, {"name": "ex ample.org"}],
        "webhook": [{"name": "ops", "url": HOOK_URL, "url_file": "hook"}],
    }
    expected = [
        'watchdog.interval: expected a duration string like "15m" (or whole seconds), got 5.5',
        'watchdog.log_format: "xml" is not one of: auto, json, console',
        "defaults.skew_max: must not be negative, got -3",
        f'zone[0].servers[0]: "x:y" is not a server address; {SERVER_HINT}',
        'zone[1].name: "ex ample.org" is not a DNS name',
        "webhook[0]: url and url_file are both set; keep exactly one",
    ]
    with pytest.raises(ConfigError) as info:
        parse(data, source="/etc/dnssec-watchdog/config.toml")
    assert info.value.problems == expected
    assert info.value.source == "/etc/dnssec-watchdog/config.toml"
    text = str(info.value)
    assert text.startswith("/etc/dnssec-watchdog/config.toml: 6 problems:\n")
    assert all(f"  - {p}" in text.splitlines() for p in expected)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (minimal(watchdog={"intervall": "5m"}),
         'watchdog.intervall: unknown key; did you mean "interval"?'),
        ({"zone": [{"name": "example.com", "warn_befor": "1d"}]},
         'zone[0].warn_befor: unknown key; did you mean "warn_before"?'),
        ({"zones": [{"name": "example.com"}], "zone": [{"name": "example.com"}]},
         'zones: unknown key; did you mean "zone"?'),
        (webhook(secret="x"), 'webhook[0].secret: unknown key; did you mean "hmac_secret"?'),
        (minimal(defaults={"colour": "blue"}),
         "defaults.colour: unknown key; known keys: warn_before, skew_min, skew_max, "
         "powerdns_inception_skew, renotify, unreachable_after, extra, transfer, "
         "transfer_tsig_file, walk, walk_limit, sample, stall_margin, ignore"),
    ],
)  # fmt: skip
def test_unknown_key_suggests_the_closest_known_one(data: dict[str, Any], expected: str) -> None:
    """A typo in a key is an error that names the key it probably meant."""
    assert problems(data) == [expected]


def test_toml_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    """Broken TOML is one problem naming the file, the line and the column."""
    path = tmp_path / "config.toml"
    path.write_text('[watchdog]\ninterval = "15m"\nretries = \n')
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert str(info.value) == f"{path}: not valid TOML: Invalid value (at line 3, column 11)"


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """A config path that does not exist is named, not a traceback."""
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml", {})
    assert (
        str(info.value)
        == f"{tmp_path / 'nope.toml'}: cannot read the file: No such file or directory"
    )


# ---------------------------------------------------------------- files and secrets


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "etc" / "config.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text('[[zone]]\nname = "example.com"\n' + text)
    return path


def test_relative_url_file_is_read_from_credentials_directory(tmp_path: Path) -> None:
    """With $CREDENTIALS_DIRECTORY set, a relative *_file is looked up there (LoadCredential)."""
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "hook-url").write_text(HOOK_URL + "\n")
    (credentials / "hook-key").write_text("k3y\n")
    path = write_config(
        tmp_path,
        '[[webhook]]\nname = "ops"\nurl_file = "hook-url"\nhmac_secret_file = "hook-key"\n',
    )
    (hook,) = load_config(path, {"CREDENTIALS_DIRECTORY": str(credentials)}).webhooks
    assert (hook.url, hook.hmac_secret) == (HOOK_URL, "k3y")


def test_relative_paths_without_credentials_are_next_to_the_config(tmp_path: Path) -> None:
    """Without $CREDENTIALS_DIRECTORY, relative files and state_path sit by the config file."""
    path = write_config(
        tmp_path,
        '[watchdog]\nstate_path = "state.db"\n[[webhook]]\nname = "ops"\nurl_file = "hook-url"\n',
    )
    (path.parent / "hook-url").write_text(HOOK_URL)
    config = load_config(path, {})
    assert config.webhooks[0].url == HOOK_URL
    assert config.service.state_path == path.parent / "state.db"


def test_trust_anchor_file_is_read_at_load_time(tmp_path: Path) -> None:
    """trust_anchor = "@file" puts the file's records into the zone's configuration."""
    path = tmp_path / "config.toml"
    (tmp_path / "example.com.ds").write_text(DS + "\n")
    path.write_text('[[zone]]\nname = "example.com"\ntrust_anchor = "@example.com.ds"\n')
    anchor = load_config(path, {}).zones[0].trust_anchor
    assert anchor == parse_trust_anchor(DS, dns.name.from_text("example.com."))
    assert anchor is not None and [ds.to_text() for ds in anchor.ds] == [DS.split(" DS ")[1]]


def test_trust_anchor_file_problems_name_the_file(tmp_path: Path) -> None:
    """A problem in an anchor file names that file, and the line of a syntax error."""
    path = tmp_path / "config.toml"
    anchor = tmp_path / "bad.ds"
    anchor.write_text(f"; from the parent\n{DS}\n@ IN DS 1 13 2 zz\n{DS}\n")
    path.write_text('[[zone]]\nname = "example.com"\ntrust_anchor = "@bad.ds"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert info.value.problems == [
        "zone[0].trust_anchor: not DS or DNSKEY records in zone-file format "
        f"(line 3 of {anchor}: Non-hexadecimal digit found)"
    ]
    anchor.write_text("; the parent's DS, pasted for the wrong zone\n" + DS)
    path.write_text('[[zone]]\nname = "example.org"\ntrust_anchor = "@bad.ds"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert info.value.problems == [
        "zone[0].trust_anchor: trust anchor for example.org.: owner must be the zone "
        f"example.org., not example.com. (in {anchor})"
    ]


SECRETS = ["inline-url-s3cret", "hmac-s3cret", "file-url-s3cret", "env-url-s3cret", "424242"]


def test_secrets_never_appear_in_errors_or_reprs(tmp_path: Path) -> None:
    """URLs and HMAC keys stay out of problems, even when they are what is wrong."""
    (tmp_path / "url").write_text("gopher://file-url-s3cret\n")
    pasted = "https://hooks.example/inline-url-s3cret"
    data = minimal(
        webhook=[
            {"name": "a", "url": "ftp://inline-url-s3cret"},
            {"name": "b", "kind": "slack", "url": pasted, "hmac_secret": "hmac-s3cret"},
            {"name": "c", "url_file": str(tmp_path / "url"), "hmac_secret": 424242},
            {"name": "d", "url_env": "ENV_URL"},
            {"name": "e", "url_env": pasted, "hmac_secret_file": pasted},
            {"name": "f", "url": pasted, "url_env": "ENV_URL", "hmac_secret": ["hmac-s3cret"]},
            {"name": "g", "url": 424242, "zones": ["nowhere.example"]},
            {"name": "h", "url": pasted, "hmac_secret": "hmac-s3cret", "kind": "nope"},
        ]
    )
    with pytest.raises(ConfigError) as info:
        parse(data, env={"ENV_URL": "env-url-s3cret"})
    assert info.value.problems == [
        "webhook[0].url: the value is not an http:// or https:// URL",
        'webhook[1].hmac_secret: Slack webhooks are not signed; remove it or set kind = "generic"',
        f"webhook[2].url_file: the content of {tmp_path / 'url'} is not an http:// or https:// URL",
        "webhook[2].hmac_secret: expected a string, got an integer",
        "webhook[3].url_env: $ENV_URL is not an http:// or https:// URL",
        "webhook[4].url_env: is not an environment variable name (letters, digits, _); to give "
        "the value itself, drop _env",
        "webhook[4].hmac_secret_file: is not a file path; to give the value itself, drop _file",
        "webhook[5]: url and url_env are both set; keep exactly one",
        "webhook[5].hmac_secret: expected a string, got an array",
        "webhook[6].url: expected a string, got an integer",
        'webhook[6].zones[0]: "nowhere.example." is not a configured zone; add a [[zone]] or use '
        "a pattern",
        'webhook[7].kind: "nope" is not one of: generic, slack',
    ]
    text = "\n".join([str(info.value), repr(info.value), *info.value.problems])
    for secret in SECRETS:
        assert secret not in text
    good = parse(minimal(webhook=[{"name": "ok", "url": pasted, "hmac_secret": "hmac-s3cret"}]))
    assert good.webhooks[0].url == pasted
    for secret in SECRETS:
        assert secret not in repr(good) and secret not in str(good.webhooks[0])


def test_webhook_repr_hides_url_and_secret() -> None:
    """repr() shows which receiver it is, never where it is or how it signs."""
    hook = WebhookConfig("ops", "generic", HOOK_URL, "hmac-key-secret")
    assert repr(hook) == (
        "WebhookConfig(name='ops', kind='generic', url=<hidden>, hmac_secret=<hidden>, "
        "min_severity='warning', zones=('*',))"
    )


# ---------------------------------------------------------------- normalization


def test_zone_names_and_extra_names_are_normalized() -> None:
    """Zone names become lowercase ASCII with a final dot; extra names absolute in the zone."""
    config = parse(
        {
            "zone": [
                {"name": "Example.COM", "extra": ["www A", "@ mx", "Mail.Example.com. AAAA"]},
                {"name": "bücher.example."},
                {"name": "."},
            ]
        }
    )
    assert [z.name for z in config.zones] == ["example.com.", "xn--bcher-kva.example.", "."]
    assert extra_text(config.zones[0]) == [
        ("www.example.com.", "A"),
        ("example.com.", "MX"),
        ("mail.example.com.", "AAAA"),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.1", ("192.0.2.1", 53)),
        ("192.0.2.1:5353", ("192.0.2.1", 5353)),
        ("NS1.Example:5353", ("ns1.example", 5353)),
        ("ns1.example.", ("ns1.example", 53)),
        ("[2001:DB8::1]:53", ("2001:db8::1", 53)),
        ("[2001:db8:0::1]", ("2001:db8::1", 53)),
        ("2001:db8::1", ("2001:db8::1", 53)),
    ],
)
def test_server_addresses_are_normalized(text: str, expected: tuple[str, int]) -> None:
    """Servers come out as (host, port): the address in canonical form, names lower case."""
    (zone,) = parse({"zone": [{"name": "example.com", "servers": [text]}]}).zones
    assert zone.servers == (expected,)


def test_probe_settings_carry_the_watchdog_table() -> None:
    """[watchdog] timeouts, retries, concurrency and resolver reach the prober's settings."""
    config = parse(
        minimal(
            watchdog={
                "query_timeout": "4s",
                "retries": 0,
                "max_concurrency": 7,
                "per_server_concurrency": 1,
                "resolver": "127.0.0.1:5300",
            }
        )
    )
    settings = config.service.probe_settings()
    assert (settings.timeout, settings.retries, settings.resolver) == (4.0, 0, ("127.0.0.1", 5300))
    assert (settings.max_concurrency, settings.per_server_concurrency) == (7, 1)


def test_zone_overrides_defaults_and_others_inherit_them() -> None:
    """A [[zone]] key wins over [defaults]; zones without it get the default."""
    config = parse(
        {
            "defaults": {"warn_before": "3d", "skew_min": 600, "renotify": "6h", "extra": ["@ MX"]},
            "zone": [
                {"name": "a.example", "skew_min": 0, "extra": ["www A"], "unreachable_after": 5},
                {"name": "b.example"},
            ],
        }
    )
    a, b = config.zones
    assert a.policy == ZonePolicy(ValidatorSettings(0, 86400, 60), WarnBefore(3 * 86400, None))
    assert (a.renotify, a.unreachable_after) == (6 * 3600, 5)
    assert extra_text(a) == [("www.a.example.", "A")]
    assert b.policy == ZonePolicy(ValidatorSettings(600, 86400, 60), WarnBefore(3 * 86400, None))
    assert (b.renotify, b.unreachable_after) == (6 * 3600, 3)
    assert extra_text(b) == [("b.example.", "MX")]


def test_stall_margin_and_ignore_are_per_zone_with_defaults() -> None:
    """stall_margin (percent or duration) and ignore (lint codes) inherit from [defaults]."""
    config = parse(
        {
            "defaults": {"stall_margin": "25%", "ignore": ["nsec3_parameters"]},
            "zone": [
                {"name": "a.example", "stall_margin": "6h", "ignore": []},
                {"name": "b.example"},
            ],
        }
    )
    a, b = config.zones
    assert (a.stall_margin.amount(10**6), a.policy.ignore) == (6 * 3600, frozenset())
    assert (b.stall_margin.amount(1000), b.policy.ignore) == (250, {"nsec3_parameters"})
    assert parse(minimal()).zones[0].stall_margin.amount(1000) == 100  # 10% by default


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ({"stall_margin": "10d%"}, 'zone[0].stall_margin: stall_margin "10d%" is not a percent'),
        ({"stall_margin": True}, "zone[0].stall_margin: expected a percent"),
        ({"ignore": ["signature_expiring"]}, 'zone[0].ignore[0]: "signature_expiring" is not'),
        ({"ignore": ["nsec3_parameter"]}, 'did you mean "nsec3_parameters"?'),
        ({"ignore": "key_inventory"}, "zone[0].ignore: expected an array"),
    ],
)
def test_bad_stall_margin_and_ignore_are_named(zone: dict[str, Any], expected: str) -> None:
    """A bad margin or an ignore entry that is not a lint code is named with its key path."""
    found = problems({"zone": [{"name": "example.com", **zone}]})
    assert any(expected in p for p in found), found


def test_validators_are_ip_addresses_with_ports() -> None:
    """[watchdog] validators: IP addresses (port 53 unless given), passed to the prober."""
    config = parse(minimal(watchdog={"validators": ["127.0.0.1", "[::1]:5353"]}))
    assert config.service.validators == (("127.0.0.1", 53), ("::1", 5353))
    assert config.service.probe_settings().validators == config.service.validators
    assert parse(minimal()).service.validators == ()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1", "watchdog.validators: expected an array"),
        (["ns1.example"], "watchdog.validators: [0]:"),
        (["system"], "watchdog.validators: [0]: name a validator's IP address"),
    ],
)
def test_bad_validators_are_named(value: object, expected: str) -> None:
    """A validator that is not an IP address is refused with its key path and index."""
    found = problems(minimal(watchdog={"validators": value}))
    assert any(p.startswith(expected) for p in found), found


def test_integers_are_seconds_wherever_a_duration_is_expected() -> None:
    """interval = 600 means ten minutes, warn_before = 7200 means two hours."""
    config = parse(
        {
            "watchdog": {"interval": 600, "query_timeout": 2, "resolver": "[::1]:5353"},
            "zone": [{"name": "example.com", "warn_before": 7200, "renotify": 60}],
        }
    )
    assert (config.service.interval, config.service.query_timeout) == (600, 2)
    assert config.service.resolver == ("::1", 5353)
    (zone,) = config.zones
    assert (zone.policy.warn_before, zone.renotify) == (WarnBefore(7200, None), 60)


@pytest.mark.parametrize(
    ("patterns", "min_severity", "zone", "severity", "expected"),
    [
        (("*",), Severity.WARNING, "example.com.", Severity.WARNING, True),
        (("*",), Severity.WARNING, "example.com.", Severity.OK, False),
        (("*",), Severity.STRICT_FAIL, "example.com.", Severity.UNREACHABLE, False),
        (("*",), Severity.STRICT_FAIL, "example.com.", Severity.BOGUS, True),
        (("*.example.com",), Severity.OK, "Sub.Example.COM", Severity.OK, True),
        (("*.example.com",), Severity.OK, "example.com", Severity.OK, False),
        (("example.org",), Severity.OK, "example.org.", Severity.WARNING, True),
        (("example.org",), Severity.OK, "example.com.", Severity.WARNING, False),
    ],
)
def test_webhook_matches_zone_patterns_and_min_severity(
    patterns: tuple[str, ...], min_severity: str, zone: str, severity: Severity, expected: bool
) -> None:
    """Globs match normalized names; events below min_severity's rank are not sent."""
    zones = [{"name": n} for n in ("example.com", "sub.example.com", "example.org")]
    data = {
        "zone": zones,
        "webhook": [
            {"name": "w", "url": HOOK_URL, "zones": list(patterns), "min_severity": min_severity}
        ],
    }
    (hook,) = parse(data).webhooks
    assert webhook_matches(hook, zone, severity) is expected


# ---------------------------------------------------------------- garbage never crashes


def _toml_containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    # A named function, not a lambda: hypothesis reads the extend function's source to see
    # that it uses its argument, and a lambda's source is not always found (then a
    # HypothesisDeprecationWarning, an error under -W error, fails the test now and then).
    return st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)


TOML_VALUES = st.recursive(
    st.booleans() | st.integers() | st.floats() | st.text(max_size=20) | st.datetimes(),
    _toml_containers,
    max_leaves=8,
)
SECTION_KEYS = {
    "watchdog": DOCUMENTED["watchdog"],
    "defaults": DOCUMENTED["defaults"],
    "zone": ["name", "servers", "trust_anchor", *DOCUMENTED["defaults"]],
    "webhook": DOCUMENTED["webhook"],
    "heartbeat": DOCUMENTED["heartbeat"],
}
SECTION_TEXT = st.sampled_from(
    ["example.com", "@ A", "www TXT", "@anchor", "192.0.2.1:53", "*", "5m", "10%", "HOOK_URL",
     "generic", "slack", "warning", DS, "[::1]", "127.0.0.1:9153", "[::1]:0", "GET", "1m"]
)  # fmt: skip


def garbage_table(section: str) -> st.SearchStrategy[dict[str, Any]]:
    keys = st.sampled_from(SECTION_KEYS[section]) | st.text(max_size=10)
    return st.dictionaries(keys, TOML_VALUES | SECTION_TEXT | st.lists(SECTION_TEXT), max_size=6)


GARBAGE = st.fixed_dictionaries(
    {},
    optional={
        "watchdog": garbage_table("watchdog") | TOML_VALUES,
        "defaults": garbage_table("defaults"),
        "zone": st.lists(garbage_table("zone"), max_size=3) | TOML_VALUES,
        "webhook": st.lists(garbage_table("webhook"), max_size=3),
        "heartbeat": garbage_table("heartbeat") | TOML_VALUES,
    },
)


def fault_reader(path: Path) -> str:
    """Files in the generated configs: one readable anchor, everything else missing."""
    if path.name == "anchor":
        return DS
    raise FileNotFoundError(2, "No such file or directory", str(path))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=GARBAGE)
def test_garbage_gives_a_config_or_a_config_error(data: dict[str, Any]) -> None:
    """Arbitrary TOML-shaped data never raises anything but ConfigError."""
    try:
        parse_config(data, source="g.toml", read_file=fault_reader, env=ENV)
    except ConfigError as exc:
        assert exc.problems and all(": " in p for p in exc.problems)


VALID: dict[str, Any] = {
    "watchdog": {"interval": "5m", "resolver": "127.0.0.1"},
    "defaults": {"warn_before": "10%", "extra": ["www A"]},
    "zone": [{"name": "example.com", "servers": ["127.0.0.1:5353"], "trust_anchor": DS}],
    "webhook": [{"name": "ops", "url_env": "HOOK_URL", "zones": ["example.com"]}],
    "heartbeat": {"url_env": "HOOK_URL", "interval": "1m"},
}
BOOLEAN_KEYS = ("walk",)  # the only keys that take a boolean
WRONG_TYPES = (
    st.booleans()
    | st.floats()
    | st.datetimes()
    | st.dictionaries(st.text(max_size=5), TOML_VALUES, max_size=2)
)  # accepted nowhere in the [watchdog], [defaults], [[zone]] or [[webhook]] values,
# booleans but by BOOLEAN_KEYS


@settings(max_examples=200, deadline=None)
@given(
    where=st.sampled_from([(s, k) for s, keys in SECTION_KEYS.items() for k in keys]),
    value=WRONG_TYPES,
)
def test_a_wrong_typed_value_is_always_a_config_error(where: tuple[str, str], value: Any) -> None:
    """Any key given a value of a type it never takes is a ConfigError naming that key."""
    section, key = where
    assume(not (key in BOOLEAN_KEYS and isinstance(value, bool)))
    data = copy.deepcopy(VALID)
    table = data[section][0] if isinstance(data[section], list) else data[section]
    for other in ("url_env", "url", "url_file") if key in ("url", "url_file") else ():
        table.pop(other, None)
    table[key] = value
    assert parse_config(VALID, source="v", read_file=fault_reader, env=ENV)
    with pytest.raises(ConfigError) as info:
        parse_config(data, source="v", read_file=fault_reader, env=ENV)
    prefix = f"{section}[0]" if section in ("zone", "webhook") else section
    assert any(p.startswith(f"{prefix}.{key}") for p in info.value.problems), info.value.problems


@pytest.mark.parametrize(
    "text",
    ["example.com", "example.com.", "Example.COM", ".", "a-b_c.d0", "bücher.example",
     "0/25.2.0.192.in-addr.arpa", "x" * 63 + ".example", "  padded.example  "],
)  # fmt: skip
def test_zone_names_read_as_dnspython_reads_them(text: str) -> None:
    """The shortcut for plain zone names gives dnspython's canonical name, labels and text."""
    expected = dns.name.from_text(text.strip()).canonicalize()
    name, origin = _zone_origin(text)
    assert (name, origin, origin.labels) == (expected.to_text(), expected, expected.labels)
