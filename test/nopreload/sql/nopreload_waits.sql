-- The wait sampler exists only when the library is preloaded: without it
-- the views raise the standard error, and the setting is still shown.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS moltres_ops;
RESET client_min_messages;
SELECT moltres_ops.preloaded();
SHOW moltres_ops.sample_interval;
\set VERBOSITY sqlstate
SELECT * FROM moltres_ops.query_waits;
SELECT * FROM moltres_ops.db_waits;
SELECT * FROM moltres_ops.db_load;
SELECT * FROM moltres_ops.session_history;
SELECT * FROM moltres_ops.wait_sampler;
SELECT moltres_ops.reset_waits();
\set VERBOSITY default
