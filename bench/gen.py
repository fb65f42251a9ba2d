"""The benchmark's zones: N signed child zones under a signed local parent ``bench.``.

Each child ``zNNNNN.bench.`` has two name servers (ns1 -> 127.0.53.1, ns2 -> 127.0.53.2), the
lab's few records, and its own DNSKEY RRset; the parent carries each child's delegation, glue
and DS, so the chain can be checked from the parent's DS as well as from a per-zone anchor.
Zones are signed by ldns-signzone (two at a time, one per core) and cached in
bench/.cache/zones; a cache whose signatures have less than a month left is made again.

Keys: ldns-signzone takes the DNSKEY records from the zone file and only the private halves
from files, so keys are made here with `cryptography` (ldns-keygen forks once per key) and
written in the BIND v1.2 private-key format both signers read. ECDSA P-256 keys are cheap to
make and distinct per zone; RSA-2048 keys take ~50 ms each, so the RSA zones share a pool of
``_RSA_POOL`` KSK/ZSK pairs (zone i uses pair i mod pool). The mix (i mod 4): ECDSA+NSEC,
ECDSA+NSEC3, RSA+NSEC, RSA+NSEC3.
"""

from __future__ import annotations

import base64
import concurrent.futures
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import dns.dnssec
import dns.name
import dns.rdataclass
import dns.rdatatype
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from dns.rdtypes.ANY.DNSKEY import DNSKEY

__all__ = ["PARENT", "ZoneSet", "ensure_zones", "zone_name"]

PARENT = "bench."
# Port 53 of 127.0.0.1 is often taken (a local resolver, another lab on a shared machine):
# the benchmark's servers get loopback addresses of their own.
SERVERS = ("127.0.53.1", "127.0.53.2")
# Bump when the layout or contents change: the cache is then made again. 5: no key tag 0.
_FORMAT = 5
_DAY = 86400
_LIFETIME = 60 * _DAY
_MIN_LEFT = 30 * _DAY  # regenerate when fewer days of signature validity remain
_RSA_POOL = 16
_RSA_BITS = 2048
_TTL = 3600
_SIGN_TIMEOUT = 60.0
_ALG = {"ECDSAP256SHA256": 13, "RSASHA256": 8}


def zone_name(i: int) -> str:
    return f"z{i:05d}.{PARENT}"


@dataclass(frozen=True, slots=True)
class ZoneSet:
    """What the benchmarks need to serve and check the generated zones."""

    root: Path  # bench/.cache/zones
    count: int
    inception: int
    expiration: int
    parent_file: Path
    parent_dnskeys: tuple[str, ...]  # presentation format, for DNSViz's trusted keys

    def names(self, n: int) -> list[str]:
        return [zone_name(i) for i in range(min(n, self.count))]

    def signed_file(self, i: int) -> Path:
        return self.root / "signed" / f"{i // 1000:02d}" / f"{zone_name(i)}signed"

    def anchor(self, i: int) -> str:
        return (self.root / "ds" / f"{i // 1000:02d}" / f"{zone_name(i)}ds").read_text()

    def algorithm(self, i: int) -> str:
        return "ECDSAP256SHA256" if i % 4 < 2 else "RSASHA256"

    def nsec3(self, i: int) -> bool:
        return i % 2 == 1


def ensure_zones(cache: Path, count: int, *, log: bool = True) -> ZoneSet:
    """The cached zone set if it is complete and fresh, else a new one (timed and reported)."""
    root = cache / "zones"
    meta_file = root / "meta.json"
    now = int(time.time())
    if meta_file.exists():
        meta = json.loads(meta_file.read_text())
        if (
            meta.get("format") == _FORMAT
            and meta.get("count", 0) >= count
            and meta["expiration"] - now >= _MIN_LEFT
        ):
            return _zone_set(root, meta)
    started = time.monotonic()
    if root.exists():
        shutil.rmtree(root)
    meta = _generate(root, count, now)
    meta_file.write_text(json.dumps(meta))
    if log:
        print(f"generated {count} signed zones in {time.monotonic() - started:.1f} s (not timed)")
    return _zone_set(root, meta)


