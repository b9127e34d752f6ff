#!/usr/bin/env bash
# Starts the local servers the test suite talks to (PostgreSQL, MariaDB, Redis, RabbitMQ) on
# loopback, installing them with apt when missing, and waits until each answers.
# Idempotent: servers already running are left alone. Exits non-zero naming what failed.
set -u

log() { printf 'services: %s\n' "$*" >&2; }
fail=0

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # name port seconds
  local i
  for ((i = 0; i < $3 * 2; i++)); do
    port_open "$2" && return 0
    sleep 0.5
  done
  log "$1 did not answer on 127.0.0.1:$2 within $3 s"
  return 1
}

apt_updated=0
need_pkg() { # command package...
  command -v "$1" >/dev/null 2>&1 && return 0
  shift
  log "installing $* with apt"
  if [ "$apt_updated" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || true
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# --- PostgreSQL -------------------------------------------------------------------------------
postgres() {
  if ! port_open 5432; then
    need_pkg pg_ctlcluster postgresql postgresql-client || return 1
    local ver
    ver=$(ls /etc/postgresql | sort -V | tail -n1)
    local hba="/etc/postgresql/$ver/main/pg_hba.conf"
    if [ -f "$hba" ] && ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
      # Tests connect as postgres over TCP without a password (trust on loopback only).
      sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\nlocal all all trust' "$hba"
    fi
    log "starting PostgreSQL $ver"
    pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
  fi
  wait_port PostgreSQL 5432 60 || return 1
  local i
  for ((i = 0; i < 60; i++)); do
    psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1 && break
    sleep 0.5
  done
  if ! psql -h 127.0.0.1 -U postgres -d postgres -Atc "select 1 from pg_database where datname='test'" | grep -q 1; then
    psql -h 127.0.0.1 -U postgres -d postgres -c 'create database test' >/dev/null || return 1
  fi
}

# --- MariaDB ----------------------------------------------------------------------------------
mariadb_up() {
  if ! port_open 3306; then
    need_pkg mariadbd mariadb-server mariadb-client || return 1
    log "starting MariaDB"
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  fi
  wait_port MariaDB 3306 60 || return 1
  local i
  for ((i = 0; i < 60; i++)); do
    mariadb -h 127.0.0.1 -uroot -e 'select 1' >/dev/null 2>&1 && break
    # A fresh install authenticates root through the socket: allow the empty password on TCP.
    mariadb -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket" >/dev/null 2>&1 || true
    sleep 0.5
  done
  mariadb -h 127.0.0.1 -uroot -e 'CREATE DATABASE IF NOT EXISTS test' || return 1
}

# --- Redis ------------------------------------------------------------------------------------
redis_up() {
  if ! port_open 6379; then
    need_pkg redis-server redis-server redis-tools || return 1
    log "starting Redis"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
  fi
  wait_port Redis 6379 30
}

# --- RabbitMQ ---------------------------------------------------------------------------------
rabbit_up() {
  if ! port_open 5672; then
    need_pkg rabbitmq-server rabbitmq-server || return 1
    log "starting RabbitMQ (this takes a few seconds)"
    rabbitmq-server -detached >/dev/null 2>&1 || true
  fi
  wait_port RabbitMQ 5672 120
}

postgres || { log "PostgreSQL is not available"; fail=1; }
mariadb_up || { log "MariaDB is not available"; fail=1; }
redis_up || { log "Redis is not available"; fail=1; }
rabbit_up || { log "RabbitMQ is not available"; fail=1; }

if [ "$fail" = 0 ]; then
  log "PostgreSQL :5432, MariaDB :3306, Redis :6379 and RabbitMQ :5672 are answering on 127.0.0.1"
fi
exit "$fail"
