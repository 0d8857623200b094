# safe_create_index() / safe_drop_index() against real sessions: a build
# asked for with wait => false proceeds in its worker while another session
# holds a long transaction, and the caller's session stays free; the build
# finishes when that transaction ends.  A unique build over duplicates fails
# and its invalid index is dropped.  A caller whose wait is cancelled
# cancels the build, which cleans up.  The worker retries the table's lock
# under a short lock_timeout.  Many jobs in a row leak neither worker slots
# (max_worker_processes stays at its default 8) nor job slots.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('index_worker');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'moltres_ops'\ntrace_sort = on\n");
$node->start;
is($node->safe_psql('postgres', 'SHOW max_worker_processes'), '8',
	'the default max_worker_processes');
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION moltres_ops;
CREATE TABLE orders (id int PRIMARY KEY, customer_id int);
INSERT INTO orders SELECT g, g % 100 FROM generate_series(1, 20000) g;
CREATE TABLE other (x int);
INSERT INTO other VALUES (1);
});

sub job_state
{
	my ($like) = @_;
	return $node->safe_psql('postgres',
		"SELECT state || ':' || coalesce(error_code, '') FROM moltres_ops.index_jobs"
		  . " WHERE command LIKE '$like' ORDER BY id DESC LIMIT 1");
}

# ---------------------------------------------------------------------------
# A long transaction elsewhere (a snapshot held since before the build).
my $long = $node->background_psql('postgres');
$long->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
$long->query_safe('SELECT count(*) FROM other');

my $caller = $node->background_psql('postgres');
my $pid = $caller->query_safe(
	q{SELECT moltres_ops.safe_create_index('orders_customer', 'orders', '(customer_id)', wait => false)});
like($pid, qr/^[1-9][0-9]*$/, 'wait => false returns the worker pid at once');
is($caller->query_safe('SELECT 41 + 1'), '42', "the caller's session is free");

$node->poll_query_until('postgres',
	qq{SELECT wait_event FROM pg_stat_activity WHERE pid = $pid}, 'virtualxid')
  or die 'the worker never waited for the long transaction';
is( $node->safe_psql('postgres',
		q{SELECT indisvalid FROM pg_index WHERE indexrelid = 'orders_customer'::regclass}),
	'f',
	'the build has got as far as waiting for older snapshots; the index is not yet valid');
is(job_state('%orders_customer%'), 'running:', 'the job says running meanwhile');
is($caller->query_safe('SELECT count(*) FROM orders WHERE id <= 10'),
	'10', 'the caller keeps working while the build waits');

$long->query_safe('COMMIT');
$node->poll_query_until('postgres',
	q{SELECT state FROM moltres_ops.index_jobs WHERE command LIKE '%orders_customer%'}, 'done')
  or die 'the build did not finish';
is( $node->safe_psql('postgres',
		q{SELECT indisvalid FROM pg_index WHERE indexrelid = 'orders_customer'::regclass}),
	't', 'once the long transaction ended, the index is valid');

# ---------------------------------------------------------------------------
# The worker builds with the caller's maintenance_work_mem and parallel
# workers (trace_sort logs the sort's memory).
my $log_offset = -s $node->logfile;
$node->safe_psql('postgres',
	q{SET maintenance_work_mem = '4321kB';
SET max_parallel_maintenance_workers = 0;
SELECT moltres_ops.safe_create_index('orders_mwm', 'orders', '(customer_id, id)')});
$node->poll_query_until('postgres',
	q{SELECT state FROM moltres_ops.index_jobs WHERE command LIKE '%orders_mwm%'}, 'done')
  or die 'the build did not finish';
ok($node->log_contains(qr/begin index sort: unique = f, workMem = 4321,/, $log_offset),
	"the build sorted with the caller's maintenance_work_mem");

# ---------------------------------------------------------------------------
# A unique index over duplicates: the build fails, the error comes back with
# its SQLSTATE, and the invalid index is dropped.
my ($ret, $out, $err) = $node->psql('postgres',
	q{\set VERBOSITY verbose
SELECT moltres_ops.safe_create_index('orders_customer_uq', 'orders', '(customer_id)', is_unique => true)});
isnt($ret, 0, 'the failed unique build raises an error in the caller');
like($err, qr/ERROR:  23505: could not create unique index "orders_customer_uq"/,
	"with the worker's SQLSTATE and message");
like($err, qr/is duplicated\.\n.*that the failed build left was dropped/,
	'and says the invalid leftover was dropped');
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_class WHERE relname = 'orders_customer_uq'}),
	'0', 'no invalid index is left');

# ---------------------------------------------------------------------------
# A caller that gives up (statement_timeout) cancels its build.  Another
# session that wrote to the table holds the build in its first wait.
my $writer = $node->background_psql('postgres');
$writer->query_safe('BEGIN');
$writer->query_safe('INSERT INTO orders VALUES (100001, 1)');
($ret, $out, $err) = $node->psql('postgres',
	q{SET statement_timeout = '1s';
SELECT moltres_ops.safe_create_index('orders_cancelled', 'orders', '(id, customer_id)')});
like($err, qr/canceling statement due to statement timeout/, 'the caller was cancelled');
$writer->query_safe('COMMIT');
$node->poll_query_until('postgres',
	q{SELECT state || ':' || error_code FROM moltres_ops.index_jobs WHERE command LIKE '%orders_cancelled%'},
	'failed:57014')
  or die 'the cancelled build did not fail';
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_class WHERE relname = 'orders_cancelled'}),
	'0', 'the cancelled build left no index');
