# Query timing across sessions and restarts: cancel from another session,
# visibility while the recording backend idles, query ids equal to
# pg_stat_statements' in both load orders, persistence across a clean
# restart, a crash and a corrupt file that change nothing, a table filled
# past max_statements that evicts without failing any query, and eviction
# that keeps statements run often over one-off ones.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('query_stats');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'moltres_ops, pg_stat_statements'
moltres_ops.max_statements = 100
# the filling below holds texts of up to 2 kB: a pool that holds them whole
moltres_ops.avg_query_text = 2048
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION moltres_ops');
$node->safe_psql('postgres', 'CREATE EXTENSION pg_stat_statements');

sub stat_of
{
	my ($cols, $where) = @_;
	return $node->safe_psql('postgres',
		"SELECT $cols FROM moltres_ops.query_stats WHERE $where");
}

# --- a cancel from another session, while statement_timeout is armed ------
my $bg = $node->background_psql('postgres', on_error_stop => 0);
$bg->query_safe("SET statement_timeout = '60s'");
$bg->query_until(qr/sleeping/, "\\echo sleeping\nSELECT pg_sleep(60) AS tap_cancel;\n");
$node->poll_query_until('postgres',
	q{SELECT count(*) = 1 FROM pg_stat_activity WHERE query LIKE '%AS tap_cancel%' AND state = 'active' AND pid <> pg_backend_pid()})
  or die "the sleeping statement never showed up";
