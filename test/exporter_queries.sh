#!/usr/bin/env bash
# `make exporter-queries`: regenerate contrib/postgres_exporter/moltres_ops.yaml
# from the metric catalogue (sql/install/65_metrics.sql) after changing it.
# Builds the extension, installs it into a private copy of the server in a
# scratch directory, starts a throwaway server as the unprivileged user,
# and writes the output of moltres_ops.postgres_exporter_queries().
# test/t/065_metrics.pl fails while the committed file differs.

source "$(dirname "$0")/lib.sh"

mo_install_packages
mo_ensure_user
mo_build
work=$(mktemp -d "${MO_SCRATCH:-/tmp}/moltres_queries.XXXXXX")
trap 'as_user pg_ctl -D "$work/data" -m immediate stop >/dev/null 2>&1; rm -rf "$work"' EXIT
mo_use_private_install "$work"
as_user initdb -D "$work/data" -A trust -U postgres --no-sync >/dev/null
cat >>"$work/data/postgresql.conf" <<CONF
shared_preload_libraries = 'moltres_ops'
listen_addresses = ''
unix_socket_directories = '$work'
CONF
as_user pg_ctl -D "$work/data" -l "$work/server.log" -w start >/dev/null
as_user psql -h "$work" -U postgres -d postgres -X -qAt -v ON_ERROR_STOP=1 \
    -c 'CREATE EXTENSION moltres_ops' \
    -c 'SELECT moltres_ops.postgres_exporter_queries()' \
    >"$MO_ROOT/contrib/postgres_exporter/moltres_ops.yaml"
say "wrote contrib/postgres_exporter/moltres_ops.yaml"
