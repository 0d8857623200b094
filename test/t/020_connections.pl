# Connections and pools with real connections: exact state counts and the
# blocking tree of a chain of three, lifecycle counters after K connections,
# an authentication failure (SCRAM over TCP, wrong password) and the other
# login refusals, every kind of too-many-connections rejection, session
# percentiles of sessions of known length, and the "other" row of a full
# table.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $node = PostgreSQL::Test::Cluster->new('conn');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'moltres_ops'
max_connections = 20
superuser_reserved_connections = 3
listen_addresses = '127.0.0.1'
password_encryption = 'scram-sha-256'
});
# SCRAM for one role and a reject line for another, over TCP; trust otherwise.
my $hba = $node->data_dir . '/pg_hba.conf';
open my $fh, '>', $hba or die "cannot write $hba: $!";
print $fh <<'HBA';
local all all                       trust
host  all mo_scram    127.0.0.1/32  scram-sha-256
host  all mo_rejected 127.0.0.1/32  reject
host  all all         127.0.0.1/32  trust
HBA
close $fh;
$node->start;

is($node->safe_psql('postgres', 'SHOW moltres_ops.max_session_stats'), '1000',
	'moltres_ops.max_session_stats defaults to 1000');

my $port = $node->port;
my $tcp = "host=127.0.0.1 port=$port dbname=postgres";
my $me = $node->safe_psql('postgres', 'SELECT current_user');

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION moltres_ops;
CREATE EXTENSION dblink;
CREATE ROLE mo_scram LOGIN PASSWORD 'right-password';
CREATE ROLE mo_rejected LOGIN;
CREATE ROLE mo_nologin;
CREATE ROLE mo_limited LOGIN CONNECTION LIMIT 1;
CREATE ROLE mo_plain LOGIN;
CREATE ROLE mo_monitor LOGIN IN ROLE pg_monitor;
CREATE ROLE mo_dbuser LOGIN;
CREATE DATABASE mo_db CONNECTION LIMIT 2;
GRANT SELECT ON moltres_ops.lock_waits TO mo_plain;
CREATE TABLE chain (id int PRIMARY KEY, v int);
INSERT INTO chain VALUES (1, 0), (2, 0);
});

# Run $sql until it returns $expected (absorbs backends still exiting from
# an earlier psql), then compare, so that a failure shows the last value.
sub poll_is
{
	my ($sql, $expected, $name, $db) = @_;
	$db //= 'postgres';
	$node->poll_query_until($db, $sql, $expected);
	is($node->safe_psql($db, $sql), $expected, $name);
}

# The counters of one application_name, summed over its rows.
sub stats_of
{
	my ($app) = @_;
	return qq{SELECT coalesce(sum(connects), 0) || '|' || coalesce(sum(disconnects), 0)
	  || '|' || coalesce(sum(auth_failures), 0) || '|' || coalesce(sum(rejected), 0)
	  FROM moltres_ops.session_stats WHERE application_name = '$app'};
}

sub open_sql
{
	my ($name, $app, $user) = @_;
	$user //= $me;
	my $host = $node->host;
	return "SELECT dblink_connect('$name', 'host=$host port=$port dbname=postgres user=$user application_name=$app');";
}

# ---------------------------------------------------------------------------
# Live state: 3 idle, 2 idle in transaction, 1 aborted, and a chain of three:
# a holder idle in its transaction with a row lock, an ALTER TABLE queued
# behind it and a SELECT queued behind the ALTER.
# ---------------------------------------------------------------------------
my $ctl = $node->background_psql('postgres');
$ctl->query_safe(join "\n",
	q{SET client_min_messages = warning;},
	open_sql('i1', 'mo_idle'), open_sql('i2', 'mo_idle'),
	open_sql('i3', 'mo_idle'), open_sql('x1', 'mo_iit'),
	open_sql('x2', 'mo_iit'), open_sql('ab', 'mo_aborted'),
	open_sql('h', 'mo_holder'), open_sql('a', 'mo_alter'),
	open_sql('r', 'mo_reader'),
	q{SELECT dblink_exec('x1', 'BEGIN'), dblink_exec('x2', 'BEGIN'), dblink_exec('ab', 'BEGIN');},
	q{SELECT dblink_exec('ab', 'SELECT 1/0', false);},
	q{SELECT dblink_exec('h', 'BEGIN'), dblink_exec('h', 'UPDATE chain SET v = 1 WHERE id = 1');},
	q{SELECT dblink_send_query('a', 'ALTER TABLE chain ADD COLUMN w int');});
