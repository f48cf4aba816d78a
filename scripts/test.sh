#!/usr/bin/env bash
# Install everything the tests need, start the real servers, run the tests.
# This is the command README.md gives and .ci/run runs.
set -euo pipefail
cd "$(dirname "$0")/.."

# The second line: the qemu driver and its test guest (scripts/build-test-guest.sh);
# the third: the console proxy's browser test (headless Chromium) and noVNC from npm.
./scripts/system-packages.sh python3-venv procps rabbitmq-server postgresql qemu-utils \
  qemu-system-x86 linux-image-cloud-amd64 busybox-static syslinux syslinux-common mtools dosfstools fdisk cpio genisoimage \
  chromium
# npm from Debian only where no npm is installed (a nodejs from elsewhere
# brings its own, and Debian's would conflict with it).
command -v npm >/dev/null || ./scripts/system-packages.sh npm
./scripts/install.sh --test
./scripts/novnc.sh >/dev/null
./scripts/services.sh start

export LOOM_TEST_AMQP_URL=${LOOM_TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}
export LOOM_TEST_POSTGRES_URL=${LOOM_TEST_POSTGRES_URL:-postgresql://loom:loom@127.0.0.1:5432/loom_test}

.venv/bin/ruff check .
if [ $# -gt 0 ]; then
  exec .venv/bin/python -m pytest -q "$@"
fi
# The tests that boot real guests spend most of their time waiting on one
# guest's boot under TCG (one core): they run beside the others, in a
# second pytest, so the two cores stay busy. Their report follows.
qemu_log=$(mktemp)
trap 'rm -f "$qemu_log"' EXIT
.venv/bin/python -m pytest -q -p no:cacheprovider --durations=15 -m qemu >"$qemu_log" 2>&1 &
qemu_pid=$!
status=0
.venv/bin/python -m pytest -q --durations=15 -m "not qemu" || status=$?
qemu_status=0
wait "$qemu_pid" || qemu_status=$?
echo "== the tests that boot real guests (-m qemu) =="
cat "$qemu_log"
[ "$status" -eq 0 ] && [ "$qemu_status" -eq 0 ]
