#!/bin/sh
# `make bench`: install what the benchmarks need, then run them all (python -m bench.main).
# Needs root: the servers listen on port 53 of 127.0.53.1-3 (DNSViz cannot use another port)
# and Debian packages may need installing. Everything it starts listens on loopback only.
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "bench: run as root (port 53 on loopback addresses, apt-get)" >&2
    exit 1
fi
sh tests/install-debian-deps.sh
missing=""
for p in strace python3-venv python3-pygraphviz; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -n "$missing" ]; then
    echo "installing Debian packages:$missing"
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
# DNSViz from PyPI in a venv of its own, on Debian's python3 so it can use Debian's pygraphviz
# (Debian's own dnsviz 0.9.4 cannot read pygraphviz 1.7's version and refuses to grok).
# DNSViz's PyPI package does not declare its dependency on dnspython: it worked only where
# python3-dnspython happened to be installed ("dnspython does not appear to be installed" on a
# fresh machine), so it is installed explicitly, and checked in a venv made before this fix.
venv=bench/.cache/dnsviz-venv
if [ ! -x "$venv/bin/dnsviz" ] || ! "$venv/bin/python" -c "import dns.resolver" 2>/dev/null; then
    mkdir -p bench/.cache
    [ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv --system-site-packages "$venv"
    "$venv/bin/pip" install --quiet dnsviz==0.11.2 "dnspython>=2.6,<3"
fi
timeout 1800 .venv/bin/python -m bench.main "$@"
# What a /metrics scrape costs at 1,000 and 10,000 zones (issue 17); printed, BENCHMARKS.md.
timeout 600 .venv/bin/python -m bench.scrape
# Whole-zone coverage (issue 12): one 100,000-RRset zone, transferred; its own BENCHMARKS.md
# section.
exec timeout 1200 .venv/bin/python -m bench.coverage
