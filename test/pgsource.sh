#!/usr/bin/env bash
# PostgreSQL upstream sources from Debian's source packages, for the tests
# that need a server Debian 12 has no binary package of (the versions
# matrix) or PostgreSQL's own regression suite (the core-suite comparison).
#
# apt runs with a private source list and private package lists under the
# cache directory, so the machine's own apt configuration is never changed.
# Downloads are kept in $MO_CACHE/src, so a second run fetches nothing.
#
#   mo_pg_source MAJOR      prints the path of the upstream tarball of the
#                           newest Debian source of postgresql-MAJOR, or
#                           prints why not on stderr and returns 1 (a
#                           version Debian does not serve is skipped by the
#                           caller with a clear line, never passed).

MO_CACHE=${MO_CACHE:-/var/cache/moltres_ops}

mo_pg_source() {
    local major=$1 dir lists opts tarball
    dir="$MO_CACHE/src"
    lists="$MO_CACHE/apt-lists"
    mkdir -p "$dir" "$lists/partial" || return 1
    tarball=$(ls "$dir"/postgresql-"$major"_*.orig.tar.* 2>/dev/null | sort -V | tail -n 1)
    if [ -n "$tarball" ]; then
        echo "$tarball"
        return 0
    fi
    cat > "$MO_CACHE/deb-src.sources" <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm trixie sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    opts=(-o "Dir::Etc::SourceList=$MO_CACHE/deb-src.sources"
          -o "Dir::Etc::SourceParts=/nonexistent"
          -o "Dir::State::Lists=$lists"
          -o "APT::Sandbox::User=root")
    if ! apt-get "${opts[@]}" -qq update >"$MO_CACHE/apt-update.log" 2>&1; then
        echo "apt-get update of the Debian source lists failed (see $MO_CACHE/apt-update.log)" >&2
        return 1
    fi
    if ! (cd "$dir" && apt-get "${opts[@]}" -qq source --download-only "postgresql-$major") \
            >"$MO_CACHE/apt-source-$major.log" 2>&1; then
        echo "Debian does not serve the source of postgresql-$major now:" \
             "$(grep -m1 -E '^E:' "$MO_CACHE/apt-source-$major.log" || echo unknown)" >&2
        rm -f "$dir"/postgresql-"$major"_*
        return 1
    fi
    tarball=$(ls "$dir"/postgresql-"$major"_*.orig.tar.* 2>/dev/null | sort -V | tail -n 1)
    [ -n "$tarball" ] || { echo "no upstream tarball in the source of postgresql-$major" >&2; return 1; }
    echo "$tarball"
}
