#!/usr/bin/env bash
# `make test-core-suite`: PostgreSQL's own core regression suite
# (src/test/regress of the Debian source of the installed major version)
# run twice, on a server without moltres_ops and on one with it preloaded
# at settings that run every hook, and the two runs compared: a test passes
# when its status (ok / FAILED) and its result file (results/NAME.out) are
# identical in both runs.  This proves the product's first promise: the
# extension never changes what an application sees.
#
# Comparing the two runs with each other, not with expected/, is stronger
# and independent of the machine: a test that fails on its own here (a
# locale, a minor-version difference between the Debian source and the
# installed server) fails identically on both servers and still counts.
#
# The settings of the moltres_ops server, and why (docs/testing.md):
#   track = all, track_utility = on     every statement, nested ones too
#   slow_query_ms = 0, log_slow = on    every statement is "slow": the slow
#   log_plan = json, log_format = json  log path, plan printing and the
#   log_parameters = on                 ring run for all of them
#   ddl_guard = off                     the DDL log and re-parse still run;
#                                       warn/block change the output by
#                                       design (a WARNING, a refusal)
#   compute_query_id = regress          on both servers: query ids are
#                                       computed, EXPLAIN VERBOSE hides them
#
# Environment: MO_CORE_SCHEDULE=serial runs the tests one at a time
# (default: parallel_schedule with its groups); MO_CORE_TESTS="a b c" runs
# only these tests (no schedule); MO_KEEP=1 keeps the scratch directory
# (both runs' results and server logs); MO_CACHE (default
# /var/cache/moltres_ops) holds the sources and the regress module.
# Exits non-zero when any test differs, and prints the differences.

source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/pgsource.sh"

mo_install_packages
mo_build
mo_ensure_user

major=$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
server_version=$("$PG_CONFIG" --version | awk '{print $2}')
tarball=$(mo_pg_source "$major") || { echo "core suite: no source of PostgreSQL $major (see above)" >&2; exit 1; }

# The suite and the regress module, once per (source, installed server):
# the test files come from the source; regress.so is built with PGXS
# against the installed server's headers, so it matches the server even
# when Debian's newest source is a minor version behind the binaries;
# pg_regress is the installed server's own (postgresql-server-dev).
suite="$MO_CACHE/core-suite/$(basename "$tarball" | sed 's/\.orig\.tar\..*//')-server-$server_version"
pg_regress="$(dirname "$("$PG_CONFIG" --pgxs)")/../test/regress/pg_regress"
if [ ! -f "$suite/ready" ]; then
    say "preparing the core suite from $(basename "$tarball") in $suite"
    rm -rf "$suite"
    mkdir -p "$suite/regress" "$suite/lib" "$suite/build"
    tar -C "$suite/regress" --wildcards --strip-components=4 -xf "$tarball" '*/src/test/regress/*'
    cp "$suite/regress/regress.c" "$suite/build/"
    printf 'MODULES = regress\nPGXS := $(shell $(PG_CONFIG) --pgxs)\ninclude $(PGXS)\n' > "$suite/build/Makefile"
    nice -n 10 make -C "$suite/build" -s PG_CONFIG="$PG_CONFIG" >/dev/null
    cp "$suite/build/regress.so" "$suite/lib/"
    # The triggers tests load contrib/spi's autoinc and refint from the
    # same directory as regress.so.
    for m in autoinc refint; do
        cp "$("$PG_CONFIG" --pkglibdir)/$m.so" "$suite/lib/"
    done
    chmod -R a+rX "$suite"
    touch "$suite/ready"
fi
[ -x "$pg_regress" ] || { echo "core suite: no pg_regress at $pg_regress (postgresql-server-dev-$major)" >&2; exit 1; }

work=$(mktemp -d /tmp/moltres_core.XXXXXX)
if [ "${MO_KEEP:-}" = 1 ]; then
    trap 'echo "scratch directory kept: $work"' EXIT
else
    trap 'for m in plain moltres_ops; do [ -f "$work/$m/data/postmaster.pid" ] && as_user pg_ctl -D "$work/$m/data" -m immediate stop >/dev/null 2>&1; done; rm -rf "$work"' EXIT
fi
mo_use_private_install "$work"

# Both runs use the same directories (run/, sock/) and port, so that no path
# or port can make their outputs differ; each run is then moved aside.
port=$((50000 + RANDOM % 10000))
schedule=(--schedule="$suite/regress/parallel_schedule")
[ "${MO_CORE_SCHEDULE:-}" = serial ] && schedule+=(--max-connections=1)
[ -n "${MO_CORE_TESTS:-}" ] && schedule=(${MO_CORE_TESTS})

