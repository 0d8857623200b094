# Core: the library loads preloaded and not preloaded, survives a restart,
# coexists with pg_stat_statements in either order, and without preload
# says exactly what to do.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('preloaded');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'moltres_ops'");
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION moltres_ops');
is($node->safe_psql('postgres', 'SELECT moltres_ops.preloaded()'),
	't', 'preloaded reports true');

my %defaults = (
	'moltres_ops.track'           => 'top',
	'moltres_ops.track_utility'   => 'on',
	'moltres_ops.max_statements'  => '5000',
	'moltres_ops.max_query_text'  => '2kB',
	'moltres_ops.save'            => 'on',
	'moltres_ops.slow_query_ms'   => '1s',);
for my $guc (sort keys %defaults)
{
	is($node->safe_psql('postgres', "SHOW $guc"),
		$defaults{$guc}, "$guc defaults to $defaults{$guc}");
}

$node->restart;
is($node->safe_psql('postgres', 'SELECT count(*) > 0 FROM moltres_ops.shmem_usage'),
	't', 'shared memory is there after a restart');

# From 18 the library names itself and its version to the server.
if ($node->pg_version >= 18)
{
	is( $node->safe_psql('postgres',
			q{SELECT version = moltres_ops.library_version() FROM pg_get_loaded_modules() WHERE module_name = 'moltres_ops'}),
		't', 'pg_get_loaded_modules() shows moltres_ops and its version');
}

# Beside pg_stat_statements, listed before and after it: the hooks chain.
for my $order ("'pg_stat_statements, moltres_ops'", "'moltres_ops, pg_stat_statements'")
{
	$node->append_conf('postgresql.conf', "shared_preload_libraries = $order");
	$node->restart;
	$node->safe_psql('postgres', 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
	$node->safe_psql('postgres', 'SELECT pg_stat_statements_reset()');
	$node->safe_psql('postgres', 'SELECT 1 AS probe');
	is( $node->safe_psql('postgres',
			q{SELECT calls FROM pg_stat_statements WHERE query = 'SELECT $1 AS probe'}),
		'1',
		"pg_stat_statements still counts with $order");
	is($node->safe_psql('postgres', 'SELECT moltres_ops.preloaded()'),
		't', "moltres_ops preloaded with $order");
}
$node->stop;

# Without preload: installable, settings visible, and a clear error.
my $plain = PostgreSQL::Test::Cluster->new('not_preloaded');
$plain->init;
$plain->start;
$plain->safe_psql('postgres', 'CREATE EXTENSION moltres_ops');
is($plain->safe_psql('postgres', 'SELECT moltres_ops.preloaded()'),
	'f', 'preloaded reports false');
my ($ret, $out, $err) =
  $plain->psql('postgres', 'SELECT * FROM moltres_ops.shmem_usage');
isnt($ret, 0, 'shared memory view fails without preload');
like($err, qr/moltres_ops must be loaded via shared_preload_libraries/,
	'error names the cause');
like($err, qr/HINT:.*shared_preload_libraries = 'moltres_ops'/,
	'hint gives the line to add');
$plain->stop;

done_testing();
