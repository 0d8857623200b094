# Real migration tools against a throwaway cluster: Alembic and Django
# (Debian python3-alembic, python3-django), Sqitch (Debian sqitch), Knex and
# node-pg-migrate (npm, installed by this test into its scratch directory).
# Each applies its migrations, then runs one that fails; migration_status
# and ready() must report each ledger as the tool left it.  The projects are
# in test/t/tools/.  Tools that cannot be installed here (Flyway, Liquibase,
# sqlx, golang-migrate, Rails, dbmate, Prisma) are covered by ledgers in
# their documented shapes in sql/migrations.sql.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use PostgreSQL::Test::RecursiveCopy;
use Test::More;
use File::Basename qw(dirname);
use File::Copy qw(copy);
use Cwd qw(abs_path);
use IPC::Run;

my $fixtures = abs_path(dirname(__FILE__) . '/tools');
my $work = PostgreSQL::Test::Utils::tempdir('tools');
PostgreSQL::Test::RecursiveCopy::copypath($fixtures, "$work/p");
my $p = "$work/p";

my $node = PostgreSQL::Test::Cluster->new('tools');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION moltres_ops');

# Every tool connects through the libpq environment.
$ENV{PGHOST} = $node->host;
$ENV{PGPORT} = $node->port;
$ENV{PGDATABASE} = 'postgres';
delete $ENV{PGUSER};

my $python = '/usr/bin/python3';

# Run a tool; returns (success, stdout, stderr).
sub run_tool
{
	my ($cmd, %env) = @_;
	local @ENV{ keys %env } = values %env;
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run($cmd, '<', \undef, '>', \$out, '2>', \$err,
		IPC::Run::timeout(180));
	note join(' ', @$cmd), "\nstdout: $out\nstderr: $err";
	return ($ok, $out, $err);
}

# "current_version|applied_count|state" of a tool's ledger.
sub status_of
{
	my ($tool) = @_;
	return $node->safe_psql('postgres',
		qq{SELECT current_version || '|' || coalesce(applied_count::text, '') || '|' || state
		     FROM moltres_ops.migration_status WHERE tool = '$tool'});
}

sub ready
{
	my ($version, $tool) = @_;
	my $v = defined $version ? "'$version'" : 'NULL';
	return $node->safe_psql('postgres', "SELECT moltres_ops.ready($v, '$tool')");
}

sub copy_in
{
	my ($from_dir, $to_dir) = @_;
	opendir(my $dh, $from_dir) or die "cannot open $from_dir: $!";
	for my $f (grep { !/^\./ } readdir $dh)
	{
		copy("$from_dir/$f", "$to_dir/$f") or die "cannot copy $f: $!";
	}
	closedir $dh;
}

my ($ok, $out, $err);

# ---------------------------------------------------------------------------
# Alembic: one row in alembic_version, no history; a failed upgrade rolls
# back and leaves the ledger at the last good revision.
SKIP:
{
	skip 'python3-alembic is not installed', 7
	  unless system($python, '-c', 'import alembic, psycopg2') == 0;
	($ok) = run_tool([ $python, "$p/alembic/run.py", "$p/alembic", 'b2c0ffee0002' ]);
	ok($ok, 'alembic upgrade to b2c0ffee0002');
	is(status_of('alembic'), 'b2c0ffee0002||clean', 'alembic ledger: current revision, clean');
	is(ready('b2c0ffee0002', 'alembic'), 't', 'ready(b2c0ffee0002, alembic)');

	copy_in("$p/alembic/failing", "$p/alembic/versions");
	($ok, $out, $err) = run_tool([ $python, "$p/alembic/run.py", "$p/alembic", 'head' ]);
	ok(!$ok, 'alembic upgrade head fails on the broken revision');
	like($err, qr/column "name" of relation "alembic_items" already exists/, '... as expected');
	is(status_of('alembic'), 'b2c0ffee0002||clean',
		'alembic ledger stays at the last good revision');
	is(ready('c3c0ffee0003', 'alembic'), 'f', 'not ready for the failed revision');
}

