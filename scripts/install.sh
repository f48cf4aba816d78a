#!/usr/bin/env bash
# Install Loom into ./.venv. With --test, also what the tests need.
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
[ "${1:-}" = "--test" ] && extras="[test]"

if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "Loom needs Python 3.11 or newer" >&2
  exit 1
fi
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
  ./scripts/system-packages.sh python3-venv
fi
./scripts/system-packages.sh procps  # uptime, for the hypervisors API
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extras}"
