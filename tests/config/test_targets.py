"""The parsers of what the prober is given (watchdog.config.targets): server addresses, trust
anchors and extra names, as the config file and the command line both read them (no network).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import dns.name
import dns.rdatatype
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchdog.config.targets import (
    AnchorSyntaxError,
    TrustAnchor,
    _ds_lines,
    parse_extra,
    parse_server,
    parse_trust_anchor,
)
from watchdog.errors import InvalidValueError

ZONE = dns.name.from_text("example.test.")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "no DS or DNSKEY"),
        ("; only a comment\n", "no DS or DNSKEY"),
        ("other.test. IN DS 1 13 2 " + "ab" * 32, "owner must be the zone"),
        ("example.test. IN A 192.0.2.1", "only DS and DNSKEY"),
        ("example.test. IN DS 1 13 2 zz", "presentation format"),
        ("example.test. IN DNSKEY 0 3 13 " + "AAAA" * 16, "not a zone key"),
        ("example.test. CH DS 1 13 2 " + "ab" * 32, "presentation format"),
        ("garbage", "presentation format"),
    ],
)
def test_trust_anchor_errors_say_what_is_wrong(text: str, expected: str) -> None:
    """A bad anchor raises InvalidValueError naming the zone and the problem."""
    with pytest.raises(InvalidValueError, match=expected) as caught:
        parse_trust_anchor(text, ZONE)
    assert "example.test." in str(caught.value)


# -- parse_server and parse_extra ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.1", ("192.0.2.1", 53)),
        ("192.0.2.1:5353", ("192.0.2.1", 5353)),
        (" 127.0.0.2:53 ", ("127.0.0.2", 53)),
        ("[2001:db8::1]:5353", ("2001:db8::1", 5353)),
        ("[2001:DB8:0::1]", ("2001:db8::1", 53)),
        ("2001:db8::1", ("2001:db8::1", 53)),
        ("::1", ("::1", 53)),
        ("NS1.Example.NET.", ("ns1.example.net", 53)),
        ("ns1.example.net:8053", ("ns1.example.net", 8053)),
    ],
)
def test_parse_server_accepts_the_documented_forms(text: str, expected: tuple[str, int]) -> None:
    """host, host:port, [v6]:port and bare IPv6, normalised."""
    assert parse_server(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        ":53",
        "192.0.2.1:",
        "192.0.2.1:0",
        "192.0.2.1:65536",
        "192.0.2.1:port",
        "192.0.2.1:5\u00b3",  # a digit to str.isdigit(), not to int()
        "[2001:db8::1]:\u0665\u0663",  # Arabic-Indic digits
        "[192.0.2.1]:53",
        "[2001:db8::1",
        "[2001:db8::1]53",
        "[2001:db8::1]:",
        "2001:db8::zz",
        "ns1..example",
        "ns 1.example",
        ".",
    ],
)
def test_parse_server_rejects_bad_text_naming_it(text: str) -> None:
    """Every rejection is an InvalidValueError quoting the text as given."""
    with pytest.raises(InvalidValueError) as caught:
        parse_server(text)
    assert f'"{text}"' in str(caught.value)


def test_parse_server_default_port() -> None:
    """The default port applies only when none is given."""
    assert parse_server("192.0.2.1", default_port=5300) == ("192.0.2.1", 5300)
    assert parse_server("192.0.2.1:53", default_port=5300) == ("192.0.2.1", 53)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("www", "www.example.test."),
        ("@", "example.test."),
        ("www.example.test.", "www.example.test."),
        ("www.example.test", "www.example.test."),
        ("example.test", "example.test."),
        ("a.b", "a.b.example.test."),
    ],
)
def test_extra_names_are_relative_unless_absolute_or_in_the_zone(name: str, expected: str) -> None:
    """Relative names hang under the zone; absolute or zone-suffixed names stay as they are."""
    owner, rdtype = parse_extra(f"{name} txt", ZONE)
    assert owner == dns.name.from_text(expected)
    assert rdtype == dns.rdatatype.TXT


@pytest.mark.parametrize(
    ("name", "rdtype", "expected"),
    [
        ("www", "RRSIG", "cannot be watched"),
        ("www", "ANY", "cannot be watched"),
        ("www", "AXFR", "cannot be watched"),
        ("www", "NOSUCHTYPE", "is not a DNS record type"),
        ("www.other.test.", "A", "is not in zone"),
    ],
)
def test_extra_rejections_name_the_pair(name: str, rdtype: str, expected: str) -> None:
    """Never ask for RRSIG (or meta types) directly; names outside the zone are refused."""
    with pytest.raises(InvalidValueError, match=expected) as caught:
        parse_extra(f"{name} {rdtype}", ZONE)
    assert name in str(caught.value)


# -- garbage and Unicode digits ----------------------------------------------------------------

# Digits to str.isdigit() that are not ASCII (superscripts, Arabic-Indic, fullwidth, Devanagari).
_UNICODE_DIGITS = "\u00b2\u00b3\u0663\u0665\uff15\u0967"
_ANCHOR_PIECES = [
    "example.test.",
    "@",
    "www",
    "IN",
    "CH",
    "DS",
    "DNSKEY",
    "A",
    "3600",
    "1h",
    "(",
    ")",
    ";",
    "\n",
    "\t",
    " ",
    "$TTL",
    "12345",
    "13",
    "2",
    "257",
    "3",
    "ab" * 32,
    "AAAA" * 8,
    "\\#",
    "0",
    '"',
    "\\",
    "\x00",
    "TYPE43",
    *_UNICODE_DIGITS,
]
_anchor_text = st.lists(st.sampled_from(_ANCHOR_PIECES), max_size=25).map(" ".join) | st.text(
    max_size=80
)


@settings(max_examples=400, deadline=None)
@given(text=_anchor_text)
def test_anchor_garbage_is_an_error_naming_the_zone_or_records(text: str) -> None:
    """Any text: a TrustAnchor owned by the zone, or InvalidValueError naming the zone."""
    try:
        anchor = parse_trust_anchor(text, ZONE)
    except AnchorSyntaxError as exc:
        assert exc.line >= 1 and "example.test." in str(exc)
        return
    except InvalidValueError as exc:
        assert "example.test." in str(exc)
        return
    assert anchor.zone == ZONE and (anchor.ds or anchor.dnskeys)


@pytest.mark.parametrize("digit", _UNICODE_DIGITS)
def test_anchor_ttl_of_unicode_digits_is_refused(digit: str) -> None:
    """A TTL is ASCII digits: "3\u00b3" is not a TTL of 33 (or 3) seconds."""
    text = f"example.test. 3{digit} IN DS 12345 13 2 {'ab' * 32}"
    with pytest.raises(AnchorSyntaxError, match="presentation format"):
        parse_trust_anchor(text, ZONE)


@given(
    port=st.text(alphabet=st.sampled_from("0123456789" + _UNICODE_DIGITS), min_size=1, max_size=6)
)
def test_server_port_is_ascii_digits_only(port: str) -> None:
    """A port with any non-ASCII digit is refused; an ASCII one is taken as its value."""
    text = f"192.0.2.1:{port}"
    if port.isascii() and 0 < int(port) < 65536:
        assert parse_server(text) == ("192.0.2.1", int(port))
    else:
        with pytest.raises(InvalidValueError, match="port must be 1 to 65535"):
            parse_server(text)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=40), ip_only=st.booleans())
def test_server_garbage_is_refused_naming_it(text: str, ip_only: bool) -> None:
    """Any text: (host, port) with a valid port, or InvalidValueError quoting the text."""
    try:
        host, port = parse_server(text, ip_only=ip_only)
    except InvalidValueError as exc:
        assert f'"{text}"' in str(exc)
        return
    assert host and 0 < port < 65536 and host.isascii()


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(["www", "@", "a.b", "www.example.test.", "x.other.", "", "a..b"])
    | st.text(max_size=20),
    kind=st.sampled_from(["A", "TXT", "RRSIG", "ANY", "TYPE0", "TYPE65535", "FOO", "\u0663"])
    | st.text(max_size=8),
)
def test_extra_garbage_is_refused_naming_it(name: str, kind: str) -> None:
    """Any "NAME TYPE": a name in the zone and a data type, or InvalidValueError quoting it."""
    text = f"{name} {kind}"
    try:
        owner, rdtype = parse_extra(text, ZONE)
    except InvalidValueError as exc:
        assert json.dumps(text)[1:-1][:20] in str(exc) or text[:20] in str(exc)
        return
    assert owner.is_subdomain(ZONE)
    assert rdtype not in (dns.rdatatype.RRSIG, dns.rdatatype.NONE)
    assert not dns.rdatatype.is_metatype(rdtype)


@settings(max_examples=300, deadline=None)
@given(
    owner=st.sampled_from(["@", "example.test.", "EXAMPLE.test.", "sub", "other.test.", "\\@"]),
    ttl=st.sampled_from(["", "3600 ", "0 ", "4294967296 "]),
    klass=st.sampled_from(["", "IN ", "in "]),
    tag=st.integers(0, 70000),
    algorithm=st.integers(0, 300),
    digest_type=st.integers(0, 5),
    digest=st.binary(min_size=0, max_size=50).map(bytes.hex),
    split=st.booleans(),
)
def test_plain_ds_lines_read_as_the_general_parser_reads_them(
    owner: str,
    ttl: str,
    klass: str,
    tag: int,
    algorithm: int,
    digest_type: int,
    digest: str,
    split: bool,
) -> None:
    """The shortcut for one-line DS records gives what dnspython's own parser gives: the
    same records, or the same refusal."""
    if split and len(digest) > 8:
        digest = f"{digest[:8]} {digest[8:].upper()}"
    text = f"{owner} {ttl}{klass}DS {tag} {algorithm} {digest_type} {digest}"

    def outcome(parse: Callable[[], TrustAnchor]) -> object:
        try:
            return parse()
        except InvalidValueError as exc:
            return type(exc), str(exc)

    fast = outcome(lambda: parse_trust_anchor(text, ZONE))
    general = outcome(lambda: parse_trust_anchor(f"{text} ; no shortcut", ZONE))
    assert fast == general
    if isinstance(fast, TrustAnchor) and not ttl.startswith("4"):
        assert _ds_lines(text, ZONE), "the shortcut was taken"
