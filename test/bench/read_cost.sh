#!/usr/bin/env bash
# Cost of reading the statistics: instructions per entry to read
# moltres_ops' query_stats against pg_stat_statements' view, each at its
# defaults, counted by valgrind's callgrind on a single-user backend
# (postgres --single) as in callgrind.sh, with tables of each size in
# SIZES entries, measured in the same run.
#
# For each library and size, a data directory is filled by a normal server
# with that many distinct statements (bench_distinct_statements in
# common.sh) and stopped cleanly, so that its statistics file holds them;
# then two single-user runs from
# fresh copies of it read the view once and 1 + READS times:
#     SELECT count(*) FROM (SELECT * FROM <view> OFFSET 0) s;
# The difference divided by READS and by the entries read is the cost of
# one entry (start-up, loading the file and shutdown cancelled).  For
# moltres_ops the view (which joins pg_roles and pg_database for names)
# and its function query_stats_internal(true) alone are both counted;
# pg_stat_statements' view is its function.
#
#   test/bench/read_cost.sh
#   SIZES="1000 4900" READS=4 test/bench/read_cost.sh
#
# Sizes stay below 5,000 so that neither library evicts.  Results go to
# $BENCH_DIR/read_cost.txt.

source "$(dirname "$0")/common.sh"

SIZES=${SIZES:-"1000 4900"}
READS=${READS:-2}

bench_setup
sock="$BENCH_DIR"
port=${PORT:-54404}
results="$BENCH_DIR/read_cost.txt"
: >"$results"

psql_q() { as_user psql -X -A -t -q -h "$sock" -p "$port" -U postgres -d postgres "$@"; }

# The data directory of configuration $1 with $2 statements recorded.
fill() {
    local cfg=$1 size=$2 data="$BENCH_DIR/data.$1.$2"
    bench_conf "$cfg" | bench_initdb "$data" "$port"
    as_user pg_ctl -D "$data" -l "$BENCH_DIR/server.log" -w start >/dev/null
    case "$cfg" in
        pgss) psql_q -c "CREATE EXTENSION pg_stat_statements" ;;
        moltres) psql_q -c "CREATE EXTENSION moltres_ops" ;;
    esac
    bench_distinct_statements "$BENCH_DIR/stmts.$size.sql" "$size"
    psql_q -f "$BENCH_DIR/stmts.$size.sql" >/dev/null
    as_user pg_ctl -D "$data" -w stop >/dev/null
}

# Instructions of a single-user run on a copy of $1 reading view $2 $3 times.
count() {
    local data=$1 view=$2 n=$3 dir="$BENCH_DIR/single" i
    rm -rf "$dir"
    as_user cp -a "$data" "$dir"
    for ((i = 0; i < n; i++)); do
        echo "SELECT count(*) FROM (SELECT * FROM $view OFFSET 0) s;"
    done >"$BENCH_DIR/reads.sql"
    is_root && chown "$MO_USER" "$BENCH_DIR/reads.sql"
    as_user valgrind --tool=callgrind --callgrind-out-file="$dir.out" \
        postgres --single -D "$dir" postgres <"$BENCH_DIR/reads.sql" >"$dir.stdout" 2>"$dir.err"
    sed -nE 's/^(summary|totals): ([0-9]+).*/\2/p' "$dir.out" | head -1
    rm -rf "$dir" "$dir.out"
}

# Entries the view $2 returns in the data directory $1 (single user).
rows() {
    local dir="$BENCH_DIR/single"
    rm -rf "$dir"
    as_user cp -a "$1" "$dir"
    echo "SELECT count(*) AS n FROM $2;" | as_user postgres --single -D "$dir" postgres 2>/dev/null \
        | sed -nE 's/^[[:space:]]*1: n = "([0-9]+)".*/\1/p'
    rm -rf "$dir"
}

say "callgrind: instructions per entry read, $READS extra reads per size"
declare -A per
for size in $SIZES; do
    for cfg in pgss moltres; do
        fill "$cfg" "$size"
        case "$cfg" in
            pgss) views="pg_stat_statements" ;;
            moltres) views="moltres_ops.query_stats moltres_ops.query_stats_internal(true)" ;;
        esac
        for view in $views; do
            n=$(rows "$BENCH_DIR/data.$cfg.$size" "$view")
            a=$(count "$BENCH_DIR/data.$cfg.$size" "$view" 1)
            b=$(count "$BENCH_DIR/data.$cfg.$size" "$view" $((1 + READS)))
            per[$view.$size]=$(( (b - a) / READS / n ))
            printf '%-42s %5d entries %8d instructions per entry  (runs: %d, %d)\n' \
                "$view" "$n" "${per[$view.$size]}" "$a" "$b" | tee -a "$results"
        done
        rm -rf "$BENCH_DIR/data.$cfg.$size"
    done
    for view in moltres_ops.query_stats "moltres_ops.query_stats_internal(true)"; do
        awk -v m="${per[$view.$size]}" -v p="${per[pg_stat_statements.$size]}" -v v="$view" -v s="$size" \
            'BEGIN {printf "ratio %s / pg_stat_statements at %d: %.2f (%s)\n", v, s, m / p, m <= p ? "goal met" : "goal NOT met"}' \
            | tee -a "$results"
    done
done
echo "results: $results"
