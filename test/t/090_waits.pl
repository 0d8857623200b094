# Where the time goes: the wait sampler charges what each backend waits for
# to the statement it runs.  A known workload -- a row lock held for a known
# time, a sleep, a CPU-bound join, a nested statement, a utility statement
# that fails -- against query_waits; the sampler restarted after a crash and
# running on a standby; and the same workload with pg_wait_sampling loaded
# beside it, counting what each one attributes to the right query id.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('waits');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'moltres_ops'
moltres_ops.session_history_interval = 0
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION moltres_ops;
CREATE TABLE tw (id int PRIMARY KEY, v int);
CREATE TABLE tap_utility (id int);
INSERT INTO tw VALUES (1, 0);
CREATE FUNCTION tap_nested() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_sleep(0.5), 1, 2, 3 AS tap_inner;
END $$;
});
$node->poll_query_until('postgres',
	'SELECT pid IS NOT NULL AND samples > 0 FROM moltres_ops.wait_sampler')
  or die 'the wait sampler never sampled';

# The query id of the statement whose text contains $tag.
sub qid
{
	my ($n, $tag, $toplevel) = @_;
	$toplevel //= 't';
	my $id = $n->safe_psql('postgres', qq{
		SELECT queryid FROM moltres_ops.query_stats
		 WHERE query LIKE '%$tag%' AND toplevel = '$toplevel' LIMIT 1});
	die "no statement $tag in query_stats" if $id eq '';
	return $id;
}

# Samples and estimated seconds of one statement and wait event.
sub waits_of
{
	my ($n, $queryid, $toplevel, $type, $event) = @_;
	my ($samples, $secs) = split /\|/, $n->safe_psql('postgres', qq{
		SELECT coalesce(sum(samples), 0), coalesce(sum(seconds), 0)
		  FROM moltres_ops.query_waits
		 WHERE queryid = $queryid AND toplevel = '$toplevel'
		   AND wait_event_type = '$type' AND wait_event = '$event'});
	return ($samples, $secs);
}

# Share of a statement's samples that went to one wait event.
sub fraction_of
{
	my ($n, $queryid, $toplevel, $type, $event) = @_;
	return $n->safe_psql('postgres', qq{
		SELECT coalesce(sum(samples) FILTER (WHERE wait_event_type = '$type'
		                                       AND wait_event = '$event'), 0)::float8
		       / greatest(sum(samples), 1)
		  FROM moltres_ops.query_waits
		 WHERE queryid = $queryid AND toplevel = '$toplevel'});
}

# One session holds the row lock for $hold seconds while another's UPDATE
# waits for it.  Returns the waiter's duration as its client measured it
# (ms), and the samples the sampler took, and the time they stood for,
# while the waiter was seen waiting.
sub lock_wait
{
	my ($n, $hold) = @_;
	my $holder = $n->background_psql('postgres');
	my $waiter = $n->background_psql('postgres');
	$waiter->query_safe('\timing on');
	$holder->query_safe('BEGIN; UPDATE tw SET v = v + 1 WHERE id = 1;');
	$waiter->query_until(qr/waiting/,
		"\\echo waiting\nUPDATE tw SET v = v + 1 WHERE id = 1 RETURNING v AS tap_waiter;\n");
	$n->poll_query_until('postgres', q{
		SELECT count(*) = 1 FROM pg_stat_activity
		 WHERE query LIKE '%tap_waiter%' AND wait_event = 'transactionid'
		   AND pid <> pg_backend_pid()})
	  or die 'the UPDATE never waited for the row lock';
	# The holder reads the sampler's counters just before it sleeps and
	# just after it commits, so the interval between them lies within the
	# wait.
	my $counters = 'SELECT samples, sampled_seconds FROM moltres_ops.wait_sampler;';
	my $out = $holder->query_safe("$counters SELECT pg_sleep($hold); COMMIT; $counters");
	my @c = ($out =~ /^(\d+)\|([0-9.e+-]+)$/mg);
	die "no counters in: $out" unless @c == 4;
	my ($t0, $s0, $t1, $s1) = @c;
	$out = $waiter->query_safe(q{SELECT 'tap_after'});
	$out =~ /Time: ([0-9.]+) ms/ or die "no timing in: $out";
	my $wait_ms = $1;
	$holder->quit;
	$waiter->quit;
	return ($wait_ms, $t1 - $t0, $s1 - $s0);
}

