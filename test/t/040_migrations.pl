# Migration ledger against real processes, on a server WITHOUT preload (the
# ledger is plain SQL): a migrator killed with SIGKILL leaves its row running,
# migration_status says abandoned, migration_resolve settles it; the same
# when the backend itself is killed; eight migrators racing for one version
# apply it exactly once (through migrate() and through begin/finish); the
# 55P03 error names the real holder; a cancelled migrate() records the
# failure and frees the lock; pg_dump keeps the ledger; migrate() lints first
# when moltres_ops.lint exists.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time);

my $node = PostgreSQL::Test::Cluster->new('migrations');
$node->init;
$node->append_conf('postgresql.conf', "restart_after_crash = on\n");
$node->start;
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION moltres_ops;
CREATE TABLE race_effects (pid int, via text);
});
is($node->safe_psql('postgres', 'SELECT moltres_ops.preloaded()'),
	'f', 'no preload: the ledger is plain SQL');

my $lock_holder = q{SELECT l.pid FROM pg_locks l, moltres_ops.migration_lock_key() k
  WHERE l.locktype = 'advisory' AND l.classid = k.classid::oid
    AND l.objid = k.objid::oid AND l.objsubid = 2 AND l.granted};

# ---------------------------------------------------------------------------
# A migrator killed with SIGKILL (the client process: OOM killer, pod
# eviction).  Its backend sees the connection close and exits, which frees
# the session lock; the row stays running.
my $bg = $node->background_psql('postgres');
my $pid = $bg->query_safe(q{
SET application_name = 'doomed-migrator';
SELECT moltres_ops.migration_begin('k1', 'killed mid-way', wait => '5s');
SELECT pg_backend_pid();
});
($pid) = $pid =~ /(\d+)\s*$/;
ok($pid, "migrator backend is pid $pid");
is($node->safe_psql('postgres', $lock_holder), $pid, 'it holds the migration lock');
is( $node->safe_psql(
		'postgres', q{SELECT state FROM moltres_ops.migration_status WHERE tool = 'moltres_ops'}),
	'running',
	'while it lives, the status is running');

$bg->{run}->signal('KILL');
eval { $bg->{run}->finish; };
$node->poll_query_until('postgres',
	"SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $pid)")
  or die "backend $pid did not exit";

is( $node->safe_psql(
		'postgres', q{SELECT status || '|' || pid FROM moltres_ops.migrations WHERE version = 'k1'}),
	"running|$pid",
	'killed migrator leaves its row running');
is($node->safe_psql('postgres', $lock_holder), '', 'and the lock is free');
like(
	$node->safe_psql(
		'postgres',
		q{SELECT state || '|' || detail FROM moltres_ops.migration_status WHERE tool = 'moltres_ops'}),
	qr/^abandoned\|version 'k1' was left running by pid $pid \(started .*\), which no longer holds the migration lock/,
	'migration_status says abandoned, naming version and pid');
is($node->safe_psql('postgres', 'SELECT moltres_ops.ready()'),
	'f', 'ready() is false while a migration is abandoned');

my ($ret, $out, $err) =
  $node->psql('postgres', q{SELECT moltres_ops.migration_begin('k2')});
isnt($ret, 0, 'no other migration starts while one is abandoned');
like($err, qr/migration 'k1' was left running by pid $pid/, '... and the error says why');

$node->safe_psql('postgres', q{SELECT moltres_ops.migration_resolve('k1', 'failed')});
is( $node->safe_psql(
		'postgres',
		q{SELECT state FROM moltres_ops.migration_status WHERE tool = 'moltres_ops'}),
	'failed',
	'migration_resolve settles it (as failed)');
like(
	$node->safe_psql('postgres', q{SELECT error FROM moltres_ops.migrations WHERE version = 'k1'}),
	qr/^abandoned: pid $pid ended without finishing; resolved from running to failed by /,
	'the ledger keeps who resolved it');
is( $node->safe_psql(
		'postgres', q{
SELECT moltres_ops.migration_begin('k1', 'killed mid-way, again');
SELECT moltres_ops.migration_finish('k1');
SELECT state FROM moltres_ops.migration_status WHERE tool = 'moltres_ops';}),
	"t\n\nclean",
	'the failed version runs again and the ledger is clean');

