#!/usr/bin/env bash
# Install everything the tests need, start the real servers, run the tests.
# This is the command README.md gives and .ci/run runs.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/system-packages.sh python3-venv procps rabbitmq-server postgresql qemu-utils
./scripts/install.sh --test
./scripts/services.sh start

export LOOM_TEST_AMQP_URL=${LOOM_TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}
export LOOM_TEST_POSTGRES_URL=${LOOM_TEST_POSTGRES_URL:-postgresql://loom:loom@127.0.0.1:5432/loom_test}

.venv/bin/ruff check .
.venv/bin/python -m pytest -q "$@"
