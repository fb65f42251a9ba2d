"""The benchmark's zones: N signed child zones under a signed local parent ``bench.``.

Each child ``zNNNNN.bench.`` has two name servers (ns1 -> 127.0.53.1, ns2 -> 127.0.53.2), the
lab's few records, and its own DNSKEY RRset; the parent carries each child's delegation, glue
and DS, so the chain can be checked from the parent's DS as well as from a per-zone anchor.
Zones are signed by ldns-signzone (two at a time, one per core) and cached in
bench/.cache/zones; a cache whose signatures have less than a month left is made again.

Every signed zone's chain is checked with dnspython before it is used (``_chain_problem``):
ldns-signzone 1.8.3 sometimes signs the DNSKEY RRset with a copy of the KSK it added itself
(flags 256, another key tag), so the DS matches a key that signs nothing and the zone is bogus
(z02629.bench. with key tag 0, z05017.bench. with tag 15 in fresh clones' runs; about one zone
in 5,000). Such a zone is made again with new keys rather than special-casing key tags.

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
import dns.node
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.zone
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from dns.rdtypes.ANY.DNSKEY import DNSKEY
from dns.rdtypes.ANY.DS import DS
from dns.rdtypes.ANY.RRSIG import RRSIG

__all__ = ["PARENT", "ZoneSet", "ensure_zones", "zone_name"]

PARENT = "bench."
# Port 53 of 127.0.0.1 is often taken (a local resolver, another lab on a shared machine):
# the benchmark's servers get loopback addresses of their own.
SERVERS = ("127.0.53.1", "127.0.53.2")
# Bump when the layout or contents change: the cache is then made again. 6: chains verified.
_FORMAT = 6
_DAY = 86400
_LIFETIME = 60 * _DAY
_MIN_LEFT = 30 * _DAY  # regenerate when fewer days of signature validity remain
_RSA_POOL = 16
_RSA_BITS = 2048
_TTL = 3600
_SIGN_TIMEOUT = 60.0
_SIGN_ATTEMPTS = 5  # new keys each time: a broken signing is rare (1 in ~5,000), never twice
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


@dataclass(frozen=True, slots=True)
class _Job:
    unsigned: Path
    signed: Path
    origin: str
    nsec3: bool
    keys: tuple[_Key, _Key]  # (ZSK, KSK)
    algorithm: str
    keydir: Path
    extra: str = ""  # records after the apex's (the parent's delegations)


def _chain_problem(signed: Path, origin: str, ds: DS, when: int) -> str | None:
    """What breaks the chain of trust of a signed zone file, or None when the DS matches a
    DNSKEY that signs the DNSKEY RRset and every RRSIG verifies (RFC 4035 5.2, 5.3)."""
    apex = dns.name.from_text(origin)
    zone = dns.zone.from_file(str(signed), apex, relativize=False, check_origin=False)
    dnskeys = zone.get_rdataset(apex, dns.rdatatype.DNSKEY)
    if dnskeys is None:
        return "no DNSKEY RRset"
    entry = [
        k
        for k in dnskeys
        if isinstance(k, DNSKEY)
        and dns.dnssec.key_id(k) == ds.key_tag
        and dns.dnssec.make_ds(apex, k, ds.digest_type) == ds
    ]
    if not entry:
        return f"the DS (key tag {ds.key_tag}) matches no DNSKEY"
    # The DNSKEY RRset must be signed by a DS-matched key itself, not only by some key.
    entry_set = dns.rdataset.from_rdata_list(dnskeys.ttl, entry)
    signed_by_entry = False
    for name, node in zone.nodes.items():
        for sigs in node:
            if sigs.rdtype != dns.rdatatype.RRSIG:
                continue
            covered = node.get_rdataset(dns.rdataclass.IN, sigs.covers)
            if covered is None:
                return f"{name}: RRSIG over {dns.rdatatype.to_text(sigs.covers)}, which is absent"
            for sig in sigs:
                assert isinstance(sig, RRSIG)
                try:
                    dns.dnssec.validate_rrsig((name, covered), sig, {apex: dnskeys}, now=when)
                except dns.dnssec.ValidationFailure as exc:
                    what = dns.rdatatype.to_text(sigs.covers)
                    return f"{name} {what}: RRSIG by key {sig.key_tag} does not verify ({exc})"
                if sigs.covers == dns.rdatatype.DNSKEY and name == apex:
                    try:
                        dns.dnssec.validate_rrsig((name, covered), sig, {apex: entry_set}, now=when)
                        signed_by_entry = True
                    except dns.dnssec.ValidationFailure:
                        pass
    if not signed_by_entry:
        tags = sorted(dns.dnssec.key_id(k) for k in dnskeys if isinstance(k, DNSKEY))
        return f"the DS-matched key {ds.key_tag} signs no DNSKEY RRset (DNSKEY tags {tags})"
    return None


def _ds(origin: str, ksk: _Key) -> DS:
    ds = dns.dnssec.make_ds(dns.name.from_text(origin), ksk.dnskey, "SHA256")
    assert isinstance(ds, DS)
    return ds


def _sign_checked(job: _Job, dates: tuple[int, int]) -> tuple[DS, tuple[_Key, _Key]]:
    """Sign ``job``'s zone, check its chain, and make it again with new keys when the signer
    broke it; the DS and the (ZSK, KSK) that signed it in the end."""
    keys = job.keys
    job.unsigned.write_text(_child_text(job.origin, keys[1].dnskey, keys[0].dnskey) + job.extra)
    for attempt in range(1, _SIGN_ATTEMPTS + 1):
        _sign(job.unsigned, job.signed, job.origin, keys, job.nsec3, dates)
        ds = _ds(job.origin, keys[1])
        problem = _chain_problem(job.signed, job.origin, ds, dates[0] + _DAY)
        if problem is None:
            return ds, keys
        print(f"{job.origin}: signed zone is broken ({problem}); making it again with new keys")
        base = job.keydir / f"{job.origin.rstrip('.')}-remake{attempt}"
        keys = (
            _new_key(base.with_name(base.name + "-zsk"), job.algorithm, 256),
            _new_key(base.with_name(base.name + "-ksk"), job.algorithm, 257),
        )
        job.unsigned.write_text(_child_text(job.origin, keys[1].dnskey, keys[0].dnskey) + job.extra)
    raise RuntimeError(f"{job.origin}: ldns-signzone made a broken zone {_SIGN_ATTEMPTS} times")


def _sign_all(jobs: list[_Job], dates: tuple[int, int]) -> list[tuple[DS, tuple[_Key, _Key]]]:
    # Two signers at a time: one per core of the benchmark machine.
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return list(pool.map(lambda job: _sign_checked(job, dates), jobs))


def _generate(root: Path, count: int, now: int) -> dict[str, object]:
    inception, expiration = now - _DAY, now - _DAY + _LIFETIME
    keydir = root / "keys"
    for sub in ("keys", "unsigned", "signed", "ds"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rsa_pool = [
        (
            _new_key(keydir / f"rsa{p}-ksk", "RSASHA256", 257),
            _new_key(keydir / f"rsa{p}-zsk", "RSASHA256", 256),
        )
        for p in range(_RSA_POOL)
    ]
    jobs = []
    for i in range(count):
        origin = zone_name(i)
        bucket = f"{i // 1000:02d}"
        algorithm = "ECDSAP256SHA256" if i % 4 < 2 else "RSASHA256"
        if i % 4 < 2:
            ksk = _new_key(keydir / f"ec{i}-ksk", algorithm, 257)
            zsk = _new_key(keydir / f"ec{i}-zsk", algorithm, 256)
        else:
            ksk, zsk = rsa_pool[i % _RSA_POOL]
        unsigned = root / "unsigned" / bucket / f"{origin}zone"
        signed = root / "signed" / bucket / f"{origin}signed"
        unsigned.parent.mkdir(exist_ok=True)
        signed.parent.mkdir(exist_ok=True)
        jobs.append(_Job(unsigned, signed, origin, i % 2 == 1, (zsk, ksk), algorithm, keydir))
    delegations = []
    # The parent is made after its children: a child made again has a new DS.
    for i, (ds, _) in enumerate(_sign_all(jobs, (inception, expiration))):
        origin = zone_name(i)
        ds_file = root / "ds" / f"{i // 1000:02d}" / f"{origin}ds"
        ds_file.parent.mkdir(exist_ok=True)
        ds_file.write_text(f"{origin} {_TTL} IN DS {ds.to_text()}\n")
        delegations += [
            f"{origin} IN NS ns1.{origin}",
            f"{origin} IN NS ns2.{origin}",
            f"ns1.{origin} IN A {SERVERS[0]}",
            f"ns2.{origin} IN A {SERVERS[1]}",
            f"{origin} IN DS {ds.to_text()}",
        ]
    parent = _Job(
        root / "parent.zone",
        root / "parent.signed",
        PARENT,
        False,
        (
            _new_key(keydir / "parent-zsk", "ECDSAP256SHA256", 256),
            _new_key(keydir / "parent-ksk", "ECDSAP256SHA256", 257),
        ),
        "ECDSAP256SHA256",
        keydir,
        "\n".join(delegations) + "\n",
    )
    [(_, parent_keys)] = _sign_all([parent], (inception, expiration))
    return {
        "format": _FORMAT,
        "count": count,
        "inception": inception,
        "expiration": expiration,
        "rsa_pool": _RSA_POOL,
        "parent_dnskeys": [
            f"{PARENT} {_TTL} IN DNSKEY {k.dnskey.to_text()}" for k in reversed(parent_keys)
        ],
    }
