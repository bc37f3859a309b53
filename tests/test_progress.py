"""`hub seed` progress: a line every few seconds in logs (stderr not a terminal), the click bar
on a terminal, nothing with --quiet; and `hub rls verify --json`'s summary."""
import json
import os
import re
import subprocess
import sys

from click.testing import CliRunner

from hub import connection
from hub.cli.main import cli
from hub.cli.seed import _Bar
from tests.terminal import on_terminal

AS_OF = ['--as-of', '2025-01-31']
LINE = re.compile(r'^seeded ([\d,]+) of ([\d,]+) organizations \((\d+)%\), ([\d,]+) rows/s$')


def seed_process(url, *args, env=None, stderr=subprocess.PIPE):
    """`python -m hub seed ARGS` as CI runs it: stdout and stderr are pipes, not a terminal."""
    environ = dict(os.environ, DATABASE_URL=url, **(env or {}))
    return subprocess.run([sys.executable, '-m', 'hub', 'seed', *args, *AS_OF], env=environ,
                          stdout=subprocess.PIPE, stderr=stderr, text=True, timeout=300)


def after_setup_notes(stderr):
    """stderr from the progress start line on (migrations and RLS notes come before it)."""
    lines = stderr.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith('seeding ')]
    assert starts, stderr
    return lines[starts[0]:]


def organizations(url):
    database = connection.open_database(url)
    try:
        return database.execute_sql('SELECT count(*) FROM organizations').fetchone()[0]
    finally:
        database.close()


def test_a_log_gets_progress_lines_with_counts_and_rate(db_url, secret):
    proc = seed_process(db_url, '--orgs', '12', '--scale', 'tiny',
                        env={'HUB_PROGRESS_SECONDS': '0'})
    assert proc.returncode == 0, proc.stderr
    lines = after_setup_notes(proc.stderr)
    assert lines[0] == 'seeding 12 organizations'
    progress = [LINE.match(line) for line in lines[1:]]
    assert progress and all(progress), lines
    done = [int(m.group(1)) for m in progress]
    assert done == sorted(done) and len(done) > 1        # one line per committed batch
    last = progress[-1]
    assert (last.group(1), last.group(2), last.group(3)) == ('12', '12', '100')
    assert int(last.group(4).replace(',', '')) > 0
    assert '\r' not in proc.stderr and 'total' in proc.stdout   # no bar redraws in a log


def test_lines_are_spaced_by_the_interval(db_url, secret):
    proc = seed_process(db_url, '--orgs', '12', '--scale', 'tiny')   # default: every 5 s
    assert proc.returncode == 0, proc.stderr
    lines = after_setup_notes(proc.stderr)
    # A run this short has its start and its end, none in between.
    assert lines[0] == 'seeding 12 organizations'
    assert [LINE.match(line).group(3) for line in lines[1:]] == ['100']


def test_the_throttle_counts_seconds_between_lines():
    class Log:
        def __init__(self):
            self.text = ''

        def write(self, text):
            self.text += text

        def flush(self):
            pass

        def isatty(self):
            return False

    now = [100.0]
    log = Log()
    bar = _Bar(True, stream=log, interval=5, clock=lambda: now[0])
    bar(0, 4, 0)
    for added, at in ((1, 101.0), (2, 105.5), (3, 108.0)):
        now[0] = at
        bar(added, 4, added * 1000)
    now[0] = 109.0
    bar(4, 4, 4500)
    assert log.text.splitlines() == ['seeding 4 organizations',
                                     'seeded 2 of 4 organizations (50%), 364 rows/s',
                                     'seeded 4 of 4 organizations (100%), 500 rows/s']


def test_quiet_silences_the_lines(db_url, secret):
    proc = seed_process(db_url, '--orgs', '3', '--scale', 'tiny', '--quiet',
                        env={'HUB_PROGRESS_SECONDS': '0'})
    assert proc.returncode == 0 and (proc.stdout, proc.stderr) == ('', '')
    assert organizations(db_url) == 3


def test_a_terminal_keeps_the_progress_bar(db_url, secret):
    code, seen, out = on_terminal(
        [sys.executable, '-m', 'hub', 'seed', '--orgs', '6', '--scale', 'tiny', *AS_OF],
        dict(os.environ, DATABASE_URL=db_url, HUB_PROGRESS_SECONDS='0'), streams='stderr')
    assert code == 0, seen
    text = seen.decode()
    assert 'seeding 6 organizations' in text and '6/6' in text   # click's bar, with position
    assert 'rows/s' not in text and b'total' in out               # and no log lines


def test_a_bad_interval_is_one_line_and_writes_nothing(db_url, secret):
    proc = seed_process(db_url, '--orgs', '2', '--scale', 'tiny',
                        env={'HUB_PROGRESS_SECONDS': 'soon'})
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("Error: $HUB_PROGRESS_SECONDS must be a number of seconds "
                                   "(e.g. 5); got 'soon'")
    assert organizations(db_url) == 0


def test_verify_json_has_a_summary_and_every_case(db_url):
    runner = CliRunner()
    assert runner.invoke(cli, ['--database-url', db_url, 'rls', 'install']).exit_code == 0
    clean = runner.invoke(cli, ['--database-url', db_url, 'rls', 'verify', '--json'])
    assert clean.exit_code == 0, clean.output
    doc = json.loads(clean.stdout)
    summary = doc['summary']
    assert summary['ok'] is True and summary['cases'] == len(doc['cases']) > 100
    assert (summary['leaks'], summary['failures'], summary['leaked'], summary['failed']) == \
        (0, 0, [], [])
    assert 'integrations' in summary['tables'] and 'workflows' in summary['tables']
    database = connection.open_database(db_url)
    try:
        database.execute_sql('CREATE POLICY everyone ON workflows FOR SELECT TO authenticated '
                             'USING (true)')
    finally:
        database.close()
    leaky = runner.invoke(cli, ['--database-url', db_url, 'rls', 'verify', '--json'])
    assert leaky.exit_code == 1
    doc = json.loads(leaky.stdout)
    summary = doc['summary']
    assert summary['ok'] is False and summary['leaks'] == len(summary['leaked']) > 0
    assert summary['leaks'] == sum(1 for c in doc['cases'] if c['leak'])
    assert summary['failures'] == sum(1 for c in doc['cases'] if not c['ok'])
    assert {(c['table'], c['command'], c['actor']) for c in summary['leaked']} >= \
        {('workflows', 'SELECT', 'outsider')}
