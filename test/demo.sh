#!/usr/bin/env bash
# `make demo`: build and install moltres_ops, start a throwaway PostgreSQL 15
# with it preloaded (under /tmp/moltres_demo, on a free port), run a short
# realistic workload, and print what the extension shows.  `make demo-stop`
# stops that server and removes every file it made.
#
# What is shown is test/demo/*.sql, run in name order after the workload;
# each area of the extension adds its own file there.

source "$(dirname "$0")/lib.sh"

DEMO_DIR=${MO_DEMO_DIR:-/tmp/moltres_demo}
DATA="$DEMO_DIR/data"

stop() {
    if [ -f "$DATA/postmaster.pid" ]; then
        as_user pg_ctl -D "$DATA" -m fast -w stop >/dev/null || true
    fi
    rm -rf "$DEMO_DIR"
    echo "moltres_ops demo stopped; $DEMO_DIR removed."
}

free_port() {
    local p
    for p in $(seq 54320 54399); do
        if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && [ ! -e "/tmp/.s.PGSQL.$p" ]; then
            echo "$p"; return 0
        fi
    done
    echo "no free port in 54320-54399" >&2; exit 1
}

start() {
    if [ -f "$DATA/postmaster.pid" ]; then
        echo "A demo server is already running in $DEMO_DIR; run 'make demo-stop' first." >&2
        exit 1
    fi
    mo_install_packages
    mo_build_install
    mo_ensure_user

    rm -rf "$DEMO_DIR"
    mkdir -p "$DEMO_DIR"
    is_root && chown "$MO_USER" "$DEMO_DIR"
    local port; port=$(free_port)

    say "starting PostgreSQL 15 in $DATA on port $port"
    as_user initdb -D "$DATA" -A trust -U postgres --no-sync >/dev/null
    cat >>"$DATA/postgresql.conf" <<CONF
port = $port
listen_addresses = 'localhost'
unix_socket_directories = '$DEMO_DIR'
shared_preload_libraries = 'pg_stat_statements, moltres_ops'
compute_query_id = on
moltres_ops.slow_query_ms = 500
logging_collector = off
CONF
    as_user pg_ctl -D "$DATA" -l "$DEMO_DIR/server.log" -w start >/dev/null
    export PGHOST="$DEMO_DIR" PGPORT="$port" PGUSER=postgres
    as_user env PGHOST="$PGHOST" PGPORT="$PGPORT" createdb -U postgres demo
    psql_demo() { as_user psql -X -q -h "$DEMO_DIR" -p "$port" -U postgres -d demo "$@"; }
    psql_demo -c 'CREATE EXTENSION moltres_ops' -c 'CREATE EXTENSION pg_stat_statements'

    say "workload: pgbench (10 s, 4 clients), slow statements, failing statements"
    as_user pgbench -q -i -s 2 -h "$DEMO_DIR" -p "$port" -U postgres demo >/dev/null 2>&1
    as_user pgbench -h "$DEMO_DIR" -p "$port" -U postgres -c 4 -j 2 -T 10 -n demo 2>/dev/null \
        | grep -E '^(tps|number of transactions actually)' || true
    for i in 1 2 3; do psql_demo -c "SELECT pg_sleep(0.6), $i AS round" >/dev/null; done
    psql_demo -c 'SELECT 1 / 0' 2>/dev/null || true
    psql_demo -c "SET statement_timeout = '200ms'" -c 'SELECT pg_sleep(1)' 2>/dev/null || true
    psql_demo -c 'SELECT * FROM no_such_table' 2>/dev/null || true

    for f in "$MO_ROOT"/test/demo/*.sql; do
        [ -f "$f" ] || continue
        say "$(sed -n '1s/^-- *//p' "$f")"
        psql_demo -P pager=off -f "$f"
    done

    say "the same slow statements in the server log (moltres_ops.log_format = text)"
    grep -E 'LOG:  slow statement' "$DEMO_DIR/server.log" | tail -n 5 | cut -c1-220

    cat <<MSG

moltres_ops demo is running.
  connect:  psql -h $DEMO_DIR -p $port -U postgres demo
  log:      $DEMO_DIR/server.log
  stop:     make demo-stop      (stops the server and removes $DEMO_DIR)
MSG
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
