# The shared pools and rings that size memory to what it holds, at their
# limits: a text pool with no room beyond each entry's own 64 bytes cuts
# texts at a character boundary and counts them, and one short of room
# evicts entries with long texts rather than cut a new one; a statement whose
# durations span several octaves keeps every one in its sparse histogram,
# through a restart; and a slow-query ring far smaller than its events
# keeps the newest ones whole, newest first, and never shows a torn one.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('pools');
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'moltres_ops'
moltres_ops.max_statements = 100
moltres_ops.avg_query_text = 64
moltres_ops.slow_query_buffer = 10
moltres_ops.slow_query_ms = 0
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION moltres_ops');

# --- texts: a pool of 100 blocks of 64 bytes, one per entry -------------------
my $long = join(' + ', map { "c$_" } 1 .. 60);
$node->safe_psql('postgres', "CREATE TABLE pt (" . join(', ', map { "c$_ int" } 1 .. 60) . ")");
$node->safe_psql('postgres', "SELECT $long AS pool_$_ FROM pt WHERE c$_ = 1") for 1 .. 20;
my ($n, $maxlen, $prefix) = split /\|/, $node->safe_psql('postgres', qq{
	SELECT count(*), max(octet_length(query)), bool_and(query LIKE 'SELECT c1 + c2 + c3%')
	  FROM moltres_ops.query_stats WHERE query LIKE 'SELECT c1 + c2%'});
is($n, 20, 'every statement has an entry and a text');
cmp_ok($maxlen, '<=', 64, 'texts are cut to the 64 bytes each entry owns');
is($prefix, 't', 'a cut text is the start of the statement');
cmp_ok($node->safe_psql('postgres', 'SELECT texts_truncated FROM moltres_ops.stats_info'),
	'>=', 20, 'cut texts are counted');

# --- a histogram over several octaves, through a restart --------------------
$node->safe_psql('postgres', join('', map { "SELECT pg_sleep($_) AS octaves;\n" } ('0.0', '0.001', '0.004', '0.016', '0.064', '0.001', '0.004')));
my $hist_sql = q{SELECT string_agg(le_ms || ':' || count, ' ' ORDER BY le_ms)
	  FROM moltres_ops.query_histogram h
	  JOIN moltres_ops.query_stats s USING (userid, dbid, queryid, toplevel)
	 WHERE s.query = 'SELECT pg_sleep($1) AS octaves'};
my $hist = $node->safe_psql('postgres', $hist_sql);
my @rows = split / /, $hist;
cmp_ok(scalar(@rows), '>=', 5, 'the histogram holds a bucket in each octave used') or diag($hist);
like($rows[-1], qr/^Infinity:7$/, 'and counts all seven executions');
my $pct = $node->safe_psql('postgres',
	q{SELECT p50_ms, p99_ms FROM moltres_ops.query_stats WHERE query = 'SELECT pg_sleep($1) AS octaves'});
$node->restart;
is($node->safe_psql('postgres', $hist_sql), $hist, 'the histogram is the same after a restart');
is($node->safe_psql('postgres',
		q{SELECT p50_ms, p99_ms FROM moltres_ops.query_stats WHERE query = 'SELECT pg_sleep($1) AS octaves'}),
	$pct, 'and so are its percentiles');
is($node->safe_psql('postgres', 'SELECT hist_dropped FROM moltres_ops.stats_info'),
	'0', 'no duration was left out of a histogram');

# --- the slow-query ring: 10 entries in 20 kB, events of 1.8 to 2.8 kB --------
$node->safe_psql('postgres', 'SELECT moltres_ops.reset_slow_queries()');
$node->safe_psql('postgres', join('', map { "SELECT 'ring_$_', '" . ('x' x (1000 + ($_ * 397) % 1000)) . "';\n" } 1 .. 40));
my $got = $node->safe_psql('postgres', q{
	SELECT string_agg('ring_' || ring_n, ' ' ORDER BY ring_n DESC)
	  FROM (SELECT substring(query from 'ring_([0-9]+)')::int AS ring_n
	          FROM moltres_ops.slow_queries WHERE query LIKE 'SELECT ''ring_%') q});
my @kept = split / /, $got;
cmp_ok(scalar(@kept), '>=', 3, 'the ring keeps several of the newest events');
cmp_ok(scalar(@kept), '<', 10, 'fewer than slow_query_buffer: the bytes ran out first');
is_deeply(\@kept, [ map { "ring_$_" } reverse((41 - @kept) .. 40) ],
	'the newest ones, without a gap');
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM moltres_ops.slow_queries
	 WHERE query LIKE 'SELECT ''ring_%'
	   AND octet_length(query) <> octet_length(format('SELECT %L, %L;',
			substring(query from 'ring_[0-9]+'),
			repeat('x', 1000 + (substring(query from 'ring_([0-9]+)')::int * 397) % 1000))) - 1}),
	'0', 'each one whole');

# --- a short text pool evicts long texts before it cuts one ---------------
# 100 entries and 200 blocks: each entry's own and 100 more.  Texts of 377
# bytes need 5 blocks each beyond their own, so the pool holds the extra
# blocks of twenty; each further one evicts an entry that holds a long text
# (the least used at the hand) and is kept whole.
$node->append_conf('postgresql.conf', 'moltres_ops.avg_query_text = 128');
$node->restart;
$node->safe_psql('postgres', 'SELECT moltres_ops.reset()');
$node->safe_psql('postgres', "SELECT $long, c$_ AS long_$_ FROM pt") for 1 .. 30;
my ($lt_n, $lt_whole, $lt_trunc, $lt_evict) = split /\|/, $node->safe_psql('postgres', q{
	SELECT count(*), bool_and(query LIKE '% AS long_% FROM pt'),
	       (SELECT texts_truncated FROM moltres_ops.stats_info),
	       (SELECT evictions FROM moltres_ops.stats_info)
	  FROM moltres_ops.query_stats WHERE query LIKE 'SELECT c1 + c2%long_%'});
cmp_ok($lt_n, '>=', 8, 'the pool holds several long texts');
cmp_ok($lt_n, '<', 30, 'but not all thirty: some were evicted for room');
is($lt_whole, 't', 'every long text kept is whole');
is($lt_trunc, '0', 'none was cut');
cmp_ok($lt_evict, '>', 0, 'the evictions are counted');

$node->stop;
done_testing();
