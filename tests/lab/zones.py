"""Zones for the lab: keys from ldns-keygen, zone files, signatures with chosen dates.

make_signed_zone() is the entry point: it writes a small zone (SOA, NS, A, TXT plus any extra
records), signs it with ldns-signzone or dnssec-signzone with exactly the inception and
expiration asked for, checks that every RRSIG in the output carries those two fields, and returns
a SignedZone with everything a server or a validator needs (zone file, DS, DNSKEY).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.DS
import dns.rdtypes.ANY.RRSIG
import dns.zone

from .process import LabError, ToolError, run_tool

__all__ = [
    "ALGORITHMS",
    "SIGNERS",
    "SignedZone",
    "UnsignedZone",
    "ZoneKeys",
    "make_signed_zone",
    "make_unsigned_zone",
    "make_zone_keys",
    "parse_ds",
    "signzone_date",
    "splice_rrsigs",
    "tamper_soa",
]

# DNSSEC algorithm numbers (IANA "DNS Security Algorithm Numbers"), by the names the tools use.
ALGORITHMS = {
    "RSASHA1": 5,
    "RSASHA256": 8,
    "RSASHA512": 10,
    "ECDSAP256SHA256": 13,
    "ECDSAP384SHA384": 14,
    "ED25519": 15,
}
SIGNERS = ("ldns", "dnssec-signzone")
_DEFAULT_ALGORITHM = "ECDSAP256SHA256"
_RSA_BITS = 1024  # small keys keep key generation fast; validators accept 1024-bit RSA
_TTL = 3600
_U32 = 1 << 32


@dataclass(frozen=True, slots=True)
class ZoneKeys:
    """A KSK and a ZSK for one zone; ``ksk``/``zsk`` are key base paths (no .key/.private)."""

    origin: str
    algorithm: str
    ksk: Path
    zsk: Path

    @property
    def key_files(self) -> tuple[Path, Path]:
        """The public .key files, KSK first."""
        return (_with_suffix(self.ksk, ".key"), _with_suffix(self.zsk, ".key"))


@dataclass(frozen=True, slots=True)
class UnsignedZone:
    """A plain zone file an authoritative server can serve."""

    origin: str
    zone_file: Path


@dataclass(frozen=True, slots=True)
class SignedZone:
    """A signed zone file whose every RRSIG carries ``inception`` and ``expiration``.

    ``ds`` holds the DS of the KSK ("owner TTL IN DS tag alg 2 digest"), ``dnskeys`` the DNSKEY
    records of both keys in presentation format; ``inception``/``expiration`` are the POSIX
    seconds asked for (the RRSIG fields are these modulo 2^32).
    """

    origin: str
    zone_file: Path
    unsigned_file: Path
    keys: ZoneKeys
    ds: tuple[str, ...]
    dnskeys: tuple[str, ...]
    inception: int
    expiration: int
    algorithm: str
    nsec3: bool
    optout: bool
    signer: str
    serial: int


def signzone_date(timestamp: int) -> str:
    """A POSIX second as the YYYYMMDDHHMMSS (UTC) both signers take for -i/-s and -e."""
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y%m%d%H%M%S")


def parse_ds(text: str) -> tuple[str, dns.rdtypes.ANY.DS.DS]:
    """Split a DS record in presentation format ("owner [TTL] [IN] DS ...") into owner, rdata."""
    tokens = text.split(";", 1)[0].split()
    upper = [token.upper() for token in tokens]
    if "DS" not in upper:
        raise ValueError(f"not a DS record: {text!r}")
    at = upper.index("DS")
    rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.DS, " ".join(tokens[at + 1 :]))
    assert isinstance(rdata, dns.rdtypes.ANY.DS.DS)
    return _absolute(tokens[0]), rdata


def make_zone_keys(workdir: Path, origin: str, algorithm: str = _DEFAULT_ALGORITHM) -> ZoneKeys:
    """Generate a KSK (flags 257) and a ZSK (flags 256) with ldns-keygen under ``workdir``."""
    origin = _absolute(origin)
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unsupported algorithm {algorithm!r}; known: {', '.join(ALGORITHMS)}")
    keydir = Path(tempfile.mkdtemp(prefix=f"keys-{_label(origin)}-", dir=_ensure(workdir)))
    size = ["-b", str(_RSA_BITS)] if algorithm.startswith("RSA") else []
    common = ["-a", algorithm, *size, "-r", "/dev/urandom"]
    ksk, zsk = (_keygen([*common, *kind, origin], keydir) for kind in (["-k"], []))
    return ZoneKeys(origin=origin, algorithm=algorithm, ksk=keydir / ksk, zsk=keydir / zsk)


def _keygen(arguments: list[str], keydir: Path) -> str:
    """ldns-keygen's basename of a new key ("Kexample.test.+013+12345"), never of key tag 0:
    ldns-signzone 1.8.3 mishandles such a key (it signs with a flags-256 copy of it; found by
    the benchmarks, bench/gen.py), which would make one zone in ~30,000 bogus by accident."""
    while True:
        base = run_tool(["ldns-keygen", *arguments], cwd=keydir).strip()
        if not base.endswith("+00000"):
            return base


def make_unsigned_zone(
    workdir: Path, origin: str, *, records: Sequence[str] = (), serial: int = 1
) -> UnsignedZone:
    """Write the lab's standard zone for ``origin`` plus ``records``, unsigned."""
    origin = _absolute(origin)
    zonedir = Path(tempfile.mkdtemp(prefix=f"zone-{_label(origin)}-", dir=_ensure(workdir)))
    path = zonedir / "zone"
    path.write_text(_zone_text(origin, records, serial))
    return UnsignedZone(origin=origin, zone_file=path)


