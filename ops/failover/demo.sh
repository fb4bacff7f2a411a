#!/usr/bin/env bash
# A pg_auto_failover formation on loopback, by hand (docs/failover.md): a monitor on 18401, two PostgreSQL
# nodes on 18402 and 18403, tuned with monitor.conf and keeper.cfg beside this script.
#
#   ops/failover/demo.sh up            # start it (about 35 s); prints the formation URI for TASKLEDGER_DATABASE_URL
#   ops/failover/demo.sh state         # pg_autoctl show state
#   ops/failover/demo.sh lose-primary  # SIGKILL the primary's keeper and PostgreSQL (a lost machine)
#   ops/failover/demo.sh down          # stop everything and remove the data directories
#
# DEMO_DIR (default /tmp/taskledger-failover-demo) holds the data directories and the logs. As root, every
# pg_autoctl command runs as the postgres user (PostgreSQL and pg_autoctl refuse to run as root).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DIR="${DEMO_DIR:-/tmp/taskledger-failover-demo}"
PGBIN="$(dirname "$(ls /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | sort -V | tail -n 1)")"
command -v pg_autoctl >/dev/null || { echo "pg_autoctl is missing: apt-get install postgresql-15-auto-failover pg-auto-failover-cli" >&2; exit 2; }
export XDG_CONFIG_HOME="$DIR/xdg/config" XDG_DATA_HOME="$DIR/xdg/data" XDG_RUNTIME_DIR="$DIR/xdg/run" PATH="$PGBIN:$PATH"

as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- env "PATH=$PATH" "XDG_CONFIG_HOME=$XDG_CONFIG_HOME" \
            "XDG_DATA_HOME=$XDG_DATA_HOME" "XDG_RUNTIME_DIR=$XDG_RUNTIME_DIR" "$@"; else "$@"; fi; }
autoctl() { as_pg pg_autoctl "$@"; }
state_of() { autoctl show state --pgdata "$DIR/monitor" 2>/dev/null | grep -c -E "$1" || true; }
states_are() { [ "$(state_of "$1")" -eq "$2" ]; }  # states_are <row pattern> <count>
answers() { as_pg psql -qAt -h 127.0.0.1 -p "$1" -d "$2" -c "${3:-SELECT 1}" 2>/dev/null | grep -q 1; }
wait_for() {  # wait_for <what> <command...>
  local what="$1"; shift
  for _ in $(seq 1 300); do "$@" && return 0; sleep 0.5; done
  echo "timed out waiting for $what; logs in $DIR/*.log" >&2; exit 1
}
keeper_pid() { head -n 1 "$XDG_RUNTIME_DIR/pg_autoctl$1/pg_autoctl.pid" 2>/dev/null || true; }
run_bg() { local name="$1"; shift; (as_pg setsid pg_autoctl "$@" >>"$DIR/$name.log" 2>&1 &); }

up() {
  mkdir -p "$DIR"/xdg/{config,data,run}
  [ "$(id -u)" -eq 0 ] && chown -R postgres: "$DIR"
  run_bg monitor create monitor --pgdata "$DIR/monitor" --pgport 18401 --hostname 127.0.0.1 --listen 127.0.0.1 \
    --auth trust --no-ssl --run
  wait_for "the monitor" answers 18401 pg_auto_failover
  # The monitor's timeouts: an include file, then a reload (pg_settings shows them).
  install -m 0644 "$HERE/monitor.conf" "$DIR/monitor/failover-tuning.conf"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$DIR/monitor/failover-tuning.conf"
  echo "include 'failover-tuning.conf'" >>"$DIR/monitor/postgresql.conf"
  as_pg psql -qAt -h 127.0.0.1 -p 18401 -d pg_auto_failover -c "SELECT pg_reload_conf()" -o /dev/null
  local monitor; monitor="$(autoctl show uri --formation monitor --pgdata "$DIR/monitor")"
  for n in 1 2; do
    run_bg "node$n" create postgres --pgdata "$DIR/node$n" --pgport "$((18401 + n))" --hostname 127.0.0.1 \
      --listen 127.0.0.1 --name "node$n" --dbname taskledger --replication-quorum true --monitor "$monitor" \
      --auth trust --no-ssl --run
    if [ "$n" -eq 1 ]; then wait_for "node1 (single)" states_are 'single +\| +single' 1; fi
  done
  # pg_basebackup of the standby waits for a spread checkpoint on the primary (minutes): ask for it now.
  wait_for "the standby's base backup" answers 18402 postgres \
    "SELECT 1 FROM pg_stat_activity WHERE backend_type = 'walsender'"
  as_pg psql -qAt -h 127.0.0.1 -p 18402 -d postgres -c CHECKPOINT -o /dev/null
  wait_for "primary and secondary" states_are '(primary +\| +primary|secondary +\| +secondary)$' 2
  for n in 1 2; do  # the keepers' timeouts: each `config set` makes the running keeper reload its file
    grep -v '^#' "$HERE/keeper.cfg" | sed 's/#.*//' | while read -r key value; do
      [ -n "$key" ] || continue
      until autoctl config set --pgdata "$DIR/node$n" "$key" "$value" >/dev/null 2>&1 \
            && [ "$(autoctl config get --pgdata "$DIR/node$n" "$key")" = "$value" ]; do sleep 0.3; done
    done
  done
  autoctl show state --pgdata "$DIR/monitor"
  echo "TASKLEDGER_DATABASE_URL=$(autoctl show uri --formation default --pgdata "$DIR/monitor" \
    | sed 's#^postgres://#postgresql://postgres@#')&connect_timeout=2"
}

lose_primary() {
  local port pgdata keeper postmaster
  port="$(autoctl show state --pgdata "$DIR/monitor" | awk -F'|' '$6 ~ /primary/ && $7 ~ /primary/ {print $3}' \
          | sed 's/.*://; s/ //g')"
  [ -n "$port" ] || { echo "no node is primary now" >&2; exit 1; }
  pgdata="$DIR/node$((port - 18401))"
  keeper="$(keeper_pid "$pgdata")"
  postmaster="$(head -n 1 "$pgdata/postmaster.pid")"
  echo "SIGKILL: keeper $keeper and postmaster $postmaster of $pgdata (and their children)"
  kill -KILL $keeper $(pgrep -P "$keeper" || true) "$postmaster" $(pgrep -P "$postmaster" || true) 2>/dev/null || true
}

down() {
  for pgdata in "$DIR"/node1 "$DIR"/node2 "$DIR"/monitor; do
    [ -d "$pgdata" ] && autoctl stop --pgdata "$pgdata" --immediate >/dev/null 2>&1 || true
  done
  sleep 2
  for pgdata in "$DIR"/node1 "$DIR"/node2 "$DIR"/monitor; do  # whatever did not stop: by its pid files
    local keeper; keeper="$(keeper_pid "$pgdata")"
    [ -n "$keeper" ] && kill -KILL "$keeper" $(pgrep -P "$keeper" || true) 2>/dev/null || true
    [ -f "$pgdata/postmaster.pid" ] && kill -KILL "$(head -n 1 "$pgdata/postmaster.pid")" 2>/dev/null || true
  done
  rm -rf "$DIR"
}

case "${1:-}" in
  up) up ;;
  state) autoctl show state --pgdata "$DIR/monitor" ;;
  events) autoctl show events --pgdata "$DIR/monitor" --count 30 ;;
  lose-primary) lose_primary ;;
  down) down ;;
  *) echo "usage: $0 up|state|events|lose-primary|down" >&2; exit 2 ;;
esac
