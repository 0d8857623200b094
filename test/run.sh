#!/usr/bin/env bash
# `make test`: everything that proves moltres_ops works, from a fresh Debian
# machine, on every PostgreSQL major version it can get.  Installs missing
# packages; for each version builds with -Werror, installs into a private
# copy of the server, and runs pg_regress, isolation and TAP tests as an
# unprivileged user in a scratch copy of the tree.  Prints one line per
# version and a closing line over all of them:
#
#   moltres_ops: N passed, N failed
#
# and exits non-zero on any failure, printing what differed.
#
# Versions: 15 from Debian's binary packages; 17 and 18 built from Debian's
# source packages (test/pgbuild.sh, cached under /var/cache/moltres_ops, so
# only the first run builds).  A version whose source Debian does not serve
# now is reported as "skipped: <why>" and counts as neither passed nor
# failed.
#
# Environment: PG=18 (or PG="15 18") runs those versions only (`make test
# PG=18`); PROVE_TESTS=test/t/NNN_x.pl to run some TAP tests only;
# MO_SKIP_TAP=1 / MO_SKIP_REGRESS=1 to skip a kind; MO_KEEP=1 keeps the
# scratch directory (results of new tests are there, to review and copy to
# expected/); MO_SCRATCH=DIR puts the scratch directory in DIR, not /tmp.

source "$(dirname "$0")/lib.sh"
source "$MO_ROOT/test/pgbuild.sh"

mo_install_packages
mo_ensure_user

# One port reservation directory for the TAP tests of every run on this
# machine: a node that restarts frees its port for a moment, and a run of
# another checkout (whose reservations PostgreSQL::Test::Cluster would
# otherwise keep in its own tree) must not take it meanwhile.
export PG_TEST_PORT_DIR=${PG_TEST_PORT_DIR:-/tmp/moltres_tap_ports}
mkdir -p "$PG_TEST_PORT_DIR"
chmod 1777 "$PG_TEST_PORT_DIR" 2>/dev/null || true

versions=${PG:-15 17 18}

mkdir -p "${MO_SCRATCH:-/tmp}"
work=$(mktemp -d "${MO_SCRATCH:-/tmp}/moltres_test.XXXXXX")
if [ "${MO_KEEP:-}" = 1 ]; then
    trap 'echo "scratch directory kept: $work (per version: pgNN/src/results, pgNN/src/output_iso/results, pgNN/src/test/nopreload/results)"' EXIT
else
    trap 'rm -rf "$work"' EXIT
fi
chmod 755 "$work"

# The bin directory of PostgreSQL $1: Debian's binary packages when they are
# installed with their server headers, else a build from Debian's source.
mo_pg_bindir() {
    local major=$1 deb="/usr/lib/postgresql/$1/bin"
    if [ -x "$deb/pg_config" ] && [ -f "$("$deb/pg_config" --includedir-server)/postgres.h" ]; then
        echo "$deb"
        return 0
    fi
    mo_pg_build "$major"
}

# count_kind LOG EXPECTED: print "passed failed" for one pg_regress or
# isolation run.  Reads both result formats: 15's "test name ... ok" (and
# "     name ... ok" in a parallel group, "... FAILED"), and 16's TAP
# "ok N - name" / "not ok N - name" ("+" in a parallel group).  A test that
# did not report at all (the run stopped early) counts as failed.
count_kind() {
    local log=$1 expected=$2 ok bad
    ok=$(grep -cE '^((test|    ) +[A-Za-z0-9_-]+ +\.\.\. ok|ok +[0-9]+ +[-+] )' "$log" || true)
    bad=$(grep -cE '^((test|    ) +[A-Za-z0-9_-]+ +\.\.\. FAILED|not ok +[0-9]+ +[-+] )' "$log" || true)
    if [ $((ok + bad)) -lt "$expected" ]; then
        bad=$((expected - ok))
    fi
    echo "$ok $bad"
}

# count_tap LOG FILES: "passed failed" for one prove run of FILES scripts:
# every subtest run counts; a script listed in prove's summary report with
# no failed subtest (it died, exited non-zero or had no plan) counts one
# failure, and so does each script that never ran (a bail-out stops the
# run); without prove's "Files=" line at all, each script counts one.
count_tap() {
    local log=$1 files=$2
    if ! grep -qE '^Files=[0-9]+, Tests=' "$log"; then
        echo "0 $files"
        return
    fi
    awk -v files="$files" '
        /^Files=[0-9]+, Tests=[0-9]+,/ {
            split($0, a, /[=,]/); ran = a[2] + 0; total = a[4] + 0
        }
        /^test\/t\/.*\(Wstat: [0-9]+.*Tests: [0-9]+ Failed: [0-9]+\)/ {
            match($0, /Failed: [0-9]+/)
            n = substr($0, RSTART + 8, RLENGTH - 8) + 0
            bad += (n > 0 ? n : 1); subtests_bad += n
        }
        END {
            missing = files - ran; if (missing < 0) missing = 0
            print total - subtests_bad, bad + missing
        }' "$log"
}