def _zone_set(root: Path, meta: dict[str, object]) -> ZoneSet:
    return ZoneSet(
        root=root,
        count=int(meta["count"]),  # type: ignore[call-overload]
        inception=int(meta["inception"]),  # type: ignore[call-overload]
        expiration=int(meta["expiration"]),  # type: ignore[call-overload]
        parent_file=root / "parent.signed",
        parent_dnskeys=tuple(meta["parent_dnskeys"]),  # type: ignore[arg-type]
    )


# -- keys ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Key:
    private_base: Path  # without ".private", as ldns-signzone wants it
    dnskey: DNSKEY


def _b64(value: int, size: int | None = None) -> str:
    raw = value.to_bytes(size or (value.bit_length() + 7) // 8, "big")
    return base64.b64encode(raw).decode()


def _write_private(base: Path, algorithm: str, flags: int) -> _Key:
    """A new key pair; the private half in BIND's v1.2 format, the public half as DNSKEY.

    Never one whose key tag is 0: ldns-signzone 1.8.3 does not find such a key among the
    zone's DNSKEY records, adds the same public key again with flags 256 (tag 65535 for a KSK)
    and signs the DNSKEY RRset with that copy instead, so the DS (tag 0) matches a key that
    signed nothing: a bogus zone, which the watchdog reported as such (z02629.bench. in a
    fresh clone's run; about one zone in 10,000 has such a key).
    """
    while True:
        key = _new_key(base, algorithm, flags)
        if dns.dnssec.key_id(key.dnskey) != 0:
            return key


def _new_key(base: Path, algorithm: str, flags: int) -> _Key:
    number = _ALG[algorithm]
    lines = ["Private-key-format: v1.2", f"Algorithm: {number} ({algorithm})"]
    if algorithm == "ECDSAP256SHA256":
        ec_key = ec.generate_private_key(ec.SECP256R1())
        lines.append(f"PrivateKey: {_b64(ec_key.private_numbers().private_value, 32)}")
        public = ec_key.public_key()
        dnskey = dns.dnssec.make_dnskey(public, number, flags)
    else:
        rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS)
        n = rsa_key.private_numbers()
        lines += [
            f"Modulus: {_b64(n.public_numbers.n)}",
            f"PublicExponent: {_b64(n.public_numbers.e)}",
            f"PrivateExponent: {_b64(n.d)}",
            f"Prime1: {_b64(n.p)}",
            f"Prime2: {_b64(n.q)}",
            f"Exponent1: {_b64(n.dmp1)}",
            f"Exponent2: {_b64(n.dmq1)}",
            f"Coefficient: {_b64(n.iqmp)}",
        ]
        dnskey = dns.dnssec.make_dnskey(rsa_key.public_key(), number, flags)
    base.with_name(base.name + ".private").write_text("\n".join(lines) + "\n")
    assert isinstance(dnskey, DNSKEY)
    return _Key(base, dnskey)


# -- zones --------------------------------------------------------------------------------------


def _child_text(origin: str, ksk: DNSKEY, zsk: DNSKEY) -> str:
    return "\n".join(
        [
            f"$ORIGIN {origin}",
            f"$TTL {_TTL}",
            "@ IN SOA ns1 hostmaster 1 3600 900 1209600 300",
            "@ IN NS ns1",
            "@ IN NS ns2",
            f"ns1 IN A {SERVERS[0]}",
            f"ns2 IN A {SERVERS[1]}",
            "@ IN A 192.0.2.1",
            "www IN A 192.0.2.1",
            '@ IN TXT "dnssec-watchdog benchmark zone"',
            f"@ IN DNSKEY {ksk.to_text()}",
            f"@ IN DNSKEY {zsk.to_text()}",
            "",
        ]
    )


