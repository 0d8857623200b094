#!/usr/bin/env bash
# Path length of moltres_ops: instructions per statement, counted by
# valgrind's callgrind on a single-user backend (postgres --single), for each
# configuration.  Instruction counts do not depend on the load of the machine,
# so this figure is exact and repeatable where throughput swings.
#
# For each configuration, two runs from fresh copies of the same data
# directory execute N and 2N statements read from stdin; the difference
# divided by N is the cost of one statement, start-up and shutdown cancelled.
#
#   test/bench/callgrind.sh
#   N=2000 CONFIGS="none qid pgss moltres" STATEMENT="SELECT abalance FROM pgbench_accounts WHERE aid = %d;" test/bench/callgrind.sh
#
# STATEMENT is a printf format; %d becomes 1..N (so the query id is the same
# and the constants differ, as with a real application).

source "$(dirname "$0")/common.sh"

N=${N:-1000}
CONFIGS=${CONFIGS:-"none qid pgss moltres"}
STATEMENT=${STATEMENT:-"SELECT abalance FROM pgbench_accounts WHERE aid = %d;"}

bench_setup
base="$BENCH_DIR/data"
sock="$BENCH_DIR"
port=${PORT:-54401}

bench_initdb "$base" "$port" <<CONF
include_if_exists = 'bench_preload.conf'
CONF
as_user pg_ctl -D "$base" -l "$BENCH_DIR/server.log" -w start >/dev/null
as_user pgbench -i -q -s 1 -h "$sock" -p "$port" -U postgres postgres >/dev/null 2>&1
as_user pg_ctl -D "$base" -w stop >/dev/null

for n in "$N" $((2 * N)); do
    for ((i = 1; i <= n; i++)); do printf "$STATEMENT\n" "$i"; done >"$BENCH_DIR/stmts.$n.sql"
done
is_root && chown "$MO_USER" "$BENCH_DIR"/stmts.*.sql

# Instructions of one single-user run of $2 statements with configuration $1.
count() {
    local cfg=$1 n=$2 dir="$BENCH_DIR/single.$1.$2"
    rm -rf "$dir"
    as_user cp -a "$base" "$dir"
    bench_conf "$cfg" >"$dir/bench_preload.conf"
    is_root && chown "$MO_USER" "$dir/bench_preload.conf"
    as_user valgrind --tool=callgrind --callgrind-out-file="$dir.out" \
        postgres --single -D "$dir" postgres <"$BENCH_DIR/stmts.$n.sql" >/dev/null 2>"$dir.err"
    sed -nE 's/^(summary|totals): ([0-9]+).*/\2/p' "$dir.out" | head -1
    rm -rf "$dir"
}

results="$BENCH_DIR/callgrind.txt"
: >"$results"
say "callgrind, $N and $((2 * N)) statements: $(printf "$STATEMENT" 1)"
declare -A per
for cfg in $CONFIGS; do
    a=$(count "$cfg" "$N")
    b=$(count "$cfg" $((2 * N)))
    per[$cfg]=$(( (b - a) / N ))
    printf '%-8s %8d instructions per statement  (runs: %d, %d)\n' "$cfg" "${per[$cfg]}" "$a" "$b" | tee -a "$results"
done
if [ -n "${per[none]:-}" ]; then
    for cfg in $CONFIGS; do
        [ "$cfg" = none ] && continue
        printf 'added by %-8s %6d instructions per statement (%+.2f %%)\n' "$cfg" \
            $((per[$cfg] - per[none])) "$(awk -v a="${per[$cfg]}" -v b="${per[none]}" 'BEGIN {print 100 * (a - b) / b}')" \
            | tee -a "$results"
    done
fi
# Both libraries switch compute_query_id on; "qid" isolates that shared cost.
if [ -n "${per[qid]:-}" ]; then
    for cfg in pgss moltres both; do
        [ -n "${per[$cfg]:-}" ] || continue
        printf 'added by %-8s beyond the query id: %6d instructions per statement\n' "$cfg" \
            $((per[$cfg] - per[qid])) | tee -a "$results"
    done
fi
echo "results: $results"
