#!/usr/bin/env bash
# Makes sure the PostgreSQL and MariaDB servers the metadata tests use are
# up on 127.0.0.1 (go-svc machines run both; they may need a start).
# Tests create a fresh database per run and drop it afterwards.
set -euo pipefail

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
my_up() { mariadb -h 127.0.0.1 -P 3306 -u root -e 'select 1' >/dev/null 2>&1; }

if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
fi
if ! my_up; then
  if [ -x /usr/sbin/mariadbd ]; then
    echo "starting MariaDB"
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
  fi
fi
for _ in $(seq 1 30); do
  if pg_up && my_up; then break; fi
  sleep 1
done
pg_up && echo "PostgreSQL: up" || echo "PostgreSQL: NOT reachable"
my_up && echo "MariaDB: up" || echo "MariaDB: NOT reachable"
