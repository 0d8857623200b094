# Metrics with the real Prometheus tools: the shipped postgres_exporter
# queries file is what the catalogue generates; `promtool check metrics`
# finds nothing in prometheus() nor in the exporter's scrape; the alert
# rules pass `promtool test rules`; and end to end, a real Prometheus
# scraping a real postgres_exporter computes the same p99 as the extension
# (within the histogram's bucket) and fires an alert; and it works on a
# streaming standby.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use HTTP::Tiny;
use JSON::PP;
use File::Temp qw(tempdir);
use IPC::Run;
use Time::HiRes qw(time sleep);

my $root = $ENV{TESTDIR} // '.';
$root = '.' unless -f "$root/contrib/postgres_exporter/moltres_ops.yaml";
my $promtool = '/usr/bin/promtool';
my $prometheus = '/usr/bin/prometheus';
my $exporter = '/usr/bin/prometheus-postgres-exporter';

# Every process started here is killed at the end, even if the test dies.
my @children;
END
{
	local $?;					# keep the test's exit status
	kill 'KILL', $_ for @children;
	waitpid($_, 0) for @children;
}

sub spawn
{
	my ($log, $env, @cmd) = @_;
	my $pid = fork() // die "fork: $!";
	if ($pid == 0)
	{
		%ENV = (%ENV, %$env);
		open(STDOUT, '>', $log) or die;
		open(STDERR, '>&', \*STDOUT) or die;
		exec(@cmd) or die "exec $cmd[0]: $!";
	}
	push @children, $pid;
	return $pid;
}

sub run_capture
{
	my @cmd = @_;
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run(\@cmd, '>', \$out, '2>', \$err);
	return ($ok, $out . $err);
}

# promtool check metrics on a text: (success, what it printed).
sub promtool_check
{
	my ($text) = @_;
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run([ $promtool, 'check', 'metrics' ], '<', \$text, '>', \$out, '2>', \$err);
	return ($ok, $out . $err);
}

my $node = PostgreSQL::Test::Cluster->new('metrics');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'moltres_ops'
compute_query_id = on
moltres_ops.metrics_min_calls = 5
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION moltres_ops');
# An error a client saw, for moltres_ops_errors_total.
$node->psql('postgres', 'SELECT 1/0');
# The wait families have rows once the wait sampler has seen a statement
# running: until it has, each poll is a statement that sleeps 50 ms.
ok($node->poll_query_until('postgres',
		q{SELECT CASE WHEN EXISTS (SELECT FROM moltres_ops.db_waits) THEN true
				 ELSE pg_sleep(0.05) IS NULL END}),
	'the wait sampler has counted a statement');

# The queries file in the repository is the catalogue's output.
my $yaml_path = "$root/contrib/postgres_exporter/moltres_ops.yaml";
my $generated = $node->safe_psql('postgres', 'SELECT moltres_ops.postgres_exporter_queries()');
is($generated . "\n", slurp_file($yaml_path),
	'contrib/postgres_exporter/moltres_ops.yaml is what postgres_exporter_queries() generates')
  or diag('regenerate it: make exporter-queries');

# Some statements so that every family has samples.
$node->safe_psql('postgres', join(';', ('SELECT 1 AS warm') x 10));
my $dir = tempdir(CLEANUP => 1);

like($node->safe_psql('postgres', 'SELECT moltres_ops.prometheus()'),
	qr/^moltres_ops_errors_total\{datname="postgres",phase="before_execution",sqlstate="22012"\} 1$/m,
	'prometheus(): the division by zero the planner raised, by SQLSTATE and phase');

SKIP:
{
	skip 'promtool is not installed', 2 unless -x $promtool;

	my $text = $node->safe_psql('postgres', 'SELECT moltres_ops.prometheus()');
	like($text, qr/^moltres_ops_statement_duration_seconds_bucket\{datname="postgres",le="\+Inf"\} \d+$/m,
		'prometheus(): the per-database histogram');
	my ($ok, $out) = promtool_check($text . "\n");
	ok($ok && $out eq '', 'promtool check metrics: nothing to report on prometheus()')
	  or diag($out);
}

SKIP:
{
	skip 'promtool is not installed', 1 unless -x $promtool;
	my ($ok, $out) = run_capture($promtool, 'test', 'rules',
		"$root/test/prometheus/moltres_ops.rules.test.yml");
	ok($ok, 'promtool test rules: every alert fires on its bad series and stays quiet on the good ones')
	  or diag($out);
}

