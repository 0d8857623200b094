-- moltres_ops install script, part 60: health checks and metrics.
--
-- health() answers "what is wrong right now" against the alert thresholds
-- (moltres_ops.health_* settings); metrics and prometheus() give the same
-- numbers in the shape dashboards and Prometheus expect.  Everything runs
-- with the caller's privileges and reads the other areas' views; checks that
-- need shared memory say so instead of failing when the library is not
-- preloaded.

-- The numeric value of a setting in its base unit (pg_settings.setting),
-- whatever unit SHOW would print it with (src/guc.c: cheap enough to read
-- thirty thresholds per evaluation).
CREATE FUNCTION _setting(name text)
RETURNS float8
AS 'MODULE_PATHNAME', 'moltres_ops_setting_value'
LANGUAGE C STRICT STABLE PARALLEL SAFE;

-- ok below the threshold, warn at it, critical at twice it.
CREATE FUNCTION _health_status(value float8, threshold float8)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN $1 IS NULL THEN 'ok'
                WHEN $1 >= 2 * $2 THEN 'critical'
                WHEN $1 >= $2 THEN 'warn'
                ELSE 'ok' END
$$;

-- ok while above the threshold, warn below it, critical below half of it
-- (free space).
CREATE FUNCTION _health_status_below(value float8, threshold float8)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN $1 IS NULL THEN 'ok'
                WHEN $1 < $2 / 2 THEN 'critical'
                WHEN $1 < $2 THEN 'warn'
                ELSE 'ok' END
$$;

-- A share of a hard limit (sequence range, 2^31 transaction IDs): warn at
-- the threshold, critical halfway between it and 100 %.
CREATE FUNCTION _health_status_pct(value float8, threshold float8)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN $1 IS NULL THEN 'ok'
                WHEN $1 >= $2 + (100 - $2) / 2 THEN 'critical'
                WHEN $1 >= $2 THEN 'warn'
                ELSE 'ok' END
$$;