$node->safe_psql('postgres',
	q{SELECT pg_sleep(0.2), pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%AS tap_cancel%' AND pid <> pg_backend_pid()});
$bg->query("SELECT 'done' AS tap_visible");
is(stat_of('calls, errors, cancels, timeouts, min_ms >= 150', q{query LIKE '%AS tap_cancel'}),
	'1|1|1|0|t', 'a statement cancelled from another session counts as a cancel, with its time');

# The background session now sits idle; what it ran is visible at once.
is(stat_of('calls', q{query = 'SELECT $1 AS tap_visible'}),
	'1', 'a completed statement is visible while its backend idles');
$bg->quit;

# --- query ids equal pg_stat_statements', in both load orders -------------
for my $order ("'moltres_ops, pg_stat_statements'", "'pg_stat_statements, moltres_ops'")
{
	$node->append_conf('postgresql.conf', "shared_preload_libraries = $order");
	$node->restart;
	$node->safe_psql('postgres', 'SELECT pg_stat_statements_reset(), moltres_ops.reset()');
	$node->safe_psql('postgres', q{
		CREATE TABLE IF NOT EXISTS tap_t (id int PRIMARY KEY, v text);
		SELECT v FROM tap_t WHERE id = 7;
		SELECT v FROM tap_t WHERE id = 8 AND v = 'tap_probe';
		SET work_mem = '7MB';
		VACUUM tap_t;
		EXPLAIN (COSTS OFF) SELECT v FROM tap_t WHERE id = 10;
	});
	my $pairs = q{
		SELECT count(*) FILTER (WHERE p.queryid IS NOT NULL AND p.calls = m.calls),
		       count(*)
		  FROM moltres_ops.query_stats m
		  LEFT JOIN pg_stat_statements p
		    ON p.queryid = m.queryid AND p.userid = m.userid AND p.dbid = m.dbid
		       AND p.toplevel = m.toplevel
		 WHERE m.query ~ '^(SELECT v FROM tap_t|SET work_mem|VACUUM tap_t|EXPLAIN)'};
	is($node->safe_psql('postgres', $pairs), '5|5',
		"query ids and calls equal pg_stat_statements' with $order");
	is($node->safe_psql('postgres',
			q{SELECT m.query = p.query FROM moltres_ops.query_stats m JOIN pg_stat_statements p USING (queryid) WHERE m.query LIKE '%tap_t WHERE id = $1 AND%'}),
		't', "normalised text equals pg_stat_statements' with $order");
}

# --- prepared statements through the extended protocol --------------------
$node->safe_psql('postgres',
	'CREATE TABLE tap_pb (id int PRIMARY KEY); INSERT INTO tap_pb SELECT generate_series(1, 10)');
$node->pgbench(
	'--no-vacuum --transactions=50 --protocol=prepared',
	0,
	[qr{processed: 50/50}],
	[qr{^$}],
	'pgbench with prepared statements',
	{
		'010_prepared' => q{
\set r random(1, 10)
SELECT id FROM tap_pb WHERE id = :r;
}
	});
is(stat_of('calls, rows', q{query = 'SELECT id FROM tap_pb WHERE id = $1'}),
	'50|50', 'prepared statements are counted once per execution');
is($node->safe_psql('postgres',
		q{SELECT p.calls FROM pg_stat_statements p JOIN moltres_ops.query_stats m USING (queryid, userid, dbid, toplevel) WHERE m.query = 'SELECT id FROM tap_pb WHERE id = $1'}),
	'50', 'and pg_stat_statements agrees');

# --- persistence across a clean restart -----------------------------------
$node->safe_psql('postgres', 'SELECT v FROM tap_t WHERE id = 9') for 1 .. 3;
my $before = stat_of('calls, round(total_ms::numeric, 6), p50_ms, first_seen',
	q{query = 'SELECT v FROM tap_t WHERE id = $1'});
my $hist_before = $node->safe_psql('postgres',
	q{SELECT string_agg(le_ms || ':' || count, ',' ORDER BY le_ms) FROM moltres_ops.query_histogram h JOIN moltres_ops.query_stats s USING (userid, dbid, queryid, toplevel) WHERE s.query = 'SELECT v FROM tap_t WHERE id = $1'});
$node->restart;
is(stat_of('calls, round(total_ms::numeric, 6), p50_ms, first_seen',
		q{query = 'SELECT v FROM tap_t WHERE id = $1'}),
	$before, 'counters and text survive a clean restart');
is($node->safe_psql('postgres',
		q{SELECT string_agg(le_ms || ':' || count, ',' ORDER BY le_ms) FROM moltres_ops.query_histogram h JOIN moltres_ops.query_stats s USING (userid, dbid, queryid, toplevel) WHERE s.query = 'SELECT v FROM tap_t WHERE id = $1'}),
	$hist_before, 'the histogram survives a clean restart');
ok(!-e $node->data_dir . '/pg_stat/moltres_ops_query_stats.stat',
	'the file is consumed at start');

# --- an immediate stop and a backend crash corrupt nothing ----------------
# Immediate shutdown ends the postmaster normally once every backend is
# gone, so the statistics are written as at a clean shutdown (as
# pg_stat_statements does); the server comes back with them.
my $calls = stat_of('calls', q{query = 'SELECT v FROM tap_t WHERE id = $1'});
$node->stop('immediate');
$node->start;
is(stat_of('calls', q{query = 'SELECT v FROM tap_t WHERE id = $1'}),
	$calls, 'an immediate stop keeps the counts');

# A backend killed by SIGKILL makes the postmaster reinitialise shared
# memory without saving anything: the table starts empty and works.
my $victim = $node->background_psql('postgres', on_error_stop => 0);
my $pid = $victim->query_safe('SELECT pg_backend_pid()');
$node->safe_psql('postgres', 'SELECT v FROM tap_t WHERE id = 11');
kill 'KILL', $pid;
$node->poll_query_until('postgres', q{SELECT 1}, '1')
  or die "server did not come back after the crash";
$victim->quit;
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM moltres_ops.query_stats WHERE query LIKE '%tap_t%'}),
	'0', 'after a backend crash the table starts empty');
$node->safe_psql('postgres', 'SELECT v FROM tap_t WHERE id = 10');
is(stat_of('calls', q{query = 'SELECT v FROM tap_t WHERE id = $1'}),
	'1', 'and counts again');
ok(!$node->log_contains(qr/ignoring moltres_ops statistics file/),
	'no statistics file was found broken');

