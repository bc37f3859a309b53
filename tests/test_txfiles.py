"""Transaction boundaries survive every file path: an enum label one migration adds (in its
COMMIT_FIRST section) and the next migration uses, shipped as files by `hub db migrate --sql
-o DIR` and `hub db sql -o DIR`, then applied by `psql -1` one file at a time and by the real
Supabase CLI (`migration up`, `db reset`). One file would fail with 55P04 `unsafe use of new
value "PAUSED"`: PostgreSQL lets no transaction use a label it added itself.
"""
import contextlib
import subprocess

import psycopg2
import pytest

from tests.project import Project
from tests.test_supabase_cli import CONFIG, NOWHERE, anon_reaches, cli, cli_url, supabase  # noqa: F401

PAUSED = '''"""Agents can be paused."""
COMMIT_FIRST = r"""
ALTER TYPE public.agent_status ADD VALUE IF NOT EXISTS 'PAUSED';
"""


def up(migrator, db):
    pass


def down(migrator, db):
    pass
'''

PAUSE_OFFLINE = '''"""Offline agents are paused instead."""
UP = r"""
UPDATE public.ai_agents SET status = 'PAUSED' WHERE status = 'OFFLINE';
"""
DOWN = r"""
UPDATE public.ai_agents SET status = 'OFFLINE' WHERE status = 'PAUSED';
"""


def up(migrator, db):
    db.execute_sql(UP)


def down(migrator, db):
    db.execute_sql(DOWN)
'''


@pytest.fixture
def project(tmp_path):
    """A copy of the project with 0008 (adds the label) and 0009 (uses it) after the shipped ones."""
    project = Project(tmp_path / 'project')
    shipped = sorted(p.name for p in project.migrations.glob('[0-9]*.py'))
    number = int(shipped[-1][:4])
    (project.migrations / ('%04d_paused.py' % (number + 1))).write_text(PAUSED)
    (project.migrations / ('%04d_pause_offline.py' % (number + 2))).write_text(PAUSE_OFFLINE)
    project.last_shipped = shipped[-1][:-3]
    project.adds, project.uses = '%04d_paused' % (number + 1), '%04d_pause_offline' % (number + 2)
    return project


def ok(project, url, *args):
    result = project.hub(url, *args)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


def rows(url, sql):
    with contextlib.closing(psycopg2.connect(url)) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def psql_1(url, path):
    """`psql -1 -v ON_ERROR_STOP=1 -f path`: the CompletedProcess."""
    return subprocess.run(['psql', '-X', '-q', '-1', '-v', 'ON_ERROR_STOP=1', '-d', url, '-f',
                           str(path)], capture_output=True, text=True, timeout=300)


def written(folder):
    """The .sql files of `folder`, in the order psql's glob and the Supabase CLI take them."""
    return sorted(folder.glob('*.sql'))


def test_migrate_sql_files_run_one_by_one_under_psql_1(project, empty_db_url, tmp_path):
    url = empty_db_url
    ok(project, url, 'db', 'migrate', project.last_shipped)
    folder = tmp_path / 'out'
    folder.mkdir()
    ok(project, url, 'db', 'migrate', '--sql', '-o', str(folder))
    files = written(folder)
    # the label is committed in a file of its own, before the file that uses it
    assert len(files) == 2, [f.name for f in files]
    assert "ADD VALUE IF NOT EXISTS 'PAUSED'" in files[0].read_text()
    assert "SET status = 'PAUSED'" in files[1].read_text()
    assert "'PAUSED'" not in files[1].read_text().split("SET status = 'PAUSED'")[0]
    # the history DDL once, in the first file only
    assert [f.read_text().count('CREATE TABLE IF NOT EXISTS "hub_migrations"') for f in files] \
        in ([1, 0], [0, 0])
    for path in files:
        result = psql_1(url, path)
        assert result.returncode == 0, (path.name, result.stderr)
    assert rows(url, "SELECT name FROM hub_migrations ORDER BY name DESC LIMIT 2") == [
        (project.uses,), (project.adds,)]
    result = ok(project, url, 'db', 'status')
    assert 'pending' not in result.stdout.lower()


def test_migrate_sql_to_stdout_refuses_what_needs_two_files(project, empty_db_url):
    url = empty_db_url
    ok(project, url, 'db', 'migrate', project.last_shipped)
    result = project.hub(url, 'db', 'migrate', '--sql')
    assert result.returncode == 2
    assert result.stdout == ''
    [line] = result.stderr.strip().splitlines()[-1:]
    assert '-o' in line and project.adds in line, result.stderr