$node->poll_query_until('postgres',
	q{SELECT count(*) = 1 FROM moltres_ops.lock_waits WHERE application_name = 'mo_alter'})
  or die 'ALTER never waited';
$ctl->query_safe(q{SELECT dblink_send_query('r', 'SELECT count(*) FROM chain');});
$node->poll_query_until('postgres',
	q{SELECT count(*) = 2 FROM moltres_ops.lock_waits})
  or die 'reader never waited';

my %pid;
for my $app (qw(mo_holder mo_alter mo_reader))
{
	$pid{$app} = $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE application_name = '$app'");
}

# The controller sits idle, the querying session is active: 11 client
# backends = controller + 3 idle + 2 in transaction + 1 aborted + 3 chain +
# the query itself; 11 of 20 - 3 usable slots.
poll_is(
	q{SELECT client_connections || '|' || active || '|' || idle || '|' || idle_in_transaction
	  || '|' || idle_in_transaction_aborted || '|' || waiting_on_lock || '|' || utilization_pct
	  || '|' || max_connections || '|' || reserved_connections
	  FROM moltres_ops.pool_status},
	'11|3|4|3|1|2|64.7|20|3',
	'pool_status: 11 clients, 3 active, 4 idle, 3 idle in transaction, 1 aborted, 2 waiting');
is( $node->safe_psql(
		'postgres', q{SELECT longest_idle_in_transaction > '0' AND longest_transaction >= longest_idle_in_transaction
		  AND longest_running_statement > '0' FROM moltres_ops.pool_status}),
	't',
	'pool_status ages: idle transaction, transaction, running statement');
poll_is(q{SELECT application_name, connections, active, idle, idle_in_transaction, waiting_on_lock
		  FROM moltres_ops.connections WHERE application_name LIKE 'mo_%' ORDER BY 1},
	"mo_aborted|1|0|0|1|0
mo_alter|1|1|0|0|1
mo_holder|1|0|0|1|0
mo_idle|3|0|3|0|0
mo_iit|2|0|0|2|0
mo_reader|1|1|0|0|1",
	'connections: each group with its exact state counts');
is( $node->safe_psql(
		'postgres', q{SELECT state FROM pg_stat_activity WHERE application_name = 'mo_aborted'}),
	'idle in transaction (aborted)',
	'the aborted state is the exact string of pg_stat_activity');
poll_is(qq{SELECT connections || '|' || idle_in_transaction || '|' || waiting_on_lock
		  || '|' || (max_wait > '0') || '|' || conn_limit || '|' || limit_source
		  FROM moltres_ops.pools WHERE datname = 'postgres' AND usename = '$me'},
	'11|4|2|true|20|server',
	'pools: the superuser pool, limited by the server (superusers may use reserved slots)');

# lock_waits names the holder as the root of both waiters, through the ALTER.
is( $node->safe_psql(
		'postgres', q{SELECT application_name, lock_type, mode, relation, blocking_pids::text,
		  root_blocker, root_blocker_state, root_blocker_query, query
		  FROM moltres_ops.lock_waits ORDER BY application_name}),
	"mo_alter|relation|AccessExclusiveLock|chain|{$pid{mo_holder}}|$pid{mo_holder}|idle in transaction|UPDATE chain SET v = 1 WHERE id = 1|ALTER TABLE chain ADD COLUMN w int
mo_reader|relation|AccessShareLock|chain|{$pid{mo_alter}}|$pid{mo_holder}|idle in transaction|UPDATE chain SET v = 1 WHERE id = 1|SELECT count(*) FROM chain",
	'lock_waits: the reader waits on the ALTER, the root blocker of both is the idle holder');
is( $node->safe_psql(
		'postgres', q{SELECT bool_and(waiting > '0' AND wait_started < now()) FROM moltres_ops.lock_waits}),
	't', 'lock_waits: wait start and duration');

# Privacy: a role that may read the view but is not in pg_read_all_stats sees
# the tree but not other roles' queries; a pg_monitor member sees them.
is( $node->safe_psql(
		'postgres', q{SELECT string_agg(root_blocker || ':' || coalesce(root_blocker_query, 'NULL')
		  || ':' || coalesce(query, 'NULL'), ',' ORDER BY pid) FROM moltres_ops.lock_waits},
		connstr => $node->connstr('postgres') . ' user=mo_plain'),
	"$pid{mo_holder}:<insufficient privilege>:<insufficient privilege>,$pid{mo_holder}:<insufficient privilege>:<insufficient privilege>",
	'lock_waits without pg_read_all_stats: the tree, but no query texts');
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM moltres_ops.lock_waits
		  WHERE root_blocker_query = 'UPDATE chain SET v = 1 WHERE id = 1'},
		connstr => $node->connstr('postgres') . ' user=mo_monitor'),
	'2', 'lock_waits for a pg_monitor member: query texts');