# --- a corrupt or foreign file is ignored with a LOG line -----------------
my $file = $node->data_dir . '/pg_stat/moltres_ops_query_stats.stat';
$node->stop;
ok(-s $file, 'a clean shutdown writes the file');
open(my $fh, '+<', $file) or die "open $file: $!";
binmode $fh;
seek($fh, 200, 0);
print $fh "corrupt";
close $fh;
my $log_offset = -s $node->logfile;
$node->start;
ok($node->log_contains(qr/ignoring moltres_ops statistics file ".*": checksum mismatch/, $log_offset),
	'a corrupt file is ignored with a LOG line');
is($node->safe_psql('postgres', 'SELECT count(*) FROM moltres_ops.query_stats'),
	'0', 'nothing is loaded from a corrupt file');
$node->stop;
open($fh, '>', $file) or die "open $file: $!";
print $fh "this is not a statistics file, but it is long enough to be read" x 4;
close $fh;
$log_offset = -s $node->logfile;
$node->start;
ok($node->log_contains(qr/ignoring moltres_ops statistics file ".*": not a moltres_ops statistics file/, $log_offset),
	'a foreign file is ignored with a LOG line');

# --- filling past max_statements (100) evicts, counts, fails nothing ------
$node->safe_psql('postgres', 'SELECT moltres_ops.reset()');
# A statement run often is worth more than ones run once: it must survive.
$node->safe_psql('postgres', join('', map { "SELECT $_ AS tap_hot;\n" } 1 .. 40));
# 300 statements of different shapes, hence 300 query ids; ON_ERROR_STOP
# makes safe_psql fail if any of them fails.
$node->safe_psql('postgres', q{
	SELECT format('SELECT %s AS tap_fill', string_agg('1', ' + '))
	  FROM generate_series(1, 300) n, LATERAL generate_series(1, n) g
	 GROUP BY n ORDER BY n
	\gexec
});
my ($entries, $max, $evictions) = split /\|/, $node->safe_psql('postgres',
	'SELECT entries, max_entries, evictions FROM moltres_ops.stats_info');
is($max, '100', 'capacity is max_statements');
cmp_ok($entries, '<=', 100, 'the table never holds more than max_statements');
cmp_ok($evictions, '>=', 200, 'evictions are counted');
# (41: column aliases are not part of the query id, so the first
# 'SELECT 1 AS tap_fill' is the same statement)
is(stat_of('calls', q{query = 'SELECT $1 AS tap_hot'}),
	'41', 'the frequently run statement was not evicted');
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM moltres_ops.query_stats WHERE query = (SELECT 'SELECT ' || string_agg('$' || g, ' + ') || ' AS tap_fill' FROM generate_series(1, 300) g)}),
	'1', 'the newest statement is there');
is($node->safe_psql('postgres', 'SELECT texts_truncated, hist_dropped FROM moltres_ops.stats_info'),
	'0|0', 'no text was cut and no duration left out: the pools were large enough');

# --- statements run a few times outlive a flood of one-off statements -----
# 40 "warm" statements run 5 times each, then 4 rounds of 100 statements
# never seen before, each round followed by one more run of every warm
# statement: 400 evictions from a table of 100, and the warm statements
# must never be among them (a one-off statement is always worth less).  A
# CTE's name is part of the query id, so each name is a distinct statement.
$node->safe_psql('postgres', 'SELECT moltres_ops.reset()');
my $warm = join('',
	map { "WITH tap_warm_$_ AS (SELECT 1 AS a) SELECT a FROM tap_warm_$_;\n" }
	  1 .. 40);
$node->safe_psql('postgres', $warm x 5);
for my $round (1 .. 4)
{
	$node->safe_psql('postgres',
		join('',
			map { "WITH tap_once_${round}_$_ AS (SELECT 1 AS a) SELECT a FROM tap_once_${round}_$_;\n" }
			  1 .. 100)
		  . $warm);
}
is(stat_of('count(*), min(calls), max(calls)', q{query LIKE 'WITH tap\_warm\_%'}),
	'40|9|9', 'no warm statement was evicted for a one-off one');
cmp_ok((split /\|/, $node->safe_psql('postgres',
	'SELECT evictions FROM moltres_ops.stats_info'))[0], '>=', 300,
	'the one-off statements were evicted instead');

$node->stop;
done_testing();
