#!/usr/bin/env bash
# Start a local multi-process Loom: PostgreSQL and RabbitMQ (scripts/services.sh),
# then every service its own process, each with a pid file and a log in the
# run directory. scripts/deploy-stop.sh stops it.
#
#   scripts/deploy-local.sh [--computes N] [--schedulers N] [--api-workers N]
#                           [--port PORT] [--run-dir DIR] [--db URL] [--bus URL]
#                           [--metrics-base PORT]
#
# Defaults: 3 fake computes (fake-1..fake-3), 2 schedulers, 2 API workers,
# port 8774, run directory ./.loom-deploy, the broker that scripts/services.sh
# starts and a loom_deploy database on its PostgreSQL. Prints the API URL and where the openrc is.
# Each service's Prometheus metrics: api on PORT (/metrics) and on 9100+
# (one per worker), conductor 9110, schedulers 9120+, computes 9130+
# (--metrics-base moves them all: BASE, BASE+10, BASE+20, BASE+30...).
# Compute hosts reach the Image API as a service user ("loom", project
# "service") whose password bootstrap sets from LOOM_SERVICE_USER__PASSWORD,
# generated into <run-dir>/data/service-password unless given.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

computes=3
schedulers=2
workers=2
port=8774
run_dir=.loom-deploy
db_url=${LOOM_DATABASE__URL:-}
bus_url=${LOOM_BUS__URL:-}
mbase=9100
while [ $# -gt 0 ]; do
  case "$1" in
    --computes) computes=$2; shift 2 ;;
    --schedulers) schedulers=$2; shift 2 ;;
    --api-workers) workers=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --run-dir) run_dir=$2; shift 2 ;;
    --db) db_url=$2; shift 2 ;;
    --bus) bus_url=$2; shift 2 ;;
    --metrics-base) mbase=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
run_dir=$(realpath -m "$run_dir")
mkdir -p "$run_dir/data" "$run_dir/pids" "$run_dir/logs"
if ls "$run_dir"/pids/*.pid >/dev/null 2>&1; then
  echo "a deployment already runs from $run_dir: scripts/deploy-stop.sh --run-dir $run_dir first" >&2
  exit 1
fi

if [ -z "$db_url" ] || [ -z "$bus_url" ]; then
  ./scripts/services.sh start >/dev/null
fi
if [ -z "$db_url" ]; then
  # Its own database beside the tests' loom_test, made by the loom role.
  export PGPASSWORD=${LOOM_PG_PASSWORD:-loom}
  pg=(psql -h 127.0.0.1 -U "${LOOM_PG_USER:-loom}" -d "${LOOM_PG_DB:-loom_test}" -qtAc)
  if [ -z "$("${pg[@]}" "SELECT 1 FROM pg_database WHERE datname='loom_deploy'")" ]; then
    "${pg[@]}" "CREATE DATABASE loom_deploy"
  fi
  db_url="postgresql://${LOOM_PG_USER:-loom}:$PGPASSWORD@127.0.0.1:5432/loom_deploy"
fi
bus_url=${bus_url:-amqp://guest:guest@127.0.0.1:5672/}

[ -x .venv/bin/loom ] || ./scripts/install.sh
loom="$root/.venv/bin/loom"

# Every process reads the same settings from the environment; compute
# hosts get no database URL (they reach it only through the conductor).
export LOOM_DATA_DIR="$run_dir/data"
export LOOM_BUS__URL="$bus_url"
export LOOM_API__PORT="$port"
export LOOM_API__HOST="${LOOM_API__HOST:-127.0.0.1}"
export LOOM_SERVICE__METRICS_HOST="${LOOM_SERVICE__METRICS_HOST:-127.0.0.1}"
if [ -z "${LOOM_SERVICE_USER__PASSWORD:-}" ]; then
  secret="$run_dir/data/service-password"
  if [ ! -s "$secret" ]; then
    (umask 077; head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$secret")
  fi
  LOOM_SERVICE_USER__PASSWORD=$(cat "$secret")
fi
export LOOM_SERVICE_USER__PASSWORD

with_db() { LOOM_DATABASE__URL="$db_url" "$@"; }

start() {  # start NAME METRICS_PORT COMMAND...
  local name=$1 metrics=$2
  shift 2
  LOOM_SERVICE__METRICS_PORT=$metrics nohup "$@" >>"$run_dir/logs/$name.log" 2>&1 &
  echo $! >"$run_dir/pids/$name.pid"
  echo "  $name: pid $!, log $run_dir/logs/$name.log, metrics http://127.0.0.1:$metrics/metrics"
}

with_db "$loom" db upgrade >>"$run_dir/logs/setup.log" 2>&1
with_db "$loom" bootstrap >>"$run_dir/logs/setup.log" 2>&1
echo "starting Loom from $run_dir:"
with_db start api "$mbase" "$loom" api --workers "$workers"
with_db start conductor $((mbase + 10)) "$loom" conductor --host conductor-1
for i in $(seq 1 "$schedulers"); do
  with_db start "scheduler-$i" $((mbase + 19 + i)) "$loom" scheduler --host "scheduler-$i"
done
for i in $(seq 1 "$computes"); do
  start "compute-fake-$i" $((mbase + 29 + i)) env -u LOOM_DATABASE__URL "$loom" compute --host "fake-$i"
done

url="http://127.0.0.1:$port"
for _ in $(seq 150); do
  curl -fsS "$url/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
if ! curl -fsS "$url/healthz" >/dev/null 2>&1; then
  echo "the API did not answer at $url; see $run_dir/logs/api.log" >&2
  exit 1
fi
metrics="http://127.0.0.1:$((mbase + 10))/metrics"
for i in $(seq 1 "$schedulers"); do metrics="$metrics,http://127.0.0.1:$((mbase + 19 + i))/metrics"; done
for i in $(seq 1 "$computes"); do metrics="$metrics,http://127.0.0.1:$((mbase + 29 + i))/metrics"; done
echo "$metrics" >"$run_dir/metrics-urls"
echo
echo "Loom is up."
echo "  API:        $url/"
echo "  Metrics:    $url/metrics"
echo "  Database:   $db_url"
echo "  Bus:        $bus_url"
echo "  User:       admin / $(cat "$run_dir/data/admin-password") (project admin)"
echo "Credentials for the openstack CLI: source $run_dir/data/openrc"
echo "Services:   LOOM_DATA_DIR=$run_dir/data $loom status --metrics $metrics"
echo "Stop with:  scripts/deploy-stop.sh --run-dir $run_dir"
