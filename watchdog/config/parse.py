"""Configuration: a TOML mapping -> a frozen Config, with every problem listed at once.

``parse_config`` is pure: it takes the parsed mapping, a file reader and the environment, and
returns a Config or raises ONE ConfigError naming every problem with its key path and a hint
(``zone[2].warn_before: "10d%" is not a duration ...``). Arrays of tables count from 0, as in
jq (``zone[0]`` is the first ``[[zone]]``). ``load_config`` is the shell: it reads the TOML file,
secret files and the environment. Durations are strings ("15m", "36h", "7d") or integers
(whole seconds). Relative paths are relative to the configuration file's directory, except
``*_file`` secrets, which are relative to ``$CREDENTIALS_DIRECTORY`` when it is set (systemd
LoadCredential=). Webhook URLs and HMAC keys are secrets: never in a repr or an error message.
"""

from __future__ import annotations

import fnmatch
import os
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from watchdog.config.coverage import APEX_ONLY, CoverageSettings, TsigKey, parse_tsig_key
from watchdog.config.targets import ProbeSettings, TrustAnchor, anchor_file
from watchdog.config.targets import quote as _quote
from watchdog.config.values import (
    _ENV_NAME,
    _choice,
    _describe,
    _duration,
    _extra_entry,
    _glob_pattern,
    _is_http_url,
    _join,
    _listen,
    _name,
    _path,
    _resolver,
    _server,
    _trust_anchor,
    _unknown_key,
    _warn_before,
    _whole,
    _zone_origin,
    _zone_pattern,
)
from watchdog.engine.assess import WarnBefore, ZonePolicy
from watchdog.engine.findings import Severity
from watchdog.engine.lints import LINTS
from watchdog.engine.profiles import DEFAULT_SETTINGS, ValidatorSettings
from watchdog.engine.stall import DEFAULT_MARGIN, StallMargin
from watchdog.engine.timeutil import format_duration
from watchdog.errors import ConfigError, InvalidValueError

if TYPE_CHECKING:
    import dns.name
    import dns.rdatatype

__all__ = [
    "HEARTBEAT_METHODS",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "WEBHOOK_KINDS",
    "Config",
    "HeartbeatConfig",
    "ServiceConfig",
    "WebhookConfig",
    "ZoneConfig",
    "load_config",
    "parse_config",
    "webhook_matches",
]

LOG_FORMATS = ("auto", "json", "console")
LOG_LEVELS = ("debug", "info", "warning", "error")
WEBHOOK_KINDS = ("generic", "slack")
HEARTBEAT_METHODS = ("get", "post")
_SEVERITIES = tuple(s.value for s in Severity)

_MAX_PROBE_WORKERS = 64  # a typo must not start a thousand processes

_T = TypeVar("_T")
_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """The ``[watchdog]`` table: how the service runs. Durations are in seconds."""

    state_path: Path = Path("/var/lib/dnssec-watchdog/state.sqlite3")
    interval: int = 900
    jitter: int = 30
    resolver: tuple[str, int] | None = None  # (IP address, port); None: /etc/resolv.conf
    max_concurrency: int = 256
    per_server_concurrency: int = 8
    probe_workers: int = 1  # processes that probe, the service's own included
    query_timeout: int = 2
    retries: int = 2
    log_format: str = "auto"
    log_level: str = "info"
    delivery_timeout: int = 10
    delivery_backoff_base: int = 10
    delivery_backoff_cap: int = 3600
    delivery_give_up_after: int = 86400
    metrics_listen: tuple[str, int] | None = None  # (IP address, port); None: no listener
    validators: tuple[tuple[str, int], ...] = ()  # validating resolvers to ask beside the engine

    def probe_settings(self) -> ProbeSettings:
        """The prober's settings from this table."""
        return ProbeSettings(
            timeout=float(self.query_timeout),
            retries=self.retries,
            max_concurrency=self.max_concurrency,
            per_server_concurrency=self.per_server_concurrency,
            resolver=self.resolver,
            validators=self.validators,
        )


_DEFAULT_POLICY = ZonePolicy()


