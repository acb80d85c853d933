#!/bin/bash
# Build the PlainBox reference venv: checkbox-ng 1.18.1 from PyPI, outside the
# repository, used by the differential tests and the benchmarks to run
# PlainBox's own suspend and resume. Idempotent: it installs only when the venv
# is missing or incomplete. Prints the venv's python on stdout.
#
# Exit status: 0 ready; 3 pip could not install checkbox-ng (its error is on
# stderr); anything else is a bug or a broken machine.
set -euo pipefail

VENV="${RESUMED_CHECKBOX_VENV:-/var/cache/resumed-dev/checkbox-1.18.1}"
REQUIREMENT="checkbox-ng==1.18.1"
BASE_PYTHON="${RESUMED_CHECKBOX_PYTHON:-/usr/bin/python3}"
STAMP="$VENV/.resumed-stamp"

mkdir -p "$(dirname "$VENV")"
# One builder at a time (make test and make bench may race).
exec 9>"$VENV.lock"
flock 9

if [ -x "$VENV/bin/python" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$REQUIREMENT" ]; then
    echo "$VENV/bin/python"
    exit 0
fi

echo "checkbox-venv: building $VENV ($REQUIREMENT)" >&2
rm -rf "$VENV"
"$BASE_PYTHON" -m venv "$VENV"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! "$VENV/bin/pip" install --disable-pip-version-check -q "$REQUIREMENT" >"$log" 2>&1; then
    cat "$log" >&2
    rm -rf "$VENV"
    exit 3
fi
"$VENV/bin/python" -c 'import plainbox.impl.session.resume, plainbox.impl.session.suspend'
echo "$REQUIREMENT" >"$STAMP"
echo "$VENV/bin/python"
