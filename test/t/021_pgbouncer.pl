# Real PgBouncer in transaction mode in front of the server, pgbench through
# it: the views see the pooler's server connections, not its clients.  The
# pooler's own SHOW SERVERS (remote_pid) is the reference.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

# The pooler must not outlive the test, whichever way the test ends.
my $bouncer;
END { $bouncer->kill_kill if $bouncer && $bouncer->pumpable; }

my ($pgbouncer) = grep { -x $_ } ('/usr/sbin/pgbouncer',
	map { "$_/pgbouncer" } split /:/, $ENV{PATH});
ok(defined $pgbouncer, 'pgbouncer is installed (Debian package pgbouncer)')
  or BAIL_OUT('pgbouncer not found; it is listed in test/packages.txt');

my $node = PostgreSQL::Test::Cluster->new('pooled');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'moltres_ops'
listen_addresses = '127.0.0.1'
});
$node->start;
my $port = $node->port;

$node->safe_psql(
	'postgres', q{
CREATE EXTENSION moltres_ops;
CREATE ROLE mo_app LOGIN;
});
$node->command_ok([ 'pgbench', '-q', '-i', '-s', '1', $node->connstr('postgres') ],
	'pgbench tables');
$node->safe_psql('postgres', 'GRANT ALL ON ALL TABLES IN SCHEMA public TO mo_app');

# PgBouncer: 3 server connections for any number of clients, reaching the
# server over TCP, and naming its server connections at login.
my $dir = PostgreSQL::Test::Utils::tempdir();
my $bport = PostgreSQL::Test::Cluster::get_free_port();
my $pool_size = 3;
open my $ul, '>', "$dir/userlist.txt" or die $!;
print $ul qq{"mo_app" "app-password"\n};
close $ul;
open my $ini, '>', "$dir/pgbouncer.ini" or die $!;
print $ini <<"INI";
[databases]
appdb = host=127.0.0.1 port=$port dbname=postgres application_name=pgbouncer_appdb

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bport
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $dir/userlist.txt
admin_users = mo_app
pool_mode = transaction
default_pool_size = $pool_size
max_client_conn = 100
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
ignore_startup_parameters = extra_float_digits
INI
close $ini;

$bouncer = IPC::Run::start([ $pgbouncer, "$dir/pgbouncer.ini" ],
	'>', "$dir/pgbouncer.out", '2>&1');
my $via_bouncer = "host=127.0.0.1 port=$bport user=mo_app password=app-password";

# Wait for the pooler to listen (psql -c, not a script on stdin: a psql
# that fails to connect would leave the writer with a broken pipe).
my $up = 0;
for (1 .. 100)
{
	if (IPC::Run::run(
			[ 'psql', '-X', '-At', '-d', "$via_bouncer dbname=pgbouncer", '-c', 'SHOW VERSION' ],
			'<', '/dev/null', '>', '/dev/null', '2>', '/dev/null'))
	{
		$up = 1;
		last;
	}
	select(undef, undef, undef, 0.1);
}
ok($up, 'pgbouncer accepts connections') or diag(slurp_file("$dir/pgbouncer.log"));

# The pooler's view of its server connections: remote_pid of SHOW SERVERS.
sub bouncer_server_pids
{
	my $out = '';
	IPC::Run::run(
		[ 'psql', '-X', '-A', '-F', ',', '-d', "$via_bouncer dbname=pgbouncer", '-c', 'SHOW SERVERS' ],
		'<', '/dev/null', '>', \$out, '2>', '/dev/null');
	my @lines = split /\n/, $out;
	my @head = split /,/, shift(@lines) // '';
	my ($col) = grep { $head[$_] eq 'remote_pid' } 0 .. $#head;
	return '' unless defined $col;
	return join ',', sort { $a <=> $b }
	  map { (split /,/)[$col] } grep { /^S,/ } @lines;
}

# The server's view: the pids of mo_app's client backends.
my $server_pids_sql = q{SELECT coalesce(string_agg(pid::text, ',' ORDER BY pid), '')
  FROM pg_stat_activity WHERE usename = 'mo_app' AND backend_type = 'client backend'};

$node->safe_psql('postgres', 'SELECT moltres_ops.reset_session_stats()');

# Load: 8 pgbench clients through 3 server connections.
# (Output goes to files: nothing reads a pipe while the test polls, and a
# full pipe would stall pgbench in the middle of its transactions.)
my $bench = IPC::Run::start(
	[ 'pgbench', '-n', '-c', '8', '-j', '2', '-t', '300',
		"$via_bouncer dbname=appdb application_name=mo_bench" ],
	'>', "$dir/bench.out", '2>', "$dir/bench.err");

