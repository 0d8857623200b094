#!/usr/bin/env bash
# Cost of a scrape: milliseconds per call of moltres_ops.prometheus(),
# the metrics view and health() with the statistics table full (5,000
# entries at the default moltres_ops.max_statements, 100 of them exported
# one by one), at default settings (jit on).
#
#   test/bench/scrape.sh
#   ROUNDS=50 test/bench/scrape.sh
#
# Prints, for each, the median wall-clock time over ROUNDS calls and the
# CPU time per call over CPU_ROUNDS calls, in one session each (as a
# scraper keeps its connection); exits non-zero when prometheus() takes
# MAX_PROMETHEUS_MS of CPU or more, or health() MAX_HEALTH_MS (the
# project's goals: 20 and 10).  On a shared machine the CPU time is the
# figure to compare: wall-clock time grows with the load.

source "$(dirname "$0")/common.sh"

ROUNDS=${ROUNDS:-30}
MAX_PROMETHEUS_MS=${MAX_PROMETHEUS_MS:-20}
MAX_HEALTH_MS=${MAX_HEALTH_MS:-10}

bench_setup
base="$BENCH_DIR/data"
sock="$BENCH_DIR"
port=${PORT:-54412}

bench_initdb "$base" "$port" <<CONF
$(bench_conf moltres)
compute_query_id = on
CONF
as_user pg_ctl -D "$base" -l "$BENCH_DIR/server.log" -w start >/dev/null
psql_b() { as_user psql -X -q -At -h "$sock" -p "$port" -U postgres -d postgres "$@"; }

# 5,000 distinct statements: 50 tables x 100 select-list lengths; the
# first 100 run 100 times each, so that they reach metrics_min_calls.
psql_b -c "CREATE EXTENSION moltres_ops"
psql_b >/dev/null <<'SQL'
SELECT format('CREATE TABLE b_%s (a int)', t) FROM generate_series(1, 50) t \gexec
SELECT moltres_ops.reset();
SELECT format('SELECT 1%s FROM b_%s', repeat(', 1', c - 1), t)
  FROM generate_series(1, 50) t, generate_series(1, 100) c \gexec
SELECT format('SELECT 1%s FROM b_1', repeat(', 1', c - 1))
  FROM generate_series(1, 100) c, generate_series(1, 100) r \gexec
SQL
say "statistics table: $(psql_b -c 'SELECT entries FROM moltres_ops.stats_info') entries, $(psql_b -c "SELECT count(*) FROM moltres_ops.metrics WHERE name = 'moltres_ops_query_duration_seconds_count'") exported one by one, jit = $(psql_b -c 'SHOW jit')"

# Median wall-clock milliseconds of ROUNDS calls of $1 in one session.
time_ms() {
    local sql=$1
    { echo '\timing on'; for ((i = 0; i < ROUNDS; i++)); do echo "$sql"; done; } |
        psql_b -o /dev/null | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | median
}

# CPU milliseconds (user + system) per call of $1, over CPU_ROUNDS calls
# in one session, from the backend's /proc/self/stat: unlike wall-clock
# time, it does not grow when other processes share the machine.
CPU_ROUNDS=${CPU_ROUNDS:-200}
cpu_ms() {
    local sql=$1 tick
    tick=$(getconf CLK_TCK)
    {
        echo "SELECT split_part(s, ' ', 14)::bigint + split_part(s, ' ', 15)::bigint FROM pg_read_file('/proc/self/stat') s;"
        for ((i = 0; i < CPU_ROUNDS; i++)); do echo "$sql"; done
        echo "SELECT split_part(s, ' ', 14)::bigint + split_part(s, ' ', 15)::bigint FROM pg_read_file('/proc/self/stat') s;"
    } | psql_b | grep -E '^[0-9]+$' | sed -n '1p;$p' | tr '\n' ' ' |
        awk -v n="$CPU_ROUNDS" -v t="$tick" '{ printf "%.2f", ($2 - $1) * 1000 / t / n }'
}

status=0
p=$(time_ms 'SELECT moltres_ops.prometheus();')
h=$(time_ms 'SELECT * FROM moltres_ops.health();')
m=$(time_ms 'SELECT * FROM moltres_ops.metrics;')
pc=$(cpu_ms 'SELECT length(moltres_ops.prometheus());')
hc=$(cpu_ms 'SELECT count(*) FROM moltres_ops.health();')
mc=$(cpu_ms 'SELECT count(*) FROM moltres_ops.metrics;')
printf '%-16s %12s %12s\n' '' 'wall ms' 'CPU ms' 'prometheus()' "$p" "$pc" 'health()' "$h" "$hc" 'metrics view' "$m" "$mc"
printf '%-16s %12s\n' 'prometheus() lines' "$(psql_b -c 'SELECT moltres_ops.prometheus()' | wc -l)"
say "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
awk -v v="$pc" -v max="$MAX_PROMETHEUS_MS" 'BEGIN { exit !(v < max) }' || { echo "prometheus() takes $MAX_PROMETHEUS_MS ms of CPU or more"; status=1; }
awk -v v="$hc" -v max="$MAX_HEALTH_MS" 'BEGIN { exit !(v < max) }' || { echo "health() takes $MAX_HEALTH_MS ms of CPU or more"; status=1; }
as_user pg_ctl -D "$base" -m fast -w stop >/dev/null
exit $status