-- Free space of the file systems under the data directory, pg_wal and each
-- tablespace, read with statvfs() (src/disk_usage.c).
CREATE FUNCTION _disk_usage(
    OUT spcoid oid,
    OUT location text,
    OUT path text,
    OUT size_bytes bigint,
    OUT free_bytes bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'moltres_ops_disk_usage'
LANGUAGE C STRICT VOLATILE;

-- health_evaluate: every check, evaluated now with this session's
-- thresholds.  The health worker calls it on an interval; health() reads
-- what the worker kept.  Per-database checks (sequences, invalid indexes,
-- autovacuum, the relation holding back wraparound) look at the current
-- database; the others at the whole instance.
CREATE FUNCTION health_evaluate(
    OUT name text,
    OUT status text,
    OUT value float8,
    OUT threshold float8,
    OUT detail text)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    slots       int;
    used        int;
    n_active    int;
    n_idle      int;
    n_idle_tx   int;
    warn_pct    float8 := @extschema@._setting('moltres_ops.health_utilization_warn_pct');
    crit_pct    float8 := @extschema@._setting('moltres_ops.health_utilization_critical_pct');
    lat         record;
    oldest      record;
    r           record;
    t           float8;
    t2          float8;
    n           bigint;
    msg         text;
    q_pid       int;
    q_rel       text;
    q_behind    bigint;
    standby     boolean := pg_is_in_recovery();
    preloaded   boolean := @extschema@.preloaded();
    no_preload  constant text :=
        'needs moltres_ops in shared_preload_libraries (add it and restart the server)';
BEGIN
    -- Connection utilisation against the slots a client can use.
    slots := current_setting('max_connections')::int - @extschema@.connection_slots_reserved();
    SELECT count(*),
           count(*) FILTER (WHERE a.state = 'active'),
           count(*) FILTER (WHERE a.state = 'idle'),
           count(*) FILTER (WHERE a.state LIKE 'idle in transaction%')
      INTO used, n_active, n_idle, n_idle_tx
      FROM pg_stat_activity a WHERE a.backend_type = 'client backend';
    name := 'connection_utilization';
    value := round(100.0 * used / GREATEST(slots, 1), 1);
    threshold := warn_pct;
    status := CASE WHEN value >= crit_pct THEN 'critical'
                   WHEN value >= warn_pct THEN 'warn' ELSE 'ok' END;
    detail := format('%s of %s client connection slots in use (%s active, %s idle, %s idle in transaction); critical at %s %%',
                     used, slots, n_active, n_idle, n_idle_tx, crit_pct);
    RETURN NEXT;

    -- An application whose connections have no idle one: its pool is
    -- exhausted (the worker's health_for turns that into "for 1 minute").
    oldest := NULL;
    t := @extschema@._setting('moltres_ops.health_pool_min_connections');
    SELECT a.application_name, a.usename, count(*) AS n,
           count(*) FILTER (WHERE a.state = 'active') AS n_active
      INTO oldest
      FROM pg_stat_activity a
     WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()
     GROUP BY a.application_name, a.usename
    HAVING count(*) >= t
       AND count(*) FILTER (WHERE a.state = 'idle') = 0
     ORDER BY count(*) DESC, a.application_name, a.usename LIMIT 1;
    name := 'pool_exhausted';
    threshold := t;
    value := coalesce(oldest.n, 0);
    status := CASE WHEN oldest.n IS NULL THEN 'ok' ELSE 'warn' END;
    detail := CASE WHEN oldest.n IS NULL THEN 'every application with enough connections has an idle one'
                   ELSE format('application %s (role %s) holds %s connections and none is idle (%s active)',
                               coalesce(nullif(oldest.application_name, ''), '(unnamed)'), oldest.usename,
                               oldest.n, oldest.n_active) END;
    RETURN NEXT;

    -- Latency, errors and timeouts over the last 5 minutes, whole instance.
    IF preloaded THEN
        SELECT l.calls, l.errors, l.timeouts, l.p95_ms, l.p99_ms INTO lat
          FROM @extschema@.latency l
         WHERE l.datname IS NULL AND l."window" = interval '5 min';
    END IF;

    FOREACH msg IN ARRAY ARRAY['p95', 'p99'] LOOP
        name := 'latency_' || msg;
        threshold := @extschema@._setting('moltres_ops.health_' || msg || '_ms');
        IF preloaded THEN
            value := CASE msg WHEN 'p95' THEN lat.p95_ms ELSE lat.p99_ms END;
            status := @extschema@._health_status(value, threshold);
            detail := format('%s over 5 minutes %s ms over %s statements', msg,
                             coalesce(round(value::numeric, 3)::text, '-'), coalesce(lat.calls, 0));
        ELSE
            value := NULL; status := 'warn'; detail := no_preload;
        END IF;
        RETURN NEXT;
    END LOOP;

    name := 'error_rate';
    threshold := @extschema@._setting('moltres_ops.health_error_rate_pct');
    IF preloaded THEN
        value := CASE WHEN lat.calls > 0 THEN round(100.0 * lat.errors / lat.calls, 3) END;
        status := @extschema@._health_status(value, threshold);
        detail := format('%s of %s statements failed in the last 5 minutes (%%)', coalesce(lat.errors, 0), coalesce(lat.calls, 0));
    ELSE
        value := NULL; status := 'warn'; detail := no_preload;
    END IF;
    RETURN NEXT;

    name := 'timeout_rate';
    threshold := @extschema@._setting('moltres_ops.health_timeout_rate_pct');
    IF preloaded THEN
        value := CASE WHEN lat.calls > 0 THEN round(100.0 * lat.timeouts / lat.calls, 3) END;
        status := @extschema@._health_status(value, threshold);
        detail := format('%s of %s statements hit statement_timeout in the last 5 minutes (%%)', coalesce(lat.timeouts, 0), coalesce(lat.calls, 0));
    ELSE
        value := NULL; status := 'warn'; detail := no_preload;
    END IF;
    RETURN NEXT;

    -- Sessions idle in a transaction: they hold locks and snapshots.
    oldest := NULL;
    SELECT a.pid, a.usename, a.application_name, now() - a.state_change AS age INTO oldest
      FROM pg_stat_activity a
     WHERE a.backend_type = 'client backend' AND a.state LIKE 'idle in transaction%'
     ORDER BY a.state_change LIMIT 1;
    name := 'idle_in_transaction';
    threshold := @extschema@._setting('moltres_ops.health_idle_in_transaction_s');
    value := round(extract(epoch FROM coalesce(oldest.age, interval '0'))::numeric, 3);
    status := @extschema@._health_status(value, threshold);
    detail := CASE WHEN oldest.pid IS NULL THEN 'no session is idle in a transaction'
                   ELSE format('pid %s (%s, %s) idle in transaction for %s s',
                               oldest.pid, oldest.usename, nullif(oldest.application_name, ''), value) END;
    RETURN NEXT;

    -- The oldest running statement of a client.
    oldest := NULL;
    SELECT a.pid, a.usename, a.application_name, now() - a.query_start AS age INTO oldest
      FROM pg_stat_activity a
     WHERE a.backend_type = 'client backend' AND a.state = 'active' AND a.pid <> pg_backend_pid()
     ORDER BY a.query_start LIMIT 1;
    name := 'long_running_statement';
    threshold := @extschema@._setting('moltres_ops.health_long_running_s');
    value := round(extract(epoch FROM coalesce(oldest.age, interval '0'))::numeric, 3);
    status := @extschema@._health_status(value, threshold);
    detail := CASE WHEN oldest.pid IS NULL THEN 'no other statement is running'
                   ELSE format('pid %s (%s, %s) has run one statement for %s s',
                               oldest.pid, oldest.usename, nullif(oldest.application_name, ''), value) END;
    RETURN NEXT;

    -- The oldest open client transaction, and what holds the xmin horizon
    -- back (any backend, replication slot or prepared transaction): vacuum
    -- cannot remove rows deleted after it.
    oldest := NULL;
    SELECT a.pid, a.usename, a.application_name, a.state, now() - a.xact_start AS age INTO oldest
      FROM pg_stat_activity a
     WHERE a.backend_type = 'client backend' AND a.xact_start IS NOT NULL AND a.pid <> pg_backend_pid()
     ORDER BY a.xact_start LIMIT 1;
    SELECT h.holder, h.xmin_age INTO r
      FROM (SELECT format('pid %s (%s)', a.pid, a.backend_type) AS holder, age(a.backend_xmin) AS xmin_age
              FROM pg_stat_activity a WHERE a.backend_xmin IS NOT NULL AND a.pid <> pg_backend_pid()
            UNION ALL
            SELECT format('replication slot %s', s.slot_name), greatest(age(s.xmin), age(s.catalog_xmin))
              FROM pg_replication_slots s WHERE s.xmin IS NOT NULL OR s.catalog_xmin IS NOT NULL
            UNION ALL
            SELECT format('prepared transaction %s', p.gid), age(p.transaction)
              FROM pg_prepared_xacts p) h
     ORDER BY h.xmin_age DESC NULLS LAST LIMIT 1;
    name := 'long_transaction';
    threshold := @extschema@._setting('moltres_ops.health_long_transaction_s');
    value := round(extract(epoch FROM coalesce(oldest.age, interval '0'))::numeric, 3);
    status := @extschema@._health_status(value, threshold);
    detail := concat_ws('; ',
                        CASE WHEN oldest.pid IS NULL THEN 'no other client transaction is open'
                             ELSE format('pid %s (%s, %s, %s) has had a transaction open for %s s',
                                         oldest.pid, oldest.usename, nullif(oldest.application_name, ''), oldest.state, value) END,
                        CASE WHEN r.holder IS NOT NULL THEN format('xmin horizon %s transactions old, held by %s', r.xmin_age, r.holder) END);
    RETURN NEXT;

    -- Any session waiting for a heavyweight lock (row locks included).
    oldest := NULL;
    SELECT l.pid, a.usename, a.application_name, l.locktype, l.mode,
           CASE WHEN l.relation IS NOT NULL AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
                THEN l.relation::regclass::text END AS rel,
           now() - coalesce(l.waitstart, now()) AS waited
      INTO oldest
      FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE NOT l.granted AND l.pid <> pg_backend_pid()
     ORDER BY l.waitstart NULLS LAST LIMIT 1;
    n := (SELECT count(DISTINCT l.pid) FROM pg_locks l WHERE NOT l.granted);
    name := 'lock_waits';
    threshold := @extschema@._setting('moltres_ops.health_lock_wait_s');
    value := round(extract(epoch FROM coalesce(oldest.waited, interval '0'))::numeric, 3);
    status := @extschema@._health_status(value, threshold);
    detail := CASE WHEN oldest.pid IS NULL THEN 'no session is waiting for a lock'
                   ELSE format('%s sessions wait for a lock; pid %s (%s, %s) has waited %s s for %s on %s, blocked by %s (see moltres_ops.lock_waits)',
                               n, oldest.pid, oldest.usename, nullif(oldest.application_name, ''), value,
                               oldest.mode, coalesce(oldest.rel, oldest.locktype),
                               coalesce(nullif(array_to_string(pg_blocking_pids(oldest.pid), ', '), ''), 'nobody yet')) END;
    RETURN NEXT;

    -- The lock-queue outage: sessions waiting behind a DDL statement that
    -- itself waits for its lock.
    -- (ddl_activity is costly: read it only while some lock is awaited.)
    q_pid := NULL; q_rel := NULL; q_behind := NULL;
    IF EXISTS (SELECT 1 FROM pg_locks l WHERE NOT l.granted) THEN
        SELECT d.pid, d.relation, d.queued_behind INTO q_pid, q_rel, q_behind
          FROM @extschema@.ddl_activity d
         WHERE NOT d.granted ORDER BY d.queued_behind DESC NULLS LAST LIMIT 1;
    END IF;
    name := 'lock_queue';
    threshold := @extschema@._setting('moltres_ops.health_lock_queue');
    value := coalesce(q_behind, 0);
    status := @extschema@._health_status(value, threshold);
    detail := CASE WHEN q_pid IS NULL THEN 'no DDL statement is waiting for a lock'
                   ELSE format('pid %s waits for a lock on %s with %s sessions queued behind it (see moltres_ops.ddl_activity)',
                               q_pid, q_rel, value) END;
    RETURN NEXT;

    -- Prepared transactions left behind hold locks and the xmin horizon.
    oldest := NULL;
    SELECT p.gid, p.owner, p.database, now() - p.prepared AS age INTO oldest
      FROM pg_prepared_xacts p ORDER BY p.prepared LIMIT 1;
    name := 'prepared_transactions';
    threshold := @extschema@._setting('moltres_ops.health_prepared_xact_s');
    value := round(extract(epoch FROM coalesce(oldest.age, interval '0'))::numeric, 3);
    status := @extschema@._health_status(value, threshold);
    detail := CASE WHEN oldest.gid IS NULL THEN 'no prepared transaction'
                   ELSE format('%s prepared transactions; the oldest, %s (%s in database %s), was prepared %s s ago',
                               (SELECT count(*) FROM pg_prepared_xacts), oldest.gid, oldest.owner, oldest.database, value) END;
    RETURN NEXT;

    -- Replication lag: on a primary the standbys' lag (time as they report
    -- it, and WAL not yet replayed); on a standby its own replay lag.
    name := 'replication_lag';
    threshold := @extschema@._setting('moltres_ops.health_replication_lag_s');
    t2 := @extschema@._setting('moltres_ops.health_replication_lag_mb');
    IF standby THEN
        SELECT pg_last_wal_receive_lsn() AS recv, pg_last_wal_replay_lsn() AS replay,
               pg_last_xact_replay_timestamp() AS replay_ts, pg_is_wal_replay_paused() AS paused
          INTO r;
        IF r.recv IS NULL THEN
            value := NULL;
            status := 'ok';
            detail := 'this standby receives no WAL by streaming (see wal_receiver); replay lag is not measured';
        ELSE
            n := greatest(pg_wal_lsn_diff(r.recv, r.replay), 0);
            value := CASE WHEN n = 0 THEN 0
                          ELSE round(extract(epoch FROM now() - coalesce(r.replay_ts, pg_postmaster_start_time()))::numeric, 3) END;
            status := CASE WHEN @extschema@._health_status(value, threshold) = 'critical'
                             OR @extschema@._health_status(n / 1048576.0, t2) = 'critical' THEN 'critical'
                           WHEN @extschema@._health_status(value, threshold) = 'warn'
                             OR @extschema@._health_status(n / 1048576.0, t2) = 'warn' THEN 'warn'
                           ELSE 'ok' END;
            detail := format('standby: %s s behind, %s received and not yet replayed%s',
                             value, pg_size_pretty(n::numeric), CASE WHEN r.paused THEN '; replay is paused' ELSE '' END);
        END IF;
    ELSE
        SELECT s.application_name, s.client_addr, s.state,
               extract(epoch FROM greatest(s.write_lag, s.flush_lag, s.replay_lag)) AS lag_s,
               greatest(pg_wal_lsn_diff(pg_current_wal_lsn(), s.replay_lsn), 0) AS lag_b,
               count(*) OVER () AS n
          INTO r
          FROM pg_stat_replication s
         ORDER BY greatest(pg_wal_lsn_diff(pg_current_wal_lsn(), s.replay_lsn), 0) DESC NULLS FIRST,
                  greatest(s.write_lag, s.flush_lag, s.replay_lag) DESC NULLS LAST
         LIMIT 1;
        IF r.n IS NULL THEN
            value := 0;
            status := 'ok';
            detail := 'no standby is connected (an absent standby shows as an inactive slot in replication_slots)';
        ELSE
            value := round(coalesce(r.lag_s, 0)::numeric, 3);
            status := CASE WHEN @extschema@._health_status(value, threshold) = 'critical'
                             OR @extschema@._health_status(r.lag_b / 1048576.0, t2) = 'critical' THEN 'critical'
                           WHEN @extschema@._health_status(value, threshold) = 'warn'
                             OR @extschema@._health_status(r.lag_b / 1048576.0, t2) = 'warn' THEN 'warn'
                           ELSE 'ok' END;
            detail := format('%s standbys; the furthest behind, %s (%s, %s), is %s s behind with %s not yet replayed (warn at %s MB)',
                             r.n, coalesce(nullif(r.application_name, ''), '(unnamed)'), coalesce(host(r.client_addr), 'local'),
                             r.state, value, pg_size_pretty(r.lag_b), t2);
        END IF;
    END IF;
    RETURN NEXT;

    -- A standby that should stream and does not.
    name := 'wal_receiver';
    threshold := NULL;
    IF NOT standby THEN
        value := NULL; status := 'ok'; detail := 'not a standby';
    ELSIF current_setting('primary_conninfo') = '' THEN
        value := NULL; status := 'ok'; detail := 'this standby has no primary_conninfo (it replays from the archive)';
    ELSE
        SELECT w.status, w.sender_host, w.last_msg_receipt_time INTO r FROM pg_stat_wal_receiver w;
        value := CASE WHEN r.status = 'streaming' THEN 1 ELSE 0 END;
        status := CASE WHEN r.status = 'streaming' THEN 'ok' ELSE 'critical' END;
        detail := CASE WHEN r.status IS NULL THEN 'no WAL receiver is running: this standby is not streaming from its primary'
                       ELSE format('WAL receiver %s from %s, last message at %s', r.status, r.sender_host, r.last_msg_receipt_time) END;
    END IF;
    RETURN NEXT;

    -- Replication slots: inactive ones, and the WAL each one holds back.
    SELECT count(*) AS n,
           count(*) FILTER (WHERE NOT s.active) AS inactive,
           string_agg(s.slot_name, ', ' ORDER BY s.slot_name) FILTER (WHERE NOT s.active) AS inactive_names,
           count(*) FILTER (WHERE s.wal_status = 'lost') AS lost,
           count(*) FILTER (WHERE s.wal_status = 'unreserved') AS unreserved,
           max(greatest(pg_wal_lsn_diff(CASE WHEN standby THEN coalesce(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())
                                             ELSE pg_current_wal_lsn() END, s.restart_lsn), 0)) AS retained,
           (array_agg(s.slot_name ORDER BY s.restart_lsn NULLS LAST))[1] AS oldest,
           min(s.safe_wal_size) AS safe
      INTO r
      FROM pg_replication_slots s;
    name := 'replication_slots';
    threshold := @extschema@._setting('moltres_ops.health_slot_retained_mb');
    value := round(coalesce(r.retained, 0) / 1048576.0, 3);
    status := CASE WHEN r.lost > 0 OR value >= 2 * threshold THEN 'critical'
                   WHEN r.inactive > 0 OR r.unreserved > 0 OR value >= threshold THEN 'warn'
                   ELSE 'ok' END;
    detail := CASE WHEN r.n = 0 THEN 'no replication slot'
                   ELSE concat_ws('; ',
                                  format('%s slots; %s MB of WAL held back by %s', r.n, value, r.oldest),
                                  CASE WHEN r.inactive > 0 THEN format('inactive: %s', r.inactive_names) END,
                                  CASE WHEN r.lost > 0 THEN format('%s lost the WAL they needed', r.lost) END,
                                  CASE WHEN r.unreserved > 0 THEN format('%s are past max_wal_size and will lose WAL', r.unreserved) END,
                                  CASE WHEN r.safe IS NOT NULL THEN format('safe_wal_size %s', pg_size_pretty(r.safe)) END) END;
    RETURN NEXT;

    -- WAL archiving: failing, and how old the last archived segment is
    -- while segments wait (the closest thing to "last good backup").
    name := 'archiver';
    threshold := @extschema@._setting('moltres_ops.health_archive_age_s');
    msg := current_setting('archive_mode');
    IF msg = 'off' THEN
        value := NULL; status := 'ok'; detail := 'archive_mode is off';
    ELSIF standby AND msg <> 'always' THEN
        value := NULL; status := 'ok'; detail := 'does not apply on a standby with archive_mode = on (the primary archives)';
    ELSE
        SELECT a.archived_count, a.last_archived_wal, a.last_archived_time,
               a.failed_count, a.last_failed_wal, a.last_failed_time, a.stats_reset,
               (a.last_failed_time IS NOT NULL
                AND (a.last_archived_time IS NULL OR a.last_failed_time > a.last_archived_time)) AS failing
          INTO r FROM pg_stat_archiver a;
        n := (SELECT count(*) FROM pg_ls_archive_statusdir() f WHERE f.name LIKE '%.ready');
        value := CASE WHEN n > 0 OR r.failing
                      THEN round(extract(epoch FROM now() - coalesce(r.last_archived_time,
                                 greatest(r.stats_reset, pg_postmaster_start_time())))::numeric, 3)
                      ELSE 0 END;
        status := CASE WHEN value >= threshold THEN 'critical'
                       WHEN r.failing THEN 'warn' ELSE 'ok' END;
        detail := concat_ws('; ',
                            CASE WHEN r.failing THEN format('archive_command is failing: last failure at %s on %s (%s failures in all)',
                                                            r.last_failed_time, r.last_failed_wal, r.failed_count) END,
                            format('%s segments waiting', n),
                            CASE WHEN r.last_archived_time IS NULL THEN 'nothing archived since the statistics were reset'
                                 ELSE format('last archived %s at %s', r.last_archived_wal, r.last_archived_time) END);
    END IF;
    RETURN NEXT;

    -- Transaction ID and multixact wraparound, against the 2^31 limit.
    SELECT d.datname, age(d.datfrozenxid) AS xid_age, mxid_age(d.datminmxid) AS mxid_age INTO r
      FROM pg_database d
     ORDER BY greatest(age(d.datfrozenxid), mxid_age(d.datminmxid)) DESC LIMIT 1;
    SELECT c.oid::regclass AS rel, greatest(age(c.relfrozenxid), mxid_age(c.relminmxid)) AS age INTO oldest
      FROM pg_class c WHERE c.relkind IN ('r', 'm', 't')
     ORDER BY greatest(age(c.relfrozenxid), mxid_age(c.relminmxid)) DESC LIMIT 1;
    name := 'wraparound';
    threshold := @extschema@._setting('moltres_ops.health_wraparound_pct');
    value := 100.0 * greatest(r.xid_age, r.mxid_age) / 2147483648.0;
    status := @extschema@._health_status_pct(value, threshold);
    detail := format('database %s: transaction ID age %s, multixact age %s (%s %% of 2^31; autovacuum_freeze_max_age %s); oldest in %s: %s (age %s)',
                     r.datname, r.xid_age, r.mxid_age, round(value::numeric, 4), current_setting('autovacuum_freeze_max_age'),
                     current_database(), oldest.rel, oldest.age);
    RETURN NEXT;

    -- Free disk space under the data directory, pg_wal and tablespaces.
    SELECT coalesce(sp.spcname, u.location) AS what, u.path, u.size_bytes, u.free_bytes,
           100.0 * u.free_bytes / nullif(u.size_bytes, 0) AS free_pct
      INTO r
      FROM @extschema@._disk_usage() u LEFT JOIN pg_tablespace sp ON sp.oid = u.spcoid AND u.location = 'tablespace'
     ORDER BY 100.0 * u.free_bytes / nullif(u.size_bytes, 0) NULLS LAST LIMIT 1;
    name := 'disk_space';
    threshold := @extschema@._setting('moltres_ops.health_disk_free_pct');
    value := round(r.free_pct, 3);
    status := @extschema@._health_status_below(value, threshold);
    detail := format('least free: %s (%s), %s %% free, %s of %s',
                     r.what, r.path, value, pg_size_pretty(r.free_bytes), pg_size_pretty(r.size_bytes));
    RETURN NEXT;

    -- Sequences, and the columns they feed, close to the end of their range
    -- (this database; sequences the caller may not read are skipped).
    SELECT s.seq, s.last_value, s.lim, s.col, s.coltype, 100.0 * s.last_value / s.lim AS pct,
           count(*) OVER () AS n
      INTO r
      FROM (SELECT c.oid::regclass AS seq,
                   CASE WHEN c.relkind = 'S' AND has_sequence_privilege(c.oid, 'SELECT,USAGE')
                        THEN pg_sequence_last_value(c.oid)::numeric END AS last_value,
                   CASE WHEN q.seqincrement > 0
                        THEN least(q.seqmax, coalesce(CASE a.atttypid WHEN 'int2'::regtype THEN 32767
                                                                     WHEN 'int4'::regtype THEN 2147483647 END, q.seqmax))
                        ELSE greatest(q.seqmin, coalesce(CASE a.atttypid WHEN 'int2'::regtype THEN -32768
                                                                        WHEN 'int4'::regtype THEN -2147483648 END, q.seqmin))
                   END::numeric AS lim,
                   CASE WHEN a.attname IS NOT NULL THEN format('%s.%s', a.attrelid::regclass, quote_ident(a.attname)) END AS col,
                   format_type(a.atttypid, a.atttypmod) AS coltype
              FROM pg_class c
              JOIN pg_sequence q ON q.seqrelid = c.oid
              LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
                                   AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
              LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
             WHERE c.relkind = 'S') s
     WHERE s.last_value IS NOT NULL AND s.lim <> 0
     ORDER BY 100.0 * s.last_value / s.lim DESC LIMIT 1;
    name := 'sequences';
    threshold := @extschema@._setting('moltres_ops.health_sequence_pct');
    value := coalesce(round(r.pct, 3), 0);
    status := @extschema@._health_status_pct(value, threshold);
    detail := CASE WHEN r.seq IS NULL THEN format('no used sequence in database %s', current_database())
                   ELSE format('%s sequences used in database %s; the fullest, %s%s, is at %s %% of %s (last value %s)',
                               r.n, current_database(), r.seq,
                               CASE WHEN r.col IS NOT NULL THEN format(' feeding %s (%s)', r.col, r.coltype) ELSE '' END,
                               value, r.lim, r.last_value) END;
    RETURN NEXT;

    -- Invalid indexes (failed CREATE INDEX CONCURRENTLY) in this database,
    -- not counting the ones being built right now.
    SELECT count(*) AS n, string_agg(i.indexrelid::regclass::text, ', ' ORDER BY i.indexrelid::regclass::text) AS names
      INTO r
      FROM pg_index i
     WHERE NOT i.indisvalid
       AND NOT EXISTS (SELECT 1 FROM pg_stat_progress_create_index p WHERE p.index_relid = i.indexrelid);
    name := 'invalid_indexes';
    threshold := 1;
    value := r.n;
    status := CASE WHEN r.n > 0 THEN 'warn' ELSE 'ok' END;
    detail := CASE WHEN r.n = 0 THEN format('no invalid index in database %s', current_database())
                   ELSE format('invalid in database %s: %s (drop with moltres_ops.safe_drop_index(), then rebuild)',
                               current_database(), r.names) END;
    RETURN NEXT;

    -- Autovacuum falling behind: the largest share of dead rows among the
    -- tables big enough to matter (this database; vacuum runs on the primary).
    name := 'autovacuum';
    threshold := @extschema@._setting('moltres_ops.health_dead_tuple_pct');
    t := @extschema@._setting('moltres_ops.health_autovacuum_min_rows');
    IF standby THEN
        value := NULL; status := 'ok'; detail := 'does not apply on a standby (vacuum runs on the primary)';
    ELSE
        SELECT s.relid::regclass AS rel, s.n_live_tup, s.n_dead_tup,
               100.0 * s.n_dead_tup / (s.n_live_tup + s.n_dead_tup) AS pct,
               greatest(s.last_vacuum, s.last_autovacuum) AS vacuumed,
               greatest(s.last_analyze, s.last_autoanalyze) AS analyzed
          INTO r
          FROM pg_stat_user_tables s
         WHERE s.n_live_tup + s.n_dead_tup >= greatest(t, 1)
         ORDER BY 100.0 * s.n_dead_tup / (s.n_live_tup + s.n_dead_tup) DESC LIMIT 1;
        value := coalesce(round(r.pct, 3), 0);
        status := @extschema@._health_status(value, threshold);
        detail := CASE WHEN r.rel IS NULL THEN format('no table in database %s has enough rows to check', current_database())
                       ELSE format('%s: %s dead of %s rows (%s %%), last vacuum %s, last analyze %s',
                                   r.rel, r.n_dead_tup, r.n_live_tup + r.n_dead_tup, value,
                                   coalesce(r.vacuumed::text, 'never'), coalesce(r.analyzed::text, 'never')) END;
    END IF;
    RETURN NEXT;

    -- Settings changed in the configuration but waiting for a restart.
    SELECT count(*) AS n, string_agg(s.name, ', ' ORDER BY s.name) AS names INTO r
      FROM pg_settings s WHERE s.pending_restart;
    name := 'pending_restart';
    threshold := 1;
    value := r.n;
    status := CASE WHEN r.n > 0 THEN 'warn' ELSE 'ok' END;
    detail := CASE WHEN r.n = 0 THEN 'no setting waits for a restart'
                   ELSE format('changed, waiting for a restart: %s', r.names) END;
    RETURN NEXT;

    -- Migrations: failed, dirty or abandoned ledgers are critical; a lock
    -- left behind, or a moltres_ops migration running too long, warns.
    name := 'migrations';
    threshold := @extschema@._setting('moltres_ops.health_migration_running_s');
    SELECT count(*) FILTER (WHERE m.state IN ('failed', 'dirty', 'abandoned')),
           string_agg(format('%s %s: %s', m.tool, m.ledger, m.state), '; ' ORDER BY m.tool, m.ledger)
               FILTER (WHERE m.state IN ('failed', 'dirty', 'abandoned', 'locked'))
      INTO n, msg
      FROM @extschema@.migration_status m;
    t := (SELECT max(extract(epoch FROM now() - mr.started_at))
            FROM @extschema@.migrations mr WHERE mr.status = 'running');
    value := n;
    status := CASE WHEN n > 0 THEN 'critical'
                   WHEN msg IS NOT NULL OR t >= threshold THEN 'warn' ELSE 'ok' END;
    detail := concat_ws('; ', msg,
                        CASE WHEN t IS NOT NULL THEN format('a moltres_ops migration has been running for %s s', round(t::numeric)) END,
                        CASE WHEN msg IS NULL AND t IS NULL THEN 'every ledger is clean' END);
    RETURN NEXT;

    -- The statistics table: evictions mean moltres_ops.max_statements is
    -- too small for the workload, and numbers of evicted statements restart.
    name := 'statistics_evictions';
    threshold := 1;
    IF preloaded THEN
        SELECT s.evictions, s.dropped, s.entries, s.max_entries INTO lat FROM @extschema@.stats_info s;
        value := lat.evictions;
        status := CASE WHEN lat.evictions > 0 OR lat.dropped > 0 THEN 'warn' ELSE 'ok' END;
        detail := format('%s evictions and %s dropped since the last reset; %s of %s entries in use',
                         lat.evictions, lat.dropped, lat.entries, lat.max_entries);
    ELSE
        value := NULL; status := 'warn'; detail := no_preload;
    END IF;
    RETURN NEXT;
END
$$;

COMMENT ON FUNCTION health_evaluate() IS
'health_evaluate: every health check evaluated now, with this session''s moltres_ops.health_* thresholds and no duration; the health worker runs it on an interval and health() reads what it kept';

CREATE FUNCTION _health_state(
    OUT name text,
    OUT status text,
    OUT value float8,
    OUT threshold float8,
    OUT detail text,
    OUT since timestamptz,
    OUT pending text,
    OUT pending_since timestamptz,
    OUT checked_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'moltres_ops_health_state'
LANGUAGE C STRICT VOLATILE;

CREATE FUNCTION _health_worker(
    OUT pid integer,
    OUT database text,
    OUT started_at timestamptz,
    OUT last_run timestamptz,
    OUT last_duration_ms float8,
    OUT evaluations bigint,
    OUT failures bigint,
    OUT last_error text,
    OUT last_error_at timestamptz)
RETURNS record
AS 'MODULE_PATHNAME', 'moltres_ops_health_worker'
LANGUAGE C STRICT VOLATILE;

CREATE VIEW health_worker AS
    SELECT w.pid, w.database, w.started_at, w.last_run, w.last_duration_ms,
           w.evaluations, w.failures, w.last_error, w.last_error_at,
           @extschema@._setting('moltres_ops.health_interval') AS interval_s
      FROM @extschema@._health_worker() w;

COMMENT ON VIEW health_worker IS
'health_worker: the health worker (pid, database, start), its last successful evaluation and how long it took, counts of evaluations and failures, and its last error';

CREATE FUNCTION _health_history(
    OUT name text,
    OUT from_status text,
    OUT to_status text,
    OUT at timestamptz,
    OUT value float8,
    OUT detail text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'moltres_ops_health_history'
LANGUAGE C STRICT VOLATILE;

CREATE VIEW health_history AS
    SELECT h.name, h.from_status, h.to_status, h.at, h.value, h.detail
      FROM @extschema@._health_history() h;

COMMENT ON VIEW health_history IS
'health_history: the last moltres_ops.health_history_size changes of a health() status (check, from, to, when, value and detail at that moment), oldest first; kept across restarts and crashes';

-- health: the checks as the health worker last evaluated them, with the
-- status each has held since when (after moltres_ops.health_for) and the
-- status it is heading to; one more row, health_worker, says whether the
-- worker is keeping up.  When it is not (not preloaded, not running, not
-- installed in moltres_ops.health_database, behind), the checks are
-- evaluated here and now instead, without durations.
CREATE FUNCTION health(
    OUT name text,
    OUT status text,
    OUT value float8,
    OUT threshold float8,
    OUT detail text,
    OUT since timestamptz,
    OUT pending text,
    OUT pending_since timestamptz,
    OUT checked_at timestamptz)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w         record;
    interval_s float8 := @extschema@._setting('moltres_ops.health_interval');
    why       text;
BEGIN
    IF NOT @extschema@.preloaded() THEN
        why := 'moltres_ops is not in shared_preload_libraries, so no health worker runs';
    ELSE
        SELECT * INTO w FROM @extschema@._health_worker();
        IF w.last_run IS NOT NULL AND w.last_run >= clock_timestamp() - make_interval(secs => 3 * interval_s + 5) THEN
            RETURN QUERY SELECT s.* FROM @extschema@._health_state() s ORDER BY s.name;
            name := 'health_worker';
            status := 'ok';
            value := round(extract(epoch FROM clock_timestamp() - w.last_run)::numeric, 3);
            threshold := interval_s;
            detail := format('evaluated in database %s %s s ago in %s ms', w.database, value, round(w.last_duration_ms::numeric, 1));
            since := w.started_at;
            checked_at := w.last_run;
            RETURN NEXT;
            RETURN;
        END IF;
        why := CASE WHEN w.last_error IS NOT NULL THEN format('the health worker fails in database %s: %s', w.database, w.last_error)
                    WHEN w.pid IS NULL THEN 'the health worker is not running'
                    WHEN w.last_run IS NULL THEN 'the health worker has not evaluated yet'
                    ELSE format('the health worker last evaluated at %s', w.last_run) END;
    END IF;

    RETURN QUERY SELECT e.name, e.status, e.value, e.threshold, e.detail,
                        NULL::timestamptz, NULL::text, NULL::timestamptz, clock_timestamp()
                   FROM @extschema@.health_evaluate() e ORDER BY e.name;
    name := 'health_worker';
    status := 'warn';
    value := NULL;
    threshold := interval_s;
    detail := why || '; these rows were evaluated now, in this session, without durations';
    since := NULL;
    pending := NULL;
    pending_since := NULL;
    checked_at := clock_timestamp();
    RETURN NEXT;
END
$$;

COMMENT ON FUNCTION health() IS
'health: one row per check (connections, pools, latency, errors, sessions, locks, replication, archiving, wraparound, disk, sequences, indexes, vacuum, settings, migrations) with status ok, warn or critical, since when, as the health worker last evaluated them; a health_worker row says whether it keeps up';

REVOKE ALL ON FUNCTION _disk_usage() FROM PUBLIC;
REVOKE ALL ON FUNCTION health_evaluate() FROM PUBLIC;
REVOKE ALL ON FUNCTION _health_state() FROM PUBLIC;
REVOKE ALL ON FUNCTION _health_worker() FROM PUBLIC;
REVOKE ALL ON FUNCTION _health_history() FROM PUBLIC;
REVOKE ALL ON health_worker FROM PUBLIC;
REVOKE ALL ON health_history FROM PUBLIC;
GRANT EXECUTE ON FUNCTION _disk_usage() TO pg_monitor;
GRANT EXECUTE ON FUNCTION health_evaluate() TO pg_monitor;
GRANT EXECUTE ON FUNCTION _health_state() TO pg_monitor;
GRANT EXECUTE ON FUNCTION _health_worker() TO pg_monitor;
GRANT EXECUTE ON FUNCTION _health_history() TO pg_monitor;
GRANT SELECT ON health_worker TO pg_monitor;
GRANT SELECT ON health_history TO pg_monitor;

REVOKE ALL ON FUNCTION health() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION health() TO pg_monitor;
