#!/usr/bin/env bash
# A PostgreSQL server built from Debian's upstream source, for the versions
# Debian 12 has no binary package of (the versions matrix of `make test`).
#
# Only the pieces the tests use are built and installed: the server and
# PL/pgSQL, the client programs (psql, pg_ctl, initdb, pg_basebackup,
# pgbench, pg_dump), libpq, pg_config, the server headers and PGXS,
# pg_regress, the isolation tester, the TAP perl modules, and
# contrib/pg_stat_statements and contrib/dblink.
#
# The installation is cached under $MO_CACHE/pg-<version> (for example
# /var/cache/moltres_ops/pg-18.6), keyed by the upstream version, so a
# second run builds nothing.  The file READY is written last: a directory
# without it is an interrupted build and is rebuilt.  A lock file serialises
# two checkouts that build the same version at once.
#
#   mo_pg_build MAJOR       prints the bin directory of the cached build of
#                           the newest Debian source of postgresql-MAJOR,
#                           building it first when needed; or prints why not
#                           on stderr and returns 1.

source "$(dirname "${BASH_SOURCE[0]}")/pgsource.sh"

mo_pg_build() {
    local major=$1 tarball version prefix build log rc
    tarball=$(mo_pg_source "$major") || return 1
    version=$(basename "$tarball")
    version=${version#postgresql-"$major"_}
    version=${version%%.orig.tar.*}
    prefix="$MO_CACHE/pg-$version"
    if [ -f "$prefix/READY" ]; then
        echo "$prefix/bin"
        return 0
    fi
    log="$MO_CACHE/build-$version.log"
    echo "building PostgreSQL $version from Debian's source into $prefix (log: $log)" >&2
    (
        flock 9
        # Someone else may have finished it while we waited for the lock.
        [ -f "$prefix/READY" ] && exit 0
        exec >"$log" 2>&1
        # Called from `make test`, we inherit the outer make's MAKELEVEL and
        # MAKEFLAGS; PostgreSQL's build generates its headers only at make
        # level 0, and must not take the outer command-line variables.
        unset MAKELEVEL MAKEFLAGS MFLAGS MAKEOVERRIDES
        build="$MO_CACHE/build-$version"
        rm -rf "$build" "$prefix"
        mkdir -p "$build" || exit 1
        tar -C "$build" --strip-components=1 -xf "$tarball" || exit 1
        cd "$build" || exit 1
        # readline is for interactive psql only; ICU is not needed by the tests.
        ./configure --prefix="$prefix" --enable-tap-tests --without-icu \
            --without-readline --quiet || exit 1
        # The top level builds src/ (server, PL/pgSQL, client programs,
        # pg_regress, the isolation tester, the TAP modules).
        nice -n 10 make -j2 -s || exit 1
        for c in pg_stat_statements dblink; do
            nice -n 10 make -j2 -s -C "contrib/$c" || exit 1
        done
        make -s install || exit 1
        for c in pg_stat_statements dblink; do
            make -s -C "contrib/$c" install || exit 1
        done
        for f in bin/pg_config bin/postgres bin/psql bin/pgbench bin/pg_dump \
                 bin/pg_basebackup lib/postgresql/pgxs/src/test/regress/pg_regress \
                 lib/postgresql/pgxs/src/test/isolation/pg_isolation_regress \
                 lib/postgresql/pgxs/src/test/perl/PostgreSQL/Test/Cluster.pm; do
            [ -e "$prefix/$f" ] || { echo "missing after install: $prefix/$f"; exit 1; }
        done
        cd / && rm -rf "$build"
        date -u +%FT%TZ > "$prefix/READY"
    ) 9>"$MO_CACHE/pg-$version.lock"
    rc=$?
    if [ $rc -ne 0 ] || [ ! -f "$prefix/READY" ]; then
        echo "building PostgreSQL $version failed (see $log):" >&2
        tail -n 20 "$log" >&2
        return 1
    fi
    echo "$prefix/bin"
}
