# The statistics file is checked field by field before anything of it is
# loaded: files whose checksum is right but whose content is not (an entry
# count one too high, a text that is not valid in its encoding, a negative
# counter, a key twice, a histogram bucket out of range, a file of the
# previous format) are ignored whole with one LOG line, and the views keep
# working.  The file holds only the non-empty histogram buckets, and the
# histograms and percentiles survive a restart.  Lowering max_statements across a restart drops the least
# called entries with a LOG line that says how many; a crash restart and an
# unclean stop say that the statistics start empty.
#
# The files are written while the server is stopped: the test reads the
# file the server wrote, changes it, and recomputes its CRC-32C.  Offsets
# inside an entry are derived from the header (entry size, histogram
# buckets) and checked against a known text, so that a new counter does not
# silently make this test test nothing.  An entry is its fixed part
# (entry_size bytes, ending with encoding, text_len, hist_shift, npairs),
# npairs (bucket, count) pairs of 8 bytes, and text_len bytes of text.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('stats_file');
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'moltres_ops'
moltres_ops.max_statements = 200
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION moltres_ops');
my $file = $node->data_dir . '/pg_stat/moltres_ops_query_stats.stat';

# CRC-32C (Castagnoli, reflected), as PostgreSQL's pg_crc32c.
my @crc_table;
for my $i (0 .. 255)
{
	my $c = $i;
	for (1 .. 8) { $c = ($c & 1) ? (($c >> 1) ^ 0x82F63B78) : ($c >> 1); }
	$crc_table[$i] = $c;
}
sub crc32c
{
	my ($data) = @_;
	my $c = 0xFFFFFFFF;
	$c = $crc_table[ ($c ^ $_) & 0xFF ] ^ ($c >> 8) for unpack('C*', $data);
	return $c ^ 0xFFFFFFFF;
}

sub slurp_file_bin { open(my $fh, '<:raw', $_[0]) or die "open $_[0]: $!"; local $/; my $d = <$fh>; close $fh; return $d; }
sub write_file_bin { open(my $fh, '>:raw', $_[0]) or die "open $_[0]: $!"; print $fh $_[1]; close $fh; }

# Header: magic, format, pg_major, nbuckets, entry_size, nentries (int32
# each), then stats_reset, evictions, dropped (8 bytes each).
sub parse
{
	my ($data) = @_;
	my ($magic, $format, $major, $nbuckets, $entry_size, $n) = unpack('L6', $data);
	return { nbuckets => $nbuckets, entry_size => $entry_size, n => $n, header => 48 };
}

# Offset of encoding, text_len, hist_shift, npairs inside an entry: they
# end its fixed part.
sub tail_offset
{
	my ($h) = @_;
	return $h->{entry_size} - 16;
}

# Each entry as [offset, text_len, npairs, length, text offset]; dies when
# the layout is not understood.
sub entries
{
	my ($data, $h) = @_;
	my @e;
	my $p = $h->{header};
	my $t = tail_offset($h);
	for (1 .. $h->{n})
	{
		my (undef, $len, undef, $np) = unpack('l l L l', substr($data, $p + $t, 16));
		my $size = $h->{entry_size} + 8 * $np + $len;
		die "entry layout not understood" if $len < 0 || $np < 0 || $p + $size > length($data) - 4;
		push @e, [ $p, $len, $np, $size, $p + $h->{entry_size} + 8 * $np ];
		$p += $size;
	}
	die "entry layout not understood: $p vs " . (length($data) - 4) if $p != length($data) - 4;
	return @e;
}

sub with_crc
{
	my ($body) = @_;
	return $body . pack('L', crc32c($body));
}

sub views_work
{
	my ($what) = @_;
	my ($ok, $out, $err) = (1, '', '');
	# every text goes through a conversion (a client in another encoding),
	# which is where a text that is not valid in its encoding fails
	for my $q ('SET client_encoding = LATIN1; SELECT query FROM moltres_ops.query_stats',
		'SET client_encoding = LATIN1; SELECT * FROM moltres_ops.metrics()',
		'SET client_encoding = LATIN1; SELECT moltres_ops.prometheus()',
		'SELECT count(*) FROM moltres_ops.query_histogram')
	{
		my $rc = $node->psql('postgres', $q, stdout => \$out, stderr => \$err);
		$ok = 0 if $rc != 0 || $err ne '';
	}
	ok($ok, "$what: query_stats, metrics(), prometheus() and query_histogram work") or diag($err);
}

