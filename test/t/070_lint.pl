# Linter and tracer: lint() survives at least 100,000 random and mutated
# statements on a server that is not preloaded (lint needs no shared
# memory), and trace() reports a lock it could not get within
# moltres_ops.trace_lock_timeout instead of waiting, leaving nothing behind.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use Encode qw(encode);

my $node = PostgreSQL::Test::Cluster->new('lint');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION moltres_ops');
$node->safe_psql('postgres', q{
  CREATE TABLE acct (id int PRIMARY KEY, n int, note varchar(20), ts timestamp);
  INSERT INTO acct SELECT i, i, 'x', now() FROM generate_series(1, 1000) i;
  CREATE TABLE ref (id int PRIMARY KEY);
  CREATE TYPE mood AS ENUM ('sad', 'happy');
});
is($node->safe_psql('postgres', 'SELECT moltres_ops.preloaded()'), 'f', 'not preloaded');

# --- Fuzz ----------------------------------------------------------------
my @corpus = (
	q{ALTER TABLE acct ADD COLUMN x int DEFAULT random()},
	q{ALTER TABLE acct ADD COLUMN y timestamptz DEFAULT now() NOT NULL},
	q{ALTER TABLE acct ALTER COLUMN n SET NOT NULL},
	q{ALTER TABLE acct ALTER COLUMN note TYPE varchar(100)},
	q{ALTER TABLE acct ALTER COLUMN ts TYPE timestamptz USING ts AT TIME ZONE 'UTC'},
	q{ALTER TABLE acct ADD CONSTRAINT acct_n_fk FOREIGN KEY (n) REFERENCES ref (id) NOT VALID},
	q{ALTER TABLE acct VALIDATE CONSTRAINT acct_n_fk},
	q{ALTER TABLE acct ADD CONSTRAINT acct_n_pos CHECK (n > 0 AND (note IS NOT NULL OR n < 10))},
	q{CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS acct_note ON acct (lower(note)) WHERE n > 0},
	q{CREATE TABLE t (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, a char(3), b json, c int REFERENCES ref)},
	q{DROP INDEX CONCURRENTLY IF EXISTS acct_note},
	q{ALTER TABLE acct RENAME COLUMN note TO remark},
	q{UPDATE acct SET n = n + 1 WHERE id IN (SELECT id FROM acct LIMIT 10)},
	q{DELETE FROM acct},
	q{TRUNCATE acct, ref CASCADE},
	q{VACUUM (FULL, ANALYZE) acct},
	q{LOCK TABLE acct IN SHARE ROW EXCLUSIVE MODE NOWAIT},
	q{ALTER TYPE mood ADD VALUE IF NOT EXISTS 'ok' BEFORE 'happy'},
	q{CREATE FUNCTION f() RETURNS int LANGUAGE sql STABLE AS $$ SELECT 1; $$},
	q{CREATE FUNCTION g() RETURNS int LANGUAGE plpgsql AS $body$ BEGIN RETURN 1; END $body$},
	q{BEGIN},
	q{COMMIT},
	q{SET LOCAL lock_timeout = '2s'},
	q{SELECT E'it\'s', 'a''b', $tag$ ; $tag$, "Quoted ""id""" FROM acct},
	q{ALTER TABLE parted ATTACH PARTITION p1 FOR VALUES FROM (1) TO (10)},
	q{REINDEX TABLE CONCURRENTLY acct},
	q{ALTER DOMAIN d ADD CONSTRAINT c CHECK (VALUE > 0) NOT VALID},
	q{REFRESH MATERIALIZED VIEW CONCURRENTLY mv},
	q{ALTER SYSTEM SET work_mem = '64MB'},
	q{COMMENT ON TABLE acct IS 'accounts; with a semicolon'},
	q{/* leading */ ALTER TABLE acct ADD COLUMN z int -- trailing},
	q{WITH x AS (SELECT 1) SELECT * FROM x},
	q{ALTER TABLE acct ADD COLUMN w numeric(12,2) GENERATED ALWAYS AS (n * 2) STORED},
	q{CREATE INDEX ON acct USING gin (to_tsvector('english', note))},
);
my @pieces = (
	'(', ')', ';', "'", '"', '$$', '$a$', '--', '/*', '*/', ',', '.', '::',
	'DEFAULT', 'NOT', 'NULL', 'CHECK', 'USING', 'ONLY', 'CONCURRENTLY',
	'ALTER', 'TABLE', 'COLUMN', 'TYPE', 'ADD', 'DROP', 'INDEX', 'ON', 'SET',
	'random()', 'now()', 'nextval(\'s\')', 'acct', 'ref', 'n', 'x' x 70,
	'E\'\\', 'U&"', '\\', '[', ']', '1e999', '-', '+', '0x', "\x{e9}", "\x{65e5}",
	"\n", "\t", ' ', 'PARTITION', 'BY', 'RANGE', 'FOR', 'VALUES', 'FROM', 'TO',
);
my @alphabet = (map { chr } 32 .. 126);
srand(20240607);

