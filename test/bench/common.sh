#!/usr/bin/env bash
# Shared by the benchmarks: a private installation of the server with the
# extension built from this checkout, owned by the unprivileged user, in a
# scratch directory ($MO_BENCH_DIR, or a new one under /tmp).

source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

bench_setup() {
    mo_install_packages
    mo_build
    mo_ensure_user
    if [ -n "${MO_BENCH_DIR:-}" ]; then
        BENCH_DIR=$MO_BENCH_DIR
    else
        BENCH_DIR=$(mktemp -d /tmp/moltres_bench.XXXXXX)
        # Keep only the results when the directory was ours to make.
        trap 'bench_cleanup' EXIT
    fi
    mkdir -p "$BENCH_DIR"
    say "installing into a private copy of the server under $BENCH_DIR/inst"
    rm -rf "$BENCH_DIR/inst"
    PG_BINDIR=$(mo_private_install "$BENCH_DIR/inst")
    PG_CONFIG="$PG_BINDIR/pg_config"
    export PG_BINDIR PG_CONFIG BENCH_DIR
    is_root && chown -R "$MO_USER" "$BENCH_DIR"
    chmod 755 "$BENCH_DIR"
}

# A fresh data directory $1 for a server on port $2, listening on the Unix
# socket in $BENCH_DIR only; further lines of configuration on stdin.
bench_initdb() {
    local data=$1 port=$2
    rm -rf "$data"
    as_user initdb -D "$data" -A trust -U postgres --no-sync >/dev/null
    {
        echo "port = $port"
        echo "listen_addresses = ''"
        echo "unix_socket_directories = '$BENCH_DIR'"
        echo "fsync = off"
        cat
    } >>"$data/postgresql.conf"
}

bench_cleanup() {
    [ -f "$BENCH_DIR/data/postmaster.pid" ] && as_user pg_ctl -D "$BENCH_DIR/data" -m immediate -w stop >/dev/null 2>&1
    rm -rf "$BENCH_DIR/inst" "$BENCH_DIR/data" "$BENCH_DIR"/single.*
}

# The configuration lines of each set-up that the benchmarks compare:
#   none     no library, compute_query_id at its default (off)
#   qid      no library, compute_query_id = on (what both libraries switch on)
#   pgss     pg_stat_statements at its defaults
#   moltres  moltres_ops at its defaults
#   moltres_noslow, moltres_nowaits  the same with the slow-query log, or
#            the wait sampler, off
#   both     both libraries
bench_conf() {
    case "$1" in
        none) echo "shared_preload_libraries = ''" ;;
        qid) printf "shared_preload_libraries = ''\ncompute_query_id = on\n" ;;
        pgss) echo "shared_preload_libraries = 'pg_stat_statements'" ;;
        moltres) echo "shared_preload_libraries = 'moltres_ops'" ;;
        moltres_noslow) printf "shared_preload_libraries = 'moltres_ops'\nmoltres_ops.slow_query_ms = -1\n" ;;
        moltres_nowaits) printf "shared_preload_libraries = 'moltres_ops'\nmoltres_ops.sample_interval = 0\n" ;;
        both) echo "shared_preload_libraries = 'pg_stat_statements, moltres_ops'" ;;
        *) echo "unknown configuration $1" >&2; exit 2 ;;
    esac
}

# The configurations in $1 (a word list) rotated left by $2 places.
rotate() {
    local -a a=($1)
    local n=${#a[@]} k=$(($2 % ${#a[@]})) i
    for ((i = 0; i < n; i++)); do printf '%s ' "${a[$(((i + k) % n))]}"; done
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) exit; if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# bench_distinct_statements FILE N: a SQL file of N statements with
# distinct query ids (column pairs of a 100-column table, up to 9,900),
# each three times, preceded by the table's creation; owned by the user
# who runs the servers.
bench_distinct_statements() {
    local out=$1 want=$2 n=0 i j q
    {
        echo "CREATE TABLE IF NOT EXISTS w ($(seq -s ', ' -f 'c%g int' 1 100));"
        for i in $(seq 1 100); do
            for j in $(seq 1 100); do
                [ "$i" = "$j" ] && continue
                [ $n -ge "$want" ] && break 2
                q="SELECT c$i, c$j, c1 + c2 AS total FROM w WHERE c$i = $n AND c3 IN (1, 2, 3) ORDER BY c$j LIMIT 10;"
                printf '%s\n%s\n%s\n' "$q" "$q" "$q"
                n=$((n + 1))
            done
        done
    } >"$out"
    is_root && chown "$MO_USER" "$out"
}