# A workload with a known text, in a file written at a clean stop.
$node->safe_psql('postgres', q{CREATE TABLE sf (id int PRIMARY KEY, v text)});
$node->safe_psql('postgres', "SELECT v FROM sf WHERE id = $_") for 1 .. 3;
$node->safe_psql('postgres', q{SELECT id AS "marker_ünïcödé" FROM sf});
my $pct_before = $node->safe_psql('postgres',
	q{SELECT p50_ms, p99_ms, p999_ms FROM moltres_ops.query_stats WHERE query = 'SELECT v FROM sf WHERE id = $1'});
$node->stop;
my $good = slurp_file_bin($file);
my $h = parse($good);
my @e = entries($good, $h);
cmp_ok(scalar(@e), '>', 2, 'the file holds several entries, and its layout is understood');
my ($marker) = grep { substr($good, $_->[4], $_->[1]) =~ /marker/ } @e;
ok($marker, 'the entry with the known text is found');
is($h->{nbuckets}, 770, 'the header names the histogram of 770 buckets');
is($marker->[2], 1, 'an entry run once holds one histogram bucket, not 770');
my ($sf) = grep { substr($good, $_->[4], $_->[1]) eq 'SELECT v FROM sf WHERE id = $1' } @e;
{
	my $sum = 0;
	for my $k (0 .. $sf->[2] - 1)
	{
		my ($b, $c) = unpack('L L', substr($good, $sf->[0] + $h->{entry_size} + 8 * $k, 8));
		$sum += $c;
	}
	is($sum, 3, 'the histogram of an entry run three times counts three');
}

sub start_with
{
	my ($data) = @_;
	write_file_bin($file, $data);
	my $offset = -s $node->logfile;
	$node->start;
	return $offset;
}

