#!/usr/bin/env bash
# Shared memory of moltres_ops at its defaults, side by side with
# pg_stat_statements at its defaults, measured in the same run on the same
# private installation.
#
# For each library a fresh data directory is started with only that library
# preloaded, and the server's own accounting is read:
#   - pg_shmem_allocations: every named allocation the library made (for
#     moltres_ops the areas "moltres_ops ...", for pg_stat_statements its
#     state and its hash table's directory; its entries are anonymous);
#   - for moltres_ops also its own report, shmem_usage (sum of the areas)
#     and stats_info.shmem_bytes, which must agree with the server's figure;
#   - the growth of the server's whole main segment (the "<anonymous>" and
#     free space included) against a server without any library.
# Each area of moltres_ops is listed, largest first.
#
#   test/bench/memory.sh
#   EXTRA="moltres_ops.max_statements = 10000" test/bench/memory.sh
#
# EXTRA: further configuration lines for both servers.  Results go to
# $BENCH_DIR/memory.txt.

source "$(dirname "$0")/common.sh"

EXTRA=${EXTRA:-}

bench_setup
sock="$BENCH_DIR"
port=${PORT:-54402}
results="$BENCH_DIR/memory.txt"
: >"$results"

psql_q() { as_user psql -X -A -t -q -h "$sock" -p "$port" -U postgres -d postgres -c "$1"; }

# Start a fresh server with configuration $1, run the SQL of $2 (one value
# per line expected), stop it.
measure() {
    local cfg=$1 sql=$2 data="$BENCH_DIR/data"
    { bench_conf "$cfg"; printf '%s\n' "$EXTRA"; } | bench_initdb "$data" "$port"
    as_user pg_ctl -D "$data" -l "$BENCH_DIR/server.$cfg.log" -w start >/dev/null
    psql_q "$sql"
    as_user pg_ctl -D "$data" -w stop >/dev/null
}

# Bytes of the main shared memory segment in use (named + anonymous).
segment_sql="SELECT sum(allocated_size) FROM pg_shmem_allocations WHERE name IS DISTINCT FROM '<free>'"

base=$(measure none "$segment_sql")

say "moltres_ops at its defaults"
moltres=$(measure moltres "
CREATE EXTENSION moltres_ops;
SELECT 'area ' || area || ' ' || bytes FROM moltres_ops.shmem_usage ORDER BY bytes DESC;
SELECT 'usage ' || sum(bytes) FROM moltres_ops.shmem_usage;
SELECT 'info ' || shmem_bytes FROM moltres_ops.stats_info;
SELECT 'server ' || sum(allocated_size) FROM pg_shmem_allocations WHERE name LIKE 'moltres_ops%';
SELECT 'segment ' || ($segment_sql);")
echo "$moltres" | awk '$1 == "area" {printf "  %-20s %12d bytes %8.2f MB\n", $2, $3, $3 / 1048576}' | tee -a "$results"
get() { echo "$moltres" | awk -v k="$1" '$1 == k {print $2}'; }
mo_usage=$(get usage)
mo_info=$(get info)
mo_server=$(get server)
mo_segment=$(get segment)

say "pg_stat_statements at its defaults"
pgss=$(measure pgss "
SELECT 'server ' || sum(allocated_size) FROM pg_shmem_allocations WHERE name LIKE 'pg_stat_statements%';
SELECT 'segment ' || ($segment_sql);")
pgss_server=$(echo "$pgss" | awk '$1 == "server" {print $2}')
pgss_segment=$(echo "$pgss" | awk '$1 == "segment" {print $2}')

say "shared memory at defaults"
mb() { awk -v b="$1" 'BEGIN {printf "%.2f MB", b / 1048576}'; }
{
    printf 'moltres_ops shmem_usage total     %12d bytes  %s\n' "$mo_usage" "$(mb "$mo_usage")"
    printf 'moltres_ops stats_info.shmem_bytes %11d bytes  %s\n' "$mo_info" "$(mb "$mo_info")"
    printf 'moltres_ops pg_shmem_allocations  %12d bytes  %s\n' "$mo_server" "$(mb "$mo_server")"
    printf 'moltres_ops segment growth        %12d bytes  %s\n' $((mo_segment - base)) "$(mb $((mo_segment - base)))"
    printf 'pgss        pg_shmem_allocations  %12d bytes  %s\n' "$pgss_server" "$(mb "$pgss_server")"
    printf 'pgss        segment growth        %12d bytes  %s\n' $((pgss_segment - base)) "$(mb $((pgss_segment - base)))"
    # pgss's hash entries are anonymous allocations: compare segment growth
    awk -v m=$((mo_segment - base)) -v p=$((pgss_segment - base)) 'BEGIN {printf "ratio moltres_ops / pgss (segment growth)  %.2f\n", m / p}'
    awk -v m="$mo_server" 'BEGIN {printf "goal: at most 16 MB: %s\n", (m <= 16 * 1048576) ? "met" : "NOT met"}'
    [ "$mo_usage" = "$mo_server" ] && [ "$mo_info" = "$mo_server" ] \
        && echo "shmem_usage and stats_info agree with the server's accounting" \
        || echo "MISMATCH: shmem_usage $mo_usage, stats_info $mo_info, server $mo_server"
} | tee -a "$results"
echo "results: $results"
