#!/usr/bin/env bash
# Throughput of moltres_ops.lint(): statements linted per second, for
# simple statements and for a catalog-heavy migration mix against a large
# analysed table, both as one multi-statement input per call (the way a
# deploy job lints a migration file) and as one statement per call.
#
#   test/bench/lint_throughput.sh
#   N=200000 ROUNDS=5 test/bench/lint_throughput.sh
#
# Prints the median of ROUNDS timed runs per workload and exits non-zero
# when simple statements go slower than MIN_RATE per second (default 20000,
# the project's requirement).  No preload: lint needs no shared memory.

source "$(dirname "$0")/common.sh"

N=${N:-100000}
ROUNDS=${ROUNDS:-3}
MIN_RATE=${MIN_RATE:-20000}

bench_setup
base="$BENCH_DIR/data"
sock="$BENCH_DIR"
port=${PORT:-54411}

bench_initdb "$base" "$port" </dev/null
as_user pg_ctl -D "$base" -l "$BENCH_DIR/server.log" -w start >/dev/null
psql_b() { as_user psql -X -q -At -h "$sock" -p "$port" -U postgres -d postgres "$@"; }

psql_b <<'SQL'
CREATE EXTENSION moltres_ops;
CREATE TABLE orders (id bigint PRIMARY KEY, customer int, note varchar(50),
                     total numeric(10,2), created timestamp, status int);
INSERT INTO orders SELECT i, i % 1000, 'n', 1, '2024-01-01', 0
  FROM generate_series(1, 200000) i;
ALTER TABLE orders ADD CONSTRAINT orders_status_nn CHECK (status IS NOT NULL);
ANALYZE orders;
SQL

# Each workload: a name and the statements of one repetition.
declare -A WL
WL[simple]="SELECT 1;"
WL[migration]="ALTER TABLE orders ADD COLUMN x int DEFAULT 0; \
ALTER TABLE orders ALTER COLUMN status SET NOT NULL; \
ALTER TABLE orders ALTER COLUMN note TYPE varchar(100); \
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer ON orders (customer); \
UPDATE orders SET status = 1 WHERE id < 1000;"
declare -A PER
PER[simple]=1
PER[migration]=5

run() {
    # $1 workload, $2 mode (input|call); prints seconds for N statements
    local reps=$((N / PER[$1])) sql
    if [ "$2" = input ]; then
        sql="SELECT count(*) FROM moltres_ops.lint(repeat(\$q\$${WL[$1]} \$q\$, $reps));"
    else
        sql="SELECT count(*) FROM unnest(array_fill(\$q\$${WL[$1]}\$q\$::text, ARRAY[$reps])) s, moltres_ops.lint(s);"
    fi
    psql_b -c "SET lock_timeout = '1s'" -c '\timing on' -c "$sql" |
        sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | awk '{printf "%.3f\n", $1 / 1000}'
}

say "lint throughput, N=$N statements per run, median of $ROUNDS runs"
printf '%-10s %-6s %10s %14s\n' workload mode seconds statements/s
status=0
for w in simple migration; do
    for mode in input call; do
        secs=$(for r in $(seq "$ROUNDS"); do run "$w" "$mode"; done | median)
        rate=$(awk -v n="$N" -v s="$secs" 'BEGIN {printf "%.0f", n / s}')
        printf '%-10s %-6s %10s %14s\n' "$w" "$mode" "$secs" "$rate"
        if [ "$w" = simple ] && [ "$rate" -lt "$MIN_RATE" ]; then
            echo "simple statements ($mode) below $MIN_RATE per second" >&2
            status=1
        fi
    done
done
as_user pg_ctl -D "$base" -w stop >/dev/null
exit $status
