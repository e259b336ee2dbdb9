#!/usr/bin/env bash
# Creates the tests' own Python venv (Debian's python3, pinned tests/requirements.txt) at
# $1 (default build/venv). Reference values in tests come from NumPy there.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-build/venv}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
stamp="$VENV/.requirements"
if [ -x "$VENV/bin/python" ] && cmp -s tests/requirements.txt "$stamp"; then
    exit 0
fi
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r tests/requirements.txt
cp tests/requirements.txt "$stamp"