like( $node->safe_psql('postgres',
		q{SELECT detail FROM moltres_ops.index_jobs WHERE command LIKE '%orders_cancelled%'}),
	qr/was dropped/, 'its job says the leftover was dropped');

# ---------------------------------------------------------------------------
# The table's lock is tried under a short lock_timeout and retried.
my $locker = $node->background_psql('postgres');
$locker->query_safe('BEGIN');
$locker->query_safe('LOCK TABLE other IN SHARE MODE');
$pid = $node->safe_psql('postgres',
	q{SELECT moltres_ops.safe_create_index('other_x', 'other', '(x)', wait => false)});
$node->poll_query_until('postgres',
	q{SELECT attempts >= 2 FROM moltres_ops.index_jobs WHERE command LIKE '%other_x%'})
  or die 'the worker did not retry';
# From 17 its back-off shows as the extension's own wait event.
if ($node->pg_version >= 17)
{
	ok( $node->poll_query_until('postgres',
			q{SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event_type = 'Extension' AND wait_event = 'MoltresIndexLockRetry'}),
		'the retrying worker waits on MoltresIndexLockRetry');
	is( $node->safe_psql('postgres',
			q{SELECT string_agg(name, ',' ORDER BY name) FROM pg_wait_events WHERE type = 'Extension' AND name LIKE 'Moltres%'}),
		'MoltresIndexJob,MoltresIndexLockRetry', 'both wait events are registered');
}
$locker->query_safe('COMMIT');
$node->poll_query_until('postgres',
	q{SELECT state FROM moltres_ops.index_jobs WHERE command LIKE '%other_x%'}, 'done')
  or die 'the retried build did not finish';
is( $node->safe_psql('postgres',
		q{SELECT indisvalid FROM pg_index WHERE indexrelid = 'other_x'::regclass}),
	't', 'a build that met a held lock retried and succeeded');

# ---------------------------------------------------------------------------
# More jobs than max_worker_processes and than job slots, one after the
# other: every one runs, and nothing is left behind.
for my $i (1 .. 10)
{
	$node->safe_psql('postgres',
		"SELECT moltres_ops.safe_create_index('other_x$i', 'other', '(x)')");
	$node->safe_psql('postgres', "SELECT moltres_ops.safe_drop_index('other_x$i')");
}
$node->poll_query_until('postgres',
	q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'moltres_ops index worker'}, '0')
  or die 'index workers linger';
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_class WHERE relname LIKE 'other_x_%'}),
	'0', 'twenty jobs in a row: every index built was dropped');
is( $node->safe_psql('postgres',
		q{SELECT count(*) FILTER (WHERE state = 'done') || '/' || count(*) FROM moltres_ops.index_jobs}),
	'16/16', 'the job slots are reused, all done');
$pid = $node->safe_psql('postgres',
	q{SELECT moltres_ops.safe_create_index('other_last', 'other', '(x)', wait => false)});
ok($pid > 0, 'a worker still starts after them');

$node->poll_query_until('postgres',
	q{SELECT state FROM moltres_ops.index_jobs WHERE command LIKE '%other_last%'}, 'done')
  or die 'the last build did not finish';

# ---------------------------------------------------------------------------
# A worker terminated mid-build (pg_terminate_backend, a shutdown) cannot
# clean up; its job says so instead of staying "running".
$long->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
$long->query_safe('SELECT count(*) FROM other');
$pid = $node->safe_psql('postgres',
	q{SELECT moltres_ops.safe_create_index('orders_killed', 'orders', '(customer_id, id)', wait => false)});
$node->poll_query_until('postgres',
	qq{SELECT wait_event FROM pg_stat_activity WHERE pid = $pid}, 'virtualxid')
  or die 'the worker never waited';
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
$node->poll_query_until('postgres',
	q{SELECT state || ':' || error_code FROM moltres_ops.index_jobs WHERE command LIKE '%orders_killed%'},
	'failed:57P01')
  or die 'the terminated job does not say failed';
$long->query_safe('COMMIT');
is( $node->safe_psql('postgres',
		q{SELECT indisvalid FROM pg_index WHERE indexrelid = 'orders_killed'::regclass}),
	'f', 'a terminated build leaves its invalid index, as the runbook says');
is( $node->safe_psql('postgres',
		q{SELECT moltres_ops.safe_drop_index('orders_killed') > 0}),
	't', 'which safe_drop_index removes');
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_class WHERE relname = 'orders_killed'}),
	'0', 'gone');

$long->quit;
$caller->quit;
$writer->quit;
$locker->quit;

# ---------------------------------------------------------------------------
# No background worker slot free (the logical replication launcher takes
# the only one): a clear error, and the job slot is not left "starting".
$node->append_conf('postgresql.conf', "max_worker_processes = 1\n");
$node->restart;
($ret, $out, $err) = $node->psql('postgres',
	q{\set VERBOSITY verbose
SELECT moltres_ops.safe_create_index('other_none', 'other', '(x)')});
like($err, qr/ERROR:  53400: could not start an index worker/,
	'no worker slot: a clear error');
like($err, qr/HINT:  Raise max_worker_processes/, 'that says what to raise');
is( $node->safe_psql('postgres',
		q{SELECT state || ':' || error_code FROM moltres_ops.index_jobs}),
	'failed:53400', 'and the job slot is marked failed');
$node->stop;
done_testing();