$ctl->query_safe(q{SELECT dblink_exec('h', 'ROLLBACK');});
$ctl->quit;
poll_is(q{SELECT count(*) FROM moltres_ops.lock_waits}, '0', 'lock_waits empty once the holder rolled back');

# ---------------------------------------------------------------------------
# Lifecycle: K connections come and go; a live one counts its connect only.
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', 'SELECT moltres_ops.reset_session_stats()');
my $K = 5;
for my $i (1 .. $K)
{
	$node->safe_psql('postgres', 'SELECT 1',
		connstr => $node->connstr('postgres') . ' application_name=mo_churn');
}
poll_is(stats_of('mo_churn'), "$K|$K|0|0", "$K connects and $K disconnects");

my $live;
{
	local $ENV{PGAPPNAME} = 'mo_live';
	$live = $node->background_psql('postgres');
}
is($node->safe_psql('postgres', stats_of('mo_live')), '1|0|0|0',
	'an open session: a connect, no disconnect');
$live->quit;
poll_is(stats_of('mo_live'), '1|1|0|0', 'its disconnect once it ends');
is( $node->safe_psql(
		'postgres', q{SELECT connects_per_min >= 6 AND connects_total = (SELECT sum(connects) FROM moltres_ops.session_stats)
		  AND disconnects_total >= 6 FROM moltres_ops.pool_status}),
	't', 'pool_status totals and connects per minute');

# ---------------------------------------------------------------------------
# Authentication failures.
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', 'SELECT moltres_ops.reset_session_stats()');
$node->connect_fails(
	"$tcp user=mo_scram password=wrong-password application_name=mo_auth",
	'SCRAM with a wrong password fails',
	expected_stderr => qr/password authentication failed/);
$node->connect_fails(
	"$tcp user=mo_scram application_name=mo_auth",
	'no password at all: the client gives up',
	expected_stderr => qr/no password supplied/);
$node->connect_ok("$tcp user=mo_scram password=right-password application_name=mo_auth",
	'SCRAM with the right password logs in');
poll_is(stats_of('mo_auth'), '1|1|1|0',
	'one authentication failure (the abandoned prompt is none), one session');
$node->connect_fails("$tcp user=mo_rejected application_name=mo_hba",
	'pg_hba.conf rejects', expected_stderr => qr/pg_hba.conf rejects connection/);
$node->connect_fails(
	$node->connstr('postgres') . ' user=mo_nologin application_name=mo_nologin',
	'a role without LOGIN', expected_stderr => qr/not permitted to log in/);
$node->connect_fails(
	$node->connstr('no_such_db') . ' application_name=mo_nodb',
	'a database that does not exist', expected_stderr => qr/does not exist/);
poll_is(stats_of('mo_hba'), '0|0|1|0', 'the pg_hba.conf rejection is an authentication failure');
poll_is(stats_of('mo_nologin'), '0|0|1|0', 'so is a role that may not log in');
is($node->safe_psql('postgres', stats_of('mo_nodb')), '0|0|0|0',
	'a missing database is neither a connect nor a failure');
is( $node->safe_psql(
		'postgres', q{SELECT datname || '|' || usename FROM moltres_ops.session_stats WHERE application_name = 'mo_auth'}),
	'postgres|mo_scram', 'keyed by database and user as sent at login');
is($node->safe_psql('postgres', 'SELECT auth_failures_total FROM moltres_ops.pool_status'),
	'3', 'pool_status counts the three');

# ---------------------------------------------------------------------------
# Rejections: the role's limit, the database's limit, the reserved slots,
# and no slot at all.
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', 'SELECT moltres_ops.reset_session_stats()');
my ($lim, $dbu);
{
	local $ENV{PGUSER} = 'mo_limited';
	$lim = $node->background_psql('postgres');
	local $ENV{PGUSER} = 'mo_dbuser';
	$dbu = $node->background_psql('mo_db');
}
poll_is(q{SELECT datname || '|' || usename || '|' || connections || '|' || conn_limit || '|' || limit_source
		  || '|' || utilization_pct FROM moltres_ops.pools WHERE usename IN ('mo_limited', 'mo_dbuser') ORDER BY 1},
	"mo_db|mo_dbuser|1|2|database|50.0\npostgres|mo_limited|1|1|role|100.0",
	'pools: the role and database limits that bind first');
