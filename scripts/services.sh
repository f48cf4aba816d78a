#!/usr/bin/env bash
# Start, stop and restart the real servers Loom's tests and distributed
# mode use: RabbitMQ and PostgreSQL from Debian's packages.
#   scripts/services.sh start|stop [rabbitmq|postgres]...
#   scripts/services.sh restart-rabbitmq    (broker restart, connections drop)
#   scripts/services.sh pause-rabbitmq|resume-rabbitmq   (broker down until resumed)
set -euo pipefail

PG_USER=${LOOM_PG_USER:-loom}
PG_PASSWORD=${LOOM_PG_PASSWORD:-loom}
PG_DB=${LOOM_PG_DB:-loom_test}

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

rabbitmq_up() { as_root rabbitmqctl -q status >/dev/null 2>&1; }

start_rabbitmq() {
  "$(dirname "$0")/system-packages.sh" rabbitmq-server
  if ! rabbitmq_up; then
    as_root service rabbitmq-server start >/dev/null
  fi
  as_root rabbitmqctl -q await_startup --timeout 60
  echo "rabbitmq: amqp://guest:guest@127.0.0.1:5672/"
}

stop_rabbitmq() { rabbitmq_up && as_root service rabbitmq-server stop >/dev/null || true; }

restart_rabbitmq() {
  # Stopping the broker application closes every connection and drops
  # non-durable queues, as a broker restart does; durable state survives.
  as_root rabbitmqctl -q stop_app
  as_root rabbitmqctl -q start_app
  as_root rabbitmqctl -q await_startup --timeout 60
}

pg_ready() { pg_isready -q -h 127.0.0.1 -p 5432; }

start_postgres() {
  "$(dirname "$0")/system-packages.sh" postgresql
  pg_ready || as_root service postgresql start >/dev/null
  for _ in $(seq 50); do pg_ready && break; sleep 0.2; done
  psql_admin() { as_root runuser -u postgres -- psql -v ON_ERROR_STOP=1 -qtA "$@"; }
  if [ -z "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname='$PG_USER'")" ]; then
    psql_admin -c "CREATE ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASSWORD'"
  fi
  if [ -z "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname='$PG_DB'")" ]; then
    psql_admin -c "CREATE DATABASE $PG_DB OWNER $PG_USER"
  fi
  echo "postgres: postgresql://$PG_USER:$PG_PASSWORD@127.0.0.1:5432/$PG_DB"
}

stop_postgres() { pg_ready && as_root service postgresql stop >/dev/null || true; }

cmd=${1:-}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(rabbitmq postgres)
case "$cmd" in
  start) for t in "${targets[@]}"; do "start_$t"; done ;;
  stop) for t in "${targets[@]}"; do "stop_$t"; done ;;
  restart-rabbitmq) restart_rabbitmq ;;
  pause-rabbitmq) as_root rabbitmqctl -q stop_app ;;
  resume-rabbitmq) as_root rabbitmqctl -q start_app && as_root rabbitmqctl -q await_startup --timeout 60 ;;
  *) echo "usage: $0 start|stop [rabbitmq|postgres]... | restart-rabbitmq | pause-rabbitmq | resume-rabbitmq" >&2
     exit 2 ;;
esac
