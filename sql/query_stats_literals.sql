-- No literal value ever reaches the stored text, on every version: IN lists
-- (PostgreSQL 18 squashes a list of constants or parameters into one $n,
-- so this file has a second expected output, query_stats_literals_1.out),
-- ARRAY lists, negative numbers, every kind of literal token, parameters
-- ($n and PL/pgSQL variables, kept as written: they are not literals),
-- literals inside PL/pgSQL, utility statements, and a statement first seen
-- at execution (after a reset), whose text is found by lexing.
SELECT moltres_ops.reset();
CREATE TABLE ql_t (id int PRIMARY KEY, v text);
SELECT count(*) FROM ql_t WHERE v IN ('secret-a', 'secret-b', 'secret-c');
SELECT count(*) FROM ql_t WHERE id IN (7771, 7772, 7773) AND v = 'secret-d';
SELECT count(*) FROM ql_t WHERE v = ANY (ARRAY['secret-e', 'secret-f']);
SELECT count(*) FROM ql_t
 WHERE id = -7774 OR id = 7775.5 OR v = E'secret-\x67' OR v = $$secret-h$$
    OR v = $q$secret-i$q$ OR v = U&'secret-\006A' OR v::bit(8) = B'01110111'
    OR v::bit(16) = X'7777' OR v = 'secret-'
       'k';
PREPARE ql_p(text, int) AS
  SELECT count(*) FROM ql_t
   WHERE v = $1 AND id IN ($2, 7776, 7777) AND v <> 'secret-l';
EXECUTE ql_p('secret-m', 1);
SET moltres_ops.track = 'all';
DO $$
DECLARE
  s text := 'secret-n';
  n int := 7778;
BEGIN
  PERFORM count(*) FROM ql_t WHERE v = s AND id IN (n, 7779, 7780) AND v <> 'secret-o';
END $$;
RESET moltres_ops.track;
SET application_name = 'secret-p';
RESET application_name;
CREATE TEMP TABLE ql_c AS SELECT 'secret-q' AS v, 7781 AS n;

-- What is stored: constants become $n, parameters stay as written.
SELECT query, calls, toplevel
  FROM moltres_ops.query_stats
 WHERE query ~ 'ql_|application_name|^DO'
 ORDER BY query COLLATE "C";
SELECT count(*) AS literal_leaks FROM moltres_ops.query_stats
 WHERE query ~ 'secret|777|778|0111|\$q\$|\$\$';

-- After a reset, the prepared statement's next execution creates its row
-- without a parse, so its text is found by lexing every literal token (on
-- 18 too, where the parse would have squashed the IN list).  Its plan is
-- cached and still valid: it ran once since the last catalog change (the
-- first temporary table, which revalidates plans).
EXECUTE ql_p('secret-r', 2);
SELECT moltres_ops.reset();
EXECUTE ql_p('secret-s', 3);
SELECT query, calls FROM moltres_ops.query_stats WHERE query ~ 'ql_t';
SELECT count(*) AS literal_leaks FROM moltres_ops.query_stats
 WHERE query ~ 'secret|777|778|0111|\$q\$|\$\$';
DEALLOCATE ql_p;
DROP TABLE ql_t;
