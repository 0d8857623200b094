# On a hot standby every function of moltres_ops that writes -- the
# migration ledger, the safe-migration procedures, the index builds -- says
# that this server is a standby and to run it on the primary (SQLSTATE
# 25006), before it does anything, instead of failing on its first write
# ("cannot execute SELECT FOR UPDATE in a read-only transaction").  What
# only reads (ready(), migration_status, the statistics) and the resets of
# the standby's own shared memory work there.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', "shared_preload_libraries = 'moltres_ops'\n");
$primary->start;
$primary->safe_psql('postgres', q{
  CREATE EXTENSION moltres_ops;
  CREATE TABLE t (id int PRIMARY KEY, v int);
  INSERT INTO t SELECT g, g FROM generate_series(1, 100) g;
});
$primary->safe_psql('postgres', q{CALL moltres_ops.migrate('0001', 'first', 'CREATE TABLE m1 (id int)')});
$primary->safe_psql('postgres', q{SELECT moltres_ops.migration_begin('0002')});

$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery');

my %calls = (
	migration_begin => q{SELECT moltres_ops.migration_begin('0003')},
	migration_finish => q{SELECT moltres_ops.migration_finish('0002')},
	migration_fail => q{SELECT moltres_ops.migration_fail('0002', 'x')},
	migration_resolve => q{SELECT moltres_ops.migration_resolve('0002', 'failed')},
	migrate => q{CALL moltres_ops.migrate('0003', 'n', 'CREATE TABLE m3 (id int)')},
	backfill => q{CALL moltres_ops.backfill('t', 'v = v + 1')},
	with_lock_retry => q{CALL moltres_ops.with_lock_retry('ALTER TABLE t ADD COLUMN w int')},
	safe_add_column => q{CALL moltres_ops.safe_add_column('t', 'w', 'int')},
	safe_set_not_null => q{CALL moltres_ops.safe_set_not_null('t', 'v')},
	safe_add_check => q{CALL moltres_ops.safe_add_check('t', 'v_pos', 'v > 0')},
	safe_add_foreign_key => q{CALL moltres_ops.safe_add_foreign_key('t', '{v}', 't', '{id}')},
	safe_create_index => q{SELECT moltres_ops.safe_create_index('t_v', 't', '(v)')},
	safe_drop_index => q{SELECT moltres_ops.safe_drop_index('t_pkey')},
);
for my $fn (sort keys %calls)
{
	my ($stdout, $stderr);
	$standby->psql('postgres', "\\set VERBOSITY verbose\n$calls{$fn}",
		stdout => \$stdout, stderr => \$stderr);
	like($stderr, qr/ERROR:  25006: moltres_ops\.$fn\(\) cannot run on a standby/,
		"$fn: 25006, naming itself");
	like($stderr, qr/HINT:  Run it on the primary server/, "$fn: says where to run it");
}

# what only reads works, and so do the resets of this server's own memory
is($standby->safe_psql('postgres', q{SELECT moltres_ops.ready('0001')}), 't', 'ready() works on the standby');
is($standby->safe_psql('postgres', q{SELECT current_version FROM moltres_ops.migration_status WHERE tool = 'moltres_ops'}),
	'0001', 'migration_status works on the standby');
$standby->safe_psql('postgres', q{SELECT count(*) FROM moltres_ops.query_stats});
is($standby->psql('postgres', q{SELECT count(*) FROM moltres_ops.health(); SELECT count(*) FROM moltres_ops.lint('ALTER TABLE t ADD COLUMN w int')}), 0,
	'health() and lint() work on the standby');
like($standby->safe_psql('postgres', q{SELECT stmt || ':' || coalesce(note, '') FROM moltres_ops.trace('SELECT count(*) FROM t; CREATE TABLE m4 (id int)') ORDER BY stmt}),
	qr/^1:\n(1:\n)*2:error: cannot execute CREATE TABLE in a read-only transaction$/,
	'trace() runs on the standby and reports the write as an error');
is($standby->psql('postgres', q{SELECT moltres_ops.reset(); SELECT moltres_ops.reset_slow_queries()}), 0,
	q{the resets of the standby's own statistics work});

# nothing changed on the primary's side either
is($primary->safe_psql('postgres', q{SELECT string_agg(version || ':' || status, ',' ORDER BY version) FROM moltres_ops.migrations}),
	'0001:applied,0002:running', 'the ledger is as the primary left it');

$standby->stop;
$primary->stop;
done_testing();
