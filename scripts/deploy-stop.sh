#!/usr/bin/env bash
# Stop what scripts/deploy-local.sh started: SIGTERM to every service (API
# first, computes last), wait for each to finish its in-flight work, SIGKILL
# any still running after --timeout seconds. PostgreSQL and RabbitMQ stay
# up (scripts/services.sh stop stops them).
#
#   scripts/deploy-stop.sh [--run-dir DIR] [--timeout SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."

run_dir=.loom-deploy
timeout=60
while [ $# -gt 0 ]; do
  case "$1" in
    --run-dir) run_dir=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
run_dir=$(realpath -m "$run_dir")
shopt -s nullglob
pids=("$run_dir"/pids/api.pid "$run_dir"/pids/conductor.pid "$run_dir"/pids/scheduler-*.pid
      "$run_dir"/pids/compute-*.pid)
if [ ${#pids[@]} -eq 0 ]; then
  echo "nothing runs from $run_dir"
  exit 0
fi

for file in "${pids[@]}"; do
  [ -f "$file" ] || continue
  pid=$(cat "$file")
  kill -TERM "$pid" 2>/dev/null || true
done
deadline=$((SECONDS + timeout))
for file in "${pids[@]}"; do
  [ -f "$file" ] || continue
  pid=$(cat "$file")
  while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "$(basename "$file" .pid) (pid $pid) did not stop in ${timeout}s: killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
  echo "stopped $(basename "$file" .pid)"
done