# While it runs, the server sees the pool, never the 8 clients.
ok( $node->poll_query_until(
		'postgres', q{SELECT active >= 1 FROM moltres_ops.pools WHERE usename = 'mo_app'}),
	'pools: the pooled connections are busy under load');
my $max_seen = 0;
for (1 .. 5)
{
	my $n = $node->safe_psql('postgres',
		q{SELECT coalesce(sum(connections), 0) FROM moltres_ops.connections WHERE usename = 'mo_app'});
	$max_seen = $n if $n > $max_seen;
	select(undef, undef, undef, 0.05);
}
ok($max_seen >= 1 && $max_seen <= $pool_size,
	"under load the server holds at most $pool_size connections for 8 clients (saw $max_seen)");
$bench->finish;
like(slurp_file("$dir/bench.out"), qr{number of transactions actually processed: 2400/2400},
	'pgbench through pgbouncer in transaction mode: every transaction done')
  or diag(slurp_file("$dir/bench.err"));

# Now a client that connects for every transaction: 100 client logins.
$node->command_ok(
	[ 'pgbench', '-n', '-C', '-c', '4', '-j', '2', '-t', '25',
		"$via_bouncer dbname=appdb application_name=mo_bench" ],
	'pgbench -C through pgbouncer: a new client connection per transaction');

# Pooler and server agree on the server connections (a connection the
# pooler just closed may take a moment to leave pg_stat_activity).
my ($servers, $backends) = ('', '');
for (1 .. 100)
{
	$servers = bouncer_server_pids();
	$backends = $node->safe_psql('postgres', $server_pids_sql);
	last if $servers ne '' && $servers eq $backends;
	select(undef, undef, undef, 0.1);
}
note "pgbouncer server connections: $servers";
is($backends, $servers,
	'the server\'s mo_app backends are exactly the pooler\'s server connections (SHOW SERVERS remote_pid)');
my $n = scalar(split /,/, $servers);
ok($n >= 1 && $n <= $pool_size, "pgbouncer holds $n server connections, at most $pool_size");

is( $node->safe_psql(
		'postgres', q{SELECT datname || '|' || application_name || '|' || client_addr || '|' || connections
		  || '|' || idle FROM moltres_ops.connections WHERE usename = 'mo_app'}),
	"postgres|mo_bench|127.0.0.1/32|$n|$n",
	'connections: the pooler\'s connections, from its address, named by the SET of its last client');
is( $node->safe_psql(
		'postgres', q{SELECT connections || '|' || idle || '|' || active || '|' || limit_source
		  FROM moltres_ops.pools WHERE usename = 'mo_app'}),
	"$n|$n|0|server",
	'pools: the pool is idle once the load is over');

# Lifecycle: only the pooler's server logins are sessions (keyed by the
# application_name it sent at login), although its clients logged in 108
# times.  The pooler's own log says how many server logins it made.
my $logins = () = slurp_file("$dir/pgbouncer.log") =~ /new connection to server/g;
note "pgbouncer opened $logins server connections";
is( $node->safe_psql(
		'postgres', q{SELECT datname || '|' || application_name || '|' || connects || '|' || (connects - disconnects)
		  FROM moltres_ops.session_stats WHERE usename = 'mo_app'}),
	"postgres|pgbouncer_appdb|$logins|$n",
	'session_stats: one connect per server login of the pooler, the live ones not yet disconnected');
ok($logins <= 2 * $pool_size, "a handful of server logins ($logins) for 108 client logins");

# The pooler goes away: its server connections end.
$bouncer->signal('TERM');
$bouncer->finish;
$node->poll_query_until('postgres',
	q{SELECT disconnects = connects FROM moltres_ops.session_stats WHERE usename = 'mo_app'})
  or diag('server connections did not end');
is( $node->safe_psql(
		'postgres', q{SELECT (connects = disconnects) || '|' || (session_p95_ms > 1000)
		  || '|' || (total_session_s > 1)
		  FROM moltres_ops.session_stats WHERE usename = 'mo_app'}),
	'true|true|true',
	'session_stats: every pooled session ended; the long-lived ones lasted the run');
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM moltres_ops.connections WHERE usename = 'mo_app'}),
	'0', 'no pooled connection left');

$node->stop;
done_testing();
