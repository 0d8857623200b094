# The extension never changes what an application sees (issue 10, items
# 1-3): checked from the client's side only -- SQLSTATEs, rows, the
# messages a client receives -- so that these tests hold whatever the
# implementation of the hooks.
#
#  1. statement_timeout: with log_plan on, no statement returns success
#     after its run went past statement_timeout.
#  2. an error raised in a parallel worker reaches the client as itself,
#     never as another error, with every statement going to the slow log.
#  3. a DDL statement's parser NOTICE or WARNING reaches the client once.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('trust');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'moltres_ops'
moltres_ops.track = all
moltres_ops.track_utility = on
moltres_ops.slow_query_ms = 0
moltres_ops.log_plan = text
jit = off
max_worker_processes = 8
max_parallel_workers = 8
log_statement = none
});
$node->start;

# Run a psql script, return (stdout, stderr).
sub run_script
{
	my ($db, $script) = @_;
	my ($ret, $out, $err) = $node->psql($db, $script, on_error_stop => 0);
	return ($out, $err);
}

# --- 1. statement_timeout is never swallowed by the plan log ----------------
#
# The statement is a prepared UNION ALL whose branches scan an empty table
# with 4,000 calls of a function that has 3,000 overloads.  Executing it
# (the generic plan is cached) takes a few milliseconds: nothing is scanned.
# Printing its plan takes much longer than statement_timeout: EXPLAIN
# deparses every call, and naming a function resolves it among all its
# overloads.  So with the slow log printing plans, every execution's run
# crosses statement_timeout while the plan is printed (EXPLAIN code checks
# for interrupts there).  A server that keeps its promise either cancels the
# statement (57014) or finishes it within the timeout; a statement that
# returns success after running past the timeout is what a server without
# the extension never does.
my $timeout_ms = 250;
my $runs       = 60;
$node->safe_psql('postgres', 'CREATE DATABASE timeouts');
$node->safe_psql(
	'timeouts', q{
CREATE TABLE e (a int);
DO $$
BEGIN
	FOR i IN 1..3000 LOOP
		EXECUTE format('CREATE DOMAIN d%s AS int', i);
		EXECUTE format('CREATE FUNCTION f(int, d%s) RETURNS boolean LANGUAGE plpgsql AS ''BEGIN RETURN true; END''', i);
	END LOOP;
END $$;
});
my @branches;
for my $k (0 .. 19)
{
	push @branches,
	  'SELECT 1 FROM e WHERE '
	  . join(' AND ', map { sprintf('f(a, NULL::d%d)', ($k * 200 + $_) % 3000 + 1) } 0 .. 199);
}
my $bigplan = 'SELECT 1 UNION ALL ' . join(' UNION ALL ', @branches);

# The script: build and cache the generic plan without a timeout, then run
# it $runs times under the timeout, echoing each run's SQLSTATE.  The
# server's own log_min_duration_statement gives each successful run's
# duration as the server measured it.
sub timeout_script
{
	my ($log_plan) = @_;
	my $s = qq{SET moltres_ops.log_plan = $log_plan;
SET plan_cache_mode = force_generic_plan;
PREPARE big AS $bigplan;
EXECUTE big \\g /dev/null
SET log_statement = none;
SET log_min_duration_statement = 0;
SET statement_timeout = '${timeout_ms}ms';
};
	$s .= "EXECUTE big /* $log_plan run $_ */ \\g /dev/null\n\\echo run $_ :SQLSTATE\n" for 1 .. $runs;
	return $s;
}