# An autocommit INSERT whose commit waits for a synchronous standby that
# never comes, until at least $min samples were charged to it; then its wait
# is cancelled (the commit stands locally).  Returns its query id.
sub commit_wait
{
	my ($n, $min) = @_;
	$n->safe_psql('postgres', q{
		ALTER SYSTEM SET synchronous_standby_names = 'tap_nobody';
		SELECT pg_reload_conf();});
	$n->poll_query_until('postgres', 'SHOW synchronous_standby_names', 'tap_nobody')
	  or die 'synchronous_standby_names not reloaded';
	my $committer = $n->background_psql('postgres', on_error_stop => 0);
	$committer->query_until(qr/committing/,
		"\\echo committing\nINSERT INTO tw VALUES (2, 0) ON CONFLICT (id) DO UPDATE SET v = tw.v + 1 RETURNING v AS tap_commit;\n");
	$n->poll_query_until('postgres', q{
		SELECT count(*) = 1 FROM pg_stat_activity
		 WHERE wait_event = 'SyncRep' AND query LIKE '%tap_commit%'})
	  or die 'the INSERT never waited for synchronous replication';
	my $id = qid($n, 'tap_commit');
	$n->poll_query_until('postgres', qq{
		SELECT coalesce(sum(samples), 0) >= $min FROM moltres_ops.query_waits
		 WHERE queryid = $id AND toplevel AND wait_event = 'SyncRep'})
	  or die 'no SyncRep samples for the INSERT';
	$n->safe_psql('postgres', q{
		SELECT pg_cancel_backend(pid) FROM pg_stat_activity
		 WHERE wait_event = 'SyncRep' AND query LIKE '%tap_commit%'});
	$committer->query(q{SELECT 'tap_committed'});
	$committer->quit;
	$n->safe_psql('postgres', q{
		ALTER SYSTEM RESET synchronous_standby_names;
		SELECT pg_reload_conf();});
	$n->poll_query_until('postgres', 'SHOW synchronous_standby_names', '')
	  or die 'synchronous_standby_names not reset';
	return $id;
}

# --- a row lock held for a known time ------------------------------------
my $hold = 2;
my ($wait_ms, $ticks, $ticks_s) = lock_wait($node, $hold);
my $waiter_id = qid($node, 'tap_waiter');
my ($samples, $secs) = waits_of($node, $waiter_id, 't', 'Lock', 'transactionid');
# The sampler's real interval while the UPDATE waited (on a busy machine it
# may be longer than the setting): the UPDATE can have been seen at most
# once per sample, so its samples should be its wait divided by that.
my $real_interval = $ticks_s / $ticks;
my $expected = $wait_ms / 1000.0 / $real_interval;
diag(sprintf('lock wait: client measured %.0f ms; sampler interval %.2f ms over the wait (setting 10 ms); '
	  . 'Lock:transactionid %d samples (expected %.1f, nominal %d), %.3f s estimated',
	$wait_ms, $real_interval * 1000, $samples, $expected, $hold / 0.010, $secs));
ok(abs($samples - $expected) <= 0.1 * $expected,
	'the waiting UPDATE has Lock:transactionid samples within 10 % of its wait over the sampling interval');
ok(abs($secs - $wait_ms / 1000.0) <= 0.1 * $wait_ms / 1000.0,
	'and its estimated seconds within 10 % of the wait its client measured');
ok($samples >= $ticks - 1, 'every sample taken while it waited saw it waiting');
cmp_ok(fraction_of($node, $waiter_id, 't', 'Lock', 'transactionid'), '>=', 0.9,
	'almost all of its samples are the lock wait');

