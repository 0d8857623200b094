# Slow-query log: one server-log line per slow statement in text and JSON
# (parsed with a real JSON parser, hostile texts included), with a duration
# that agrees with the server's own log_min_duration_statement, failures and
# timeouts with their SQLSTATE, and a ring that keeps only the newest entries.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;

my $node = PostgreSQL::Test::Cluster->new('slowlog');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'moltres_ops'
moltres_ops.slow_query_ms = 100
moltres_ops.slow_query_buffer = 3
log_min_duration_statement = 100
log_statement = none
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION moltres_ops');

# Run $sql and return what it added to the server log.
sub logged
{
	my ($sql, %opts) = @_;
	my $offset = -s $node->logfile;
	my ($ret, $out, $err) = $node->psql('postgres', $sql);
	# The log line is written before the result reaches the client; give the
	# logger a moment to flush.
	for (1 .. 50)
	{
		my $log = slurp_file($node->logfile, $offset);
		return $log if !$opts{want} || $log =~ $opts{want};
		select(undef, undef, undef, 0.1);
	}
	return slurp_file($node->logfile, $offset);
}

# Text format.
my $log = logged('SELECT pg_sleep(0.15) AS t1', want => qr/duration: [\d.]+ ms  statement: SELECT pg_sleep\(0\.15\) AS t1/);
my @ours = $log =~ /slow statement: duration: ([\d.]+) ms  rows: 1  queryid: -?\d+  statement: SELECT pg_sleep\(0\.15\) AS t1$/mg;
is(scalar @ours, 1, 'text: one line for the slow statement');
my ($core) = $log =~ /duration: ([\d.]+) ms  statement: SELECT pg_sleep\(0\.15\) AS t1/;
ok($ours[0] >= 150, "text: duration $ours[0] ms is at least the sleep");
ok(abs($ours[0] - $core) < 10, "text: duration $ours[0] ms agrees with the server's $core ms");

$log = logged('SELECT pg_sleep(0.01) AS fast1');
unlike($log, qr/fast1/, 'text: a fast statement is not logged');

# JSON format with hostile text.
$node->safe_psql('postgres', "ALTER SYSTEM SET moltres_ops.log_format = 'json'");
$node->reload;
my $hostile = q{SELECT pg_sleep(0.15), 'q"uote', E'new\nline', E'back\\\\slash', 'tab	ünïcødé €' AS h};
$log = logged($hostile, want => qr/"duration_ms"/);
my @json = grep { /"duration_ms"/ } split /\n/, $log;
is(scalar @json, 1, 'json: exactly one line');
my $line = $json[0];
$line =~ s/^[^{]*//;
my $obj = eval { JSON::PP->new->utf8->decode($line) };
ok($obj, 'json: the line parses') or diag("line: $json[0]; error: $@");
my $want_query = $hostile;
utf8::decode($want_query);
is($obj->{query}, $want_query, 'json: query text survives quotes, newlines, backslashes, UTF-8');
is($obj->{rows}, 1, 'json: rows');
ok($obj->{duration_ms} >= 150 && $obj->{duration_ms} < 1000, 'json: duration');
is($obj->{error_code}, undef, 'json: no error');
is($obj->{plan}, undef, 'json: no plan unless asked');
for my $k (qw(ts pid user db application client queryid duration_ms rows query error_code error plan))
{
	ok(exists $obj->{$k}, "json: key $k");
}
is($obj->{db}, 'postgres', 'json: db');

# JSON with a JSON plan, and a statement that times out.
$node->safe_psql('postgres', "ALTER SYSTEM SET moltres_ops.log_plan = 'json'");
$node->reload;
$log = logged('SELECT pg_sleep(0.15) FROM generate_series(1, 2) AS g', want => qr/"duration_ms"/);
($line) = grep { /"duration_ms"/ } split /\n/, $log;
$line =~ s/^[^{]*//;
$obj = decode_json($line);
is($obj->{plan}{Plan}{'Node Type'}, 'Function Scan', 'json: plan is an object');
is($obj->{rows}, 2, 'json: rows of a two-row statement');

$log = logged("SET statement_timeout = '150ms'; SELECT pg_sleep(3) AS to", want => qr/"error_code"/);
($line) = grep { /"duration_ms"/ } split /\n/, $log;
$line =~ s/^[^{]*//;
$obj = decode_json($line);
is($obj->{error_code}, '57014', 'json: timeout has its SQLSTATE');
like($obj->{error}, qr/statement timeout/, 'json: and its message');
ok($obj->{duration_ms} >= 140 && $obj->{duration_ms} < 1000, 'json: timed-out duration');

# The ring keeps the newest slow_query_buffer (3) statements.
$node->safe_psql('postgres', 'SELECT moltres_ops.reset_slow_queries()');
$node->safe_psql('postgres', "SELECT pg_sleep(0.11) AS r$_") for 1 .. 5;
is( $node->safe_psql('postgres',
		"SELECT string_agg(substring(query from 'r[0-9]'), ',') FROM moltres_ops.slow_queries"),
	'r5,r4,r3',
	'ring keeps the newest three, newest first');

# Nothing is lost from the ring over a restart of a backend; a server
# restart starts it empty (it is memory only).
$node->restart;
is($node->safe_psql('postgres', 'SELECT count(*) FROM moltres_ops.slow_queries'),
	'0', 'ring is empty after a restart');

$node->stop;
done_testing();
