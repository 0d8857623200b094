#!/usr/bin/env bash
# What health() and the health worker cost with many connections open:
# CONNS client connections (default 200) behave like an application pool
# (a short statement, then idle for two seconds, over and over), while
#   - health() is called CALLS times by one client, and its latency taken
#     from pgbench's per-transaction log (median, p99, max);
#   - health_evaluate() likewise (what the worker runs each interval), and
#     SELECT 1, the floor any statement pays on the machine at that moment;
#   - the health worker's CPU time is read from /proc over WINDOW seconds at
#     its default interval (10 s) and given as a share of one core.
#
#   test/bench/health.sh
#   CONNS=200 CALLS=500 WINDOW=60 MAX_MS=10 test/bench/health.sh
#
# Exits non-zero when health()'s median reaches MAX_MS (default 10 ms) or
# the worker takes MAX_CPU_PCT (default 1) % of a core or more.  (The p99
# is printed, not judged: on a shared machine it measures the scheduler.)

source "$(dirname "$0")/common.sh"

CONNS=${CONNS:-200}
CALLS=${CALLS:-500}
WINDOW=${WINDOW:-60}
MAX_MS=${MAX_MS:-10}
MAX_CPU_PCT=${MAX_CPU_PCT:-1}

bench_setup
base="$BENCH_DIR/data"
sock="$BENCH_DIR"
port=${PORT:-54421}

bench_initdb "$base" "$port" <<EOF
$(bench_conf moltres)
max_connections = $((CONNS + 20))
EOF
as_user pg_ctl -D "$base" -l "$BENCH_DIR/server.log" -w start >/dev/null
psql_b() { as_user psql -X -q -At -h "$sock" -p "$port" -U postgres -d postgres "$@"; }
pgbench_b() { as_user pgbench -h "$sock" -p "$port" -U postgres "$@"; }

psql_b -c 'CREATE EXTENSION moltres_ops'
psql_b -c 'CREATE TABLE bench_t (id int PRIMARY KEY, v int); INSERT INTO bench_t SELECT g, 0 FROM generate_series(1, 1000) g;'

cat >"$BENCH_DIR/pool.sql" <<'SQL'
SELECT v FROM bench_t WHERE id = 1 + (random() * 999)::int;
\sleep 2000 ms
SQL
echo 'SELECT count(*) FROM moltres_ops.health();' >"$BENCH_DIR/health.sql"
echo 'SELECT count(*) FROM moltres_ops.health_evaluate();' >"$BENCH_DIR/evaluate.sql"
echo 'SELECT 1;' >"$BENCH_DIR/one.sql"
is_root && chown "$MO_USER" "$BENCH_DIR"/*.sql

say "opening $CONNS connections that behave like a pool"
pgbench_b -n -c "$CONNS" -j 4 -T $((WINDOW + 120)) -f "$BENCH_DIR/pool.sql" postgres \
    >"$BENCH_DIR/pool.log" 2>&1 &
pool=$!
for _ in $(seq 120); do
    n=$(psql_b -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")
    [ "$n" -ge "$CONNS" ] && break
    sleep 1
done
say "$n client connections open"

# Latency of one statement, from pgbench's per-transaction log (microseconds
# in the third column): median, p99 and max, in ms.
latency() {
    local script=$1 name=$2
    (cd "$BENCH_DIR" && rm -f "$name".*log* &&
        pgbench_b -n -c 1 -t "$CALLS" -f "$script" -l --log-prefix="$name" postgres >/dev/null 2>&1)
    cat "$BENCH_DIR/$name".* | awk '{print $3 / 1000}' | sort -g |
        awk '{a[NR]=$1} END {printf "%.3f %.3f %.3f\n", a[int((NR+1)/2)], a[int(NR*0.99)], a[NR]}'
}

read -r h_med h_p99 h_max <<<"$(latency "$BENCH_DIR/health.sql" health)"
read -r e_med e_p99 e_max <<<"$(latency "$BENCH_DIR/evaluate.sql" evaluate)"
read -r o_med o_p99 o_max <<<"$(latency "$BENCH_DIR/one.sql" one)"

wpid=$(psql_b -c 'SELECT pid FROM moltres_ops.health_worker')
ticks() { awk '{print $14 + $15}' "/proc/$wpid/stat"; }
hz=$(getconf CLK_TCK)
t0=$(ticks)
e0=$(psql_b -c 'SELECT evaluations FROM moltres_ops.health_worker')
sleep "$WINDOW"
t1=$(ticks)
e1=$(psql_b -c 'SELECT evaluations FROM moltres_ops.health_worker')
dur=$(psql_b -c 'SELECT round(last_duration_ms::numeric, 1) FROM moltres_ops.health_worker')
cpu=$(awk -v d=$((t1 - t0)) -v hz="$hz" -v w="$WINDOW" 'BEGIN {printf "%.3f", 100 * d / hz / w}')
open=$(psql_b -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")

kill "$pool" 2>/dev/null || true
wait "$pool" 2>/dev/null || true

say "results ($open client connections open)"
printf '%-34s %10s %10s %10s\n' "statement" "median ms" "p99 ms" "max ms"
printf '%-34s %10s %10s %10s\n' "health() (reads the worker state)" "$h_med" "$h_p99" "$h_max"
printf '%-34s %10s %10s %10s\n' "health_evaluate() (every check)" "$e_med" "$e_p99" "$e_max"
printf '%-34s %10s %10s %10s\n' "SELECT 1 (the floor)" "$o_med" "$o_p99" "$o_max"
echo "health worker: $((e1 - e0)) evaluations in $WINDOW s, last took $dur ms, CPU $cpu % of one core"

status=0
awk -v v="$h_med" -v m="$MAX_MS" 'BEGIN {exit !(v < m)}' ||
    { echo "FAIL: health() median $h_med ms is not under $MAX_MS ms"; status=1; }
awk -v v="$cpu" -v m="$MAX_CPU_PCT" 'BEGIN {exit !(v < m)}' ||
    { echo "FAIL: the worker took $cpu % of a core, not under $MAX_CPU_PCT %"; status=1; }
exit $status
