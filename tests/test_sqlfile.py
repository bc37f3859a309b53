"""The schema and the seed as SQL files (`hub db sql`, `hub db migrate --sql`, `hub seed --sql`),
applied with psql as a Supabase project would: the result equals what the commands that write
into a database give, catalog (pg_dump --schema-only) and content (hashes per table) alike.

Files are written with DATABASE_URL pointing at a port nothing listens on: they need no database.
"""
import contextlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import psycopg2
import pytest

from hub import connection
from hub import migrate
from hub import rls
from hub.seed import content_hashes
from tests.commands import hub

NOWHERE = 'postgresql://nobody@127.0.0.1:9/nothing'
AS_OF = '2025-01-31'


def psql(url, path, single=False):
    """`psql -v ON_ERROR_STOP=1 [-1] -f path` on `url`: the CompletedProcess."""
    args = ['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1'] + (['-1'] if single else [])
    return subprocess.run(args + ['-f', str(path), '-d', url], capture_output=True, text=True,
                          timeout=600)


def applied(url, path, single=False):
    result = psql(url, path, single)
    assert result.returncode == 0, result.stderr
    return result


def pg_dump_for(url):
    """A pg_dump that can dump the server at `url`: pg_dump refuses a server newer than itself,
    and the embedded default (PostgreSQL 18) is newer than the machine's client (15 here)."""
    with contextlib.closing(psycopg2.connect(url)) as conn:
        major = conn.server_version // 10000
    candidates = [Path('/usr/lib/postgresql/%d/bin/pg_dump' % major),
                  Path(connection._bin()) / 'pg_dump', shutil.which('pg_dump')]
    for candidate in (c for c in candidates if c and os.path.exists(c)):
        version = subprocess.run([str(candidate), '--version'], capture_output=True, text=True)
        found = re.search(r'(\d+)\.\d+', version.stdout) if version.returncode == 0 else None
        if found and int(found.group(1)) >= major:
            return str(candidate)
    pytest.fail('no pg_dump of version %d or later: install postgresql-client-%d' % (major, major))


def schema_dump(url):
    """pg_dump --schema-only, without the random \\restrict lines of pg_dump 15.14+, and without
    hub's lock tables (made by the first command that takes a lock, hub.locks, not by the file)."""
    from hub import locks

    result = subprocess.run([pg_dump_for(url), '--schema-only', '--exclude-schema',
                             locks.SCHEMA, '-d', url], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if not line.startswith('\\')]


def history(url):
    with contextlib.closing(psycopg2.connect(url)) as conn, conn.cursor() as cur:
        cur.execute('SELECT name FROM hub_migrations ORDER BY id')
        return [r[0] for r in cur.fetchall()]


def written(tmp_path, *args, name='out.sql'):
    """`hub ARGS` with no database reachable; the path of the file it wrote."""
    path = tmp_path / name
    result = hub(NOWHERE, *args, str(path))
    assert result.returncode == 0, result.stderr
    return path


@pytest.fixture(scope='module')
def schema_file(tmp_path_factory):
    return written(tmp_path_factory.mktemp('schema'), 'db', 'sql', '-o')


def assert_clean(url):
    for command in (('db', 'status'), ('db', 'check'), ('rls', 'status')):
        result = hub(url, *command)
        assert result.returncode == 0, (command, result.stdout, result.stderr)
    database = connection.open_database(url)
    try:
        assert rls.install(database) == []  # the file installed exactly what install would
    finally:
        database.close()


def test_the_schema_file_is_plain_sql_a_supabase_migration_can_hold(schema_file):
    text = schema_file.read_text()
    lines = text.splitlines()
    assert not [line for line in lines if line.lstrip().startswith('\\')]  # no psql meta-command
    assert not [line for line in lines if line.upper().startswith('COPY ')]
    # The Supabase CLI runs each migration file in a transaction of its own.
    assert not [line for line in lines
                if re.match(r'(BEGIN|COMMIT|ROLLBACK|START TRANSACTION)\b\s*;', line, re.I)]
    assert hub(NOWHERE, 'db', 'sql').stdout == text  # stdout and -o agree; the same every time


