"""Sign the committed fixture zones of the golden tests again (run by hand, never by pytest).

    .venv/bin/python tests/e2e/golden/regenerate.py [--new-keys]

The zones under tests/e2e/golden/zones/ are signed once, with fixed dates and the committed keys,
so that the human output of ``--check`` (key tags, dates, serials) is the same on every run.
ECDSA signatures are randomised, so signing again changes the signature bytes but nothing the
golden files show. ``--new-keys`` also makes new keys: every golden file then needs updating
(DNSSEC_WATCHDOG_UPDATE_GOLDEN=1 .venv/bin/pytest tests/e2e/test_cli.py -k golden), and reviewing.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from lab import (  # noqa: E402
    ZoneKeys,
    make_signed_zone,
    make_unsigned_zone,
    make_zone_keys,
    tamper_soa,
)

ZONES = HERE / "zones"


def _t(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


# golden.test.: the primary re-signs (fresh), a secondary lost its primary (stale).
FRESH = (_t("2030-01-01T00:00:00"), _t("2030-01-29T00:00:00"))
STALE = (_t("2029-12-18T00:00:00"), _t("2030-01-15T00:00:00"))


def _keys(work: Path, origin: str, new: bool) -> ZoneKeys:
    """The committed keys of ``origin`` (or new ones, copied in)."""
    label = origin.rstrip(".")
    if new:
        for old in ZONES.glob(f"K{label}.+*"):
            old.unlink()
        made = make_zone_keys(work, origin)
        for path in made.ksk.parent.iterdir():
            shutil.copy(path, ZONES / path.name)
        (ZONES / f"{label}.ksk").write_text(made.ksk.name + "\n")
        (ZONES / f"{label}.zsk").write_text(made.zsk.name + "\n")
    ksk = (ZONES / f"{label}.ksk").read_text().strip()
    zsk = (ZONES / f"{label}.zsk").read_text().strip()
    return ZoneKeys(origin, "ECDSAP256SHA256", ZONES / ksk, ZONES / zsk)


def main() -> None:
    new = "--new-keys" in sys.argv[1:]
    ZONES.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        golden = _keys(work, "golden.test.", new)
        bogus = _keys(work, "bogus.test.", new)
        for name, keys, (inception, expiration), serial in (
            ("golden.test.fresh", golden, FRESH, 2),
            ("golden.test.stale", golden, STALE, 1),
            ("bogus.test.signed", bogus, FRESH, 1),
        ):
            zone = make_signed_zone(
                work,
                keys.origin,
                inception=inception,
                expiration=expiration,
                keys=keys,
                serial=serial,
            )
            shutil.copy(zone.zone_file, ZONES / name)
        tamper_soa(ZONES / "bogus.test.signed")  # bogus: its SOA RRSIG no longer verifies
        unsigned = make_unsigned_zone(work, "unsigned.test.")
        shutil.copy(unsigned.zone_file, ZONES / "unsigned.test.zone")
        parent = make_unsigned_zone(
            work,
            "test.",
            records=[f"{child} IN NS ns1.{child}" for child in ("golden", "bogus", "unsigned")],
        )
        shutil.copy(parent.zone_file, ZONES / "test.zone")


if __name__ == "__main__":
    main()