run_suite() {
    local mode=$1 run="$work/run" data="$work/$1/data" start end
    as_user mkdir -p "$work/$mode" "$run" "$work/sock"
    as_user initdb -D "$data" --no-locale -E UTF8 -A trust --no-sync >"$work/$mode/initdb.log" 2>&1 \
        || { cat "$work/$mode/initdb.log"; return 1; }
    cat >> "$data/postgresql.conf" <<CONF
# like pg_regress --temp-instance
listen_addresses = ''
unix_socket_directories = '$work/sock'
port = $port
fsync = off
log_autovacuum_min_duration = 0
log_checkpoints = on
log_line_prefix = '%m %b[%p] %q%a '
log_lock_waits = on
log_temp_files = 128kB
max_prepared_transactions = 2
compute_query_id = regress
CONF
    if [ "$mode" = moltres_ops ]; then
        cat >> "$data/postgresql.conf" <<CONF
shared_preload_libraries = 'moltres_ops'
moltres_ops.track = all
moltres_ops.track_utility = on
moltres_ops.slow_query_ms = 0
moltres_ops.log_slow = on
moltres_ops.log_plan = json
moltres_ops.log_format = json
moltres_ops.log_parameters = on
moltres_ops.ddl_guard = off
CONF
    fi
    as_user pg_ctl -D "$data" -l "$work/$mode/server.log" -w -t 120 start >/dev/null \
        || { tail -n 30 "$work/$mode/server.log"; return 1; }
    say "core suite on the server $([ "$mode" = plain ] && echo without || echo with) moltres_ops"
    start=$(date +%s)
    (cd "$run" && as_user "$pg_regress" --bindir="$PG_BINDIR" --dlpath="$suite/lib" \
        --inputdir="$suite/regress" --outputdir="$run" --host="$work/sock" --port="$port" \
        --max-concurrent-tests=20 "${schedule[@]}") > "$work/$mode/pg_regress.out" 2>&1 || true
    end=$(date +%s)
    # pg_regress fails when a test differs from expected/: what counts here
    # is the comparison of the two runs, below.
    echo "($mode: $((end - start)) s, $(grep -cE '\.\.\. (ok|FAILED|failed)' "$work/$mode/pg_regress.out") tests run)"
    if [ "$mode" = moltres_ops ]; then
        # Evidence that the hooks ran: what the extension recorded.
        as_user psql -X -q -h "$work/sock" -p "$port" -d postgres -At -F ' ' -c "CREATE EXTENSION moltres_ops" \
            -c "SELECT 'tracked statements: ' || count(*) || ', calls: ' || sum(calls) || ', errors: ' || sum(errors) FROM moltres_ops.query_stats" \
            -c "SELECT 'slow_queries ring: ' || count(*) || ', ddl_log ring: ' || (SELECT count(*) FROM moltres_ops.ddl_log) FROM moltres_ops.slow_queries" \
            || true
        echo "slow-statement log lines with a plan: $(grep -c '"plan":{' "$work/$mode/server.log" || true)"
    fi
    as_user pg_ctl -D "$data" -w -t 120 stop >/dev/null
    mv "$run" "$work/$mode/run"
    rm -rf "$data"
}

run_suite plain || exit 1
run_suite moltres_ops || exit 1

# Per-test status from pg_regress's lines ("test x ... ok", "     x ... FAILED").
statuses() {
    sed -nE 's/^(test| ) +([A-Za-z0-9_.-]+) +\.\.\. +(ok|FAILED|failed \(ignored\)).*/\2 \3/p' "$1" | sed 's/failed (ignored)/ignored/'
}
statuses "$work/plain/pg_regress.out" | sort > "$work/plain/status"
statuses "$work/moltres_ops/pg_regress.out" | sort > "$work/moltres_ops/status"

say "comparing the results"
diffs="$work/core_suite.diffs"
: > "$diffs"
passed=0
failed=0
for t in $(cut -d' ' -f1 "$work/plain/status" "$work/moltres_ops/status" | sort -u); do
    a=$(awk -v t="$t" '$1 == t {print $2}' "$work/plain/status")
    b=$(awk -v t="$t" '$1 == t {print $2}' "$work/moltres_ops/status")
    fa="$work/plain/run/results/$t.out"
    fb="$work/moltres_ops/run/results/$t.out"
    if [ "$a" = "$b" ] && [ -f "$fa" ] && [ -f "$fb" ] && cmp -s "$fa" "$fb"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "DIFFERS: $t (without: ${a:-not run}, with moltres_ops: ${b:-not run})"
        { echo "==== $t (without: ${a:-not run}, with moltres_ops: ${b:-not run})"
          diff -u --label "without/$t.out" --label "with/$t.out" "$fa" "$fb" || true; } >> "$diffs"
    fi
done
# Tests that fail on both servers alike (against expected/): for information.
both=$(join "$work/plain/status" "$work/moltres_ops/status" | awk '$2 != "ok" && $3 != "ok" {print $1}' | xargs)
[ -z "$both" ] || echo "(failing against expected/ on both servers alike, so not a difference: $both)"
if [ "$failed" -gt 0 ]; then
    say "differences (without -> with moltres_ops)"
    cat "$diffs"
fi
echo "core suite: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
