#!/bin/sh
# Install or upgrade dnssec-watchdog as a systemd service. Idempotent; run as root from a checkout:
#   sudo deploy/install.sh            install/upgrade, enable and (re)start
#   sudo deploy/install.sh --no-start install/upgrade and enable only
# Layout: /opt/dnssec-watchdog/venv (a dedicated virtual environment: the import package is called
# `watchdog`, like an unrelated PyPI library), /etc/dnssec-watchdog/config.toml (kept if present),
# /etc/dnssec-watchdog/credentials/ (webhook secrets), /etc/systemd/system/dnssec-watchdog.service.
# DESTDIR=/some/dir installs under that root without touching systemd (used by the tests).
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
start=1
[ "${1:-}" = "--no-start" ] && start=0
root=${DESTDIR:-}
prefix="$root/opt/dnssec-watchdog"
etc="$root/etc/dnssec-watchdog"
unitdir="$root/etc/systemd/system"
python=${PYTHON:-python3}

if [ -z "$root" ] && [ "$(id -u)" != 0 ]; then
    echo "install.sh: run as root (or set DESTDIR for a staged install)" >&2
    exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "install.sh: $python is missing or older than 3.11; set PYTHON=/path/to/python3.11" >&2
    exit 1
fi
mkdir -p "$prefix" "$etc/credentials" "$unitdir"
chmod 0700 "$etc/credentials"
if [ ! -x "$prefix/venv/bin/python" ]; then
    "$python" -m venv "$prefix/venv"
fi
"$prefix/venv/bin/python" -m pip install --quiet --upgrade pip
# A regular (non-editable) install of a clean copy of this checkout: building in the checkout
# would leave build/ behind, whose stale modules could ride along into a later upgrade.
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
tar -C "$here" --exclude=.venv --exclude=.git --exclude=build --exclude='*.egg-info' \
    --exclude=bench/.cache -cf - . | tar -C "$src" -xf -
"$prefix/venv/bin/python" -m pip install --quiet --upgrade "$src"
install -m 0644 "$here/README.md" "$prefix/README.md"
install -m 0644 "$here/deploy/README.md" "$prefix/DEPLOY.md"
if [ ! -e "$etc/config.toml" ]; then
    install -m 0644 "$here/config.toml" "$etc/config.toml"
    echo "installed the reference config at $etc/config.toml: add your zones and webhooks"
else
    echo "kept the existing $etc/config.toml"
fi
install -m 0644 "$here/deploy/dnssec-watchdog.service" "$unitdir/dnssec-watchdog.service"
"$prefix/venv/bin/dnssec-watchdog" --version
if [ -z "$root" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable dnssec-watchdog.service
    if [ "$start" = 1 ]; then
        systemctl restart dnssec-watchdog.service
        systemctl --no-pager status dnssec-watchdog.service || true
    fi
elif [ -z "$root" ]; then
    echo "systemd is not running here: the unit is installed but not enabled"
fi
