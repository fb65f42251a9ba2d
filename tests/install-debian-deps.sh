#!/bin/sh
# Install the Debian packages the real-server tests need (see shared VALIDATOR-LAB notes):
# authoritative servers, signers, validating resolvers and libfaketime; systemd for
# systemd-analyze (the unit file checks); systemd-container and debootstrap to run the unit under
# a real systemd in a booted Debian container (tests/e2e/test_systemd_real.py); prometheus for
# promtool (deploy/ alerting rules checked, tests/deploy/test_monitoring.py); chromium (headless)
# for the status page browser tests.
# As root: installs what is missing, without letting the packages start their own services on
# port 53. Not root: lists what is missing; those tests are then reported as skipped with why.
set -eu
PACKAGES="nsd unbound knot-resolver bind9 pdns-recursor ldnsutils bind9-utils bind9-dnsutils faketime libfaketime knot-dnsutils systemd systemd-container debootstrap prometheus chromium"
missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "note: the real-server tests need these Debian packages:$missing" >&2
    echo "note: install them as root: apt-get install$missing" >&2
    exit 0
fi
echo "installing Debian packages:$missing"
# policy-rc.d 101 keeps the packages' own daemons from starting (they would take port 53).
policy=/usr/sbin/policy-rc.d
created=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod +x "$policy"
    created=1
fi
trap '[ "$created" = 1 ] && rm -f "$policy"' EXIT
apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
# On a host where systemd runs, make sure none of them holds port 53 (or Prometheus 9090).
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    for s in nsd unbound named bind9 kresd@1 pdns-recursor prometheus; do
        systemctl stop "$s" >/dev/null 2>&1 || true
        systemctl disable "$s" >/dev/null 2>&1 || true
    done
fi