$node->connect_fails(
	$node->connstr('postgres') . ' user=mo_limited application_name=mo_limit',
	'the role limit refuses a second session',
	expected_stderr => qr/too many connections for role/);

# Fill the server: 17 client backends leave the ordinary roles nothing.
my $fill = $node->background_psql('postgres');
$fill->query_safe(join "\n", map { open_sql("f$_", 'mo_filler') } 1 .. 14);
my $taken;
for (1 .. 100)
{
	# backends of earlier psql runs may still be on their way out
	$taken = $fill->query_safe(
		q{SELECT pg_stat_clear_snapshot(); SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'});
	$taken =~ s/^\s+|\s+$//g;
	$taken = (split /\n/, $taken)[-1];
	last if $taken eq '17';
	select(undef, undef, undef, 0.05);
}
is($taken, '17', '17 of 20 slots taken');
$node->connect_fails(
	$node->connstr('postgres') . ' user=mo_plain application_name=mo_reserved',
	'an ordinary role is refused the reserved slots',
	expected_stderr => qr/remaining connection slots are reserved/);
$fill->query_safe(join "\n", map { open_sql("g$_", 'mo_filler') } 1 .. 3);
$node->connect_fails(
	$node->connstr('postgres') . ' application_name=mo_full',
	'a superuser is refused when no slot is left',
	expected_stderr => qr/sorry, too many clients already/);
$fill->quit;
$lim->quit;
$dbu->quit;
poll_is(stats_of('mo_limit'), '0|0|0|1', 'the role-limit rejection is counted');
poll_is(stats_of('mo_reserved'), '0|0|0|1', 'the reserved-slots rejection is counted');
poll_is(stats_of('mo_full'), '0|0|0|1', 'the no-slot rejection (a backend without PGPROC) is counted');
is($node->safe_psql('postgres', 'SELECT rejected_total FROM moltres_ops.pool_status'),
	'3', 'pool_status counts the three rejections');

# ---------------------------------------------------------------------------
# Session durations: eight sessions of 0.1 s and two of 1 s, side by side.
# ---------------------------------------------------------------------------
$node->safe_psql('postgres', 'SELECT moltres_ops.reset_session_stats()');
my @runs;
for my $secs ((0.1) x 8, (1.0) x 2)
{
	push @runs,
	  IPC::Run::start([ 'psql', '-X', '-q', '-d', $node->connstr('postgres') . ' application_name=mo_len',
			'-c', "SELECT pg_sleep($secs)" ], '>', '/dev/null');
}
$_->finish for @runs;
poll_is(stats_of('mo_len'), '10|10|0|0', 'ten sessions of known length ended');
my ($p50, $p95, $p99, $total) = split /\|/,
  $node->safe_psql('postgres',
	q{SELECT session_p50_ms, session_p95_ms, session_p99_ms, total_session_s
	  FROM moltres_ops.session_stats WHERE application_name = 'mo_len'});
note "p50 $p50 ms, p95 $p95 ms, p99 $p99 ms, total $total s";
ok($p50 >= 95 && $p50 <= 300, "p50 is a 0.1 s session ($p50 ms)");
ok($p95 >= 950 && $p95 <= 1600, "p95 is a 1 s session ($p95 ms)");
ok($p99 >= 950 && $p99 <= 1600, "p99 is a 1 s session ($p99 ms)");
ok($total >= 2.8 && $total <= 5.0, "total session time is about 2.8 s ($total s)");

# ---------------------------------------------------------------------------
# A full table: further keys go to the "other" row, and logins still work.
# ---------------------------------------------------------------------------
$node->append_conf('postgresql.conf', 'moltres_ops.max_session_stats = 10');
$node->restart;
is($node->safe_psql('postgres', 'SHOW moltres_ops.max_session_stats'), '10', 'table of 10 keys');
my $used = $node->safe_psql('postgres',
	'SELECT count(*) FROM moltres_ops.session_stats WHERE datname IS NOT NULL');
for my $i (1 .. 10 - $used + 3)
{
	$node->safe_psql('postgres', 'SELECT 1',
		connstr => $node->connstr('postgres') . " application_name=mo_key_$i");
}
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FILTER (WHERE datname IS NOT NULL) || '|'
		  || max(connects) FILTER (WHERE datname IS NULL AND usename IS NULL AND application_name IS NULL)
		  FROM moltres_ops.session_stats}),
	'10|3',
	'10 named rows, and the 3 keys that did not fit are counted in the other row');

$node->stop;
done_testing();