# --- a sleep, a CPU-bound join, a nested statement ------------------------
# (Column aliases are not part of a query id: each tagged statement below
# differs in shape too, so that each has its own.)
$node->safe_psql('postgres', 'SELECT pg_sleep(0.5) AS tap_sleep');
my $sleep_id = qid($node, 'tap_sleep');
my ($sleep_n) = waits_of($node, $sleep_id, 't', 'Timeout', 'PgSleep');
cmp_ok($sleep_n, '>', 0, 'pg_sleep shows Timeout:PgSleep samples');
cmp_ok(fraction_of($node, $sleep_id, 't', 'Timeout', 'PgSleep'), '>=', 0.9,
	'and little else');

$node->safe_psql('postgres', q{
	SELECT count(*) AS tap_cpu
	  FROM generate_series(1, 1000) a, generate_series(1, 3000) b});
my $cpu_id = qid($node, 'tap_cpu');
my ($cpu_n) = waits_of($node, $cpu_id, 't', 'CPU', 'CPU');
cmp_ok($cpu_n, '>', 0, 'a CPU-bound join shows CPU samples');
cmp_ok(fraction_of($node, $cpu_id, 't', 'CPU', 'CPU'), '>=', 0.9,
	'and is almost only on CPU');

$node->safe_psql('postgres', q{
	SET moltres_ops.track = 'all';
	SELECT tap_nested() AS tap_outer;});
my $outer_id = qid($node, 'tap_outer');
my $inner_id = qid($node, 'tap_inner', 'f');
my ($outer_n) = waits_of($node, $outer_id, 't', 'Timeout', 'PgSleep');
my ($inner_n) = waits_of($node, $inner_id, 'f', 'Timeout', 'PgSleep');
cmp_ok($inner_n, '>', 0, 'a nested pg_sleep is charged to the nested statement');
# (Equal but for a sample taken at the very instant the nested statement
# ended: the sampler reads the wait event and the slot one after the other.)
ok(abs($outer_n - $inner_n) <= 1,
	"and each of its samples to the top-level statement too ($inner_n, $outer_n)");

# --- a utility statement that waits, then fails ---------------------------
# Run once first, so that query_stats has its text (the error path copies
# none) and the test can find its query id.
$node->safe_psql('postgres', 'VACUUM tap_utility');
{
	my $holder = $node->background_psql('postgres');
	$holder->query_safe('BEGIN; LOCK TABLE tap_utility IN ACCESS EXCLUSIVE MODE;');
	my ($out, $err) = $node->psql('postgres', q{
		SET lock_timeout = '500ms';
		VACUUM tap_utility;});
	$node->safe_psql('postgres', 'SELECT 1 AS tap_after_fail, pg_sleep(0.3)');
	$holder->query_safe('COMMIT');
	$holder->quit;
}
my $vac_id = qid($node, 'VACUUM tap_utility');
my ($vac_lock) = waits_of($node, $vac_id, 't', 'Lock', 'relation');
cmp_ok($vac_lock, '>', 0, 'a utility statement waiting for a lock has its own query id');
my ($vac_sleep) = waits_of($node, $vac_id, 't', 'Timeout', 'PgSleep');
is($vac_sleep, 0, 'once it failed, nothing more is charged to it');
my ($after_n) = waits_of($node, qid($node, 'tap_after_fail'), 't', 'Timeout', 'PgSleep');
cmp_ok($after_n, '>', 0, 'the next statement gets its own samples');

# --- the commit of an autocommit statement ------------------------------
# The statement has ended when its transaction commits; the commit's wait
# for synchronous replication is still charged to it.
my $commit_id = commit_wait($node, 20);
my ($commit_n) = waits_of($node, $commit_id, 't', 'IPC', 'SyncRep');
cmp_ok($commit_n, '>=', 20,
	'the commit of an autocommit INSERT waiting for a synchronous standby is charged to the INSERT');
cmp_ok(fraction_of($node, $commit_id, 't', 'IPC', 'SyncRep'), '>=', 0.9,
	'and that wait is nearly all of its samples');

# --- the other views --------------------------------------------------------
is($node->safe_psql('postgres', q{
	SELECT bool_and(seconds > 0) AND count(*) > 0 FROM moltres_ops.db_waits
	 WHERE datname = 'postgres' AND wait_event IN ('transactionid', 'PgSleep', 'CPU')}),
	't', 'db_waits counts the database as a whole');

