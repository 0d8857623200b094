#!/usr/bin/env bash
# Cost of a scrape: milliseconds per call of moltres_ops.prometheus(),
# the metrics view and health() with the statistics table full (5,000
# entries at the default moltres_ops.max_statements, 100 of them exported
# one by one), at default settings (jit on).
#
#   test/bench/scrape.sh
#   ROUNDS=50 test/bench/scrape.sh
#
# Prints the median over ROUNDS calls of each, in one session each (as a
# scraper keeps its connection), and exits non-zero when prometheus() takes
# MAX_PROMETHEUS_MS or more, or health() MAX_HEALTH_MS or more (the
# project's goals: 20 and 10).

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

# Median milliseconds of ROUNDS calls of $1 in one session.
time_ms() {
    local sql=$1
    { echo '\timing on'; for ((i = 0; i < ROUNDS; i++)); do echo "$sql"; done; } |
        psql_b -o /dev/null | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | median
}

status=0
p=$(time_ms 'SELECT moltres_ops.prometheus();')
h=$(time_ms 'SELECT * FROM moltres_ops.health();')
m=$(time_ms 'SELECT * FROM moltres_ops.metrics;')
printf '%-32s %8s ms\n' 'prometheus()' "$p" 'health()' "$h" 'metrics view' "$m"
printf '%-32s %8s\n' 'prometheus() lines' "$(psql_b -c 'SELECT moltres_ops.prometheus()' | wc -l)"
awk -v v="$p" -v max="$MAX_PROMETHEUS_MS" 'BEGIN { exit !(v < max) }' || { echo "prometheus() is not under $MAX_PROMETHEUS_MS ms"; status=1; }
awk -v v="$h" -v max="$MAX_HEALTH_MS" 'BEGIN { exit !(v < max) }' || { echo "health() is not under $MAX_HEALTH_MS ms"; status=1; }
as_user pg_ctl -D "$base" -m fast -w stop >/dev/null
exit $status