def test_db_sql_builds_the_schema_migrate_and_rls_install_build(schema_file, databases):
    from_file, from_commands = databases.create(), databases.create()
    url, other = databases.url(from_file), databases.url(from_commands)
    applied(url, schema_file)
    assert_clean(url)
    for command in (('db', 'migrate'), ('rls', 'install')):
        assert hub(other, *command).returncode == 0
    assert schema_dump(url) == schema_dump(other)
    assert history(url) == history(other)


def test_db_sql_mode_active_builds_what_rls_install_mode_active_builds(databases, tmp_path):
    schema = written(tmp_path, 'db', 'sql', '--mode', 'active', '-o')
    from_file, from_commands = databases.create(), databases.create()
    url, other = databases.url(from_file), databases.url(from_commands)
    applied(url, schema)
    assert_clean(url)
    database = connection.open_database(url)
    try:
        assert rls.installed_mode(database) == 'active'
    finally:
        database.close()
    for command in (('db', 'migrate'), ('rls', 'install', '--mode', 'active')):
        assert hub(other, *command).returncode == 0
    assert schema_dump(url) == schema_dump(other)


def test_db_sql_refuses_a_database_that_has_the_schema(schema_file, db_url):
    before = schema_dump(db_url)
    result = psql(db_url, schema_file, single=True)
    assert result.returncode != 0
    assert "already has hub's migration history" in result.stderr
    assert schema_dump(db_url) == before


def test_db_sql_on_supabase_as_its_non_superuser_owner(schema_file, supabase_databases):
    from tests.test_supabase import auth_catalog

    from_file = supabase_databases.create(template='supabase_template', prefix='hub_supa')
    from_commands = supabase_databases.create(template='supabase_template', prefix='hub_supa')
    url, other = supabase_databases.url(from_file), supabase_databases.url(from_commands)
    supabase_auth = auth_catalog(url)
    applied(url, schema_file)
    assert_clean(url)
    assert auth_catalog(url) == supabase_auth  # Supabase's auth objects are left as they were
    for command in (('db', 'migrate'), ('rls', 'install')):
        assert hub(other, *command).returncode == 0
    assert schema_dump(url) == schema_dump(other)


def test_migrate_sql_gives_what_migrate_gives(databases, tmp_path):
    by_file, by_command = databases.create(), databases.create()
    url, other = databases.url(by_file), databases.url(by_command)
    for target in (url, other):
        assert hub(target, 'db', 'migrate', '2').returncode == 0
    result = hub(url, 'db', 'migrate', '--sql')
    assert result.returncode == 0, result.stderr
    assert history(url) == ['0001_initial', '0002_member_invitations']  # nothing was run
    path = tmp_path / 'pending.sql'
    path.write_text(result.stdout)
    applied(url, path, single=True)
    assert hub(other, 'db', 'migrate').returncode == 0
    assert schema_dump(url) == schema_dump(other)
    assert history(url) == history(other)
    assert hub(url, 'db', 'status').returncode == 0
    nothing = hub(url, 'db', 'migrate', '--sql')  # nothing pending: said, nothing written
    assert (nothing.returncode, nothing.stdout) == (3, '')
    assert nothing.stderr.startswith('nothing pending'), nothing.stderr


def test_migrate_sql_stops_at_the_target(databases):
    url = databases.url(databases.create())
    result = hub(url, 'db', 'migrate', '--sql', '0002')
    assert result.returncode == 0, result.stderr
    assert '-- migration 0002_member_invitations' in result.stdout
    assert '0003' not in result.stdout
    assert ("VALUES ('0002_member_invitations', LOCALTIMESTAMP, '%s')"
            % migrate.checksum(migrate.MIGRATIONS_DIR / '0002_member_invitations.py')) in result.stdout
    bad = hub(url, 'db', 'migrate', '--sql', '0099')
    assert bad.returncode == 2 and bad.stderr.count('\n') == 1 and '0099' in bad.stderr


# -- the seed ---------------------------------------------------------------------------------

SEED = ('--orgs', '3', '--scale', 'tiny', '--seed', '7', '--as-of', AS_OF)


