-- moltres_ops install script, part 85: CONCURRENTLY index builds and drops
-- run by a background worker (src/index_worker.c).

CREATE FUNCTION safe_create_index(
    index_name name,
    "table" regclass,
    definition text,
    wait boolean DEFAULT true,
    timeout interval DEFAULT '1h',
    is_unique boolean DEFAULT false)
RETURNS int
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'moltres_ops_safe_create_index';

COMMENT ON FUNCTION safe_create_index(name, regclass, text, boolean, interval, boolean) IS
'safe_create_index: CREATE [UNIQUE] INDEX CONCURRENTLY IF NOT EXISTS index_name ON table definition, run top-level by a background worker with the caller''s privileges, so it may be called inside a transaction block; a failed build''s invalid index is dropped; returns the worker''s pid';

CREATE FUNCTION safe_drop_index(
    index regclass,
    wait boolean DEFAULT true,
    timeout interval DEFAULT '1h')
RETURNS int
LANGUAGE C VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'moltres_ops_safe_drop_index';

COMMENT ON FUNCTION safe_drop_index(regclass, boolean, interval) IS
'safe_drop_index: DROP INDEX CONCURRENTLY IF EXISTS, run top-level by a background worker with the caller''s privileges; returns the worker''s pid';

CREATE FUNCTION index_jobs(
    OUT id bigint,
    OUT pid int,
    OUT username name,
    OUT datname name,
    OUT command text,
    OUT state text,
    OUT attempts int,
    OUT started_at timestamptz,
    OUT finished_at timestamptz,
    OUT error_code text,
    OUT error text,
    OUT detail text)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'moltres_ops_index_jobs';

COMMENT ON FUNCTION index_jobs() IS
'index_jobs: the last jobs of safe_create_index() and safe_drop_index(); other users'' jobs only for superusers and pg_read_all_stats members';

CREATE VIEW index_jobs AS
    SELECT * FROM index_jobs() ORDER BY id DESC;

COMMENT ON VIEW index_jobs IS
'index_jobs: recent safe_create_index() / safe_drop_index() jobs, newest first: state starting, running, done or failed, with the error and SQLSTATE of a failed one';

REVOKE ALL ON FUNCTION safe_create_index(name, regclass, text, boolean, interval, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION safe_drop_index(regclass, boolean, interval) FROM PUBLIC;
-- Every role may read its own jobs (the function filters rows).
GRANT SELECT ON index_jobs TO PUBLIC;