# The same counters in the Prometheus export: the instance's series at
# least the lock wait the client measured, and the per-database series of
# 'postgres' no more than the instance's.
my $prom = $node->safe_psql('postgres', 'SELECT moltres_ops.prometheus()');
my ($prom_inst) = $prom =~
  /^moltres_ops_wait_seconds_total\{wait_event="transactionid",wait_event_type="Lock"\} (\S+)$/m;
my ($prom_db) = $prom =~
  /^moltres_ops_database_wait_seconds_total\{datname="postgres",wait_event="transactionid",wait_event_type="Lock"\} (\S+)$/m;
ok(defined $prom_inst && $prom_inst >= 0.9 * $wait_ms / 1000.0,
	'prometheus() exports the lock wait in moltres_ops_wait_seconds_total');
ok(defined $prom_db && $prom_db > 0 && $prom_db <= $prom_inst + 1e-9,
	'and per database in moltres_ops_database_wait_seconds_total');
like($prom, qr/^# TYPE moltres_ops_wait_seconds_total counter$/m,
	'typed as a counter');
is($node->safe_psql('postgres', q{
	SELECT count(DISTINCT "window") = 3 AND bool_and(active_sessions > 0)
	  FROM moltres_ops.db_load WHERE datname IS NULL}),
	't', 'db_load has the instance over three windows');
is($node->safe_psql('postgres', qq{
	SELECT count(*) > 0 FROM moltres_ops.session_history
	 WHERE wait_event = 'transactionid' AND top_queryid = $waiter_id
	   AND datname = 'postgres' AND state = 'active'
	   AND backend_type = 'client backend'}),
	't', 'session_history kept raw samples of the waiting UPDATE');

# Other users' query ids are hidden from a reader without pg_read_all_stats,
# as in query_stats.
$node->safe_psql('postgres', q{
	CREATE ROLE tap_reader LOGIN;
	GRANT SELECT ON moltres_ops.query_waits, moltres_ops.session_history TO tap_reader;
	GRANT EXECUTE ON FUNCTION moltres_ops.query_waits_internal(),
		moltres_ops.query_stats_internal(boolean),
		moltres_ops.session_history_internal() TO tap_reader;});
is($node->safe_psql('postgres', q{
	SELECT count(*) > 0 AND count(queryid) = 0 FROM moltres_ops.query_waits
	 WHERE username <> 'tap_reader';
	SELECT count(*) > 0 AND count(queryid) + count(top_queryid) = 0
	  FROM moltres_ops.session_history WHERE username <> 'tap_reader';},
		extra_params => [ '-U', 'tap_reader' ]),
	"t\nt", 'other users\' query ids are hidden without pg_read_all_stats');

# --- restarted after a crash ----------------------------------------------
my $old_pid = $node->safe_psql('postgres', 'SELECT pid FROM moltres_ops.wait_sampler');
my $victim = $node->background_psql('postgres', on_error_stop => 0);
my $vpid = $victim->query_safe('SELECT pg_backend_pid()');
kill 'KILL', $vpid;
$node->poll_query_until('postgres', 'SELECT 1', '1')
  or die 'server did not come back after the crash';
$victim->quit;
ok( $node->poll_query_until('postgres', qq{
		SELECT pid IS NOT NULL AND pid <> $old_pid AND samples > 0
		  FROM moltres_ops.wait_sampler}),
	'the sampler is restarted after a crash');
$node->safe_psql('postgres', 'SELECT 1, 2, pg_sleep(0.3) AS tap_after_crash');
my ($crash_n) = waits_of($node, qid($node, 'tap_after_crash'), 't', 'Timeout', 'PgSleep');
cmp_ok($crash_n, '>', 0, 'and attributes again');

# --- on a standby -----------------------------------------------------------
$node->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('waits_standby');
$standby->init_from_backup($node, 'bk', has_streaming => 1);
$standby->start;
ok( $standby->poll_query_until('postgres',
		'SELECT pid IS NOT NULL AND samples > 0 FROM moltres_ops.wait_sampler'),
	'the sampler runs on a standby');
$standby->safe_psql('postgres', 'SELECT 1, pg_sleep(0.3) AS tap_standby, 2');
my ($standby_n) = waits_of($standby, qid($standby, 'tap_standby'), 't', 'Timeout', 'PgSleep');
cmp_ok($standby_n, '>', 0, 'and attributes the standby\'s statements');
$standby->stop;

