"""`hub rls install|status|verify|uninstall`: output and exit codes against a real database."""
import json

from click.testing import CliRunner

from hub import connection
from hub.cli.main import cli


def invoke(url, *args, input=None):
    return CliRunner().invoke(cli, ['--database-url', url, *args], input=input)


def sql(url, statement):
    database = connection.open_database(url)
    try:
        database.execute_sql(statement)
    finally:
        database.close()


def test_install_status_verify_uninstall(db_url):
    before = invoke(db_url, 'rls', 'status')
    assert before.exit_code == 1
    assert 'policy hub_select (SELECT) is missing' in before.stdout
    assert 'incomplete: run `hub rls install`' in before.stderr

    first = invoke(db_url, 'rls', 'install')
    assert first.exit_code == 0, first.output
    assert 'created policy hub_select on workflows (SELECT)' in first.stdout
    again = invoke(db_url, 'rls', 'install')
    assert again.exit_code == 0 and again.stdout == ''
    assert 'already installed: nothing to do' in again.stderr

    status = invoke(db_url, 'rls', 'status', '--json')
    assert status.exit_code == 0
    report = json.loads(status.stdout)
    assert report['complete'] and len(report['tables']) == 12

    verify = invoke(db_url, 'rls', 'verify')
    assert verify.exit_code == 0, verify.output
    assert '0 leak(s), 0 other failure(s)' in verify.stdout
    assert 'workflow_executions    SELECT' in verify.stdout
    assert 'no leaks' in verify.stderr

    # It asks first: "no" (or no answer) changes nothing.
    kept = invoke(db_url, 'rls', 'uninstall', input='n\n')
    assert kept.exit_code == 1 and 'remove row-level security from' in kept.stderr
    assert 'Aborted' in kept.stderr and kept.stdout == ''
    assert json.loads(invoke(db_url, 'rls', 'status', '--json').stdout)['complete']
    gone = invoke(db_url, 'rls', 'uninstall', '--yes')
    assert gone.exit_code == 0 and 'dropped schema hub_private' in gone.stdout
    assert invoke(db_url, 'rls', 'uninstall').stderr.strip() == \
        'row-level security was not installed: nothing to do'


def test_verify_exits_1_on_a_leak_and_names_it(db_url):
    assert invoke(db_url, 'rls', 'install').exit_code == 0
    sql(db_url, 'CREATE POLICY everyone ON workflows FOR SELECT TO authenticated USING (true)')
    result = invoke(db_url, 'rls', 'verify')
    assert result.exit_code == 1
    assert 'LEAK workflows SELECT as outsider' in result.stdout
    assert 'leak(s)' in result.stderr
    status = invoke(db_url, 'rls', 'status')
    assert status.exit_code == 1 and 'extra policy everyone (SELECT, to authenticated)' in status.stdout
    cases = json.loads(invoke(db_url, 'rls', 'verify', '--json').stdout)['cases']
    assert any(c['leak'] and c['table'] == 'workflows' for c in cases)


def test_errors_are_one_line(db_url, empty_db_url):
    result = invoke(db_url, 'rls', 'verify')
    assert result.exit_code == 1
    assert result.stderr.strip() == ('Error: row-level security is not installed in this database; '
                                     'run `hub rls install` first')
    result = invoke(empty_db_url, 'rls', 'install')
    assert result.exit_code == 1
    assert result.stderr.startswith('Error: cannot install row-level security: table(s) ')
    assert result.stderr.strip().endswith('run `hub db migrate` first')
    assert len(result.stderr.strip().splitlines()) == 1