@dataclass(frozen=True, slots=True)
class ZoneConfig:
    """One ``[[zone]]`` with the ``[defaults]`` it did not override applied."""

    name: str  # lowercase, ASCII (IDNA), with the final dot
    servers: tuple[tuple[str, int], ...] = ()  # (IP address or host name, port)
    trust_anchor: TrustAnchor | None = None  # DS/DNSKEY records, parsed
    extra: tuple[tuple[dns.name.Name, dns.rdatatype.RdataType], ...] = ()  # (absolute owner, type)
    policy: ZonePolicy = _DEFAULT_POLICY
    renotify: int = 86400
    unreachable_after: int = 3
    coverage: CoverageSettings = APEX_ONLY  # apex only, or the whole zone by transfer or walk
    stall_margin: StallMargin = DEFAULT_MARGIN


@dataclass(frozen=True, slots=True, repr=False)
class WebhookConfig:
    """One ``[[webhook]]``; ``url`` and ``hmac_secret`` are secrets, hidden from repr."""

    name: str
    kind: str
    url: str
    hmac_secret: str | None = None
    min_severity: Severity = Severity.WARNING
    zones: tuple[str, ...] = ("*",)  # normalized names or fnmatch patterns
    ca_file: Path | None = None  # PEM CA certificates trusted instead of the system's

    def __repr__(self) -> str:
        secret = "<hidden>" if self.hmac_secret is not None else "None"
        return (
            f"WebhookConfig(name={self.name!r}, kind={self.kind!r}, url=<hidden>, "
            f"hmac_secret={secret}, min_severity={self.min_severity.value!r}, "
            f"zones={self.zones!r})"
        )


@dataclass(frozen=True, slots=True, repr=False)
class HeartbeatConfig:
    """The ``[heartbeat]`` table: a dead-man's switch. ``url`` and ``fail_url`` are secrets
    (a push monitor's URL is its only credential), hidden from repr."""

    url: str
    interval: int = 60
    method: str = "GET"
    fail_url: str | None = None

    def __repr__(self) -> str:
        fail = "<hidden>" if self.fail_url is not None else "None"
        return (
            f"HeartbeatConfig(url=<hidden>, interval={self.interval}, "
            f"method={self.method!r}, fail_url={fail})"
        )


@dataclass(frozen=True, slots=True)
class Config:
    """A whole, valid configuration; ``source`` names where it came from."""

    service: ServiceConfig
    zones: tuple[ZoneConfig, ...]
    webhooks: tuple[WebhookConfig, ...] = ()
    source: str = ""
    heartbeat: HeartbeatConfig | None = None

    def secrets(self) -> list[str]:
        """Every secret value of this configuration, for the log's redactor."""
        values = [s for w in self.webhooks for s in (w.url, w.hmac_secret) if s]
        if self.heartbeat is not None:
            values += [s for s in (self.heartbeat.url, self.heartbeat.fail_url) if s]
        return values


def webhook_matches(webhook: WebhookConfig, zone_name: str, severity: Severity) -> bool:
    """Whether an event of ``severity`` about ``zone_name`` goes to ``webhook``."""
    if severity.rank < webhook.min_severity.rank:
        return False
    name = _glob_pattern(zone_name)
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in webhook.zones)


