#!/usr/bin/env bash
# Creates .venv in the repository and installs the pinned stack (requirements.txt) plus this package (editable).
# Idempotent: when requirements.txt and setup.py are unchanged since the last successful run, it returns at once.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.desra-setup-stamp
want=$(cat requirements.txt setup.py | sha256sum | cut -d' ' -f1)

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && "$VENV/bin/python" -c 'import desra_basicsr' 2>/dev/null; then
    echo "setup: $VENV is up to date"
    exit 0
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
# torch first: basicsr 1.4.2 is an sdist whose setup.py imports torch, so it is built without build isolation.
"${pip[@]}" $(grep -E '^(torch|torchvision)==' requirements.txt)
"${pip[@]}" --no-build-isolation -r requirements.txt
"${pip[@]}" --no-build-isolation --no-deps -e .
echo "$want" > "$STAMP"
echo "setup: done ($("$VENV/bin/python" -c 'import desra_basicsr; print("desra_basicsr", desra_basicsr.__version__)'))"
