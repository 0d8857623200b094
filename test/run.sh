#!/usr/bin/env bash
# `make test`: everything that proves moltres_ops works, from a fresh Debian
# machine.  Installs missing packages, builds with -Werror, installs, then runs
# pg_regress, isolation and TAP tests as an unprivileged user in a scratch
# copy of the tree.  Exits non-zero on any failure and prints what differed.
#
# Environment: PROVE_TESTS=test/t/NNN_x.pl to run some TAP tests only;
# MO_SKIP_TAP=1 / MO_SKIP_REGRESS=1 to skip a kind; MO_KEEP=1 keeps the
# scratch directory (results of new tests are there, to review and copy to
# expected/).

source "$(dirname "$0")/lib.sh"

mo_install_packages
mo_build
mo_ensure_user

work=$(mktemp -d /tmp/moltres_test.XXXXXX)
if [ "${MO_KEEP:-}" = 1 ]; then
    trap 'echo "scratch directory kept: $work (results in $work/src/results, $work/src/output_iso/results, $work/src/test/nopreload/results)"' EXIT
else
    trap 'rm -rf "$work"' EXIT
fi
# A scratch copy owned by the test user (pg_regress and prove write results
# next to the sources), and a private server installation with the extension
# in it, so that nothing is installed system-wide to run the tests.
mkdir -p "$work/src"
tar -C "$MO_ROOT" --exclude=./.git --exclude='./tmp_check*' --exclude=./results \
    --exclude='*.o' --exclude='*.bc' --exclude='*.so' -cf - . | tar -C "$work/src" -xf -
mo_use_private_install "$work"

status=0
targets=()
[ "${MO_SKIP_REGRESS:-}" = 1 ] || targets+=(installcheck-pgregress installcheck-nopreload installcheck-isolation)
[ "${MO_SKIP_TAP:-}" = 1 ] || targets+=(installcheck-tap)

for t in "${targets[@]}"; do
    say "make $t"
    extra=()
    [ -n "${PROVE_TESTS:-}" ] && extra+=(PROVE_TESTS="$PROVE_TESTS")
    if ! as_user make -C "$work/src" -s PG_CONFIG="$PG_CONFIG" "$t" "${extra[@]}" 2>&1 | tee -a "$work/run.log"; then
        status=1
    fi
done

# One closing line over every kind: pg_regress and isolation tests count one
# each, TAP tests count their subtests.
passed=$(grep -cE '^(test|ok|     ) +[A-Za-z0-9_-]+ +\.\.\. ok' "$work/run.log" || true)
failed=$(grep -cE '\.\.\. FAILED|^diff command failed' "$work/run.log" || true)
tap_total=$(sed -nE 's/^Files=[0-9]+, Tests=([0-9]+),.*/\1/p' "$work/run.log" | awk '{s+=$1} END {print s+0}')
tap_failed=$(sed -nE 's/^.*Failed ([0-9]+)\/[0-9]+ subtests.*/\1/p' "$work/run.log" | awk '{s+=$1} END {print s+0}')
tap_dubious=$(grep -cE '^test/t/.*(Dubious|No subtests run)' "$work/run.log" || true)
passed=$((passed + tap_total - tap_failed))
failed=$((failed + tap_failed + tap_dubious))

[ "$failed" -gt 0 ] && status=1
if [ $status -ne 0 ]; then
    say "FAILED: differences and logs follow"
    for f in "$work"/src/regression.diffs "$work"/src/output_iso/regression.diffs "$work"/src/test/nopreload/regression.diffs; do
        [ -s "$f" ] && { echo "---- $f"; cat "$f"; }
    done
    for f in "$work"/src/tmp_check/log/regress_log_*; do
        [ -f "$f" ] || continue
        if grep -q '^not ok' "$f"; then echo "---- $f (last 80 lines)"; tail -n 80 "$f"; fi
    done
    echo "moltres_ops: $passed passed, $failed failed"
    exit 1
fi
echo "moltres_ops: $passed passed, $failed failed"