def test_migrate_sql_with_nothing_pending_writes_nothing(project, empty_db_url, tmp_path):
    url = empty_db_url
    ok(project, url, 'db', 'migrate')
    folder = tmp_path / 'out'
    folder.mkdir()
    for extra in ((), ('-o', str(folder))):
        result = project.hub(url, 'db', 'migrate', '--sql', *extra)
        assert result.returncode == 3, (extra, result.stderr)
        assert result.stdout == ''
        assert 'nothing pending' in result.stderr, result.stderr
    assert list(folder.iterdir()) == []


def test_schema_sql_files_build_an_empty_database_under_psql_1(project, empty_db_url, tmp_path):
    url = empty_db_url
    folder = tmp_path / 'out'
    folder.mkdir()
    ok(project, NOWHERE, 'db', 'sql', '-o', str(folder))
    files = written(folder)
    # the shipped migrations and the label in the first (ending with the sync: nothing it
    # creates is committed open), the migration that uses it and row-level security after
    assert len(files) == 2, [f.name for f in files]
    first, second = (f.read_text() for f in files)
    assert first.index('row-level-security sync') < first.index("ADD VALUE IF NOT EXISTS 'PAUSED'")
    assert "SET status = 'PAUSED'" in second and 'PAUSED' not in second.split('SET status')[0]
    assert [text.count('CREATE TABLE IF NOT EXISTS "hub_migrations"')
            for text in (first, second)] == [1, 0]
    for path in files:
        result = psql_1(url, path)
        assert result.returncode == 0, (path.name, result.stderr)
    for command in (('db', 'status'), ('db', 'check'), ('rls', 'status')):
        result = project.hub(url, *command)
        # db check: the copy's models know no PAUSED; what matters here is the history and RLS
        if command != ('db', 'check'):
            assert result.returncode == 0, (command, result.stdout, result.stderr)
    assert rows(url, "SELECT 'PAUSED'::agent_status::text") == [('PAUSED',)]


def test_schema_sql_to_one_file_refuses_what_needs_two(project, tmp_path):
    result = project.hub(NOWHERE, 'db', 'sql', '-o', str(tmp_path / 'x.sql'))
    assert result.returncode == 2
    assert not (tmp_path / 'x.sql').exists()
    assert '-o' in result.stderr and project.adds in result.stderr, result.stderr
    result = project.hub(NOWHERE, 'db', 'sql')
    assert result.returncode == 2 and result.stdout == ''


def test_the_files_through_the_supabase_cli(cli, project, supabase_db_url, tmp_path,  # noqa: F811
                                            secret):
    url = supabase_db_url
    folder = project.root
    migrations = folder / 'supabase' / 'migrations'
    migrations.mkdir(parents=True)
    (folder / 'supabase' / 'config.toml').write_text(CONFIG)
    (folder / 'supabase' / 'seed.sql').write_text('')

    # Day one without the two new migrations: the shipped schema through db reset.
    for name in (project.adds, project.uses):
        (project.migrations / (name + '.py')).rename(tmp_path / (name + '.py'))
    ok(project, NOWHERE, 'db', 'sql', '-o', str(migrations))
    supabase(cli, folder, 'db', 'reset', '--db-url', cli_url(url))

    # Day two: 0008 adds the label, 0009 uses it; migration up applies the files in order.
    for name in (project.adds, project.uses):
        (tmp_path / (name + '.py')).rename(project.migrations / (name + '.py'))
    before = set(written(migrations))
    ok(project, url, 'db', 'migrate', '--sql', '-o', str(migrations))
    assert len(set(written(migrations)) - before) == 2
    supabase(cli, folder, 'migration', 'up', '--db-url', cli_url(url))
    assert rows(url, 'SELECT name FROM hub_migrations ORDER BY name DESC LIMIT 1') == [
        (project.uses,)]
    assert anon_reaches(url) == []

    # Every reset replays all the files from nothing.
    supabase(cli, folder, 'db', 'reset', '--db-url', cli_url(url))
    assert rows(url, "SELECT count(*) FROM hub_migrations WHERE name = '%s'" % project.uses) \
        == [(1,)]
    assert anon_reaches(url) == []

    # And a new project's schema, as files, through db reset.
    for path in written(migrations):
        path.unlink()
    ok(project, NOWHERE, 'db', 'sql', '-o', str(migrations))
    supabase(cli, folder, 'db', 'reset', '--db-url', cli_url(url))
    assert rows(url, "SELECT 'PAUSED'::agent_status::text") == [('PAUSED',)]
    assert anon_reaches(url) == []
