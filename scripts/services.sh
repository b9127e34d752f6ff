#!/usr/bin/env bash
# Starts the local servers the test suite talks to (PostgreSQL, MariaDB, Redis, RabbitMQ) on
# loopback, installing them with apt when missing, and waits until each answers.
# Idempotent: servers already running are left alone (PostgreSQL's loopback trust is still
# checked). Runs as root, or as a user with password-less sudo. Exits non-zero naming what
# failed.
set -u

log() { printf 'services: %s\n' "$*" >&2; }
fail=0

# The servers' programs live in /usr/sbin, which a normal user's PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"

# Root's commands run as they are; a normal user's through `sudo -n` (never prompts).
as_root=()
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
  else
    log "not root and no password-less sudo: servers that are missing or stopped cannot be installed or started"
  fi
fi

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
  local apt=("${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get)
  if [ "$apt_updated" = 0 ]; then
    "${apt[@]}" update -qq >/dev/null || true
    apt_updated=1
  fi
  "${apt[@]}" install -y -qq "$@" >/dev/null
}

# --- PostgreSQL -------------------------------------------------------------------------------
# The cluster serving port 5432 ("<version> <name>"), else the newest one configured.
pg_cluster() {
  local found=""
  if command -v pg_lsclusters >/dev/null 2>&1; then
    found=$(pg_lsclusters --no-header 2>/dev/null | awk '$3 == 5432 { print $1, $2; exit }')
  fi
  if [ -z "$found" ] && [ -d /etc/postgresql ]; then
    local ver
    ver=$(ls /etc/postgresql | sort -V | tail -n1)
    [ -n "$ver" ] && found="$ver main"
  fi
  printf '%s' "$found"
}

postgres() {
  if ! port_open 5432; then
    need_pkg pg_ctlcluster postgresql postgresql-client || return 1
  fi
  need_pkg psql postgresql-client || return 1
  local ver="" name="" changed=0
  read -r ver name <<<"$(pg_cluster)"
  local hba="/etc/postgresql/$ver/$name/pg_hba.conf"
  if [ -n "$ver" ] && "${as_root[@]}" test -f "$hba" \
    && ! "${as_root[@]}" grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    # Tests connect as postgres over TCP without a password (trust on loopback only).
    log "PostgreSQL $ver/$name: trusting loopback connections in $hba"
    "${as_root[@]}" sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\nlocal all all trust' "$hba"
    changed=1
  fi
  if ! port_open 5432; then
    [ -n "$ver" ] || { log "no PostgreSQL cluster under /etc/postgresql"; return 1; }
    log "starting PostgreSQL $ver/$name"
    "${as_root[@]}" pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start || true
  elif [ "$changed" = 1 ]; then
    "${as_root[@]}" pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" reload || true
  fi
  wait_port PostgreSQL 5432 60 || return 1
  local i
  for ((i = 0; i < 60; i++)); do
    psql -w -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1 && break
    sleep 0.5
  done
  if ! psql -w -h 127.0.0.1 -U postgres -d postgres -Atc "select 1 from pg_database where datname='test'" | grep -q 1; then
    psql -w -h 127.0.0.1 -U postgres -d postgres -c 'create database test' >/dev/null || return 1
  fi
}

# --- MariaDB ----------------------------------------------------------------------------------
mariadb_up() {
  if ! port_open 3306; then
    need_pkg mariadbd mariadb-server mariadb-client || return 1
    log "starting MariaDB"
    "${as_root[@]}" mkdir -p /run/mysqld && "${as_root[@]}" chown mysql:mysql /run/mysqld 2>/dev/null || true
    # As the mysql user: mariadbd refuses to run as root unless its configuration names a
    # user, which Debian's stock configuration leaves commented out.
    "${as_root[@]}" start-stop-daemon --start --oknodo --background \
      --exec /usr/sbin/mariadbd -- --user=mysql
  fi
  need_pkg mariadb mariadb-client || return 1
  wait_port MariaDB 3306 60 || return 1
  local i
  for ((i = 0; i < 60; i++)); do
    mariadb -h 127.0.0.1 -uroot -e 'select 1' >/dev/null 2>&1 && break
    # A fresh install authenticates root through the socket: allow the empty password on TCP.
    "${as_root[@]}" mariadb -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket" >/dev/null 2>&1 || true
    sleep 0.5
  done
  mariadb -h 127.0.0.1 -uroot -e 'CREATE DATABASE IF NOT EXISTS test' || return 1
}

# --- Redis ------------------------------------------------------------------------------------
redis_up() {
  if ! port_open 6379; then
    need_pkg redis-server redis-server redis-tools || return 1
    log "starting Redis"
    "${as_root[@]}" mkdir -p /var/lib/redis /var/log/redis
    "${as_root[@]}" redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
      --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  fi
  wait_port Redis 6379 30
}

# --- RabbitMQ ---------------------------------------------------------------------------------
rabbit_up() {
  if ! port_open 5672; then
    need_pkg rabbitmq-server rabbitmq-server || return 1
    log "starting RabbitMQ (this takes a few seconds)"
    "${as_root[@]}" rabbitmq-server -detached >/dev/null 2>&1 || true
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
