#!/usr/bin/env bash
# Restart cost with a full statistics table: how long a clean stop and the
# next start take, and how large the statistics file is, for moltres_ops
# and for pg_stat_statements, each at its defaults (5,000 statements),
# measured in the same run.
#
# Each library gets its own data directory, filled once with NSTMT distinct
# statements (a wide table, one statement per pair of columns, each run
# three times), so both tables hold the same statements.  Then, ROUNDS
# times and alternating the libraries, the server is stopped (fast
# shutdown: SIGINT, timed until the postmaster has exited, which includes
# writing the statistics file; Linux only, it reads /proc) and started again (timed until
# postmaster.pid says "ready", which includes loading it).  Prints every
# round, the medians, the file sizes, the ratios moltres_ops / pgss of the
# medians and the median of the per-round ratios.
#
#   test/bench/restart.sh
#   ROUNDS=9 NSTMT=4900 test/bench/restart.sh
#
# NSTMT stays below 5,000 so that neither library evicts (pg_stat_statements
# drops 5 % of its entries when full).  Results go to $BENCH_DIR/restart.txt.

source "$(dirname "$0")/common.sh"

ROUNDS=${ROUNDS:-5}
NSTMT=${NSTMT:-4900}
CONFIGS="pgss moltres"

bench_setup
sock="$BENCH_DIR"
port=${PORT:-54403}
results="$BENCH_DIR/restart.txt"
: >"$results"

psql_q() { as_user psql -X -A -t -q -h "$sock" -p "$port" -U postgres -d postgres "$@"; }
now_ns() { date +%s%N; }

# NSTMT statements, distinct query ids, each three times.
stmts="$BENCH_DIR/restart_stmts.sql"
bench_distinct_statements "$stmts" "$NSTMT"

entries_sql() {
    case "$1" in
        pgss) echo "SELECT count(*) FROM pg_stat_statements" ;;
        moltres) echo "SELECT entries FROM moltres_ops.stats_info" ;;
    esac
}
stat_file() {
    case "$1" in
        pgss) echo "$BENCH_DIR/data.pgss/pg_stat/pg_stat_statements.stat" ;;
        moltres) echo "$BENCH_DIR/data.moltres/pg_stat/moltres_ops_query_stats.stat" ;;
    esac
}

# Start the server of $1 without waiting in pg_ctl; print the ms until it
# is ready.
start_ms() {
    local data="$BENCH_DIR/data.$1" t0
    t0=$(now_ns)
    as_user pg_ctl -D "$data" -l "$BENCH_DIR/server.$1.log" start >/dev/null
    until [ -f "$data/postmaster.pid" ] && [ "$(sed -n 8p "$data/postmaster.pid" 2>/dev/null | tr -d ' ')" = ready ]; do
        sleep 0.001
    done
    echo $(( ($(now_ns) - t0) / 1000 ))
}

# Fast shutdown of the server of $1; print the ms until the postmaster is gone.
stop_ms() {
    local data="$BENCH_DIR/data.$1" pid t0
    pid=$(head -1 "$data/postmaster.pid")
    t0=$(now_ns)
    kill -INT "$pid"
    # gone, or a zombie that its new parent has not reaped yet
    while [ -e "/proc/$pid" ] && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]; do
        sleep 0.001
    done
    echo $(( ($(now_ns) - t0) / 1000 ))
}

for cfg in $CONFIGS; do
    say "$cfg: filling the table with $NSTMT statements"
    bench_conf "$cfg" | bench_initdb "$BENCH_DIR/data.$cfg" "$port"
    as_user pg_ctl -D "$BENCH_DIR/data.$cfg" -l "$BENCH_DIR/server.$cfg.log" -w start >/dev/null
    case "$cfg" in
        pgss) psql_q -c "CREATE EXTENSION pg_stat_statements" ;;
        moltres) psql_q -c "CREATE EXTENSION moltres_ops" ;;
    esac
    psql_q -f "$stmts" >/dev/null
    printf '%s entries: %s\n' "$cfg" "$(psql_q -c "$(entries_sql "$cfg")")" | tee -a "$results"
    as_user pg_ctl -D "$BENCH_DIR/data.$cfg" -w stop >/dev/null
done

say "$ROUNDS rounds of stop and start (times in microseconds)"
for r in $(seq 1 "$ROUNDS"); do
    for cfg in $(rotate "$CONFIGS" $((r - 1))); do
        s=$(start_ms "$cfg")
        n=$(psql_q -c "$(entries_sql "$cfg")")
        t=$(stop_ms "$cfg")
        size=$(stat -c %s "$(stat_file "$cfg")")
        printf 'round %d %-8s start %8d us  stop %8d us  entries %5d  file %9d bytes\n' \
            "$r" "$cfg" "$s" "$t" "$n" "$size" | tee -a "$results"
    done
done

say "medians"
declare -A st sp fs
for cfg in $CONFIGS; do
    st[$cfg]=$(awk -v c="$cfg" '$1 == "round" && $3 == c {print $5}' "$results" | median)
    sp[$cfg]=$(awk -v c="$cfg" '$1 == "round" && $3 == c {print $8}' "$results" | median)
    fs[$cfg]=$(awk -v c="$cfg" '$1 == "round" && $3 == c {print $13}' "$results" | median)
    printf 'median %-8s start %8.1f ms  stop %8.1f ms  file %10d bytes\n' "$cfg" \
        "$(awk -v v="${st[$cfg]}" 'BEGIN {print v / 1000}')" \
        "$(awk -v v="${sp[$cfg]}" 'BEGIN {print v / 1000}')" "${fs[$cfg]}" | tee -a "$results"
done
# The two libraries of one round ran back to back, so the ratio within a
# round is less exposed to the machine's drifts than the ratio of medians.
rstart=$(awk '$1 == "round" {s[$2 " " $3] = $5} END {for (k in s) {split(k, a, " "); if (a[2] == "moltres") print s[k] / s[a[1] " pgss"]}}' "$results" | median)
rstop=$(awk '$1 == "round" {s[$2 " " $3] = $8} END {for (k in s) {split(k, a, " "); if (a[2] == "moltres") print s[k] / s[a[1] " pgss"]}}' "$results" | median)
awk -v a="${st[moltres]}" -v b="${st[pgss]}" -v c="${sp[moltres]}" -v d="${sp[pgss]}" \
    -v e="${fs[moltres]}" -v f="${fs[pgss]}" -v rs="$rstart" -v rp="$rstop" 'BEGIN {
    printf "ratio of medians moltres_ops / pgss: start %.2f, stop %.2f, file %.2f\n", a / b, c / d, e / f
    printf "median of the per-round ratios:      start %.2f, stop %.2f\n", rs, rp
    printf "goal: start and stop within 10 %% of pgss (per-round ratios): %s\n", (rs <= 1.1 && rp <= 1.1) ? "met" : "NOT met"
}' | tee -a "$results"
echo "results: $results"