# ---------------------------------------------------------------------------
# The backend itself killed with SIGKILL: the server restarts every
# backend; the row stays running and is abandoned after the restart.
$bg = $node->background_psql('postgres');
$pid = $bg->query_safe(q{
SELECT moltres_ops.migration_begin('k3', 'backend killed');
SELECT pg_backend_pid();
});
($pid) = $pid =~ /(\d+)\s*$/;
kill 'KILL', $pid;
eval { $bg->quit; };
$node->poll_query_until('postgres', 'SELECT 1', '1')
  or die 'server did not come back after the crash';
is( $node->safe_psql(
		'postgres',
		q{SELECT state || '|' || (detail LIKE 'version ''k3'' was left running%') FROM moltres_ops.migration_status WHERE tool = 'moltres_ops'}),
	'abandoned|true',
	'a killed backend leaves an abandoned migration after crash recovery');
$node->safe_psql('postgres', q{SELECT moltres_ops.migration_resolve('k3', 'rolled_back')});
is( $node->safe_psql(
		'postgres', q{SELECT state FROM moltres_ops.migration_status WHERE tool = 'moltres_ops'}),
	'clean', 'resolved as rolled_back, the ledger is clean');

# ---------------------------------------------------------------------------
# The 55P03 error names the real holder: its pid, version, held-for time.
$bg = $node->background_psql('postgres');
$pid = $bg->query_safe(q{
SET application_name = 'deploy-job-7';
SELECT moltres_ops.migration_begin('h1', 'held');
SELECT pg_backend_pid();
});
($pid) = $pid =~ /(\d+)\s*$/;
my $t0 = time;
($ret, $out, $err) = $node->psql('postgres',
	q{SELECT moltres_ops.migration_begin('h2', wait => '300ms')});
my $waited = time - $t0;
isnt($ret, 0, 'a second migrator fails while the lock is held');
like($err, qr/ERROR:  migration lock is held by pid $pid \(version 'h1', held for [0-9.]+ s\)/,
	'the error names the holder pid, version and held-for time');
like($err, qr/DETAIL:  Waited 0\.3 s\. Holder: user \S+, application 'deploy-job-7', state idle/,
	'the detail names what it waited and the holder application');
ok($waited >= 0.3, sprintf('it waited the 300 ms first (%.2f s)', $waited));
($ret, $out, $err) = $node->psql('postgres',
	q{\set VERBOSITY verbose
SELECT moltres_ops.migration_begin('h2')});
like($err, qr/ERROR:  55P03: migration lock is held by pid $pid/, 'SQLSTATE 55P03');
$bg->query_safe(q{SELECT moltres_ops.migration_finish('h1')});
$bg->quit;

# ---------------------------------------------------------------------------
# Eight migrators race for the same version, through CALL migrate() and
# through migration_begin/finish: exactly one applies it.
sub race
{
	my ($script) = @_;
	my @runs;
	for my $i (1 .. 8)
	{
		my ($in, $o, $e) = ("SET application_name = 'racer-$i';\n$script\n", '', '');
		my $h = IPC::Run::start(
			[
				$node->installed_command('psql'), '-XAtq', '-v', 'ON_ERROR_STOP=1',
				'-d', $node->connstr('postgres'), '-f', '-'
			],
			'<', \$in, '>', \$o, '2>', \$e);
		push @runs, [ $h, \$o, \$e ];
	}
	my ($ok, $noop) = (0, 0);
	for my $r (@runs)
	{
		my ($h, $o, $e) = @$r;
		$ok++ if $h->finish;
		$noop++ if $$e =~ /NOTICE:  migration '[^']+' is already applied; nothing to do/;
		note "racer: stdout=$$o stderr=$$e";
	}
	return ($ok, $noop);
}

my ($ok, $noop) = race(
	q{CALL moltres_ops.migrate('race-1', 'racing pods',
	    'INSERT INTO race_effects SELECT pg_backend_pid(), ''migrate''; SELECT pg_sleep(0.3)',
	    wait => '60s');});
is($ok, 8, 'all eight migrate() callers succeed');
is($noop, 7, 'seven of them find it applied and do nothing');
is($node->safe_psql('postgres', q{SELECT count(*) FROM race_effects WHERE via = 'migrate'}),
	'1', 'the migration ran exactly once');
is( $node->safe_psql(
		'postgres', q{SELECT status FROM moltres_ops.migrations WHERE version = 'race-1'}),
	'applied', 'and is applied once in the ledger');

