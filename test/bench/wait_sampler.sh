#!/usr/bin/env bash
# CPU used by the wait sampler (moltres_ops.sample_interval, default 10 ms)
# with many backends: for each backend count in BACKENDS, pgbench holds that
# many sessions open, either idle between statements (`idle`: the client
# sleeps, the sampler only reads each backend's state) or all active
# (`active`: each runs pg_sleep, so every sample counts every backend).
# The sampler's CPU time comes from /proc/<pid>/schedstat over MEASURE
# seconds once every session is connected.
#
#   test/bench/wait_sampler.sh
#   BACKENDS="100 500" MEASURE=30 INTERVAL=10 test/bench/wait_sampler.sh

source "$(dirname "$0")/common.sh"

BACKENDS=${BACKENDS:-"100 500"}
MEASURE=${MEASURE:-20}
INTERVAL=${INTERVAL:-10}
WARMUP=${WARMUP:-10}

bench_setup
data="$BENCH_DIR/data"
port=${PORT:-54403}
max=0
for n in $BACKENDS; do [ "$n" -gt "$max" ] && max=$n; done

bench_initdb "$data" "$port" <<CONF
shared_preload_libraries = 'moltres_ops'
moltres_ops.sample_interval = $INTERVAL
max_connections = $((max + 20))
shared_buffers = 128MB
CONF
as_user pg_ctl -D "$data" -l "$BENCH_DIR/server.log" -w start >/dev/null
psql_() { as_user psql -XAtq -h "$BENCH_DIR" -p "$port" -U postgres -d postgres "$@"; }
psql_ -c 'CREATE EXTENSION moltres_ops'
printf '\\sleep 1000 ms\nSELECT 1;\n' >"$BENCH_DIR/idle.sql"
printf 'SELECT pg_sleep(1);\n' >"$BENCH_DIR/active.sql"
is_root && chown "$MO_USER" "$BENCH_DIR"/*.sql

# CPU nanoseconds of process $1 so far.
cpu_ns() { awk '{print $1}' "/proc/$1/schedstat"; }

results="$BENCH_DIR/wait_sampler.txt"
: >"$results"
say "wait sampler CPU, interval $INTERVAL ms, $MEASURE s per case"
pid=$(psql_ -c 'SELECT pid FROM moltres_ops.wait_sampler')
for n in 0 $BACKENDS; do
    for kind in idle active; do
        [ "$n" = 0 ] && [ "$kind" = active ] && continue
        if [ "$n" -gt 0 ]; then
            as_user pgbench -n -h "$BENCH_DIR" -p "$port" -U postgres -c "$n" -j 2 \
                -T $((WARMUP + MEASURE + 5)) -f "$BENCH_DIR/$kind.sql" postgres \
                >"$BENCH_DIR/pgbench.$n.$kind.log" 2>&1 &
            bg=$!
            sleep "$WARMUP"
        fi
        psql_ -c 'SELECT moltres_ops.reset_waits()' >/dev/null
        a=$(cpu_ns "$pid")
        sleep "$MEASURE"
        b=$(cpu_ns "$pid")
        stats=$(psql_ -c "SELECT round(mean_interval_ms::numeric, 2), round(max_interval_ms::numeric, 1),
                                 (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND state = 'active') - 1
                            FROM moltres_ops.wait_sampler")
        [ "$n" -gt 0 ] && wait "$bg"
        awk -v n="$n" -v k="$kind" -v a="$a" -v b="$b" -v m="$MEASURE" -v s="$stats" 'BEGIN {
            split(s, f, "|");
            printf "%4d backends %-6s sampler CPU %7.3f %% of one core (%.1f us per sample); mean interval %s ms, longest %s ms, %s active at the end\n",
                n, k, 100 * (b - a) / (m * 1e9), (b - a) / 1000 / (m * 1000 / f[1]), f[1], f[2], f[3] }' | tee -a "$results"
    done
done
as_user pg_ctl -D "$data" -w stop >/dev/null
echo "results: $results"
