#!/usr/bin/env bash
# Start PostgreSQL, Redis and RabbitMQ on 127.0.0.1 if they are down, and create the `reco` role the tests use.
set -uo pipefail

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  echo "starting PostgreSQL"
  if command -v pg_ctlcluster >/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  fi
  for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
pg_isready -q -h 127.0.0.1 -p 5432 || { echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2; exit 1; }

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 30); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 1; done
fi
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null || { echo "Redis is not reachable on 127.0.0.1:6379" >&2; exit 1; }

# RabbitMQ: the tests of the quorum queues and the sharded refresh run workers on it (RABBITMQ_URL, guest on 5672).
rabbitmq_up() { timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/5672' 2>/dev/null; }
if ! rabbitmq_up; then
  echo "starting RabbitMQ"
  command -v rabbitmq-server >/dev/null && rabbitmq-server -detached
  for _ in $(seq 60); do rabbitmq_up && break; sleep 1; done
fi
rabbitmq_up || { echo "RabbitMQ is not reachable on 127.0.0.1:5672" >&2; exit 1; }

# haproxy for the multi-host rehearsal (tests/rehearsal), installed when missing.
bash "$(dirname "$0")/rehearsal.sh" || exit 1

# A role of our own works whatever pg_hba.conf says about `postgres` (needs superuser access once).
if command -v psql >/dev/null && psql -h 127.0.0.1 -U postgres -tAc "SELECT 1" >/dev/null 2>&1; then
  psql -q -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 <<'SQL'
DO $$BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'reco') THEN
    CREATE ROLE reco LOGIN CREATEDB PASSWORD 'reco';
  END IF;
END$$;
SQL
  psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'reco'" | grep -q 1 \
    || psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE reco OWNER reco"
fi
