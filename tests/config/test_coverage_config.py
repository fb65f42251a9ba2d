"""Coverage keys: transfer, transfer_tsig_file (BIND key file), walk, walk_limit, sample."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from watchdog.config.coverage import CoverageSettings, TsigKey, parse_tsig_key
from watchdog.config.parse import load_config
from watchdog.errors import ConfigError, InvalidValueError

SECRET = base64.b64encode(b"a-tsig-secret-of-32-bytes-long!!").decode()
KEY_FILE = f'key "xfr.example" {{\n\talgorithm hmac-sha256;\n\tsecret "{SECRET}";\n}};\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_a_bind_key_file_parses_and_hides_its_secret() -> None:
    """tsig-keygen's output becomes a TsigKey whose repr holds no secret."""
    key = parse_tsig_key("# made by tsig-keygen\n" + KEY_FILE, "k.key")
    assert key == TsigKey("xfr.example.", "hmac-sha256", base64.b64decode(SECRET))
    assert SECRET not in repr(key) and "a-tsig" not in repr(key)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("secret only", "is not a BIND key file"),
        ('key "k" { algorithm hmac-sha256; };', "one algorithm and one secret"),
        (f'key "k" {{ algorithm rot13; secret "{SECRET}"; }};', "'rot13' of key k is not one of"),
        ('key "k" { algorithm hmac-sha256; secret "not*base64"; };', "is not base64"),
    ],
)
def test_a_bad_key_file_is_named_without_its_secret(text: str, says: str) -> None:
    """Each defect of a key file is said with the file's name, never the secret."""
    with pytest.raises(InvalidValueError) as info:
        parse_tsig_key(text, "k.key")
    assert says in str(info.value) and "k.key" in str(info.value)
    assert SECRET not in str(info.value)


def test_defaults_and_zone_keys_combine_and_the_key_comes_from_credentials(
    tmp_path: Path,
) -> None:
    """[defaults] sets sample and walk_limit; a zone adds transfer and a key from
    $CREDENTIALS_DIRECTORY (LoadCredential=)."""
    credentials = tmp_path / "creds"
    credentials.mkdir()
    (credentials / "xfr.key").write_text(KEY_FILE)
    path = write(
        tmp_path,
        '[defaults]\nsample = 4\nwalk_limit = 50\n[[zone]]\nname = "a.example"\n'
        'transfer = "127.0.0.1:5300"\ntransfer_tsig_file = "xfr.key"\n'
        '[[zone]]\nname = "b.example"\nwalk = true\n[[zone]]\nname = "c.example"\n',
    )
    a, b, c = load_config(path, {"CREDENTIALS_DIRECTORY": str(credentials)}).zones
    assert a.coverage.transfer == ("127.0.0.1", 5300) and a.coverage.mode == "transfer"
    assert a.coverage.tsig is not None and a.coverage.tsig.name == "xfr.example."
    assert (a.coverage.sample, a.coverage.walk_limit) == (4, 50)
    assert b.coverage == CoverageSettings(walk=True, walk_limit=50, sample=4)
    assert c.coverage.mode == "apex"


@pytest.mark.parametrize(
    ("zone", "problem"),
    [
        ('transfer = "not an address!"', 'zone[0].transfer: "not an address!" is not a server'),
        ("walk = 1", "zone[0].walk: expected true or false, got 1"),
        ("walk_limit = 0", "zone[0].walk_limit: must be at least 1, got 0"),
        ("sample = -1", "zone[0].sample: must not be negative, got -1"),
        ('transfer_tsig_file = "missing.key"', "zone[0].transfer_tsig_file: cannot read"),
        ('transfer_tsig_file = "bad.key"', "a TSIG key without transfer"),
    ],
)
def test_bad_coverage_keys_are_named(tmp_path: Path, zone: str, problem: str) -> None:
    """Each bad coverage key is a problem with its key path, never a secret."""
    (tmp_path / "bad.key").write_text(KEY_FILE)
    path = write(tmp_path, f'[[zone]]\nname = "a.example"\n{zone}\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert any(problem in p for p in info.value.problems), info.value.problems
    assert SECRET not in str(info.value)