sub ignored_with
{
	my ($offset, $re, $what) = @_;
	my $log = substr(slurp_file($node->logfile), $offset);
	my @lines = ($log =~ /(ignoring moltres_ops statistics file[^\n]*)/g);
	is(scalar(@lines), 1, "$what: one LOG line");
	like($lines[0] // '', $re, "$what: it says why");
	is($node->safe_psql('postgres',
			q{SELECT count(*) FROM moltres_ops.query_stats WHERE query LIKE '%sf%'}),
		'0', "$what: nothing of it is loaded");
	ok(!-e $file, "$what: the file is removed");
	views_work($what);
	$node->stop;
}

# --- the entry count one too high, checksum right ----------------------------
{
	my $body = substr($good, 0, length($good) - 4);
	substr($body, 20, 4) = pack('l', $h->{n} + 1);
	my $off = start_with(with_crc($body));
	ignored_with($off, qr/: the header says @{[ $h->{n} + 1 ]} entries/, 'count one too high');
}

# --- a text that is not valid UTF-8, checksum right --------------------------
{
	my $body = substr($good, 0, length($good) - 4);
	my $text_at = $marker->[4];
	my $u = index(substr($body, $text_at, $marker->[1]), "\xc3");
	die "no multibyte character in the marker text" if $u < 0;
	substr($body, $text_at + $u, 1) = "\xff";
	my $off = start_with(with_crc($body));
	ignored_with($off, qr/: entry \d+: its text is not valid UTF8/, 'invalid encoding');
}

# --- a negative counter (calls, the first counter) ---------------------------
{
	my $body = substr($good, 0, length($good) - 4);
	substr($body, $marker->[0] + 24, 8) = pack('q', -5);
	my $off = start_with(with_crc($body));
	ignored_with($off, qr/: entry \d+: a counter is negative/, 'negative counter');
}

# --- the same key twice -------------------------------------------------------
{
	my $body = substr($good, 0, length($good) - 4);
	my $copy = substr($body, $marker->[0], $marker->[3]);
	$body .= $copy;
	substr($body, 20, 4) = pack('l', $h->{n} + 1);
	my $off = start_with(with_crc($body));
	ignored_with($off, qr/: entry \d+: its key appears twice/, 'duplicate key');
}

# --- a histogram bucket out of range, checksum right --------------------------
{
	my $body = substr($good, 0, length($good) - 4);
	substr($body, $marker->[0] + $h->{entry_size}, 4) = pack('L', 770);
	my $off = start_with(with_crc($body));
	ignored_with($off, qr/: entry \d+: its histogram buckets are out of range or out of order/,
		'histogram bucket out of range');
}

# --- a file of the previous format (1: dense histograms) ----------------------
{
	my $body = substr($good, 0, length($good) - 4);
	substr($body, 4, 4) = pack('L', 1);
	my $off = start_with(with_crc($body));
	ignored_with($off, qr/: it is in format 1, this version reads format 2/, 'previous format');
}

# --- the good file still loads ------------------------------------------------
{
	my $off = start_with($good);
	ok(!$node->log_contains(qr/ignoring moltres_ops statistics file/, $off), 'the good file is accepted');
	is($node->safe_psql('postgres', q{SELECT calls FROM moltres_ops.query_stats WHERE query = 'SELECT v FROM sf WHERE id = $1'}),
		'3', 'and loaded');
	is($node->safe_psql('postgres',
			q{SELECT p50_ms, p99_ms, p999_ms FROM moltres_ops.query_stats WHERE query = 'SELECT v FROM sf WHERE id = $1'}),
		$pct_before, 'its percentiles are those before the restart');
}

# --- lowering max_statements across a restart --------------------------------
$node->safe_psql('postgres', "SELECT $_ AS c$_ FROM sf") for 1 .. 30;
$node->safe_psql('postgres', 'SELECT v FROM sf WHERE id = 4') for 1 .. 3;
my $n_before = $node->safe_psql('postgres', 'SELECT count(*) FROM moltres_ops.query_stats');
$node->stop;
$node->append_conf('postgresql.conf', "moltres_ops.max_statements = 100\n");
# max_statements 100 is the minimum; make the file hold more than that
my $more = slurp_file_bin($file);
{
	my $mh = parse($more);
	my @me = entries($more, $mh);
	my $body = substr($more, 0, length($more) - 4);
	my ($src) = grep { substr($more, $_->[4], $_->[1]) =~ /AS c1 FROM/ } @me;
	die "no entry to copy" unless $src;
	my $tmpl = substr($body, $src->[0], $src->[3]);
	my $added = 0;
	for my $i (1 .. 120)
	{
		my $copy = $tmpl;
		# a queryid of our own, one call each
		substr($copy, 8, 8) = pack('q', 7_000_000_000 + $i);
		substr($copy, 24, 8) = pack('q', 1);
		$body .= $copy;
		$added++;
	}
	substr($body, 20, 4) = pack('l', $mh->{n} + $added);
	my $total = $mh->{n} + $added;
	my $off = start_with(with_crc($body));
	my $log = substr(slurp_file($node->logfile), $off);
	like($log, qr/moltres_ops dropped @{[ $total - 100 ]} of the $total statement statistics in ".*": moltres_ops.max_statements is 100/,
		'lowering max_statements: one LOG line says how many entries were dropped');
	is($node->safe_psql('postgres', 'SELECT count(*) FROM moltres_ops.query_stats'), '100',
		'the table is full');
	is($node->safe_psql('postgres', q{SELECT calls FROM moltres_ops.query_stats WHERE query = 'SELECT v FROM sf WHERE id = $1'}),
		'6', 'the most called entries are the ones kept');
	views_work('after dropping');
}

# --- a crash restart and an unclean stop say that the table starts empty ----
{
	my $off = -s $node->logfile;
	my $victim = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $victim->query_safe('SELECT pg_backend_pid()');
	kill 'KILL', $pid;
	$node->poll_query_until('postgres', q{SELECT 1}, '1')
	  or die "server did not come back after the crash";
	$victim->quit;
	ok($node->log_contains(qr/moltres_ops statement statistics start empty: the server is restarting after a crash/, $off),
		'a crash restart says that the statistics start empty');

	# SIGKILL of the postmaster: nothing is written; the next start says so
	my ($postmaster_pid) = slurp_file($node->data_dir . '/postmaster.pid') =~ /^(\d+)/;
	my @children = split /\s+/, `ps --ppid $postmaster_pid -o pid=`;
	@children = grep { /^\d+$/ } @children;
	kill 'KILL', $postmaster_pid;
	# the children notice that the postmaster died and exit
	for my $p ($postmaster_pid, @children)
	{
		for (1 .. 3000) { last unless kill(0, $p); select(undef, undef, undef, 0.1); }
	}
	ok(!(grep { kill(0, $_) } $postmaster_pid, @children), 'the postmaster and its children are gone');
	unlink($node->data_dir . '/postmaster.pid');
	$node->_update_pid(0);
	$off = -s $node->logfile;
	$node->start;
	ok($node->log_contains(qr/moltres_ops statement statistics start empty: the server was not shut down cleanly/, $off),
		'a start after an unclean stop says that the statistics start empty');
	$node->stop;
	$off = -s $node->logfile;
	$node->start;
	ok(!$node->log_contains(qr/moltres_ops statement statistics start empty/, $off),
		'a start after a clean stop says nothing of the kind');
}

$node->stop;
done_testing();
