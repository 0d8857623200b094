# trace() scales with its input: each statement costs about the same
# however many statements came before it, and the memory of the call stays
# bounded.  It used to compare every lock held with every other after each
# statement (cubic in the number of statements) and kept every lock snapshot
# until the end: 2,000 statements took a minute and gigabytes.
#
# The workload takes one new lock per statement and keeps it (a SELECT on
# each of many tables), which is exactly what made the old code slow.  The
# checks do not depend on the machine being idle: the bound on time is a
# statement_timeout some 20 times what the call needs on a loaded 2-core
# machine (the old code needed minutes), and the bound on memory is the
# backend's peak resident size, read from /proc by the backend itself.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $n_max = 6000;

my $node = PostgreSQL::Test::Cluster->new('trace_scale');
$node->init;
# one lock per traced statement, all held until trace() rolls back
$node->append_conf('postgresql.conf', "max_locks_per_transaction = 1024\n");
# nothing else may hold a lock on the tables, and a loaded machine must not
# make a statement of the trace time out
$node->append_conf('postgresql.conf', "autovacuum = off\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION moltres_ops');
$node->safe_psql('postgres', qq{
  DO \$\$
  BEGIN
    FOR i IN 1 .. $n_max LOOP
      EXECUTE format('CREATE TABLE st_%s (id int)', i);
    END LOOP;
  END \$\$;
});

# trace() of n SELECTs, one table each, in a fresh session; returns the
# rows, the rows that name the right table with AccessShareLock, the
# seconds taken and the backend's peak resident size in kB.
sub trace_selects
{
	my ($n) = @_;
	my $sql = join("\n", map { "SELECT count(*) FROM st_$_;" } 1 .. $n);
	my $t0 = time;
	my $out = $node->safe_psql('postgres', qq{
SET statement_timeout = '120s';
SET moltres_ops.trace_lock_timeout = '60s';
SET moltres_ops.trace_statement_timeout = '60s';
CREATE TEMP TABLE tr AS SELECT * FROM moltres_ops.trace(\$sql\$$sql\$sql\$);
SELECT count(*), count(*) FILTER (WHERE lock_mode = 'AccessShareLock'
                                    AND relation::text = 'st_' || stmt)
  FROM tr;
SELECT (regexp_match(pg_read_file('/proc/self/status'), 'VmHWM:\\s*(\\d+)'))[1];
SELECT stmt || ': ' || coalesce(relation::text, '-') || ' ' || coalesce(lock_mode, '-') || ' ' || coalesce(note, '')
  FROM tr WHERE lock_mode IS DISTINCT FROM 'AccessShareLock' OR relation::text <> 'st_' || stmt
 ORDER BY stmt LIMIT 5;
});
	my $secs = time - $t0;
	my ($counts, $hwm, @other) = split /\n/, $out;
	diag("rows that are not the expected lock: @other") if @other;
	my ($rows, $right) = split /\|/, $counts;
	return ($rows, $right, $secs, $hwm);
}

my ($rows_half, $right_half, $secs_half, $hwm_half) = trace_selects($n_max / 2);
is($rows_half, $n_max / 2, 'half: one row per statement');
is($right_half, $n_max / 2, 'half: each row is the AccessShareLock on its own table');

my ($rows, $right, $secs, $hwm) = trace_selects($n_max);
is($rows, $n_max, "$n_max statements traced within the statement_timeout, one row each");
is($right, $n_max, 'each row is the AccessShareLock on its own table');
cmp_ok($hwm, '<', 400 * 1024,
	"peak resident size of the backend stays bounded (${hwm} kB)");

note(sprintf('trace() of %d statements: %.2f s, peak %d kB; of %d: %.2f s, peak %d kB; time ratio %.2f',
		$n_max / 2, $secs_half, $hwm_half, $n_max, $secs, $hwm,
		$secs_half > 0 ? $secs / $secs_half : 0));

# a rewrite under a lock taken by an earlier statement is still reported:
# relfilenodes are only re-read for relations a statement invalidated
my $rewrite = $node->safe_psql('postgres', q{
SELECT stmt, relation::text, lock_mode, rewrote
  FROM moltres_ops.trace($$ALTER TABLE st_1 ALTER COLUMN id TYPE bigint;
SELECT count(*) FROM st_2;
ALTER TABLE st_1 ALTER COLUMN id TYPE int;
SELECT count(*) FROM st_3;$$)
 ORDER BY stmt, relation::text, lock_mode;
});
like($rewrite, qr/^3\|st_1\|\|t$/m, 'rewrite under an older lock: a row without a mode');
like($rewrite, qr/^1\|st_1\|AccessExclusiveLock\|t$/m, 'the first rewrite, under its own new lock');
like($rewrite, qr/^4\|st_3\|AccessShareLock\|f$/m, 'later statements go on');

$node->stop;
done_testing();
