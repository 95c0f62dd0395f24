#!/usr/bin/env bash
# Creates .venv in the repository and installs the pinned stack (requirements.txt) plus this package (editable).
# Idempotent: when requirements.txt and setup.py are unchanged since the last successful run, it returns at once.
#
# Offline machines (DESRA_WHEELHOUSE=DIR, a folder made by `make wheelhouse` on a machine with network): the venv
# sees the packages of the Python that creates it (its torch, e.g. a CUDA build matching the machine's driver) and
# gets the wheels of DIR, without dependencies and without any index. Versions that differ from requirements.txt
# are listed; a requirement that is neither there nor in DIR stops the set-up.
set -euo pipefail
WHEELHOUSE=${DESRA_WHEELHOUSE:-}
if [ -n "$WHEELHOUSE" ]; then  # relative to where the user ran make, not to the repository
    [ -d "$WHEELHOUSE" ] || { echo "setup: DESRA_WHEELHOUSE=$WHEELHOUSE: not a directory" >&2; exit 1; }
    WHEELHOUSE=$(cd "$WHEELHOUSE" && pwd)
fi
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.desra-setup-stamp
want=$( (cat requirements.txt setup.py; [ -z "$WHEELHOUSE" ] || ls "$WHEELHOUSE") | sha256sum | cut -d' ' -f1)

# The stack is installed in the venv (-I: the repository's own source tree on sys.path does not count).
installed() {
    "$VENV/bin/python" -I -c 'import importlib.util as u, sys
sys.exit(any(u.find_spec(m) is None for m in ("torch", "torchvision", "basicsr", "mmseg", "mmengine", "desra_basicsr")))' \
        2>/dev/null
}
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && installed; then
    echo "setup: $VENV is up to date"
    exit 0
fi
pip=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
if [ -n "$WHEELHOUSE" ]; then
    ls "$WHEELHOUSE"/*.whl >/dev/null 2>&1 || { echo "setup: DESRA_WHEELHOUSE=$WHEELHOUSE holds no wheels" \
        "(make it with \`make wheelhouse\` on a machine with network)" >&2; exit 1; }
    # No pip or setuptools of its own: the machine's (the build of the editable install uses them too).
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv --without-pip "$VENV"
    # The creating Python's own site-packages as site dirs after the venv's (their .pth files run too, e.g.
    # setuptools' distutils shim that basicsr needs on Python >= 3.12). Unlike --system-site-packages this also
    # works when that Python is itself a venv, where the flag would reach the base interpreter instead.
    "$PYTHON" -c 'import sysconfig
for d in dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib")): print(f"import site; site.addsitedir({d!r})")' \
        > "$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/_desra_base_python.pth"
    "${pip[@]}" --no-index --no-deps "$WHEELHOUSE"/*.whl
    "${pip[@]}" --no-index --no-deps --no-build-isolation --use-pep517 -e .
    "$VENV/bin/python" scripts/wheelhouse.py --check
else
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    # torch first: basicsr 1.4.2 is an sdist whose setup.py imports torch, so it is built without build isolation.
    "${pip[@]}" $(grep -E '^(torch|torchvision)==' requirements.txt)
    "${pip[@]}" --no-build-isolation -r requirements.txt
    "${pip[@]}" --no-build-isolation --use-pep517 --no-deps -e .
fi
echo "$want" > "$STAMP"
echo "setup: done ($("$VENV/bin/python" -c 'import desra_basicsr; print("desra_basicsr", desra_basicsr.__version__)'))"