SKIP:
{
	skip 'prometheus and prometheus-postgres-exporter are not installed', 6
	  unless -x $prometheus && -x $exporter && -x $promtool;

	my $http = HTTP::Tiny->new(timeout => 5);

	# The exporter, with only the queries file (the built-in pg_* metrics
	# are the exporter's own business).
	my $exp_port = PostgreSQL::Test::Cluster::get_free_port();
	spawn("$dir/exporter.log",
		{ DATA_SOURCE_NAME => sprintf('host=%s port=%d user=%s dbname=postgres sslmode=disable',
				$node->host, $node->port, scalar getpwuid($<)) },
		$exporter, "--extend.query-path=$yaml_path", '--disable-default-metrics',
		'--disable-settings-metrics', "--web.listen-address=127.0.0.1:$exp_port");

	# Prometheus, scraping it every second, with the shipped rules whose
	# `for:` durations are cut to 0 so that an alert fires within the test.
	my $rules = slurp_file("$root/contrib/prometheus/moltres_ops.rules.yml");
	$rules =~ s/^(\s+for:) .*$/$1 0s/mg;
	open(my $fh, '>', "$dir/rules.yml") or die;
	print $fh $rules;
	close $fh;
	my $prom_port = PostgreSQL::Test::Cluster::get_free_port();
	open($fh, '>', "$dir/prometheus.yml") or die;
	print $fh qq{global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ["$dir/rules.yml"]
scrape_configs:
  - job_name: moltres
    static_configs:
      - targets: ["127.0.0.1:$exp_port"]
};
	close $fh;
	spawn("$dir/prometheus.log", {}, $prometheus, "--config.file=$dir/prometheus.yml",
		"--storage.tsdb.path=$dir/tsdb", "--web.listen-address=127.0.0.1:$prom_port");

	my $api = "http://127.0.0.1:$prom_port/api/v1";
	my $query = sub {
		my ($q) = @_;
		my $res = $http->get("$api/query?" . $http->www_form_urlencode({ query => $q }));
		return undef unless $res->{success};
		my $r = decode_json($res->{content})->{data}{result};
		return @$r ? $r->[0]{value}[1] : undef;
	};
	# Bounded polls: the machine may be busy, so wait for a condition (at
	# most 90 s), never for a fixed time.
	my $poll = sub {
		my ($what, $cond) = @_;
		my $deadline = time() + 90;
		while (time() < $deadline)
		{
			my $v = $cond->();
			return $v if $v;
			sleep(0.25);
		}
		diag("timed out waiting for $what");
		return undef;
	};

	# The scrape itself passes promtool.
	my $scrape = $poll->('the exporter', sub {
		my $r = $http->get("http://127.0.0.1:$exp_port/metrics");
		return $r->{success} && $r->{content} =~ /moltres_ops_statement_duration_seconds_count/ ? $r->{content} : undef;
	});
	my ($ok, $out) = promtool_check($scrape // '');
	ok($ok && $out eq '', "promtool check metrics: nothing to report on the exporter's scrape")
	  or diag($out);
	# Every family whose source has rows on this primary without archiving
	# is in the scrape, so every query of the file ran.
	my @missing = grep { ($scrape // '') !~ /^\Q$_\E(_bucket)?[{ ]/m } split /\n/,
	  $node->safe_psql('postgres',
		q{SELECT name FROM moltres_ops.metric_catalogue() WHERE source NOT IN ('moltres_ops_replication', 'moltres_ops_standby', 'moltres_ops_wal') ORDER BY 1});
	is("@missing", '', 'exporter: every family of the queries file is scraped')
	  or diag(slurp_file("$dir/exporter.log"));

	# Prometheus has a first sample of the histogram before the workload.
	ok($poll->('the first scrape', sub {
			defined $query->('moltres_ops_statement_duration_seconds_count{datname="postgres"}') }),
		'prometheus scrapes the exporter');

	# The workload: 500 fast statements and 10 of 150 ms, so that the p99
	# lies among the slow ones; and 3 statement timeouts.
	$node->safe_psql('postgres',
		join(';', ('SELECT pg_sleep(0.001)') x 500, ('SELECT pg_sleep(0.15)') x 10));
	$node->psql('postgres', "SET statement_timeout = '20ms'; SELECT pg_sleep(1)") for 1 .. 3;
	my $total = $node->safe_psql('postgres',
		q{SELECT value FROM moltres_ops.metrics WHERE name = 'moltres_ops_statement_duration_seconds_count' AND labels ->> 'datname' = 'postgres'});

	# Wait until Prometheus has scraped counts that include the workload.
	$poll->('the workload in Prometheus', sub {
		my $v = $query->('max_over_time(moltres_ops_statement_duration_seconds_count{datname="postgres"}[1m])');
		return defined $v && $v >= $total;
	});
	my $ext_p99 = $node->safe_psql('postgres',
		q{SELECT p99_ms / 1000 FROM moltres_ops.latency WHERE datname = 'postgres' AND "window" = '1 min'});
	my $prom_p99 = $query->('histogram_quantile(0.99, sum by (le) (rate(moltres_ops_statement_duration_seconds_bucket{datname="postgres"}[1m])))');
	my @bounds = (0, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60);
	my ($lo, $hi) = (0, 60);
	for my $i (1 .. $#bounds)
	{
		if ($ext_p99 <= $bounds[$i]) { ($lo, $hi) = ($bounds[$i - 1], $bounds[$i]); last; }
	}
	ok(defined $prom_p99 && $prom_p99 >= $lo && $prom_p99 <= $hi,
		"histogram_quantile(0.99) in Prometheus ($prom_p99 s) lies in the bucket ($lo, $hi] of the extension's p99 ($ext_p99 s)");

	# The statement-timeout alert fires.
	ok($poll->('the alert', sub {
			my $r = $http->get("$api/alerts");
			return 0 unless $r->{success};
			return scalar grep { $_->{labels}{alertname} eq 'MoltresOpsStatementTimeouts' && $_->{state} eq 'firing' }
			  @{ decode_json($r->{content})->{data}{alerts} };
		}),
		'MoltresOpsStatementTimeouts fires in Prometheus');
}

# On a streaming standby: the scrape works read-only, the standby reports
# its replay delay and the primary the standby's lag.
$node->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('metrics_standby');
$standby->init_from_backup($node, 'b', has_streaming => 1);
$standby->start;
$node->wait_for_catchup($standby);
like($standby->safe_psql('postgres', 'SELECT moltres_ops.prometheus()'),
	qr/^moltres_ops_standby_replay_delay_seconds 0$/m, 'standby: prometheus() answers, with the replay delay');
like($node->safe_psql('postgres', 'SELECT moltres_ops.prometheus()'),
	qr/^moltres_ops_replication_lag_seconds\{application_name="metrics_standby"\} [0-9.e+-]+$/m,
	'primary: the lag of the standby');
$standby->stop;
$node->stop;
done_testing();
