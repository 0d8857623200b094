#!/usr/bin/env bash
# Shared set-up for `make test` and `make demo`: packages, build, install,
# and the unprivileged OS user that runs the throwaway servers (PostgreSQL
# refuses to run as root).

set -euo pipefail

MO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MO_USER=${MO_USER:-moltres}
PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
export PG_CONFIG=${PG_CONFIG:-$PG_BINDIR/pg_config}
[ -x "$PG_CONFIG" ] || PG_CONFIG=$(command -v pg_config || echo /usr/lib/postgresql/15/bin/pg_config)

say() { printf '\n== %s\n' "$*"; }

is_root() { [ "$(id -u)" = 0 ]; }

# Install every package of test/packages.txt that is not installed yet.
mo_install_packages() {
    local missing=()
    while read -r pkg; do
        pkg=${pkg%%#*}; pkg=${pkg//[[:space:]]/}
        [ -n "$pkg" ] || continue
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done < "$MO_ROOT/test/packages.txt"
    [ ${#missing[@]} -eq 0 ] && return 0
    if ! is_root; then
        echo "missing Debian packages: ${missing[*]}" >&2
        echo "run as root (or: sudo apt-get install ${missing[*]})" >&2
        exit 1
    fi
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # Debian's postgresql package starts a cluster on 5432; tests use their own.
    if command -v pg_ctlcluster >/dev/null && pg_lsclusters -h 2>/dev/null | grep -q online; then
        pg_lsclusters -h | awk '$4 == "online" {print $1, $2}' | while read -r v c; do
            pg_ctlcluster "$v" "$c" stop || true
        done
    fi
    # npm packages the real-tool tests use, if any are listed.
    return 0
}

mo_build() {
    say "building (-Wall -Werror)"
    make -C "$MO_ROOT" -s PG_CONFIG="$PG_CONFIG" WERROR=1 >/dev/null
}

# Build with -Werror and install into the server's directories.
mo_build_install() {
    mo_build
    say "installing"
    if is_root || [ -w "$("$PG_CONFIG" --pkglibdir)" ]; then
        make -C "$MO_ROOT" -s PG_CONFIG="$PG_CONFIG" install >/dev/null
    else
        sudo make -C "$MO_ROOT" -s PG_CONFIG="$PG_CONFIG" install >/dev/null
    fi
}

# A private, relocated copy of the server installation under $1, with the
# extension installed into it: tests use it instead of the system
# directories, so several checkouts can be tested at once (like PostgreSQL's
# own tmp_install).  $2: the built source tree to install from (default:
# the checkout).  Prints the copy's bin directory.
mo_private_install() {
    local dest=$1 srcdir=${2:-$MO_ROOT} bindir sharedir incdir
    bindir=$("$PG_CONFIG" --bindir)
    sharedir=$("$PG_CONFIG" --sharedir)
    incdir=$("$PG_CONFIG" --includedir-server)
    mkdir -p "$dest$(dirname "$bindir")" "$dest$(dirname "$sharedir")" "$dest$(dirname "$(dirname "$incdir")")"
    cp -a "$(dirname "$bindir")/." "$dest$(dirname "$bindir")/"
    cp -a "$sharedir/." "$dest$sharedir/"
    ln -sfn "$(dirname "$incdir")" "$dest$(dirname "$incdir")"
    ln -sfn "$(dirname "$(dirname "$incdir")")/internal" "$dest$(dirname "$(dirname "$incdir")")/internal" 2>/dev/null || true
    make -C "$srcdir" -s PG_CONFIG="$PG_CONFIG" DESTDIR="$dest" install >/dev/null
    echo "$dest$bindir"
}

# Install into a private copy of the server under $1/inst, point PG_BINDIR
# and PG_CONFIG at it, and hand the scratch directory $1 to the test user.
mo_use_private_install() {
    local work=$1
    say "installing into a private copy of the server under $work/inst"
    PG_BINDIR=$(mo_private_install "$work/inst")
    PG_CONFIG="$PG_BINDIR/pg_config"
    export PG_BINDIR PG_CONFIG
    is_root && chown -R "$MO_USER" "$work"
    chmod 755 "$work"
}

# The unprivileged user that runs servers when we are root.
mo_ensure_user() {
    is_root || return 0
    id "$MO_USER" >/dev/null 2>&1 || useradd --system --create-home --shell /bin/bash "$MO_USER"
}

# Run a command as the unprivileged user (or as ourselves when not root),
# with $PG_BINDIR first on PATH.
as_user() {
    if is_root; then
        runuser -u "$MO_USER" -- env PATH="$PG_BINDIR:$PATH" PG_CONFIG="$PG_CONFIG" HOME="$(getent passwd "$MO_USER" | cut -d: -f6)" "$@"
    else
        env PATH="$PG_BINDIR:$PATH" PG_CONFIG="$PG_CONFIG" "$@"
    fi
}
