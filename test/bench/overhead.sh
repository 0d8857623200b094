#!/usr/bin/env bash
# Throughput overhead of moltres_ops: pgbench select-only (-S -M prepared)
# against one data directory restarted with each configuration in turn,
# interleaved over several rounds (the order rotates every round) so that the
# drifts of a shared machine hit every configuration alike.  Prints each
# round, the medians, and the ratios moltres/none and moltres/pgss.
#
#   test/bench/overhead.sh
#   ROUNDS=9 DURATION=20 CLIENTS=2 CONFIGS="none pgss moltres" test/bench/overhead.sh
#
# Every setting of moltres_ops is at its default.  The server runs as the
# unprivileged user (see test/lib.sh); results go to $BENCH_DIR/overhead.txt.

source "$(dirname "$0")/common.sh"

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}
CLIENTS=${CLIENTS:-2}
SCALE=${SCALE:-10}
CONFIGS=${CONFIGS:-"none pgss moltres"}

bench_setup
data="$BENCH_DIR/data"
sock="$BENCH_DIR"
port=${PORT:-54400}

bench_initdb "$data" "$port" <<CONF
shared_buffers = 256MB
max_connections = 20
synchronous_commit = off
include_if_exists = 'bench_preload.conf'
CONF
pgctl() { as_user pg_ctl -D "$data" -l "$BENCH_DIR/server.log" -w "$@" >/dev/null; }
bench() { as_user pgbench -S -M prepared -c "$CLIENTS" -j "$CLIENTS" -n -h "$sock" -p "$port" -U postgres "$@" postgres 2>/dev/null; }

pgctl start
as_user pgbench -i -q -s "$SCALE" -h "$sock" -p "$port" -U postgres postgres >/dev/null 2>&1
pgctl stop

results="$BENCH_DIR/overhead.txt"
: >"$results"
say "pgbench -S -M prepared -c $CLIENTS -T $DURATION, $ROUNDS rounds, configurations: $CONFIGS"
for r in $(seq 1 "$ROUNDS"); do
    for cfg in $(rotate "$CONFIGS" $((r - 1))); do
        bench_conf "$cfg" >"$data/bench_preload.conf"
        is_root && chown "$MO_USER" "$data/bench_preload.conf"
        pgctl start
        bench -T 2 >/dev/null          # warm the buffer cache and the extension's table
        tps=$(bench -T "$DURATION" | sed -nE 's/^tps = ([0-9.]+) \(without initial connection time\)/\1/p')
        pgctl stop
        printf 'round %d %-8s %10.1f tps\n' "$r" "$cfg" "$tps" | tee -a "$results"
    done
done

say "medians"
declare -A med
for cfg in $CONFIGS; do
    med[$cfg]=$(awk -v c="$cfg" '$3 == c {print $4}' "$results" | median)
    printf 'median %-8s %10.1f tps\n' "$cfg" "${med[$cfg]}" | tee -a "$results"
done
if [ -n "${med[moltres]:-}" ]; then
    for base in none pgss; do
        [ -n "${med[$base]:-}" ] || continue
        awk -v a="${med[moltres]}" -v b="${med[$base]}" -v base="$base" \
            'BEGIN {printf "ratio of medians moltres/%s  %.3f\n", base, a / b}' | tee -a "$results"
        # The pair ran in the same round, close in time: its ratio is steadier.
        awk -v base="$base" '$3 == "moltres" {m[$2] = $4} $3 == base {b[$2] = $4}
            END {for (r in m) if ((r in b) && b[r] > 0) print m[r] / b[r]}' "$results" | median \
            | awk -v base="$base" '{printf "median per-round ratio moltres/%s  %.3f\n", base, $1}' | tee -a "$results"
    done
fi
echo "results: $results"