# ---------------------------------------------------------------------------
# Django: django_migrations, one row per applied migration.
SKIP:
{
	skip 'python3-django is not installed', 6
	  unless system($python, '-c', 'import django, psycopg2') == 0;
	my @django = ($python, '-m', 'django', 'migrate', 'shop', '--settings=mo_settings');
	my %env = (PYTHONPATH => "$p/django", PYTHONDONTWRITEBYTECODE => 1);
	($ok) = run_tool(\@django, %env);
	ok($ok, 'django migrate shop');
	is(status_of('django'), 'shop.0001_initial|1|clean', 'django ledger: app.name, count, clean');
	is(ready('shop.0001_initial', 'django'), 't', 'ready(shop.0001_initial, django)');

	copy_in("$p/django/failing", "$p/django/shop/migrations");
	($ok, $out, $err) = run_tool(\@django, %env);
	ok(!$ok, 'django migrate fails on the broken migration');
	is(status_of('django'), 'shop.0001_initial|1|clean',
		'django ledger stays at the last good migration');
	is(ready('shop.0002_broken', 'django'), 'f', 'not ready for the failed migration');
}

# ---------------------------------------------------------------------------
# Sqitch: its registry in schema sqitch; a failed deploy is reverted and
# logged as a 'fail' event, which migration_status reports.
SKIP:
{
	skip 'sqitch is not installed', 9 unless -x '/usr/bin/sqitch';
	my %env = (
		SQITCH_FULLNAME => 'CI',
		SQITCH_EMAIL => 'ci@example.com',
		SQITCH_USER_CONFIG => '/dev/null',
		SQITCH_SYSTEM_CONFIG => '/dev/null');
	my @deploy = ('/usr/bin/sqitch', '--chdir', "$p/sqitch", 'deploy', 'db:pg:');
	($ok) = run_tool(\@deploy, %env);
	ok($ok, 'sqitch deploy');
	is(status_of('sqitch'), 'widgets|1|clean', 'sqitch ledger: latest change, clean');
	is(ready('@v1.0', 'sqitch'), 't', 'ready(@v1.0, sqitch): a tag counts');

	open my $plan, '>>', "$p/sqitch/sqitch.plan" or die $!;
	open my $more, '<', "$p/sqitch/plan-failing" or die $!;
	print {$plan} <$more>;
	close $plan;
	close $more;
	($ok, $out, $err) = run_tool(\@deploy, %env);
	ok(!$ok, 'sqitch deploy fails on the broken change');
	is(status_of('sqitch'), 'widgets|1|failed', 'sqitch ledger: failed, still at widgets');
	like(
		$node->safe_psql('postgres',
			q{SELECT detail FROM moltres_ops.migration_status WHERE tool = 'sqitch'}),
		qr/^deploy of change gadgets failed at .* and was reverted$/,
		'the detail names the failed change');
	is(ready(undef, 'sqitch'), 'f', 'ready(NULL, sqitch) is false after a failed deploy');
	is(ready('widgets', 'sqitch'), 't', 'the deployed change is still ready');
	is(ready('gadgets', 'sqitch'), 'f', 'the failed change is not');
}

# ---------------------------------------------------------------------------
# Knex and node-pg-migrate, from npm.
my $npm_dir = "$work/npm";
my @packages = ('knex@3.1.0', 'pg@8.13.1', 'node-pg-migrate@7.9.1');
my $have_node = system('sh', '-c', 'command -v node >/dev/null && command -v npm >/dev/null') == 0;
my $installed = 0;
if ($have_node)
{
	for my $try (1 .. 3)
	{
		($installed) = run_tool(
			[
				'npm', 'install', '--prefix', $npm_dir, '--no-audit', '--no-fund',
				'--no-save', '--loglevel=error', @packages
			],
			npm_config_update_notifier => 'false');
		last if $installed;
		sleep 2 * $try;
	}
}