def make_signed_zone(
    workdir: Path,
    origin: str,
    *,
    inception: int,
    expiration: int,
    algorithm: str = _DEFAULT_ALGORITHM,
    nsec3: bool = False,
    optout: bool = False,
    records: Sequence[str] = (),
    signer: str = "ldns",
    keys: ZoneKeys | None = None,
    serial: int = 1,
    nsec3_iterations: int = 0,
    nsec3_salt: str = "",
) -> SignedZone:
    """Write and sign the lab's standard zone for ``origin`` with exactly these RRSIG dates.

    ``inception``/``expiration`` are POSIX seconds. ``records`` are extra lines in zone-file
    syntax (relative names are under ``origin``). Pass ``keys`` (from an earlier call or
    make_zone_keys) to re-sign with the same keys, so the DS stays valid; their algorithm is
    used (``algorithm`` need not repeat it). ``signer`` is "ldns"
    (ldns-signzone -i/-e) or "dnssec-signzone" (-s/-e). NSEC3 uses SHA-1, no salt, 0 iterations
    (RFC 9276) unless ``nsec3_iterations``/``nsec3_salt`` (hex) say otherwise; ``optout`` sets
    the opt-out flag.
    """
    origin = _absolute(origin)
    if signer not in SIGNERS:
        raise ValueError(f"unknown signer {signer!r}; known: {', '.join(SIGNERS)}")
    if optout and not nsec3:
        raise ValueError("opt-out needs nsec3=True")
    if nsec3 and algorithm == "RSASHA1":
        # RFC 5155 2: NSEC3 zones use algorithm 7 (RSASHA1-NSEC3-SHA1), never 5.
        raise ValueError("RSASHA1 (algorithm 5) cannot sign an NSEC3 zone; use NSEC")
    if keys is None:
        keys = make_zone_keys(workdir, origin, algorithm)
    elif keys.origin != origin:
        raise ValueError(f"keys are for {keys.origin}, not {origin}")
    elif algorithm not in (keys.algorithm, _DEFAULT_ALGORITHM):
        raise ValueError(f"keys are {keys.algorithm} keys, not {algorithm}")
    algorithm = keys.algorithm
    unsigned = make_unsigned_zone(workdir, origin, records=records, serial=serial)
    signed_file = unsigned.zone_file.with_name("zone.signed")
    denial = _Denial(nsec3, optout, nsec3_iterations, nsec3_salt)
    if signer == "ldns":
        _sign_with_ldns(unsigned.zone_file, signed_file, keys, inception, expiration, denial)
        ds_text = run_tool(["ldns-key2ds", "-n", "-2", f"{keys.ksk}.key"])
    else:
        _sign_with_bind(unsigned.zone_file, signed_file, keys, inception, expiration, denial)
        ds_text = run_tool(["dnssec-dsfromkey", "-2", f"{keys.ksk}.key"])
    _check_signature_dates(signed_file, origin, inception, expiration)
    return SignedZone(
        origin=origin,
        zone_file=signed_file,
        unsigned_file=unsigned.zone_file,
        keys=keys,
        ds=tuple(_normalise(line, "DS") for line in ds_text.splitlines() if line.strip()),
        dnskeys=tuple(_dnskey_record(path) for path in keys.key_files),
        inception=inception,
        expiration=expiration,
        algorithm=algorithm,
        nsec3=nsec3,
        optout=optout,
        signer=signer,
        serial=serial,
    )


def tamper_soa(zone_file: Path) -> None:
    """Change the signed SOA's refresh field, so its RRSIG no longer verifies (bogus)."""
    lines = zone_file.read_text().splitlines()
    for i, line in enumerate(lines):
        fields = line.split()
        if len(fields) > 3 and fields[3] == "SOA":
            fields[-4] = str(int(fields[-4]) + 1)
            lines[i] = "\t".join(fields)
            break
    else:
        raise LabError(f"{zone_file}: no SOA line to tamper with")
    zone_file.write_text("\n".join(lines) + "\n")


def splice_rrsigs(target: Path, donor: Path, owner: str, rtype: str) -> None:
    """Replace the RRSIGs over (``owner``, ``rtype``) in the signed zone file ``target`` with
    those of ``donor`` (the same zone signed by the same keys with other dates): one RRset
    whose signatures differ from every other's, as a signer that skipped it leaves it."""

    def records(path: Path) -> list[str]:  # one record a line, whichever signer wrote it
        return run_tool(["ldns-read-zone", str(path)]).splitlines()

    def covers(line: str) -> bool:
        fields = line.split()
        return (
            len(fields) > 5 and fields[0] == owner and fields[3] == "RRSIG" and fields[4] == rtype
        )

    donated = [line for line in records(donor) if covers(line)]
    if not donated:
        raise LabError(f"{donor}: no RRSIG over {owner} {rtype}")
    kept = [line for line in records(target) if not covers(line)]
    target.write_text("\n".join([*kept, *donated]) + "\n")


