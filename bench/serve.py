"""Keep the benchmark's servers up for a while, for profiling by hand.

python -m bench.serve --zones 1000 --seconds 300 &
python -m bench.cycle --zones 1000 --cycles 3 --profile 2
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from .gen import ensure_zones
from .servers import BenchNsd, BenchUnbound

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serve")
    parser.add_argument("--cache", default=str(Path(__file__).parent / ".cache"))
    parser.add_argument("--zones", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=600.0, help="stop after this long")
    args = parser.parse_args(argv)
    cache = Path(args.cache).resolve()
    zones = ensure_zones(cache, args.zones)
    stop = False

    def request_stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    with (
        BenchNsd(cache / "run" / "nsd", zones, args.zones),
        BenchUnbound(cache / "run" / "unbound"),
    ):
        print(f"serving {args.zones} zones for at most {args.seconds:g} s", flush=True)
        deadline = time.monotonic() + args.seconds
        while not stop and time.monotonic() < deadline:
            time.sleep(0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
