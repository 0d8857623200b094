# The health worker with real sessions, a real streaming replica and a
# real archiver: every check stays quiet on a healthy pair, each one fires
# when its outage is made (replay held with pg_wal_replay_pause(), a failing
# archive_command, an inactive slot, a pool with no idle connection, a row
# lock wait, a prepared transaction, dead rows, a setting pending restart),
# standby-side checks work on the standby, and durations and history
# survive a clean restart and a crash.  The worker never waits long behind
# a lock.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('health_primary');
$primary->init(allows_streaming => 1, has_archiving => 1);
$primary->append_conf('postgresql.conf', <<'EOC');
shared_preload_libraries = 'moltres_ops'
moltres_ops.health_interval = 1
moltres_ops.health_for = 0
max_prepared_transactions = 2
restart_after_crash = on
EOC
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION moltres_ops');

# Wait for two more evaluations than now: the worker has then seen every
# change made before this call (including a reload it was signalled for).
sub settle
{
	my ($node) = @_;
	$node->poll_query_until('postgres',
		q{SELECT last_run IS NOT NULL AND last_error IS NULL FROM moltres_ops.health_worker})
	  or die 'the health worker does not evaluate';
	my $n = $node->safe_psql('postgres', 'SELECT evaluations FROM moltres_ops.health_worker');
	$node->poll_query_until('postgres',
		"SELECT evaluations >= $n + 2 FROM moltres_ops.health_worker")
	  or die 'the health worker does not evaluate';
}

sub row_of
{
	my ($node, $check) = @_;
	return $node->safe_psql('postgres',
		"SELECT status || '|' || coalesce(value::text, '') || '|' || detail FROM moltres_ops.health() WHERE name = '$check'");
}

sub status_of
{
	my ($node, $check) = @_;
	return (split /\|/, row_of($node, $check))[0];
}

# Poll until the check's status matches; one test.
sub fires
{
	my ($node, $check, $re, $what) = @_;
	my $ok = $node->poll_query_until('postgres',
		"SELECT status ~ '$re' FROM moltres_ops.health() WHERE name = '$check'");
	ok($ok, $what) or diag(row_of($node, $check));
}

# A setting for the primary's worker: ALTER SYSTEM, reload, settle.
sub set_conf
{
	my ($node, $name, $value) = @_;
	if (defined $value)
	{
		$node->safe_psql('postgres', "ALTER SYSTEM SET $name = '$value'");
	}
	else
	{
		$node->safe_psql('postgres', "ALTER SYSTEM RESET $name");
	}
	$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
	settle($node);
}

