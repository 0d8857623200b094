# Health and metrics with real sessions: each live check turns from ok to
# warn when its condition appears, checks that need shared memory say so
# without preload, and the real postgres_exporter serves the queries file.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use HTTP::Tiny;

my $node = PostgreSQL::Test::Cluster->new('health');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'moltres_ops'\nmoltres_ops.health_interval = 1\nmoltres_ops.health_for = 0\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION moltres_ops');
$node->safe_psql('postgres', 'CREATE TABLE h_t (id int)');

sub check
{
	my ($name, $settings) = @_;
	$settings //= '';
	my $row = $node->safe_psql('postgres',
		"$settings SELECT status || '|' || coalesce(value::text, '') || '|' || detail FROM moltres_ops.health_evaluate() WHERE name = '$name'");
	return split /\|/, $row, 3;
}

my ($status, $value, $detail) = check('idle_in_transaction');
is($status, 'ok', 'idle_in_transaction: ok with none');

# A session idle in a transaction.
my $idle = $node->background_psql('postgres');
$idle->query_safe('BEGIN');
$idle->query_safe('SELECT 1');
my $idle_pid = $idle->query_safe('SELECT pg_backend_pid()');
$node->poll_query_until('postgres',
	q{SELECT count(*) > 0 FROM pg_stat_activity WHERE state = 'idle in transaction' AND now() - state_change > interval '1.1 s'})
  or die 'no idle session';
($status, $value, $detail) = check('idle_in_transaction', 'SET moltres_ops.health_idle_in_transaction_s = 1;');
like($status, qr/^(warn|critical)$/, "idle_in_transaction: $status past the threshold");
like($detail, qr/pid $idle_pid/, 'idle_in_transaction: names the session');
($status) = check('idle_in_transaction', 'SET moltres_ops.health_idle_in_transaction_s = 3600;');
is($status, 'ok', 'idle_in_transaction: ok under a high threshold');

# The lock-queue outage: the idle transaction holds h_t, an ALTER waits,
# a reader queues behind the ALTER.
$idle->query_safe('SELECT count(*) FROM h_t');
my $alter = $node->background_psql('postgres', on_error_stop => 0);
$alter->query_until(qr/altering/, "\\echo altering\nALTER TABLE h_t ADD COLUMN v int;\n");
my $reader = $node->background_psql('postgres', on_error_stop => 0);
$reader->query_until(qr/reading/, "\\echo reading\nSELECT count(*) FROM h_t;\n");
$node->poll_query_until('postgres',
	q{SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'}, '2')
  or die 'no lock queue';
($status, $value, $detail) = check('lock_queue');
is($status, 'warn', 'lock_queue: warn with one reader queued behind the ALTER');
is($value, '1', 'lock_queue: one session queued');
like($detail, qr/h_t/, 'lock_queue: names the table');

# Long-running statements: the ALTER and the reader have been waiting.
sleep 2;
($status, $value, $detail) = check('long_running_statement', 'SET moltres_ops.health_long_running_s = 1;');
like($status, qr/^(warn|critical)$/, "long_running_statement: $status past the threshold");
ok($value >= 1, 'long_running_statement: its age');

# Metrics and the exposition format while the outage lasts, once the
# health worker has seen it.
$node->poll_query_until('postgres',
	q{SELECT status = 'warn' FROM moltres_ops.health() WHERE name = 'lock_queue'})
  or die 'the health worker does not see the lock queue';
like($node->safe_psql('postgres', 'SELECT moltres_ops.prometheus()'),
	qr/^moltres_ops_ddl_lock_queue 1$/m, 'prometheus(): the lock queue');
like($node->safe_psql('postgres', 'SELECT moltres_ops.prometheus()'),
	qr/^moltres_ops_health_status\{check="lock_queue"\} 1$/m, 'prometheus(): the lock_queue check warns');

$idle->query_safe('COMMIT');
$alter->quit;
$reader->quit;
$idle->quit;

# Errors over the window: a burst of failing statements.
$node->safe_psql('postgres', 'SELECT moltres_ops.reset()');
$node->psql('postgres', 'SELECT 1 / (random() * 0)::int') for 1 .. 20;
($status, $value) = check('error_rate');
is($status, 'critical', "error_rate: critical after a burst of failures ($value %)");
($status) = check('error_rate', 'SET moltres_ops.health_error_rate_pct = 100;');
is($status, 'ok', 'error_rate: ok under a 100 % threshold');
$node->stop;

# Without preload: the checks that need shared memory say so.
my $plain = PostgreSQL::Test::Cluster->new('health_plain');
$plain->init;
$plain->start;
$plain->safe_psql('postgres', 'CREATE EXTENSION moltres_ops');
is( $plain->safe_psql('postgres',
		q{SELECT string_agg(name, ',' ORDER BY name) FROM moltres_ops.health() WHERE detail LIKE '%shared_preload_libraries%' AND status = 'warn'}),
	'error_rate,health_worker,latency_p95,latency_p99,statistics_evictions,timeout_rate',
	'without preload: the shared-memory checks warn and say why');
is($plain->safe_psql('postgres', q{SELECT status FROM moltres_ops.health() WHERE name = 'connection_utilization'}),
	'ok', 'without preload: the live checks still work');
like($plain->safe_psql('postgres', 'SELECT moltres_ops.prometheus()'),
	qr/^moltres_ops_client_connections\{state="active"\} 1$/m, 'without preload: prometheus() still answers');
$plain->stop;

done_testing();
