"""Benchmarks of dnssec-watchdog (issue 7); ``sh bench/run.sh`` or ``make bench`` runs them all.

The test lab (tests/lab: NSD, ldns-signzone, process groups with bounded waits) is reused, so
tests/ goes on the import path here.
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "tests") not in sys.path:
    sys.path.insert(0, str(REPO / "tests"))