# --- beside pg_wait_sampling ----------------------------------------------
# The same workload with both samplers at 10 ms; for each statement, the
# samples each one attributes to the statement's query id and wait event.
# Debian packages pg_wait_sampling for its own PostgreSQL 15 only: a server
# built from source for another version has no copy, and the comparison is
# skipped there with a note.
my $pkglibdir = `@{[ $ENV{PG_CONFIG} // "pg_config" ]} --pkglibdir`;
chomp $pkglibdir;
if (!-f "$pkglibdir/pg_wait_sampling.so")
{
	note "pg_wait_sampling is not installed for this server: comparison skipped";
	$node->stop;
	done_testing();
	exit 0;
}
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'moltres_ops, pg_wait_sampling'
pg_wait_sampling.profile_period = 10
});
$node->restart;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_wait_sampling');
$node->safe_psql('postgres', 'SELECT pg_wait_sampling_reset_profile(), moltres_ops.reset_waits()');
lock_wait($node, $hold);
$node->safe_psql('postgres', 'SELECT pg_sleep(0.5) AS tap_sleep');
$node->safe_psql('postgres', q{
	SELECT count(*) AS tap_cpu
	  FROM generate_series(1, 1000) a, generate_series(1, 3000) b});
$node->safe_psql('postgres', q{
	SET moltres_ops.track = 'all';
	SELECT tap_nested() AS tap_outer;});
{
	my $holder = $node->background_psql('postgres');
	$holder->query_safe('BEGIN; LOCK TABLE tap_utility IN ACCESS EXCLUSIVE MODE;');
	$node->psql('postgres', q{
		SET lock_timeout = '500ms';
		VACUUM tap_utility;});
	$holder->query_safe('COMMIT');
	$holder->quit;
}

commit_wait($node, 50);

my @cases = (
	[ 'UPDATE waiting for a row lock', $waiter_id, 't', 'Lock', 'transactionid' ],
	[ 'pg_sleep', $sleep_id, 't', 'Timeout', 'PgSleep' ],
	[ 'CPU-bound join', $cpu_id, 't', 'CPU', 'CPU' ],
	[ 'function calling pg_sleep (top level)', $outer_id, 't', 'Timeout', 'PgSleep' ],
	[ 'pg_sleep nested in the function', $inner_id, 'f', 'Timeout', 'PgSleep' ],
	[ 'VACUUM waiting for its table lock', $vac_id, 't', 'Lock', 'relation' ],
	[ 'INSERT whose commit waits for a synchronous standby', $commit_id, 't', 'IPC', 'SyncRep' ]);
my ($mo_total, $ws_total) = (0, 0);
my $report = "statement | moltres_ops | pg_wait_sampling\n";
for my $c (@cases)
{
	my ($what, $id, $top, $type, $event) = @$c;
	my ($mo) = waits_of($node, $id, $top, $type, $event);
	# pg_wait_sampling reports a CPU sample as a NULL event.
	my $cond = $type eq 'CPU' ? 'event IS NULL' : "event_type = '$type' AND event = '$event'";
	my $ws = $node->safe_psql('postgres', qq{
		SELECT coalesce(sum(count), 0) FROM pg_wait_sampling_profile
		 WHERE queryid = $id AND $cond});
	$report .= "$what ($type:$event) | $mo | $ws\n";
	$mo_total += $mo;
	$ws_total += $ws;
}
my $ws_unattributed = $node->safe_psql('postgres', q{
	SELECT coalesce(sum(count), 0) FROM pg_wait_sampling_profile
	 WHERE queryid = 0 AND event IN ('transactionid', 'relation', 'PgSleep', 'SyncRep')});
$report .= "total | $mo_total | $ws_total\n"
  . "pg_wait_sampling samples of these waits with query id 0 | | $ws_unattributed\n";
diag("samples attributed to the right query id:\n$report");
cmp_ok($mo_total, '>=', $ws_total,
	'moltres_ops attributes at least as many samples to the right query id as pg_wait_sampling');

$node->stop;
done_testing();
