"""`hub seed` never adds accounts with the published password next to real users (issue 19,
item 9), unless told to with --allow-existing-users.

Before: `hub seed` and `hub seed --sql --auth-users` added the seeded accounts (password
hub.seed.auth.DEV_PASSWORD, printed in the docs) to any database, whoever else was in it.
"""
import contextlib
import io

import psycopg2
import pytest

from hub.ids import new_id
from hub.seed import guard, sqlfile
from tests.commands import hub

AS_OF = '2025-01-31'
SEED = ('seed', '--orgs', '1', '--scale', 'tiny', '--as-of', AS_OF, '-q')
REAL = "INSERT INTO auth.users (id, aud, role, email) VALUES (gen_random_uuid(), " \
       "'authenticated', 'authenticated', 'real@company.com')"


def execute(url, sql, params=None):
    with contextlib.closing(psycopg2.connect(url)) as conn:
        with conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else None


def refused(result, what):
    assert result.returncode == 2, (result.returncode, result.stderr)
    [line] = result.stderr.strip().splitlines()
    assert what in line and guard.FLAG in line, line
    assert 'Traceback' not in result.stderr


def test_seed_refuses_a_database_with_real_users(db_url, secret):
    execute(db_url, 'INSERT INTO users (id, email) VALUES (%s, %s), (%s, %s)',
            (new_id(), 'ada@company.com', new_id(), 'tester@acme.example'))
    refused(hub(db_url, *SEED), '1 user with a real-looking e-mail')
    assert execute(db_url, 'SELECT count(*) FROM organizations') == [(0,)]  # nothing written
    assert execute(db_url, 'SELECT count(*) FROM workflow_templates') == [(0,)]
    result = hub(db_url, *SEED, guard.FLAG)
    assert result.returncode == 0, result.stderr
    assert execute(db_url, 'SELECT count(*) FROM organizations') == [(1,)]
    # Seeded users are the seeder's own: another run needs no flag.
    result = hub(db_url, 'seed', '--orgs', '2', '--scale', 'tiny', '--as-of', AS_OF, '-q')
    refused(result, '1 user')  # ada is still there
    execute(db_url, "DELETE FROM users WHERE email = 'ada@company.com'")
    assert hub(db_url, 'seed', '--orgs', '2', '--scale', 'tiny', '--as-of', AS_OF,
               '-q').returncode == 0


def test_seed_refuses_a_supabase_database_with_real_auth_accounts(supabase_db_url, secret):
    url = supabase_db_url
    assert hub(url, *SEED).returncode == 0  # seeded accounts are marked as the seeder's
    assert hub(url, 'seed', '--orgs', '2', '--scale', 'tiny', '--as-of', AS_OF,
               '-q').returncode == 0
    execute(url, REAL)  # someone signed up through GoTrue
    before = execute(url, 'SELECT count(*) FROM auth.users')
    refused(hub(url, 'seed', '--orgs', '3', '--scale', 'tiny', '--as-of', AS_OF, '-q'),
            '1 Supabase Auth account')
    refused(hub(url, 'seed', '--reset', '--yes', *SEED[1:]), '1 Supabase Auth account')
    assert execute(url, 'SELECT count(*) FROM auth.users') == before
    assert hub(url, 'seed', '--orgs', '3', '--scale', 'tiny', '--as-of', AS_OF, '-q',
               guard.FLAG).returncode == 0


def test_the_seed_file_with_auth_users_stops_on_real_users(supabase_db_url, secret):
    url = supabase_db_url
    out = io.StringIO()
    sqlfile.write(out, orgs=1, scale='tiny', as_of=AS_OF, auth_users=True)
    assert guard.guard_sql() in out.getvalue()
    allowed = io.StringIO()
    sqlfile.write(allowed, orgs=1, scale='tiny', as_of=AS_OF, auth_users=True,
                  allow_existing_users=True)
    assert guard.guard_sql() not in allowed.getvalue()
    assert hub(url, 'db', 'migrate').returncode == 0
    execute(url, guard.guard_sql())  # an empty database: passes
    execute(url, REAL)
    with pytest.raises(psycopg2.Error) as info:
        execute(url, guard.guard_sql())
    assert info.value.pgcode == '55006'
    assert 'holds 0 users and 1 Supabase Auth accounts' in info.value.diag.message_primary
    assert guard.FLAG in info.value.diag.message_hint