def load_config(path: Path, env: Mapping[str, str] | None = None) -> Config:
    """Read and check the TOML file at ``path``, its secret files and the environment."""
    source = str(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError([f"cannot read the file: {exc.strerror or exc}"], source) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(["the file is not UTF-8 text"], source) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # its message names line and column
        raise ConfigError([f"not valid TOML: {exc}"], source) from exc
    return parse_config(
        data, source=source, read_file=_read_text, env=os.environ if env is None else env
    )


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidValueError(f"expected true or false, got {_describe(value)}")
    return value


def _read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def parse_config(
    data: Mapping[str, Any],
    *,
    source: str,
    read_file: Callable[[Path], str],
    env: Mapping[str, str],
) -> Config:
    """Check a parsed configuration; raise one ConfigError listing every problem."""
    parser = _Parser(source, read_file, env)
    top = parser.table(data, "", _TOP_KEYS)
    service = parser.service(top.get("watchdog", {}))
    defaults = parser.policy(
        parser.table(top.get("defaults", {}), "defaults", _POLICY_KEYS), "defaults", _BUILTIN_POLICY
    )
    parser.extra_names(defaults.extra_path, defaults.extra, _origin("."))  # even with no zone
    zones = parser.zones(top.get("zone", _MISSING), defaults)
    webhooks = parser.webhooks(top.get("webhook", []), [z.name for z in zones])
    heartbeat = parser.heartbeat(top["heartbeat"]) if "heartbeat" in top else None
    if parser.problems:
        raise ConfigError(list(dict.fromkeys(parser.problems)), source=source)
    return Config(service, zones, webhooks, source, heartbeat)


_TOP_KEYS = ("watchdog", "defaults", "zone", "webhook", "heartbeat")
_WATCHDOG_KEYS = tuple(ServiceConfig.__dataclass_fields__)
# fmt: off
_POLICY_KEYS = ("warn_before", "skew_min", "skew_max", "powerdns_inception_skew", "renotify",
                "unreachable_after", "extra", "transfer", "transfer_tsig_file", "walk",
                "walk_limit", "sample", "stall_margin", "ignore")
_ZONE_KEYS = ("name", "servers", "trust_anchor", *_POLICY_KEYS)
_WEBHOOK_KEYS = ("name", "kind", "url", "url_file", "url_env", "hmac_secret", "hmac_secret_file",
                 "hmac_secret_env", "min_severity", "zones", "ca_file")
_HEARTBEAT_KEYS = ("url", "url_file", "url_env", "fail_url", "fail_url_file", "fail_url_env",
                   "interval", "method")
# fmt: on


_ZONE_DEFAULTS = ZoneConfig(".")


@dataclass(frozen=True, slots=True)
class _Policy:
    """The overridable per-zone values, before they are applied to one zone."""

    warn_before: WarnBefore = _DEFAULT_POLICY.warn_before
    skew_min: int = DEFAULT_SETTINGS.skew_min
    skew_max: int = DEFAULT_SETTINGS.skew_max
    powerdns_inception_skew: int = DEFAULT_SETTINGS.powerdns_inception_skew
    renotify: int = _ZONE_DEFAULTS.renotify
    unreachable_after: int = _ZONE_DEFAULTS.unreachable_after
    extra: object = ()  # raw entries, resolved against each zone
    extra_path: str = "defaults.extra"
    coverage: CoverageSettings = APEX_ONLY
    stall_margin: StallMargin = DEFAULT_MARGIN
    ignore: tuple[str, ...] = ()


_BUILTIN_POLICY = _Policy()


class _Parser:
    """Walks the mapping, converting values and collecting problems instead of raising."""

    def __init__(self, source: str, read_file: Callable[[Path], str], env: Mapping[str, str]):
        self.problems: list[str] = []
        self.policies: dict[tuple[int, int, int, WarnBefore, frozenset[str]], ZonePolicy] = {}
        self.read_file = read_file
        self.env = env
        self.base_dir = Path(source).parent
        credentials = env.get("CREDENTIALS_DIRECTORY")
        self.credentials_dir = Path(credentials) if credentials else None

    def problem(self, path: str, message: str) -> None:
        self.problems.append(f"{path or 'top level'}: {message}")

    def table(self, value: object, path: str, known: Sequence[str]) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            self.problem(path, f"expected a table, got {_describe(value)}")
            return {}
        result = {}
        for key, item in value.items():
            if isinstance(key, str) and key in known:
                result[key] = item
            else:
                self.problem(_join(path, key), _unknown_key(key, known))
        return result

    def get(
        self, t: Mapping[str, Any], path: str, key: str, default: _T, convert: Callable[[Any], _T]
    ) -> _T:
        if key not in t:
            return default
        try:
            return convert(t[key])
        except InvalidValueError as exc:
            self.problem(_join(path, key), str(exc))
            return default

    def items(self, value: object, path: str, convert: Callable[[Any], _T]) -> tuple[_T, ...]:
        if not isinstance(value, list | tuple):
            self.problem(path, f"expected an array, got {_describe(value)}")
            return ()
        result = []
        for i, item in enumerate(value):
            try:
                result.append(convert(item))
            except InvalidValueError as exc:
                self.problem(f"{path}[{i}]", str(exc))
        return tuple(dict.fromkeys(result))

    def tables(self, value: object, key: str, known: Sequence[str]) -> list[tuple[str, Any]]:
        """(key path, table with only known keys) of each entry of an array of tables."""
        if not isinstance(value, list | tuple):
            self.problem(key, f"expected an array of tables ([[{key}]]), got {_describe(value)}")
            return []
        result = []
        for i, item in enumerate(value):
            if isinstance(item, Mapping):
                result.append((f"{key}[{i}]", self.table(item, f"{key}[{i}]", known)))
            else:
                self.problem(f"{key}[{i}]", f"expected a table, got {_describe(item)}")
        return result

    def service(self, raw: object) -> ServiceConfig:
        t, defaults = self.table(raw, "watchdog", _WATCHDOG_KEYS), ServiceConfig()
        converters = {**_SERVICE_CONVERTERS, "state_path": lambda v: self.base_dir / _path(v)}
        s = ServiceConfig(
            **{
                key: self.get(t, "watchdog", key, getattr(defaults, key), convert)
                for key, convert in converters.items()
            }
        )
        if s.jitter >= s.interval:
            self.problem(
                "watchdog.jitter",
                f"{format_duration(s.jitter)} must be shorter than watchdog.interval "
                f"({format_duration(s.interval)}); lower it",
            )
        if s.delivery_backoff_base > s.delivery_backoff_cap:
            cap = format_duration(s.delivery_backoff_cap)
            self.problem(
                "watchdog.delivery_backoff_base",
                f"{format_duration(s.delivery_backoff_base)} must not exceed "
                f"watchdog.delivery_backoff_cap ({cap})",
            )
        return s

    def policy(self, t: Mapping[str, Any], path: str, fallback: _Policy) -> _Policy:
        if t.keys().isdisjoint(_POLICY_KEYS):
            return fallback  # the common case of a large config: every zone as [defaults]
        g = partial(self.get, t, path)
        seconds = partial(_whole, unit=" of seconds")
        return _Policy(
            warn_before=g("warn_before", fallback.warn_before, _warn_before),
            skew_min=g("skew_min", fallback.skew_min, seconds),
            skew_max=g("skew_max", fallback.skew_max, seconds),
            powerdns_inception_skew=g(
                "powerdns_inception_skew", fallback.powerdns_inception_skew, seconds
            ),
            renotify=g("renotify", fallback.renotify, partial(_duration, minimum=1)),
            unreachable_after=g(
                "unreachable_after", fallback.unreachable_after, partial(_whole, minimum=1)
            ),
            extra=t.get("extra", fallback.extra),
            extra_path=f"{path}.extra" if "extra" in t else fallback.extra_path,
            coverage=self.coverage(t, path, fallback.coverage),
            stall_margin=g("stall_margin", fallback.stall_margin, _stall_margin),
            ignore=self.items(t["ignore"], f"{path}.ignore", _lint_code)
            if "ignore" in t
            else fallback.ignore,
        )

    def coverage(
        self, t: Mapping[str, Any], path: str, fallback: CoverageSettings
    ) -> CoverageSettings:
        g = partial(self.get, t, path)
        tsig = fallback.tsig
        if "transfer_tsig_file" in t:
            tsig = self.tsig_key(_join(path, "transfer_tsig_file"), t["transfer_tsig_file"])
        settings = CoverageSettings(
            transfer=g("transfer", fallback.transfer, _server),
            tsig=tsig,
            walk=g("walk", fallback.walk, _boolean),
            walk_limit=g("walk_limit", fallback.walk_limit, partial(_whole, minimum=1)),
            sample=g("sample", fallback.sample, _whole),
        )
        if "transfer_tsig_file" in t and settings.transfer is None:
            self.problem(
                _join(path, "transfer_tsig_file"),
                'a TSIG key without transfer; add transfer = "HOST[:PORT]"',
            )
        return settings

    def tsig_key(self, path: str, raw: object) -> TsigKey | None:
        if not isinstance(raw, str):
            self.problem(path, f"expected a file path, got {_describe(raw)}")
            return None
        text, origin = self.file_value(path, raw)
        if text is None:
            return None
        try:
            return parse_tsig_key(text, origin.removeprefix("the content of "))
        except InvalidValueError as exc:
            self.problem(path, str(exc))
            return None

    def extra_names(
        self, path: str, raw: object, origin: dns.name.Name
    ) -> tuple[tuple[dns.name.Name, dns.rdatatype.RdataType], ...]:
        return self.items(raw, path, partial(_extra_entry, origin=origin))

    def zones(self, raw: object, defaults: _Policy) -> tuple[ZoneConfig, ...]:
        if raw is _MISSING:
            self.problem("zone", 'no [[zone]] table; add one with name = "example.com"')
            return ()
        seen: dict[str, str] = {}
        result = []
        for path, t in self.tables(raw, "zone", _ZONE_KEYS):
            zone = self.zone(t, path, defaults)
            if zone is not None and zone.name in seen:
                self.problem(
                    f"{path}.name",
                    f'"{zone.name}" is already configured as '
                    f"{seen[zone.name]}; list each zone once",
                )
            elif zone is not None:
                seen[zone.name] = path
                result.append(zone)
        return tuple(result)

    def zone(self, t: Mapping[str, Any], path: str, defaults: _Policy) -> ZoneConfig | None:
        if "name" not in t:
            self.problem(path, 'no name; add name = "example.com"')
        named = self.get(t, path, "name", None, _zone_origin)
        name, origin = named if named is not None else (None, None)
        policy = self.policy(t, path, defaults)
        servers = self.items(t["servers"], f"{path}.servers", _server) if "servers" in t else ()
        anchor = (
            self.trust_anchor(t["trust_anchor"], f"{path}.trust_anchor", origin)
            if "trust_anchor" in t
            else None
        )
        extra = self.extra_names(policy.extra_path, policy.extra, origin or _origin("."))
        if name is None or origin is None:
            return None
        return ZoneConfig(
            name=name,
            servers=servers,
            trust_anchor=anchor,
            extra=extra,
            policy=self.zone_policy(policy),
            renotify=policy.renotify,
            unreachable_after=policy.unreachable_after,
            coverage=policy.coverage,
            stall_margin=policy.stall_margin,
        )

    def zone_policy(self, policy: _Policy) -> ZonePolicy:
        """The ZonePolicy of ``policy``'s values: one object for every zone with the same."""
        ignore = frozenset(policy.ignore)
        skews = (policy.skew_min, policy.skew_max, policy.powerdns_inception_skew)
        key = (*skews, policy.warn_before, ignore)
        found = self.policies.get(key)
        if found is None:
            settings = ValidatorSettings(*skews)
            found = ZonePolicy(settings=settings, warn_before=policy.warn_before, ignore=ignore)
            self.policies[key] = found
        return found

    def trust_anchor(
        self, raw: object, path: str, zone: dns.name.Name | None
    ) -> TrustAnchor | None:
        if not isinstance(raw, str):
            self.problem(path, f'expected DS/DNSKEY records or "@/path/file", got {_describe(raw)}')
            return None
        text: str | None = raw
        file = None
        named = anchor_file(raw)
        if named is not None:
            file = self.base_dir / named
            text = self.read(path, file)
        if text is None or zone is None:
            return None
        try:
            return _trust_anchor(text, zone, file)
        except InvalidValueError as exc:
            self.problem(path, str(exc))
        return None

    def read(self, path: str, file: Path) -> str | None:
        try:
            return self.read_file(file)
        except OSError as exc:
            self.problem(path, f"cannot read {file}: {exc.strerror or type(exc).__name__}")
        except ValueError:
            self.problem(path, f"{file} is not UTF-8 text")
        return None

    def webhooks(self, raw: object, zones: Sequence[str]) -> tuple[WebhookConfig, ...]:
        seen: dict[str, str] = {}
        result = []
        for path, t in self.tables(raw, "webhook", _WEBHOOK_KEYS):
            if "name" not in t:
                self.problem(path, 'no name; add name = "ops" (it identifies the receiver)')
            name = self.get(t, path, "name", None, _name)
            if name is not None and name in seen:
                self.problem(
                    f"{path}.name",
                    f"{_quote(name)} is already used by {seen[name]}; webhook names must be unique",
                )
            elif name is not None:
                seen[name] = path
            kind = self.get(t, path, "kind", "generic", partial(_choice, options=WEBHOOK_KINDS))
            url = self.secret(t, path, "url", required=True)
            if url is not None and not _is_http_url(url.value):
                self.problem(url.path, f"{url.origin} is not an http:// or https:// URL")
            hmac = self.secret(t, path, "hmac_secret", required=False)
            if hmac is not None and kind == "slack":
                self.problem(
                    hmac.path, 'Slack webhooks are not signed; remove it or set kind = "generic"'
                )
            severity = self.get(
                t, path, "min_severity", "warning", partial(_choice, options=_SEVERITIES)
            )
            patterns: tuple[str, ...] = ("*",)
            if "zones" in t:
                convert = partial(_zone_pattern, zones=zones)
                patterns = self.items(t["zones"], f"{path}.zones", convert)
                if isinstance(t["zones"], list | tuple) and not t["zones"]:
                    self.problem(f"{path}.zones", "is empty; leave it out to match every zone")
            ca_file = self.ca_file(t, path, url)
            if name is not None and url is not None:
                secret = hmac.value if hmac is not None else None
                result.append(
                    WebhookConfig(
                        name, kind, url.value, secret, Severity(severity), patterns, ca_file
                    )
                )
        return tuple(result)

    def ca_file(self, t: Mapping[str, Any], path: str, url: _Secret | None) -> Path | None:
        """``ca_file``: PEM CA certificates for an https:// receiver (an internal CA)."""
        if "ca_file" not in t:
            return None
        where, raw = _join(path, "ca_file"), t["ca_file"]
        if not isinstance(raw, str) or not raw.strip():
            self.problem(where, f"expected a file path, got {_describe(raw)}")
            return None
        file = self.base_dir / Path(raw.strip())
        text = self.read(where, file)
        if text is not None and "-----BEGIN CERTIFICATE-----" not in text:
            self.problem(where, f"{file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
        if url is not None and url.value[:7].lower() == "http://":
            # The scheme only: the rest of the URL is a secret.
            self.problem(where, "applies to https:// receivers only; this url is http://")
        return file

    def heartbeat(self, raw: object) -> HeartbeatConfig | None:
        t = self.table(raw, "heartbeat", _HEARTBEAT_KEYS)
        url = self.secret(t, "heartbeat", "url", required=True)
        fail = self.secret(t, "heartbeat", "fail_url", required=False)
        for given in (url, fail):
            if given is not None and not _is_http_url(given.value):
                self.problem(given.path, f"{given.origin} is not an http:// or https:// URL")
        interval = self.get(t, "heartbeat", "interval", 60, partial(_duration, minimum=1))
        method = self.get(
            t, "heartbeat", "method", "get", partial(_choice, options=HEARTBEAT_METHODS)
        )
        if url is None:
            return None
        return HeartbeatConfig(
            url.value, interval, method.upper(), fail.value if fail is not None else None
        )

    def secret(
        self, t: Mapping[str, Any], path: str, base: str, *, required: bool
    ) -> _Secret | None:
        """The secret from exactly one of ``base``, ``base_file`` or ``base_env``.

        Problems name the key, the variable or the file, never the value.
        """
        given = [k for k in (base, f"{base}_file", f"{base}_env") if k in t]
        if len(given) > 1:
            both = "are both" if len(given) == 2 else "are all"
            self.problem(path, f"{' and '.join(given)} {both} set; keep exactly one")
            return None
        if not given:
            if required:
                self.problem(path, f'no {base}; set {base}_env = "VARIABLE" or {base}_file')
            return None
        key, raw = given[0], t[given[0]]
        where = _join(path, key)
        if not isinstance(raw, str):
            self.problem(where, f"expected a string, got {_describe(raw, secret=key == base)}")
            return None
        value: str | None
        if key == base:
            value, origin = raw, "the value"
        elif key.endswith("_env"):
            value, origin = self.env_value(where, raw), f"${raw}"
        else:
            value, origin = self.file_value(where, raw)
        if value is None:
            return None
        if not value.strip():
            self.problem(where, f"{origin} is empty")
            return None
        return _Secret(where, origin, value.strip())

    def env_value(self, path: str, name: str) -> str | None:
        if not _ENV_NAME.fullmatch(name):
            # Not echoed: a URL or key pasted here by mistake would end up in the log.
            self.problem(
                path,
                "is not an environment variable name (letters, digits, _); to give the value "
                "itself, drop _env",
            )
            return None
        if name not in self.env:
            self.problem(path, f"environment variable {name} is not set")
            return None
        return self.env[name]

    def file_value(self, path: str, name: str) -> tuple[str | None, str]:
        if "://" in name or not name.strip():
            # Not echoed: a URL or key pasted here by mistake would end up in the log.
            self.problem(path, "is not a file path; to give the value itself, drop _file")
            return None, ""
        relative = Path(name.strip())
        if relative.is_absolute():
            file = relative
        elif self.credentials_dir is not None:  # systemd LoadCredential=
            file = self.credentials_dir / relative
        else:
            file = self.base_dir / relative
        return self.read(path, file), f"the content of {file}"


def _origin(name: str) -> dns.name.Name:
    """A zone name as checked by ``_zone_name``, as a dnspython name."""
    import dns.name

    return dns.name.from_text(name)


@dataclass(frozen=True, slots=True)
class _Secret:
    path: str  # key path, for problems
    origin: str  # "the value", "$VARIABLE" or "the content of FILE": never the secret
    value: str = field(repr=False)


def _validators(value: object) -> tuple[tuple[str, int], ...]:
    """Validating resolvers: IP addresses with an optional port, as ``resolver``."""
    if not isinstance(value, list | tuple):
        raise InvalidValueError(f'expected an array like ["127.0.0.1:53"], got {_describe(value)}')
    found = []
    for i, item in enumerate(value):
        if isinstance(item, str) and item.strip().lower() == "system":
            raise InvalidValueError(f'[{i}]: name a validator\'s IP address, not "system"')
        try:
            address = _resolver(item)
        except InvalidValueError as exc:
            raise InvalidValueError(f"[{i}]: {exc}") from None
        assert address is not None
        found.append(address)
    return tuple(dict.fromkeys(found))


def _stall_margin(value: object) -> StallMargin:
    if isinstance(value, int) and not isinstance(value, bool):
        return StallMargin(seconds=_duration(value), percent=0.0)
    if not isinstance(value, str):
        raise InvalidValueError(
            f'expected a percent like "10%" or a duration like "6h", got {_describe(value)}'
        )
    return StallMargin.parse(value)


def _lint_code(value: object) -> str:
    """A lint code for ``ignore``; the expiry thresholds and other findings cannot be silenced."""
    if isinstance(value, str) and value.strip() in LINTS:
        return value.strip()
    return _choice(value, tuple(LINTS))


_SERVICE_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "interval": partial(_duration, minimum=1),
    "jitter": _duration,
    "resolver": _resolver,
    "max_concurrency": partial(_whole, minimum=1),
    "per_server_concurrency": partial(_whole, minimum=1),
    "probe_workers": partial(_whole, minimum=1, maximum=_MAX_PROBE_WORKERS),
    "query_timeout": partial(_duration, minimum=1),
    "retries": _whole,
    "log_format": partial(_choice, options=LOG_FORMATS),
    "log_level": partial(_choice, options=LOG_LEVELS),
    "delivery_timeout": partial(_duration, minimum=1),
    "delivery_backoff_base": partial(_duration, minimum=1),
    "delivery_backoff_cap": partial(_duration, minimum=1),
    "delivery_give_up_after": partial(_duration, minimum=1),
    "metrics_listen": _listen,
    "validators": _validators,
}