sub mutate
{
	my ($s) = @_;
	my $n = 1 + int(rand(4));
	for (1 .. $n)
	{
		my $len = length($s);
		my $op = int(rand(8));
		my $pos = $len ? int(rand($len)) : 0;
		if ($op == 0) { substr($s, $pos, int(rand(8)), ''); }
		elsif ($op == 1) { substr($s, $pos, 0, $pieces[ rand @pieces ]); }
		elsif ($op == 2) { substr($s, $pos, 0, $alphabet[ rand @alphabet ]); }
		elsif ($op == 3) { $s = substr($s, 0, $pos); }
		elsif ($op == 4) { my $k = int(rand(30)); substr($s, $pos, 0, ('(' x $k)) }
		elsif ($op == 5) { substr($s, $pos, 0, substr($s, 0, $pos)); }
		elsif ($op == 6) { $s = uc($s) if rand() < 0.5; $s =~ s/\s+/ /g; }
		else { $s .= ' ' . $corpus[ rand @corpus ]; }
	}
	return $s;
}

sub random_statement
{
	my $r = rand();
	return $corpus[ rand @corpus ] if $r < 0.15;
	return mutate($corpus[ rand @corpus ]) if $r < 0.80;
	my $k = 1 + int(rand(25));
	return join(' ', map { $pieces[ rand @pieces ] } 1 .. $k);
}

sub sql_literal
{
	my ($s) = @_;
	$s =~ s/'/''/g;
	return "'$s'";
}

# Most inputs go one statement per lint() call (so that an unterminated
# quote in one cannot swallow the next), many at a time through unnest();
# the rest as multi-statement inputs, which exercise the splitter.
my $script = "SET client_min_messages = warning;\nSET lock_timeout = '1s';\n";
my $statements = 0;
my $calls = 0;
my $single = 0;
while ($statements < 100_000)
{
	my $k = 1 + int(rand(400));
	my @batch = map { random_statement() } 1 .. $k;
	$statements += $k;
	if (rand() < 0.7)
	{
		$single += $k;
		$script .= 'SELECT count(*) FILTER (WHERE n > 0) FROM (SELECT (SELECT count(*) FROM moltres_ops.lint(s)) AS n FROM unnest(ARRAY['
		  . join(',', map { sql_literal($_) } @batch) . "]) s) x;\n";
	}
	else
	{
		$script .= 'SELECT count(DISTINCT stmt) FROM moltres_ops.lint('
		  . sql_literal(join(";\n", @batch)) . ");\n";
	}
	$calls++;
}
# Inputs the generator above does not make: huge, deep, empty.
$script .= "SELECT count(*) FROM moltres_ops.lint(repeat('ALTER TABLE acct ADD COLUMN q int;', 50000));\n";
$script .= "SELECT count(*) FROM moltres_ops.lint('SELECT ' || repeat('-', 300000) || '1');\n";
$script .= "SELECT count(*) FROM moltres_ops.lint('SELECT ' || repeat('ARRAY[', 50000) || '1' || repeat(']', 50000));\n";
$script .= "SELECT count(*) FROM moltres_ops.lint(repeat('(', 1000000));\n";
$script .= "SELECT count(*) FROM moltres_ops.lint(repeat(';', 1000000));\n";
$script .= "SELECT count(*) FROM moltres_ops.lint(repeat('/*', 100000));\n";
$script .= "SELECT count(*) FROM moltres_ops.lint(repeat('\$\$', 100001));\n";
$script .= "SELECT 'done';\n";
$calls += 7;
cmp_ok($statements, '>=', 100_000, "generated $statements statements in $calls calls");

my $start = time();
my ($ret, $out, $err) =
  $node->psql('postgres', encode('UTF-8', $script), on_error_stop => 0);
my $secs = time() - $start;
note(sprintf('fuzz: %d statements in %.1f s', $statements, $secs));
is($ret, 0, 'psql ran the whole fuzz script');
like($out, qr/done\s*$/, 'the last statement of the script ran');
unlike($err, qr/server closed the connection|terminated abnormally|TRAP|PANIC/,
	'the backend never crashed');
my @counts = grep { /^\d+$/ } split /\n/, $out;
is(scalar(@counts), $calls, 'every lint call returned a result');
my $seen = 0;
$seen += $_ for @counts[ 0 .. $#counts - 7 ];
cmp_ok($seen, '>=', 0.9 * $single, "lint answered for $seen statements ($single given one per call)");
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'server still accepts connections');
my $log = slurp_file($node->logfile);
unlike($log, qr/was terminated by signal|server process .* exited with exit code [1-9]/,
	'no backend crash in the server log');

# --- trace under a lock held elsewhere ---------------------------------
my $holder = $node->background_psql('postgres');
$holder->query_safe('BEGIN');
$holder->query_safe('LOCK TABLE acct IN ACCESS SHARE MODE');
my $t0 = time();
my $res = $node->safe_psql('postgres', q{
  SET moltres_ops.trace_lock_timeout = 200;
  SELECT stmt, coalesce(relation::text, '-'), coalesce(lock_mode, '-'), coalesce(note, '-')
    FROM moltres_ops.trace('ALTER TABLE acct ADD COLUMN x int; SELECT count(*) FROM acct')
   ORDER BY stmt});
my $elapsed = time() - $t0;
like($res, qr/^1\|-\|-\|error: canceling statement due to lock timeout.*another session holds a conflicting lock$/m,
	'the ALTER that would wait is reported, not waited for');
like($res, qr/^2\|acct\|AccessShareLock\|-$/m, 'the next statement still runs');
cmp_ok($elapsed, '<', 20, 'trace returned without waiting for the holder');
$holder->query_safe('COMMIT');
$holder->quit;
is($node->safe_psql('postgres',
	q{SELECT count(*) FROM pg_attribute WHERE attrelid = 'acct'::regclass AND attname = 'x'}),
	'0', 'nothing persisted');

$node->stop;
done_testing();