SKIP:
{
	skip 'node and npm are not installed', 17 unless $have_node;
	ok($installed, "npm installed @packages");
	skip 'npm install failed', 16 unless $installed;
	my %env = (NODE_PATH => "$npm_dir/node_modules");

	# Knex: knex_migrations plus knex_migrations_lock.
	my @knex = ('node', "$p/node_migrate.js", 'knex', "$p/knex/migrations");
	($ok) = run_tool(\@knex, %env);
	ok($ok, 'knex migrate:latest');
	is(status_of('knex'), '20240101000000_create_gadgets.js|1|clean', 'knex ledger: clean');
	is(ready('20240101000000_create_gadgets', 'knex'), 't', 'ready(name without .js, knex)');
	copy_in("$p/knex/failing", "$p/knex/migrations");
	($ok, $out, $err) = run_tool(\@knex, %env);
	ok(!$ok, 'knex fails on the broken migration');
	is(status_of('knex'), '20240101000000_create_gadgets.js|1|clean',
		'knex rolled it back and released its lock: still clean at the last good one');
	is(ready('20240102000000_broken.js', 'knex'), 'f', 'not ready for the failed migration');
	# What a killed knex run leaves: the lock row set.  Knex itself refuses.
	$node->safe_psql('postgres', 'UPDATE knex_migrations_lock SET is_locked = 1');
	is(status_of('knex'), '20240101000000_create_gadgets.js|1|locked', 'a stale knex lock shows as locked');
	($ok, $out, $err) = run_tool(\@knex, %env);
	like($err, qr/Migration table is already locked/, 'and knex refuses to run, as the view says');
	$node->safe_psql('postgres', 'UPDATE knex_migrations_lock SET is_locked = 0');

	# node-pg-migrate: pgmigrations, and an advisory lock while it runs.
	my @npm = ('node', "$p/node_migrate.js", 'node-pg-migrate', "$p/node-pg-migrate/migrations");
	($ok) = run_tool(\@npm, %env);
	ok($ok, 'node-pg-migrate up');
	is(status_of('node-pg-migrate'), '1704067200000_create-things|1|clean', 'pgmigrations ledger: clean');
	is(ready('1704067200000_create-things', 'node-pg-migrate'), 't', 'ready(..., node-pg-migrate)');
	copy_in("$p/node-pg-migrate/failing", "$p/node-pg-migrate/migrations");
	($ok, $out, $err) = run_tool(\@npm, %env);
	ok(!$ok, 'node-pg-migrate fails on the broken migration');
	like($err, qr/column "id" of relation "npm_things" already exists/, '... as expected');
	is(status_of('node-pg-migrate'), '1704067200000_create-things|1|clean',
		'node-pg-migrate rolled it back: still clean at the last good one');
	is(ready('1704153600000_broken', 'node-pg-migrate'), 'f', 'not ready for the failed migration');
	# Another node-pg-migrate run holding the tool's lock: running.
	my $bg = $node->background_psql('postgres');
	$bg->query_safe('SELECT pg_advisory_lock(7241865325823964)');
	is(status_of('node-pg-migrate'), '1704067200000_create-things|1|running',
		"node-pg-migrate's advisory lock shows as running");
	$bg->quit;
}

# One view over all of them.
is( $node->safe_psql(
		'postgres', q{SELECT string_agg(tool || ':' || ledger, ' ' ORDER BY tool) FROM moltres_ops.migration_status}),
	join(' ',
		'alembic:public.alembic_version', 'django:public.django_migrations',
		'knex:public.knex_migrations', 'moltres_ops:moltres_ops.migrations',
		'node-pg-migrate:public.pgmigrations', 'sqitch:sqitch.changes'),
	'migration_status lists every ledger the tools wrote');

$node->stop;
done_testing();
