-- Without shared_preload_libraries, CREATE EXTENSION still works, settings
-- can be shown, and every function that needs shared memory raises an error
-- whose hint is the line to add to postgresql.conf.
CREATE EXTENSION moltres_ops;
SELECT moltres_ops.preloaded();
SHOW moltres_ops.track;
\set VERBOSITY default
SELECT * FROM moltres_ops.shmem_usage;
\set VERBOSITY sqlstate
SELECT * FROM moltres_ops.shmem_usage();
\set VERBOSITY default
-- The extension remains usable after the error.
SELECT moltres_ops.library_version() IS NOT NULL AS library_answers;
-- Query timing needs shared memory too; the histogram maths does not.
\set VERBOSITY sqlstate
SELECT * FROM moltres_ops.query_stats;
SELECT * FROM moltres_ops.query_histogram;
SELECT * FROM moltres_ops.latency;
SELECT * FROM moltres_ops.stats_info;
SELECT moltres_ops.reset();
SELECT moltres_ops.flush();
\set VERBOSITY default
SELECT moltres_ops.histogram_percentiles('{1,2,3}', '{0.5}') AS works_without_preload;