# Returns (number of successes, number of 57014, successes past the timeout).
sub timeout_runs
{
	my ($log_plan) = @_;
	my $offset = -s $node->logfile;
	my ($out, $err) = run_script('timeouts', timeout_script($log_plan));
	my %state = $out =~ /^run (\d+) (\w+)$/mg;
	is(scalar keys %state, $runs, "log_plan = $log_plan: all $runs runs reported") or diag($err);
	my $log = slurp_file($node->logfile, $offset);
	my %duration;
	$duration{$2} = $1
	  while $log =~ m{LOG:  duration: ([\d.]+) ms  statement: EXECUTE big /\* $log_plan run (\d+) \*/}g;
	my ($ok, $cancelled, @late) = (0, 0);
	for my $i (sort { $a <=> $b } keys %state)
	{
		if ($state{$i} eq '00000')
		{
			$ok++;
			# A success the server did not log a duration for is counted
			# against the server too.
			push @late, $i if !defined $duration{$i} || $duration{$i} > $timeout_ms;
		}
		$cancelled++ if $state{$i} eq '57014';
	}
	diag("log_plan = $log_plan: $ok succeeded, $cancelled cancelled by statement_timeout; "
		  . scalar(@late) . " succeeded after running past ${timeout_ms} ms: "
		  . join(', ', map { "run $_ " . ($duration{$_} // '?') . ' ms' } @late));
	return ($ok, $cancelled, scalar @late);
}

# Without the plan log the statement itself is far inside the timeout: this
# shows that the timeout is crossed only by printing the plan.
my ($ok, $cancelled, $late) = timeout_runs('off');
cmp_ok($ok, '>=', $runs * 0.8, 'log_plan = off: the statement normally finishes within statement_timeout');
is($late, 0, 'log_plan = off: no success past statement_timeout');

($ok, $cancelled, $late) = timeout_runs('text');
is($late, 0, "log_plan = text: no statement of $runs returned success after running past statement_timeout");
is($ok + $cancelled, $runs, 'log_plan = text: every run either succeeded or was cancelled by statement_timeout');

# --- 2. a parallel worker's error reaches the client as itself --------------
#
# PostgreSQL's select_parallel case: a cast error raised in a parallel
# worker.  The leader re-throws it; whatever the slow log does on that error
# path, the client must see 22P02, every time.
$node->safe_psql(
	'postgres', q{
CREATE TABLE par (id int, s text);
INSERT INTO par SELECT g, CASE WHEN g = 1 THEN 'BAAAAA' ELSE g::text END FROM generate_series(1, 1000) g;
ANALYZE par;
});
# The leader does not scan itself, so the error always comes from a worker.
# On a server that does something on the error path that can process
# interrupts, the worker's exit, signalled to the leader just after its
# error, is noticed there and turns the error into 55000 "lost connection
# to parallel worker": a race that hit 1-4 % of the runs, hence the number of
# runs.
my $par_runs = 600;
my $par_script = q{
SELECT set_config(CASE WHEN current_setting('server_version_num')::int >= 160000
                       THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END, 'on', false) \g /dev/null
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
EXPLAIN (COSTS OFF) SELECT s::int2 FROM par WHERE id = 1;
};
$par_script .= "SELECT s::int2 FROM par WHERE id = 1;\n\\echo par $_ :SQLSTATE\n" for 1 .. $par_runs;
my ($out, $err) = run_script('postgres', $par_script);
like($out, qr/Gather/, 'the cast runs under a Gather');
my %par = $out =~ /^par (\d+) (\w+)$/mg;
is(scalar keys %par, $par_runs, "all $par_runs parallel runs reported");
my @wrong = grep { $par{$_} ne '22P02' } sort { $a <=> $b } keys %par;
is(scalar @wrong, 0, "a worker's 22P02 reached the client as 22P02 in all $par_runs runs")
  or diag(scalar(@wrong) . ' runs with another SQLSTATE: ' . join(', ', map { "$_: $par{$_}" } @wrong));
my $contexts = () = $err =~ /^CONTEXT:  parallel worker$/mg;
cmp_ok($contexts, '>=', $par_runs / 2, "the error came from a parallel worker ($contexts of $par_runs runs)");

# --- 3. a parser NOTICE/WARNING of a DDL statement reaches the client once --
my $long = 'x' x 70;
my @ddl = (
	[ 'CREATE TABLE', "CREATE TABLE t_$long (c int)", qr/identifier "t_x+" will be truncated/ ],
	[ 'ALTER TABLE ADD COLUMN', "ALTER TABLE t_$long ADD COLUMN c_$long int", qr/identifier "c_x+" will be truncated/ ],
	[ 'CREATE VIEW', "CREATE VIEW v_$long AS SELECT 1 AS one", qr/identifier "v_x+" will be truncated/ ],
	[ 'CREATE INDEX', "CREATE INDEX i_$long ON t_$long (c)", qr/identifier "i_x+" will be truncated/ ],
	[ 'CREATE TABLE, nonstandard backslash', q{CREATE TABLE t_backslash (c text DEFAULT 'a\\\\b')},
	  qr/nonstandard use of \\\\ in a string literal/ ],
);
for my $settings (
	[ 'track = none, guard off', "SET moltres_ops.track = 'none'; SET moltres_ops.ddl_guard = 'off';" ],
	[ 'everything on', "SET moltres_ops.track = 'all'; SET moltres_ops.track_utility = on; SET moltres_ops.slow_query_ms = 0; SET moltres_ops.log_plan = 'json'; SET moltres_ops.log_format = 'json'; SET moltres_ops.ddl_guard = 'warn';" ])
{
	my ($label, $set) = @$settings;
	$node->safe_psql('postgres', 'DROP SCHEMA IF EXISTS once CASCADE; CREATE SCHEMA once');
	for my $d (@ddl)
	{
		my ($what, $sql, $re) = @$d;
		my ($out, $err) = run_script('postgres',
			"SET search_path = once; SET standard_conforming_strings = off; SET escape_string_warning = on; $set\n$sql;\n\\echo :SQLSTATE\n");
		like($out, qr/^00000$/m, "$label: $what succeeds");
		my $n = () = $err =~ /$re/g;
		is($n, 1, "$label: $what: the parser's message reaches the client once") or diag($err);
	}
}

$node->stop;
done_testing();