($ok, $noop) = race(
	q{SELECT moltres_ops.migration_begin('race-2', 'racing pods', 'sum', wait => '60s') AS go \gset
\if :go
INSERT INTO race_effects SELECT pg_backend_pid(), 'begin';
SELECT pg_sleep(0.3);
SELECT moltres_ops.migration_finish('race-2');
\endif});
is($ok, 8, 'all eight begin/finish migrators succeed');
is($noop, 7, 'seven of them are told it is applied');
is($node->safe_psql('postgres', q{SELECT count(*) FROM race_effects WHERE via = 'begin'}),
	'1', 'the begin/finish migration ran exactly once');
is($node->safe_psql('postgres', $lock_holder), '', 'nobody holds the lock afterwards');

# ---------------------------------------------------------------------------
# A migrate() cancelled by statement_timeout records the failure (committed)
# and frees the lock.
($ret, $out, $err) = $node->psql('postgres',
	q{SET statement_timeout = '300ms';
CALL moltres_ops.migrate('st-1', 'too slow', 'SELECT pg_sleep(5)');});
isnt($ret, 0, 'a migrate() cancelled by statement_timeout fails');
like($err, qr/migration 'st-1' failed: canceling statement due to statement timeout/,
	'... with the cancel as its error');
is( $node->safe_psql(
		'postgres',
		q{SELECT status || '|' || error FROM moltres_ops.migrations WHERE version = 'st-1'}),
	'failed|canceling statement due to statement timeout (SQLSTATE 57014)',
	'the ledger records it as failed');
is($node->safe_psql('postgres', $lock_holder), '', 'and the migration lock is free');

# ---------------------------------------------------------------------------
# pg_dump keeps the ledger's rows (an extension configuration table).
my ($dump) = run_command([ $node->installed_command('pg_dump'), '-d', $node->connstr('postgres') ]);
like($dump, qr/COPY moltres_ops\.migrations \(version, name, checksum, status/,
	'pg_dump dumps the ledger rows');
like($dump, qr/\nrace-1\tracing pods\t/, '... including the applied migrations');

# ---------------------------------------------------------------------------
# migrate() lints first when moltres_ops.lint(text) exists, and refuses
# dangerous statements unless allow_dangerous.  With the real linter, a
# rewrite of a non-empty table (int -> bigint) is dangerous; without it,
# a stand-in linter with the documented columns flags it.
$node->safe_psql('postgres',
	q{CREATE TABLE lint_t (i int); INSERT INTO lint_t SELECT generate_series(1, 1000)});
my $has_lint = $node->safe_psql('postgres',
	q{SELECT to_regprocedure('moltres_ops.lint(text)') IS NOT NULL});
if ($has_lint ne 't')
{
	note 'moltres_ops.lint is not installed: testing with a stand-in';
	$node->safe_psql(
		'postgres', q{
CREATE FUNCTION moltres_ops.lint(sql text)
RETURNS TABLE (command text, risk text, rule text, message text)
LANGUAGE sql AS $$
  SELECT 'ALTER TABLE', 'dangerous', 'TYP-02', 'changing the type rewrites the table'
   WHERE sql ~* 'TYPE bigint'
$$;});
}
# lint_t is small: judge it as a large table would be (the real linter lets
# rewrites of tables under moltres_ops.lint_large_table_rows rows pass).
($ret, $out, $err) = $node->psql('postgres',
	q{\set VERBOSITY verbose
SET moltres_ops.lint_large_table_rows = 0;
CALL moltres_ops.migrate('lint-1', 'widen', 'ALTER TABLE lint_t ALTER COLUMN i TYPE bigint');});
isnt($ret, 0, 'migrate() refuses a dangerous migration');
like($err, qr/ERROR:  2F003: migration 'lint-1' has \d+ dangerous statement\(s\); not run/,
	'... with SQLSTATE 2F003');
is($node->safe_psql('postgres', q{SELECT count(*) FROM moltres_ops.migrations WHERE version = 'lint-1'}),
	'0', 'nothing is recorded for a refused migration');
$node->safe_psql('postgres',
	q{CALL moltres_ops.migrate('lint-1', 'widen', 'ALTER TABLE lint_t ALTER COLUMN i TYPE bigint', allow_dangerous => true)});
is( $node->safe_psql(
		'postgres',
		q{SELECT status || '|' || format_type(atttypid, NULL) FROM moltres_ops.migrations, pg_attribute
		   WHERE version = 'lint-1' AND attrelid = 'lint_t'::regclass AND attname = 'i'}),
	'applied|bigint',
	'allow_dangerous => true runs it');
$node->safe_psql('postgres', 'DROP FUNCTION moltres_ops.lint(text)') if $has_lint ne 't';

$node->stop;
done_testing();
