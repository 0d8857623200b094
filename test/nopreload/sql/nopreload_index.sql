-- safe_create_index(), safe_drop_index() and index_jobs need the job slots
-- in shared memory, so without shared_preload_libraries they raise the
-- standard error and start nothing.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS moltres_ops;
RESET client_min_messages;
CREATE TABLE np_idx (id int);
CREATE INDEX np_idx_id ON np_idx (id);
SELECT moltres_ops.safe_create_index('np_idx_new', 'np_idx', '(id)');
\set VERBOSITY sqlstate
SELECT moltres_ops.safe_drop_index('np_idx_id');
SELECT * FROM moltres_ops.index_jobs;
\set VERBOSITY default
SELECT count(*) AS indexes FROM pg_index WHERE indrelid = 'np_idx'::regclass;
DROP TABLE np_idx;