# run_version MAJOR BINDIR: build, install and run every kind of test against
# one server; sets v_passed, v_failed and v_name.
run_version() {
    local major=$1 bindir=$2 dir="$work/pg$1" t p f rc expected
    PG_CONFIG="$bindir/pg_config"
    v_name="PostgreSQL $("$PG_CONFIG" --version | sed 's/^PostgreSQL //')"
    v_passed=0
    v_failed=0
    # A scratch copy owned by the test user (pg_regress and prove write
    # results next to the sources), built there with -Werror, and a private
    # server installation with the extension in it, so that nothing is
    # installed system-wide to run the tests.
    mkdir -p "$dir/src"
    tar -C "$MO_ROOT" --exclude=./.git --exclude='./tmp_check*' --exclude=./results \
        --exclude='*.o' --exclude='*.bc' --exclude='*.so' -cf - . | tar -C "$dir/src" -xf -
    say "$v_name: building (-Wall -Werror)"
    if ! make -C "$dir/src" -s PG_CONFIG="$PG_CONFIG" WERROR=1 >"$dir/build.log" 2>&1; then
        cat "$dir/build.log"
        echo "$v_name: the build failed"
        v_failed=1
        return
    fi
    say "$v_name: installing into a private copy of the server under $dir/inst"
    PG_BINDIR=$(mo_private_install "$dir/inst" "$dir/src")
    PG_CONFIG="$PG_BINDIR/pg_config"
    export PG_BINDIR PG_CONFIG
    is_root && chown -R "$MO_USER" "$dir"
    chmod 755 "$dir"

    local targets=()
    [ "${MO_SKIP_REGRESS:-}" = 1 ] || targets+=(installcheck-pgregress installcheck-nopreload installcheck-isolation)
    [ "${MO_SKIP_TAP:-}" = 1 ] || targets+=(installcheck-tap)
    for t in "${targets[@]}"; do
        say "$v_name: make $t"
        extra=()
        [ -n "${PROVE_TESTS:-}" ] && extra+=(PROVE_TESTS="$PROVE_TESTS")
        rc=0
        as_user make -C "$dir/src" -s PG_CONFIG="$PG_CONFIG" "$t" "${extra[@]}" >"$dir/$t.log" 2>&1 || rc=$?
        cat "$dir/$t.log"
        case $t in
            installcheck-pgregress)
                expected=$(ls "$MO_ROOT"/sql/*.sql | grep -vc '/moltres_ops--' || true)
                read -r p f < <(count_kind "$dir/$t.log" "$expected") ;;
            installcheck-nopreload)
                expected=$(ls "$MO_ROOT"/test/nopreload/sql/*.sql | wc -l)
                read -r p f < <(count_kind "$dir/$t.log" "$expected") ;;
            installcheck-isolation)
                expected=$(ls "$MO_ROOT"/test/specs/*.spec | wc -l)
                read -r p f < <(count_kind "$dir/$t.log" "$expected") ;;
            installcheck-tap)
                if [ -n "${PROVE_TESTS:-}" ]; then
                    expected=$(wc -w <<<"$PROVE_TESTS")
                else
                    expected=$(ls "$MO_ROOT"/test/t/*.pl | wc -l)
                fi
                read -r p f < <(count_tap "$dir/$t.log" "$expected") ;;
        esac
        # A kind that failed must never read as passed.
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
            echo "$v_name: make $t failed (exit $rc) without a failed test to show for it"
            f=1
        fi
        v_passed=$((v_passed + p))
        v_failed=$((v_failed + f))
    done

    if [ "$v_failed" -gt 0 ]; then
        say "$v_name: FAILED: differences and logs follow"
        for f in "$dir"/src/regression.diffs "$dir"/src/output_iso/regression.diffs "$dir"/src/test/nopreload/regression.diffs; do
            [ -s "$f" ] && { echo "---- $f"; cat "$f"; }
        done
        for f in "$dir"/src/tmp_check/log/regress_log_*; do
            [ -f "$f" ] || continue
            if grep -q '^not ok' "$f"; then echo "---- $f (last 80 lines)"; tail -n 80 "$f"; fi
        done
    fi
}

lines=()
passed=0
failed=0
for major in $versions; do
    say "PostgreSQL $major: finding the server (Debian's packages, or a build from Debian's source: about 10 minutes the first time, cached after)"
    if ! bindir=$(mo_pg_bindir "$major" 2>"$work/why-$major"); then
        lines+=("PostgreSQL $major: skipped: $(grep -v '^building ' "$work/why-$major" | head -n 1)")
        continue
    fi
    cat "$work/why-$major"
    run_version "$major" "$bindir"
    lines+=("$v_name: $v_passed passed, $v_failed failed")
    passed=$((passed + v_passed))
    failed=$((failed + v_failed))
done

echo
for l in "${lines[@]}"; do echo "$l"; done
echo "moltres_ops: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