def _sign(
    source: Path,
    target: Path,
    origin: str,
    keys: tuple[_Key, _Key],
    nsec3: bool,
    dates: tuple[int, int],
) -> None:
    denial = ["-n", "-a", "1", "-t", "0"] if nsec3 else []
    args = ["ldns-signzone", "-i", str(dates[0]), "-e", str(dates[1]), *denial]
    args += ["-o", origin, "-f", str(target), str(source)]
    args += [str(k.private_base) for k in keys]
    done = subprocess.run(args, capture_output=True, text=True, timeout=_SIGN_TIMEOUT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ldns-signzone {origin}: {done.stderr.strip() or done.stdout}")


def _generate(root: Path, count: int, now: int) -> dict[str, object]:
    inception, expiration = now - _DAY, now - _DAY + _LIFETIME
    keydir = root / "keys"
    for sub in ("keys", "unsigned", "signed", "ds"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rsa_pool = [
        (
            _write_private(keydir / f"rsa{p}-ksk", "RSASHA256", 257),
            _write_private(keydir / f"rsa{p}-zsk", "RSASHA256", 256),
        )
        for p in range(_RSA_POOL)
    ]
    jobs = []
    delegations = []
    for i in range(count):
        origin = zone_name(i)
        bucket = f"{i // 1000:02d}"
        if i % 4 < 2:
            ksk = _write_private(keydir / f"ec{i}-ksk", "ECDSAP256SHA256", 257)
            zsk = _write_private(keydir / f"ec{i}-zsk", "ECDSAP256SHA256", 256)
        else:
            ksk, zsk = rsa_pool[i % _RSA_POOL]
        unsigned = root / "unsigned" / bucket / f"{origin}zone"
        signed = root / "signed" / bucket / f"{origin}signed"
        unsigned.parent.mkdir(exist_ok=True)
        signed.parent.mkdir(exist_ok=True)
        unsigned.write_text(_child_text(origin, ksk.dnskey, zsk.dnskey))
        name = dns.name.from_text(origin)
        ds = dns.dnssec.make_ds(name, ksk.dnskey, "SHA256")
        ds_file = root / "ds" / bucket / f"{origin}ds"
        ds_file.parent.mkdir(exist_ok=True)
        ds_file.write_text(f"{origin} {_TTL} IN DS {ds.to_text()}\n")
        delegations += [
            f"{origin} IN NS ns1.{origin}",
            f"{origin} IN NS ns2.{origin}",
            f"ns1.{origin} IN A {SERVERS[0]}",
            f"ns2.{origin} IN A {SERVERS[1]}",
            f"{origin} IN DS {ds.to_text()}",
        ]
        jobs.append((unsigned, signed, origin, (zsk, ksk), i % 2 == 1))
    parent_ksk = _write_private(keydir / "parent-ksk", "ECDSAP256SHA256", 257)
    parent_zsk = _write_private(keydir / "parent-zsk", "ECDSAP256SHA256", 256)
    parent_text = _child_text(PARENT, parent_ksk.dnskey, parent_zsk.dnskey)
    (root / "parent.zone").write_text(parent_text + "\n".join(delegations) + "\n")
    jobs.append(
        (root / "parent.zone", root / "parent.signed", PARENT, (parent_zsk, parent_ksk), False)
    )
    # Two signers at a time: one per core of the benchmark machine.
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for future in [pool.submit(_sign, *job, (inception, expiration)) for job in jobs]:
            future.result()
    return {
        "format": _FORMAT,
        "count": count,
        "inception": inception,
        "expiration": expiration,
        "rsa_pool": _RSA_POOL,
        "parent_dnskeys": [
            f"{PARENT} {_TTL} IN DNSKEY {k.dnskey.to_text()}" for k in (parent_ksk, parent_zsk)
        ],
    }