@dataclass(frozen=True, slots=True)
class _Denial:
    nsec3: bool
    optout: bool
    iterations: int
    salt: str


def _sign_with_ldns(
    source: Path,
    target: Path,
    keys: ZoneKeys,
    inception: int,
    expiration: int,
    how: _Denial,
) -> None:
    dates = ["-i", signzone_date(inception), "-e", signzone_date(expiration)]
    salt = ["-s", how.salt] if how.salt else []
    nsec3 = ["-n", "-a", "1", "-t", str(how.iterations), *salt, *(["-p"] if how.optout else [])]
    denial = nsec3 if how.nsec3 else []
    output = ["-o", keys.origin, "-f", str(target)]
    run_tool(["ldns-signzone", *dates, *denial, *output, str(source), str(keys.zsk), str(keys.ksk)])


def _sign_with_bind(
    source: Path,
    target: Path,
    keys: ZoneKeys,
    inception: int,
    expiration: int,
    how: _Denial,
) -> None:
    # dnssec-signzone signs only with keys whose DNSKEY is in the zone at the apex.
    with_keys = source.with_name("zone.with-keys")
    includes = "".join(f"$INCLUDE {path}\n" for path in keys.key_files)
    with_keys.write_text(source.read_text() + includes)
    dates = ["-s", signzone_date(inception), "-e", signzone_date(expiration)]
    nsec3 = ["-3", how.salt or "-", "-H", str(how.iterations), *(["-A"] if how.optout else [])]
    denial = nsec3 if how.nsec3 else []
    # -P: no post-signing verification, which would judge the dates against the real clock.
    output = ["-o", keys.origin, "-d", str(source.parent), "-f", str(target)]
    inputs = ["-k", f"{keys.ksk}.key", str(with_keys), f"{keys.zsk}.key"]
    run_tool(
        ["dnssec-signzone", "-P", "-N", "keep", *dates, *denial, *output, *inputs],
        cwd=source.parent,
    )


def _check_signature_dates(path: Path, origin: str, inception: int, expiration: int) -> None:
    """Fail loudly if a signer wrote other dates than asked (time zones, rounding, jitter)."""
    zone = dns.zone.from_file(str(path), origin=origin, relativize=False)
    count = 0
    for name, rdataset in zone.iterate_rdatasets():
        if rdataset.rdtype != dns.rdatatype.RRSIG:
            continue
        for rrsig in rdataset:
            assert isinstance(rrsig, dns.rdtypes.ANY.RRSIG.RRSIG)
            count += 1
            if (rrsig.inception, rrsig.expiration) != (inception % _U32, expiration % _U32):
                raise ToolError(
                    f"{path}: RRSIG {rrsig.type_covered!r} at {name} has inception "
                    f"{rrsig.inception} and expiration {rrsig.expiration}, asked for "
                    f"{inception} and {expiration}"
                )
    if count == 0:
        raise ToolError(f"{path}: the signer wrote no RRSIG")


def _zone_text(origin: str, records: Sequence[str], serial: int) -> str:
    lines = [
        f"$ORIGIN {origin}",
        f"$TTL {_TTL}",
        f"@ IN SOA ns1 hostmaster {serial} 3600 900 1209600 300",
        "@ IN NS ns1",
        "ns1 IN A 127.0.0.1",
        "@ IN A 192.0.2.1",
        "www IN A 192.0.2.1",
        '@ IN TXT "dnssec-watchdog lab zone"',
        *records,
    ]
    return "\n".join(lines) + "\n"


def _dnskey_record(key_file: Path) -> str:
    for line in key_file.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith(";"):
            return _normalise(line, "DNSKEY")
    raise ToolError(f"{key_file} holds no DNSKEY record")


def _normalise(line: str, rdtype: str) -> str:
    """One record as "owner TTL IN TYPE rdata", whatever layout the tool printed."""
    tokens = line.split(";", 1)[0].split()
    at = [token.upper() for token in tokens].index(rdtype)
    rdata = dns.rdata.from_text(
        dns.rdataclass.IN, dns.rdatatype.from_text(rdtype), " ".join(tokens[at + 1 :])
    )
    return f"{_absolute(tokens[0])} {_TTL} IN {rdtype} {rdata.to_text()}"


def _absolute(name: str) -> str:
    return dns.name.from_text(name).to_text()


def _label(origin: str) -> str:
    return origin.rstrip(".") or "root"


def _with_suffix(base: Path, suffix: str) -> Path:
    # Key base names contain dots ("Kexample.test.+013+12345"), so Path.with_suffix is wrong.
    return base.with_name(base.name + suffix)


def _ensure(workdir: Path) -> Path:
    path = Path(workdir)
    path.mkdir(parents=True, exist_ok=True)
    return path