def test_the_seed_file_needs_no_database_and_is_the_same_bytes_every_time(tmp_path, secret):
    first = written(tmp_path, 'seed', *SEED, '-q', '--sql', name='first.sql')
    second = written(tmp_path, 'seed', *SEED, '-q', '--sql', name='second.sql')
    assert first.read_bytes() == second.read_bytes()
    other = written(tmp_path, 'seed', *SEED[:-1], '2025-02-01', '-q', '--sql', name='other.sql')
    assert other.read_bytes() != first.read_bytes()
    text = first.read_text()
    assert 'COPY' not in text and 'CREATE ' not in text and 'ALTER ' not in text
    assert text.count('INSERT INTO public.') >= 12


def test_the_seed_file_loads_the_rows_hub_seed_writes(schema_file, databases, tmp_path, secret):
    path = written(tmp_path, 'seed', *SEED, '-q', '--sql')
    from_file, from_seed = databases.create(), databases.create()
    url, other = databases.url(from_file), databases.url(from_seed)
    applied(url, schema_file)
    applied(url, path, single=True)
    assert hub(other, 'seed', *SEED, '-q').returncode == 0
    file_hashes, seed_hashes = (content_hashes_of(u) for u in (url, other))
    assert file_hashes == seed_hashes
    assert len(set(file_hashes.values())) == len(file_hashes)  # no table is empty
    assert hub(url, 'secrets', 'status').returncode == 0  # the credentials open with the key
    assert_clean(url)


def content_hashes_of(url):
    database = connection.open_database(url)
    try:
        return content_hashes(database)
    finally:
        database.close()


def test_a_large_batch_splits_into_several_inserts(schema_file, databases, tmp_path, secret):
    path = written(tmp_path, 'seed', '--orgs', '1', '--scale', 'medium', '--as-of', AS_OF, '-q',
                   '--sql')
    text = path.read_text()
    assert text.count('INSERT INTO public.workflow_executions') > 1
    url = databases.url(databases.create())
    applied(url, schema_file)
    applied(url, path, single=True)
    other = databases.url(databases.create())
    assert hub(other, 'seed', '--orgs', '1', '--scale', 'medium', '--as-of', AS_OF,
               '-q').returncode == 0
    assert content_hashes_of(url) == content_hashes_of(other)


def test_the_seed_file_with_auth_users_loads_what_hub_seed_writes_on_supabase(
        schema_file, supabase_databases, tmp_path, secret):
    path = written(tmp_path, 'seed', *SEED, '-q', '--auth-users', '--sql')
    from_file = supabase_databases.create(template='supabase_template', prefix='hub_supa')
    from_seed = supabase_databases.create(template='supabase_template', prefix='hub_supa')
    url, other = supabase_databases.url(from_file), supabase_databases.url(from_seed)
    applied(url, schema_file)
    applied(url, path, single=True)
    applied(other, schema_file)
    assert hub(other, 'seed', *SEED, '-q').returncode == 0
    assert content_hashes_of(url) == content_hashes_of(other)
    auth = ("SELECT count(*), md5(string_agg(t::text, ',' ORDER BY t.id)) FROM auth.%s t")
    for table in ('users', 'identities'):
        rows = [query_one(u, auth % table) for u in (url, other)]
        assert rows[0] == rows[1] and rows[0][0] > 0, table


def query_one(url, sql):
    with contextlib.closing(psycopg2.connect(url)) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchone()


@pytest.mark.parametrize('args, named', [
    (('--reset',), '--reset'),
    (('--scenario', 'support-escalation'), '--scenario'),
])
def test_seed_sql_refuses_options_that_need_a_database(tmp_path, secret, args, named):
    path = tmp_path / 'seed.sql'
    result = hub(NOWHERE, 'seed', *args, '--sql', str(path))
    assert result.returncode == 2
    assert result.stderr.count('\n') == 1 and named in result.stderr
    assert not path.exists()


def test_seed_sql_without_a_key_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv('HUB_SECRET_KEY', raising=False)
    path = tmp_path / 'seed.sql'
    result = hub(NOWHERE, 'seed', '--sql', str(path))
    assert result.returncode == 2
    assert result.stderr.count('\n') == 1 and 'HUB_SECRET_KEY' in result.stderr
    assert not path.exists() and not os.listdir(tmp_path)


def test_auth_users_belongs_to_seed_sql(secret):
    result = hub(NOWHERE, 'seed', '--auth-users')
    assert result.returncode == 2
    assert result.stderr.count('\n') == 1 and '--sql' in result.stderr
