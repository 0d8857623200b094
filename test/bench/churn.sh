#!/usr/bin/env bash
# Churn and eviction of moltres_ops against pg_stat_statements, each alone
# preloaded with the same server settings, in interleaved rounds (the order
# rotates every round) so that the drifts of a shared machine hit both alike.
#
# (a) Churn: a table of MAX entries (moltres_ops.max_statements and
#     pg_stat_statements.max), filled first, then CLIENTS pgbench clients
#     for DURATION s with mostly new statements: nine in ten are a query id
#     never seen (a CTE named after a random number: the CTE's name is part
#     of the query id, constants and aliases are not), one in ten is one of
#     HOT statements run again.  Statements/s, median and p99 latency, and
#     the statements that took over 10 ms, from pgbench's per-statement log.
# (b) Kept calls: a table of KEPT_MAX entries, one client runs KEPT_CALLS
#     statements drawn from 1.5 x KEPT_MAX distinct ones, for each of the
#     distributions in KEPT_DISTS (pgbench's random_<name>(1, n, parameter):
#     zipfian is steep, most calls go to a few statements; exponential:2 is
#     flat, a long middle of statements run a few times each), with a fixed
#     seed so that both libraries see the same sequence; then sum(calls)
#     still in the table over the calls issued: how well eviction keeps the
#     frequently run statements.
#
#   test/bench/churn.sh
#   ROUNDS=5 DURATION=30 CLIENTS=2 MAX=50000 KEPT_MAX=2000 KEPT_CALLS=30000 test/bench/churn.sh
#   CONFIGS="qid pgss moltres" test/bench/churn.sh
#   KEPT_DISTS=" " MAX=5000 test/bench/churn.sh           # (a) only
#
# With qid in CONFIGS, (a) also runs with no library (compute_query_id on):
# the statements over 10 ms there are the machine's own (scheduling on a
# busy machine), the floor against which the two libraries' stalls read;
# moltres_nowaits is moltres_ops with its wait sampler off (a process that
# wakes every 10 ms, which on a 2-core machine competes with the clients).
#
# Statistics are not saved across the restarts (save = off for both), so
# each round starts empty.  Results go to $BENCH_DIR/churn.txt.

source "$(dirname "$0")/common.sh"

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-20}
CLIENTS=${CLIENTS:-2}
MAX=${MAX:-50000}
HOT=${HOT:-1000}
KEPT_MAX=${KEPT_MAX:-2000}
KEPT_CALLS=${KEPT_CALLS:-30000}
KEPT_DISTS=${KEPT_DISTS:-"zipfian:1.01 exponential:2"}
SEED=${SEED:-20261203}
CONFIGS=${CONFIGS:-"pgss moltres"}

bench_setup
data="$BENCH_DIR/data"
sock="$BENCH_DIR"
port=${PORT:-54430}

bench_initdb "$data" "$port" <<CONF
shared_buffers = 128MB
max_connections = 20
synchronous_commit = off
compute_query_id = on
pg_stat_statements.save = off
moltres_ops.save = off
include_if_exists = 'bench_preload.conf'
CONF
pgctl() { as_user pg_ctl -D "$data" -l "$BENCH_DIR/server.log" -w "$@" >/dev/null; }
psql_b() { as_user psql -X -q -At -h "$sock" -p "$port" -U postgres -d postgres "$@"; }
pgbench_b() { as_user pgbench -n -h "$sock" -p "$port" -U postgres "$@" postgres; }

# Preload configuration $1 with a table of $2 entries.
use_conf() {
    case "$1" in
        pgss) printf "shared_preload_libraries = 'pg_stat_statements'\npg_stat_statements.max = %d\n" "$2" ;;
        moltres) printf "shared_preload_libraries = 'moltres_ops'\nmoltres_ops.max_statements = %d\n" "$2" ;;
        moltres_nowaits) printf "shared_preload_libraries = 'moltres_ops'\nmoltres_ops.max_statements = %d\nmoltres_ops.sample_interval = 0\n" "$2" ;;
        qid) echo "shared_preload_libraries = ''" ;;
    esac >"$data/bench_preload.conf"
    is_root && chown "$MO_USER" "$data/bench_preload.conf"
    return 0
}

# Each library's view, for the kept calls.
kept_sql() {
    case "$1" in
        pgss) echo "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE 'WITH z\\_%'" ;;
        moltres) echo "SELECT coalesce(sum(calls), 0) FROM moltres_ops.query_stats WHERE query LIKE 'WITH z\\_%'" ;;
    esac
}

cat >"$BENCH_DIR/new.sql" <<'SQL'
\set n random(1, 2000000000)
WITH c_:n AS (SELECT :n AS a) SELECT a FROM c_:n;
SQL
cat >"$BENCH_DIR/hot.sql" <<SQL
\set n random(1, $HOT)
WITH h_:n AS (SELECT :n AS a) SELECT a FROM h_:n;
SQL
for d in $KEPT_DISTS; do
    cat >"$BENCH_DIR/kept.${d%%:*}.sql" <<SQL
