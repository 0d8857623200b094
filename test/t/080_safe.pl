# The safe-migration procedures against real sessions, on a server without
# preload (they are PL/pgSQL):
#  - safe_set_not_null waits behind a long reader transaction by retrying
#    under a short lock_timeout: other readers of the table are never held
#    up for more than about one lock_timeout, and it completes once the
#    long transaction ends;
#  - a backfill whose backend is terminated mid-run shows as interrupted,
#    its progress row matching exactly the committed batches, and the next
#    CALL continues after the last committed key: every row updated once;
#  - a cancelled backfill records itself interrupted, with the error.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('safe');
$node->init;
$node->start;
$node->safe_psql(
	'postgres', q{
CREATE EXTENSION moltres_ops;
CREATE TABLE t (id int PRIMARY KEY, v int, n int NOT NULL DEFAULT 0);
INSERT INTO t SELECT g, g FROM generate_series(1, 2000) g;
CREATE TABLE latencies (ms float8);
});

# ---------------------------------------------------------------------------
# A long reader transaction holds AccessShareLock on t.
my $holder = $node->background_psql('postgres');
$holder->query_safe('BEGIN; SELECT count(*) FROM t;');

my $migrator = $node->background_psql('postgres', on_error_stop => 0);
$migrator->query_until(
	qr/started/, q{
\echo started
CALL moltres_ops.safe_set_not_null('t', 'v', lock_timeout => '100ms', max_attempts => 500, max_pause => '200ms');
});

# It is retrying: seen waiting on the lock or sleeping between attempts.
$node->poll_query_until('postgres',
	q{SELECT count(*) > 0 FROM pg_stat_activity
	   WHERE query LIKE 'CALL moltres_ops.safe_set_not_null%' AND wait_event IN ('relation', 'PgSleep')})
  or die 'safe_set_not_null is not running';

# Meanwhile other readers, each in its own transaction, keep reading t.
# A plain ALTER would queue them all behind its AccessExclusiveLock for as
# long as the holder lives; with the retries each waits at most about one
# lock_timeout.
$node->safe_psql(
	'postgres', q{
DO $$
DECLARE
    t0 timestamptz;
BEGIN
    FOR i IN 1 .. 40 LOOP
        t0 := clock_timestamp();
        PERFORM count(*) FROM t;
        INSERT INTO latencies VALUES (1000 * extract(epoch FROM clock_timestamp() - t0));
        COMMIT;
        PERFORM pg_sleep(0.02);
    END LOOP;
END $$;});
my ($reads, $max_ms) = split /\|/,
  $node->safe_psql('postgres', 'SELECT count(*), round(max(ms)::numeric, 1) FROM latencies');
is($reads, 40, 'readers ran while safe_set_not_null was retrying');
cmp_ok($max_ms, '<', 1000, "no reader waited long: the slowest read took $max_ms ms");
is($node->safe_psql('postgres',
		q{SELECT attnotnull FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'v'}),
	'f', 'while the long transaction lives, v is not yet NOT NULL');

$holder->query_safe('COMMIT');
$migrator->query('SELECT 1');    # returns once the CALL has finished
is($node->safe_psql('postgres',
		q{SELECT attnotnull FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'v'}),
	't', 'after it ends, safe_set_not_null completes: v is NOT NULL');
is($node->safe_psql('postgres',
		q{SELECT count(*) FROM pg_constraint WHERE conrelid = 't'::regclass AND contype = 'c'}),
	'0', 'and its helper CHECK is gone');
like($migrator->{stderr}, qr/safe_set_not_null\(public\.t, v\): ADD CHECK NOT VALID: attempt 1 of 500 could not get its lock within 0\.1 s; retrying in \d+ ms/,
	'it said it was retrying');
$migrator->quit;
$holder->quit;

# ---------------------------------------------------------------------------
# A backfill killed mid-run (its backend terminated) resumes after the last
# committed key.
my $filler = $node->background_psql('postgres', on_error_stop => 0);
$filler->query_until(
	qr/started/, q{
\echo started
CALL moltres_ops.backfill('t', 'n = n + 1', batch_size => 100, pause => '50ms');
});
$node->poll_query_until('postgres',
	q{SELECT batches >= 3 FROM moltres_ops.backfills WHERE set_clause = 'n = n + 1'})
  or die 'backfill made no progress';
my $pid = $node->safe_psql('postgres',
	q{SELECT pid FROM moltres_ops.backfills WHERE set_clause = 'n = n + 1'});
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
$node->poll_query_until('postgres',
	"SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $pid)")
  or die "backend $pid did not exit";
eval { $filler->quit; };

my ($state, $done, $last) = split /\|/, $node->safe_psql('postgres',
	q{SELECT state, rows_done, last_key FROM moltres_ops.backfill_progress WHERE set_clause = 'n = n + 1'});
is($state, 'interrupted', 'a terminated backfill shows as interrupted');
ok($done > 0 && $done < 2000, "it had done part of the work ($done rows, up to key $last)");
is($node->safe_psql('postgres', 'SELECT count(*) FILTER (WHERE n = 1) || \'|\' || max(id) FILTER (WHERE n = 1) FROM t'),
	"$done|$last", 'the progress row matches exactly the committed batches');

my ($ret, $out, $err) = $node->psql('postgres',
	q{CALL moltres_ops.backfill('t', 'n = n + 1', batch_size => 100)});
is($ret, 0, 'the same CALL again succeeds');
like($err, qr/resuming after key $last \($done rows done\)/, 'it resumes after the last committed key');
is($node->safe_psql('postgres', 'SELECT min(n) || \'|\' || max(n) || \'|\' || count(*) FROM t'),
	'1|1|2000', 'every row updated exactly once');
is($node->safe_psql('postgres',
		q{SELECT state || '|' || rows_done FROM moltres_ops.backfill_progress WHERE set_clause = 'n = n + 1'}),
	'finished|2000', 'finished, with the right total');

# ---------------------------------------------------------------------------
# A cancelled backfill records itself interrupted, with the error.
$filler = $node->background_psql('postgres', on_error_stop => 0);
$filler->query_until(
	qr/started/, q{
\echo started
CALL moltres_ops.backfill('t', 'n = n + 10', batch_size => 100, pause => '50ms');
});
$node->poll_query_until('postgres',
	q{SELECT batches >= 2 FROM moltres_ops.backfills WHERE set_clause = 'n = n + 10'})
  or die 'backfill made no progress';
$pid = $node->safe_psql('postgres',
	q{SELECT pid FROM moltres_ops.backfills WHERE set_clause = 'n = n + 10'});
$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
$node->poll_query_until('postgres',
	q{SELECT state FROM moltres_ops.backfills WHERE set_clause = 'n = n + 10'}, 'interrupted')
  or die 'the cancelled backfill did not record itself';
like($node->safe_psql('postgres',
		q{SELECT error FROM moltres_ops.backfills WHERE set_clause = 'n = n + 10'}),
	qr/^canceling statement due to user request \(SQLSTATE 57014\)/,
	'a cancelled backfill says why it stopped');
$filler->{stderr} = '';
$filler->query(q{CALL moltres_ops.backfill('t', 'n = n + 10', batch_size => 100)});
like($filler->{stderr}, qr/resuming after key \d+/, 'the cancelled backfill resumes');
is($node->safe_psql('postgres', 'SELECT min(n) || \'|\' || max(n) FROM t'),
	'11|11', 'after the cancel, the resumed backfill updated every row once');
$filler->quit;

$node->stop;
done_testing();