# --- the worker ------------------------------------------------------------
settle($primary);
my ($wstatus, undef, $wdetail) = split /\|/, row_of($primary, 'health_worker'), 3;
is($wstatus, 'ok', 'health_worker: ok while the worker keeps up');
like($wdetail, qr/evaluated in database postgres/, 'health_worker: names its database');
is( $primary->safe_psql('postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'moltres_ops health worker'}),
	'1', 'one health worker runs');
is( $primary->safe_psql('postgres',
		q{SELECT count(*) FROM moltres_ops.health() WHERE since IS NULL OR checked_at IS NULL}),
	'0', 'every check has a since and a checked_at');
is( $primary->safe_psql('postgres',
		q{SELECT count(*) FROM moltres_ops.query_stats WHERE query LIKE '%health_evaluate%'}),
	'0', "the worker's own statements are not tracked");

# A healthy server: every check stays quiet (latency depends on the
# machine, and is tested with thresholds below).
is( $primary->safe_psql('postgres',
		q{SELECT coalesce(string_agg(name || '=' || status, ', '), '') FROM moltres_ops.health() WHERE status <> 'ok' AND name NOT LIKE 'latency%'}),
	'', 'a healthy primary: every check ok');

# --- a streaming replica ---------------------------------------------------
$primary->safe_psql('postgres', 'CREATE TABLE lag_t (id int PRIMARY KEY, v int)');
$primary->safe_psql('postgres', 'INSERT INTO lag_t SELECT g, 0 FROM generate_series(1, 10) g');
$primary->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('health_standby');
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
settle($standby);
settle($primary);

is(status_of($standby, 'health_worker'), 'ok', 'standby: the worker runs on a hot standby');
like(row_of($primary, 'replication_lag'), qr/^ok\|.*1 standbys/, 'primary: replication_lag ok with one standby caught up');
like(row_of($standby, 'replication_lag'), qr/^ok\|/, 'standby: replication_lag ok while caught up');
like(row_of($standby, 'wal_receiver'), qr/^ok\|1\|WAL receiver streaming/, 'standby: wal_receiver ok while streaming');
like(row_of($standby, 'archiver'), qr/^ok\|\|does not apply on a standby/, 'standby: archiver does not apply');
like(row_of($standby, 'autovacuum'), qr/^ok\|\|does not apply on a standby/, 'standby: autovacuum does not apply');
is( $standby->safe_psql('postgres',
		q{SELECT coalesce(string_agg(name || '=' || status, ', '), '') FROM moltres_ops.health() WHERE status <> 'ok' AND name NOT LIKE 'latency%'}),
	'', 'a healthy standby: every check ok');

# Hold replay on the standby and write on the primary.
$standby->safe_psql('postgres', 'SELECT pg_wal_replay_pause()');
$standby->append_conf('postgresql.conf', "moltres_ops.health_replication_lag_s = 1\n");
$standby->reload;
set_conf($primary, 'moltres_ops.health_replication_lag_mb', '1');
$primary->safe_psql('postgres',
	'CREATE TABLE lag_fill AS SELECT g, repeat(\'x\', 100) AS pad FROM generate_series(1, 30000) g');
fires($standby, 'replication_lag', '^(warn|critical)$', 'standby: replication_lag fires while replay is paused');
like(row_of($standby, 'replication_lag'), qr/replay is paused/, 'standby: replication_lag says replay is paused');
fires($primary, 'replication_lag', '^(warn|critical)$', 'primary: replication_lag fires on the WAL not replayed');
like(row_of($primary, 'replication_lag'), qr/not yet replayed/, 'primary: replication_lag names the bytes behind');

$standby->safe_psql('postgres', 'SELECT pg_wal_replay_resume()');
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
fires($standby, 'replication_lag', '^ok$', 'standby: replication_lag ok again once replay resumes');
fires($primary, 'replication_lag', '^ok$', 'primary: replication_lag ok again once the standby caught up');
set_conf($primary, 'moltres_ops.health_replication_lag_mb', undef);
like( $primary->safe_psql('postgres',
		q{SELECT string_agg(from_status || '>' || to_status, ',' ORDER BY at) FROM moltres_ops.health_history WHERE name = 'replication_lag'}),
	qr/^ok>(warn|critical)(,\w+>\w+)*,(warn|critical)>ok$/, 'health_history: the lag episode, from ok and back');

# --- replication slots -----------------------------------------------------
$primary->safe_psql('postgres', q{SELECT pg_create_physical_replication_slot('idle_slot', true)});
fires($primary, 'replication_slots', '^warn$', 'replication_slots: an inactive slot warns');
like(row_of($primary, 'replication_slots'), qr/inactive: idle_slot/, 'replication_slots: names the inactive slot');
$primary->safe_psql('postgres', q{SELECT pg_drop_replication_slot('idle_slot')});
fires($primary, 'replication_slots', '^ok$', 'replication_slots: ok once it is dropped');

# --- WAL archiving ---------------------------------------------------------
$primary->safe_psql('postgres', 'SELECT pg_switch_wal()');
$primary->poll_query_until('postgres',
	q{SELECT archived_count > 0 AND (last_failed_time IS NULL OR last_archived_time > last_failed_time) FROM pg_stat_archiver})
  or die 'nothing archived';
settle($primary);
is(status_of($primary, 'archiver'), 'ok', 'archiver: ok while archive_command succeeds');

set_conf($primary, 'archive_command', 'false');
$primary->safe_psql('postgres', 'INSERT INTO lag_t VALUES (100, 0)');
$primary->safe_psql('postgres', 'SELECT pg_switch_wal()');
fires($primary, 'archiver', '^warn$', 'archiver: a failing archive_command warns');
like(row_of($primary, 'archiver'), qr/archive_command is failing/, 'archiver: says it is failing');
set_conf($primary, 'moltres_ops.health_archive_age_s', '1');
fires($primary, 'archiver', '^critical$', 'archiver: critical once the last archived segment is too old');
set_conf($primary, 'archive_command', undef);
set_conf($primary, 'moltres_ops.health_archive_age_s', undef);
fires($primary, 'archiver', '^ok$', 'archiver: ok again once archiving works');

# --- an application pool with no idle connection ---------------------------
my @pool = map { $primary->background_psql('postgres') } 1 .. 2;
$_->query_safe(q{SET application_name = 'pool_app'; BEGIN; SELECT 1;}) for @pool;
fires($primary, 'pool_exhausted', '^warn$', 'pool_exhausted: two connections, none idle');
like(row_of($primary, 'pool_exhausted'), qr/application pool_app \(role \S+\) holds 2 connections and none is idle/,
	'pool_exhausted: names the application');
$pool[0]->query_safe('COMMIT');
fires($primary, 'pool_exhausted', '^ok$', 'pool_exhausted: ok once one connection is idle');
$pool[1]->query_safe('COMMIT');
$_->quit for @pool;

# --- a row lock wait and a long transaction --------------------------------
set_conf($primary, 'moltres_ops.health_lock_wait_s', '1');
set_conf($primary, 'moltres_ops.health_long_transaction_s', '1');
is(status_of($primary, 'lock_waits'), 'ok', 'lock_waits: ok with nobody waiting');
is(status_of($primary, 'long_transaction'), 'ok', 'long_transaction: ok with no open transaction');
my $holder = $primary->background_psql('postgres');
$holder->query_safe('BEGIN; SELECT * FROM lag_t WHERE id = 1 FOR UPDATE;');
my $holder_pid = $holder->query_safe('SELECT pg_backend_pid()');
my $waiter = $primary->background_psql('postgres', on_error_stop => 0);
$waiter->query_until(qr/waiting/, "\\echo waiting\nUPDATE lag_t SET v = 1 WHERE id = 1;\n");
fires($primary, 'lock_waits', '^(warn|critical)$', 'lock_waits: a row lock wait past the threshold fires');
like(row_of($primary, 'lock_waits'), qr/blocked by $holder_pid/, 'lock_waits: names the blocker');
fires($primary, 'long_transaction', '^(warn|critical)$', 'long_transaction: an open transaction past the threshold fires');
like(row_of($primary, 'long_transaction'), qr/xmin horizon \d+ transactions old/, 'long_transaction: reports the xmin horizon');
$holder->query_safe('COMMIT');
$waiter->query_safe('SELECT 1');
fires($primary, 'lock_waits', '^ok$', 'lock_waits: ok once the lock is released');
fires($primary, 'long_transaction', '^ok$', 'long_transaction: ok once the transaction ends');
$holder->quit;
$waiter->quit;
set_conf($primary, 'moltres_ops.health_lock_wait_s', undef);
set_conf($primary, 'moltres_ops.health_long_transaction_s', undef);

# --- a prepared transaction left behind ------------------------------------
set_conf($primary, 'moltres_ops.health_prepared_xact_s', '1');
is(status_of($primary, 'prepared_transactions'), 'ok', 'prepared_transactions: ok with none');
$primary->safe_psql('postgres', q{BEGIN; UPDATE lag_t SET v = 2 WHERE id = 2; PREPARE TRANSACTION 'health_p1';});
fires($primary, 'prepared_transactions', '^(warn|critical)$', 'prepared_transactions: an old one fires');
like(row_of($primary, 'prepared_transactions'), qr/health_p1/, 'prepared_transactions: names it');
$primary->safe_psql('postgres', q{COMMIT PREPARED 'health_p1'});
fires($primary, 'prepared_transactions', '^ok$', 'prepared_transactions: ok once committed');
set_conf($primary, 'moltres_ops.health_prepared_xact_s', undef);

# --- dead rows autovacuum does not remove ----------------------------------
$primary->safe_psql('postgres',
	'CREATE TABLE dead_t (id int) WITH (autovacuum_enabled = false); INSERT INTO dead_t SELECT generate_series(1, 20000)');
$primary->poll_query_until('postgres',
	q{SELECT n_live_tup = 20000 FROM pg_stat_user_tables WHERE relname = 'dead_t'})
  or die 'no statistics for dead_t';
settle($primary);
is(status_of($primary, 'autovacuum'), 'ok', 'autovacuum: ok without dead rows');
$primary->safe_psql('postgres', 'DELETE FROM dead_t WHERE id <= 10000');
fires($primary, 'autovacuum', '^critical$', 'autovacuum: half the rows dead is critical');
like(row_of($primary, 'autovacuum'), qr/dead_t: 10000 dead of 20000 rows/, 'autovacuum: names the table');
$primary->safe_psql('postgres', 'VACUUM dead_t');
fires($primary, 'autovacuum', '^ok$', 'autovacuum: ok after a vacuum');

# --- latency and timeouts --------------------------------------------------
set_conf($primary, 'moltres_ops.health_p95_ms', '1h');
set_conf($primary, 'moltres_ops.health_p99_ms', '1h');
is(status_of($primary, 'latency_p95'), 'ok', 'latency_p95: ok under a high threshold');
is(status_of($primary, 'latency_p99'), 'ok', 'latency_p99: ok under a high threshold');
is(status_of($primary, 'timeout_rate'), 'ok', 'timeout_rate: ok without timeouts');
set_conf($primary, 'moltres_ops.health_p95_ms', '1');
set_conf($primary, 'moltres_ops.health_p99_ms', '1');
$primary->safe_psql('postgres', 'SELECT pg_sleep(0.02)') for 1 .. 3;
fires($primary, 'latency_p95', '^(warn|critical)$', 'latency_p95: fires over the threshold');
fires($primary, 'latency_p99', '^(warn|critical)$', 'latency_p99: fires over the threshold');
set_conf($primary, 'moltres_ops.health_p95_ms', undef);
set_conf($primary, 'moltres_ops.health_p99_ms', undef);
$primary->psql('postgres', q{SET statement_timeout = '10ms'; SELECT pg_sleep(1)});
fires($primary, 'timeout_rate', '^(warn|critical)$', 'timeout_rate: a statement timeout fires it');

# --- wraparound ------------------------------------------------------------
set_conf($primary, 'moltres_ops.health_wraparound_pct', '0');
fires($primary, 'wraparound', '^warn$', 'wraparound: warns when every age counts');
set_conf($primary, 'moltres_ops.health_wraparound_pct', undef);
is(status_of($primary, 'wraparound'), 'ok', 'wraparound: ok at the default');

# --- a setting waiting for a restart ---------------------------------------
set_conf($primary, 'max_prepared_transactions', '3');
fires($primary, 'pending_restart', '^warn$', 'pending_restart: warns');
like(row_of($primary, 'pending_restart'), qr/max_prepared_transactions/, 'pending_restart: names the setting');
set_conf($primary, 'max_prepared_transactions', undef);
fires($primary, 'pending_restart', '^ok$', 'pending_restart: ok once the change is undone');

# --- durations and history across a restart and a crash --------------------
# With health_for at an hour, a firing check is pending, not reported.
set_conf($primary, 'moltres_ops.health_for', '1h');
set_conf($primary, 'moltres_ops.health_disk_free_pct', '100');
my $pending = $primary->safe_psql('postgres',
	q{SELECT status || '|' || coalesce(pending, '') || '|' || coalesce(pending_since::text, '') FROM moltres_ops.health() WHERE name = 'disk_space'});
my ($dstatus, $dpending, $dsince) = split /\|/, $pending;
is($dstatus, 'ok', 'health_for: a firing check is not reported before its duration');
like($dpending, qr/^(warn|critical)$/, 'health_for: it is pending');
$primary->restart;
settle($primary);
is( $primary->safe_psql('postgres',
		q{SELECT pending_since::text FROM moltres_ops.health() WHERE name = 'disk_space'}),
	$dsince, 'health_for: the pending duration runs on across a restart');

set_conf($primary, 'moltres_ops.health_for', '0');
fires($primary, 'disk_space', '^(warn|critical)$', 'disk_space: fires once health_for is 0');
my $since = $primary->safe_psql('postgres', q{SELECT since FROM moltres_ops.health() WHERE name = 'disk_space'});
my $hist = $primary->safe_psql('postgres', q{SELECT count(*) FROM moltres_ops.health_history});
like( $primary->safe_psql('postgres',
		q{SELECT from_status || '>' || to_status FROM moltres_ops.health_history WHERE name = 'disk_space' ORDER BY at DESC LIMIT 1}),
	qr/^ok>(warn|critical)$/, 'health_history: the change is recorded');

$primary->restart;
settle($primary);
is($primary->safe_psql('postgres', q{SELECT since FROM moltres_ops.health() WHERE name = 'disk_space'}),
	$since, 'since: kept across a clean restart');
is($primary->safe_psql('postgres', q{SELECT count(*) FROM moltres_ops.health_history}),
	$hist, 'health_history: kept across a clean restart');

my $victim = $primary->background_psql('postgres', on_error_stop => 0);
my $victim_pid = $victim->query_safe('SELECT pg_backend_pid()');
kill 'KILL', $victim_pid;
$primary->poll_query_until('postgres', q{SELECT 1}, '1')
  or die 'server did not come back after the crash';
$victim->quit;
settle($primary);
is($primary->safe_psql('postgres', q{SELECT since FROM moltres_ops.health() WHERE name = 'disk_space'}),
	$since, 'since: kept across a crash');
is($primary->safe_psql('postgres', q{SELECT count(*) FROM moltres_ops.health_history}),
	$hist, 'health_history: kept across a crash');

set_conf($primary, 'moltres_ops.health_disk_free_pct', undef);
fires($primary, 'disk_space', '^ok$', 'disk_space: ok at the default');
like( $primary->safe_psql('postgres',
		q{SELECT from_status || '>' || to_status FROM moltres_ops.health_history WHERE name = 'disk_space' ORDER BY at DESC LIMIT 1}),
	qr/^(warn|critical)>ok$/, 'health_history: the return to ok is recorded');

# --- the worker never waits long behind a lock -----------------------------
my $locker = $primary->background_psql('postgres');
$locker->query_safe('BEGIN; LOCK TABLE moltres_ops.migrations IN ACCESS EXCLUSIVE MODE;');
ok( $primary->poll_query_until('postgres',
		q{SELECT last_error LIKE '%lock timeout%' FROM moltres_ops.health_worker}),
	'a lock held on a table the checks read makes the worker time out, not wait');
my $failures = $primary->safe_psql('postgres', 'SELECT failures FROM moltres_ops.health_worker');
ok( $primary->poll_query_until('postgres',
		"SELECT failures >= $failures + 2 FROM moltres_ops.health_worker"),
	'and it keeps trying on its interval while the lock is held');
$locker->query_safe('COMMIT');
$locker->quit;
ok( $primary->poll_query_until('postgres',
		q{SELECT last_error IS NULL FROM moltres_ops.health_worker}),
	'the worker recovers once the lock is gone');

# --- a standby that lost its primary ----------------------------------------
$primary->stop;
fires($standby, 'wal_receiver', '^critical$', 'standby: wal_receiver critical once the primary is gone');
$standby->stop;

ok(!$primary->log_contains(qr/ignoring moltres_ops health file/), 'the health file was never found broken');

done_testing();