\set n random_${d%%:*}(1, $((KEPT_MAX * 3 / 2)), ${d#*:})
WITH z_:n AS (SELECT :n AS a) SELECT a FROM z_:n;
SQL
done
is_root && chown "$MO_USER" "$BENCH_DIR"/*.sql

# Both extensions, so that each library's view exists when it is loaded.
for cfg in pgss moltres; do
    use_conf "$cfg" 100
    pgctl start
    case "$cfg" in
        pgss) psql_b -c 'CREATE EXTENSION pg_stat_statements' ;;
        moltres) psql_b -c 'CREATE EXTENSION moltres_ops' ;;
    esac
    pgctl stop
done

results="$BENCH_DIR/churn.txt"
: >"$results"
say "(a) churn: $MAX entries, $CLIENTS clients, $DURATION s, 9 in 10 statements new, $ROUNDS rounds"
for r in $(seq 1 "$ROUNDS"); do
    for cfg in $(rotate "$CONFIGS" $((r - 1))); do
        use_conf "$cfg" "$MAX"
        pgctl start
        # fill the table, so that every new statement evicts
        pgbench_b -M simple -c "$CLIENTS" -j "$CLIENTS" -t $((MAX * 6 / 5 / CLIENTS)) \
            -f "$BENCH_DIR/new.sql" >/dev/null 2>&1
        rm -f "$BENCH_DIR"/lat.*
        out=$(pgbench_b -M simple -c "$CLIENTS" -j "$CLIENTS" -T "$DURATION" \
            -f "$BENCH_DIR/new.sql@9" -f "$BENCH_DIR/hot.sql@1" \
            -l --log-prefix="$BENCH_DIR/lat" 2>&1)
        entries=$(case "$cfg" in
            pgss) psql_b -c 'SELECT count(*) FROM pg_stat_statements' ;;
            moltres*) psql_b -c 'SELECT entries FROM moltres_ops.stats_info' ;;
            *) echo 0 ;;
        esac)
        pgctl stop
        tps=$(sed -nE 's/^tps = ([0-9.]+) \(without initial connection time\)/\1/p' <<<"$out")
        # per-statement latency (us) is the third field of pgbench's log
        read -r med p99 over n < <(cat "$BENCH_DIR"/lat.* | awk '{print $3}' | sort -n |
            awk '{a[NR] = $1; if ($1 > 10000) o++}
                 END {printf "%d %d %d %d\n", a[int((NR + 1) / 2)], a[int(NR * 0.99 + 0.5)], o, NR}')
        printf 'round %d %-8s %9.1f stmt/s  median %5d us  p99 %6d us  over 10 ms %4d  (of %d; entries %d)\n' \
            "$r" "$cfg" "$tps" "$med" "$p99" "$over" "$n" "$entries" | tee -a "$results"
    done
done

say "(b) kept calls: $KEPT_MAX entries, $KEPT_CALLS calls over $((KEPT_MAX * 3 / 2)) statements"
for d in $KEPT_DISTS; do
    for cfg in pgss moltres; do
        use_conf "$cfg" "$KEPT_MAX"
        pgctl start
        pgbench_b -M simple -c 1 -t "$KEPT_CALLS" --random-seed="$SEED" \
            -f "$BENCH_DIR/kept.${d%%:*}.sql" >/dev/null 2>&1
        kept=$(psql_b -c "$(kept_sql "$cfg")")
        distinct=$(psql_b -c "$(kept_sql "$cfg" | sed 's/coalesce(sum(calls), 0)/count(*)/')")
        pgctl stop
        printf 'kept %-8s %-15s %7d of %d calls  %.3f  (%d statements in the table)\n' \
            "$cfg" "$d" "$kept" "$KEPT_CALLS" "$(awk -v k="$kept" -v n="$KEPT_CALLS" 'BEGIN {print k / n}')" \
            "$distinct" | tee -a "$results"
    done
done

say "medians and ratios moltres/pgss"
for cfg in $CONFIGS; do
    for col in 4 7 10 15; do
        awk -v c="$cfg" -v k=$col '$3 == c {print $k}' "$results" | median
    done | paste -sd' ' | awk -v c="$cfg" \
        '{printf "median %-8s %9.1f stmt/s  median %5d us  p99 %6d us  over 10 ms %4d\n", c, $1, $2, $3, $4}' \
        | tee -a "$results"
done
awk '$1 == "median" {tps[$2] = $3; med[$2] = $6; p99[$2] = $9; over[$2] = $14}
     $1 == "kept" {kept[$2, $3] = $4; dists[$3] = 1}
     END {
        if (tps["pgss"] > 0 && med["pgss"] > 0 && p99["pgss"] > 0)
            printf "ratio moltres/pgss  stmt/s %.3f  median latency %.3f  p99 latency %.3f\n",
                tps["moltres"] / tps["pgss"], med["moltres"] / med["pgss"], p99["moltres"] / p99["pgss"]
        for (d in dists)
            printf "ratio moltres/pgss  kept calls %-15s %.3f\n", d, kept["moltres", d] / kept["pgss", d]
        printf "statements over 10 ms (median per round): moltres %d, pgss %d", over["moltres"], over["pgss"]
        if ("qid" in over)
            printf ", no library %d", over["qid"]
        printf "\n"
     }' "$results" | tee -a "$results"
# The pair ran in the same round, close in time: its ratio is steadier.
awk '$3 == "moltres" {m[$2] = $4} $3 == "pgss" {b[$2] = $4}
    END {for (r in m) if ((r in b) && b[r] > 0) print m[r] / b[r]}' "$results" | median \
    | awk '{printf "median per-round ratio moltres/pgss stmt/s  %.3f\n", $1}' | tee -a "$results"
echo "results: $results"
