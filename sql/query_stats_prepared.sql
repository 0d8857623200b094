-- SQL-level PREPARE / EXECUTE: the prepared statement is charged at the
-- level of the EXECUTE (top level here), as pg_stat_statements does, and the
-- EXECUTE, PREPARE and DEALLOCATE commands themselves are not rows.
SELECT moltres_ops.reset();
CREATE TABLE qsp_t (id int PRIMARY KEY);
INSERT INTO qsp_t SELECT generate_series(1, 10);
PREPARE qsp_get(int) AS SELECT id FROM qsp_t WHERE id = $1;
EXECUTE qsp_get(1);
EXECUTE qsp_get(2);
EXECUTE qsp_get(99);
DEALLOCATE qsp_get;
SELECT query, toplevel, calls, rows
  FROM moltres_ops.query_stats
 WHERE query ~* 'qsp_get|qsp_t WHERE'
 ORDER BY query COLLATE "C";
DROP TABLE qsp_t;
