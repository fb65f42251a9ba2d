#!/bin/sh
# Create the project's virtual environment; on a fresh Debian machine the venv module lives in
# the python3-venv package, which we install when running as root.
set -eu
python=$1
venv=$2
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "error: $python is older than 3.11; set PYTHON=python3.11 (or newer) and try again" >&2
    exit 1
fi
if "$python" -m venv "$venv" 2>/dev/null; then
    exit 0
fi
rm -rf "$venv"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    "$python" -m venv "$venv"
else
    echo "error: '$python -m venv' failed; install python3-venv (apt-get install python3-venv) and try again" >&2
    exit 1
fi
