"""On a Supabase-shaped database, as its non-superuser owner `postgres`: every command works,
Supabase's `auth` objects stay as they were, the API roles get only what the policies need,
PostgREST-style inserts get ids from the database, and seeded users are Supabase Auth users.

The cluster comes from tools/supabase_cluster.sh ($HUB_SUPABASE_URL; skipped without it, except
in CI, which sets HUB_REQUIRE_SUPABASE=1). The id-default tests also run on the server under test.
"""
import contextlib
import re

import psycopg2
import pytest

from hub.seed import auth
from tests.commands import check_shell_and_round_trip, hub
from tests.conftest import Api

CUID = re.compile(r'^c[0-9a-z]{24}$')
AS_OF = '2025-01-31'


def query(url, sql, params=None):
    with contextlib.closing(psycopg2.connect(url)) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def execute(url, sql, params=None):
    with contextlib.closing(psycopg2.connect(url)) as conn:
        with conn, conn.cursor() as cur:
            cur.execute(sql, params)


def auth_catalog(url):
    """Everything Supabase owns in `auth`: objects, owners, privileges, definitions."""
    return query(url, """
        SELECT 'schema', n.nspname, n.nspowner::regrole::text, n.nspacl::text, NULL
        FROM pg_namespace n WHERE n.nspname = 'auth'
        UNION ALL
        SELECT 'relation', c.relname, c.relowner::regrole::text, c.relacl::text,
               (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', '
                                  ORDER BY a.attnum)
                FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0)
        FROM pg_class c WHERE c.relnamespace = 'auth'::regnamespace
        UNION ALL
        SELECT 'function', p.oid::regprocedure::text, p.proowner::regrole::text, p.proacl::text,
               pg_get_functiondef(p.oid)
        FROM pg_proc p WHERE p.pronamespace = 'auth'::regnamespace
        UNION ALL
        SELECT 'policy or trigger', tgname, NULL, NULL, pg_get_triggerdef(t.oid)
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE c.relnamespace = 'auth'::regnamespace AND NOT t.tgisinternal
        ORDER BY 1, 2""")


@pytest.fixture
def seeded(supabase_db_url, secret):
    """A Supabase-shaped database after migrate, rls install and a seed of 2 organizations."""
    for args in (('db', 'migrate'), ('rls', 'install'),
                 ('seed', '--orgs', '2', '--scale', 'tiny', '--as-of', AS_OF, '-q')):
        result = hub(supabase_db_url, *args)
        assert result.returncode == 0, (args, result.stderr)
    return supabase_db_url


@pytest.fixture
def api():
    """PostgREST's own login role on the Supabase shape: `authenticator`."""
    return lambda url: Api(url, 'authenticator')


def test_the_owner_is_not_a_superuser_and_does_not_own_auth(supabase_db_url):
    # As in Supabase's images: the schema is supabase_admin's, its tables GoTrue's.
    [(superuser, owner, tables)] = query(supabase_db_url, """
        SELECT r.rolsuper, n.nspowner::regrole::text, 'auth.users'::regclass::oid IN
               (SELECT oid FROM pg_class WHERE relowner = 'supabase_auth_admin'::regrole)
        FROM pg_roles r, pg_namespace n WHERE r.rolname = current_user AND n.nspname = 'auth'""")
    assert (superuser, owner, tables) == (False, 'supabase_admin', True)
    [(returns,)] = query(supabase_db_url, "SELECT 'auth.uid()'::regprocedure::oid::regproc::text "
                                          "|| ':' || format_type(prorettype, NULL) FROM pg_proc "
                                          "WHERE oid = 'auth.uid()'::regprocedure")
    assert returns.endswith(':uuid')


def test_every_command_works_as_the_owner_and_auth_is_untouched(supabase_databases, secret,
                                                                 tmp_path):
    url = supabase_databases.url(supabase_databases.create(template='supabase_template',
                                                           prefix='hub_supa'))
    before = auth_catalog(url)
    for args in (('db', 'migrate'), ('rls', 'install'),
                 ('seed', '--orgs', '2', '--scale', 'tiny', '--as-of', AS_OF, '-q'),
                 ('rls', 'verify'), ('rls', 'status'), ('db', 'check'), ('db', 'status')):
        result = hub(url, *args)
        assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr)
    [(org_id, user_id)] = query(url, "SELECT organization_id, user_id FROM organization_members "
                                     "WHERE role = 'OWNER' ORDER BY 1, 2 LIMIT 1")
    other = supabase_databases.url(supabase_databases.create(template='supabase_template',
                                                             prefix='hub_supa'))
    check_shell_and_round_trip(url, other, org_id, user_id, tmp_path)
    assert auth_catalog(url) == before
    assert auth_catalog(other) == before


@pytest.mark.parametrize('role', ['anon', 'authenticated'])
def test_api_roles_cannot_truncate_nor_see_the_migration_history(seeded, api, role):
    # Supabase's default privileges grant ALL (TRUNCATE included) on every new table.
    tenant = api(seeded)
    for table in ('workflows', 'organizations', 'users'):
        assert tenant.error('TRUNCATE %s CASCADE' % table, role=role) == '42501', table
    assert tenant.error('SELECT * FROM hub_migrations', role=role) == '42501'
    assert query(seeded, 'SELECT count(*) FROM workflows')[0][0] > 0


def test_an_insert_without_id_as_authenticated_gets_one(seeded, api):
    [(org_id, user_id)] = query(seeded, "SELECT organization_id, user_id FROM organization_members "
                                        "WHERE role = 'OWNER' ORDER BY 1, 2 LIMIT 1")
    rows = api(seeded).run(
        "INSERT INTO workflows (name, nodes, edges, organization_id, created_by) "
        "VALUES ('via PostgREST', '[]', '[]', %s, %s) RETURNING id", (org_id, user_id),
        user=user_id)
    assert CUID.match(rows[0][0]), rows


def test_an_insert_without_id_gets_one_on_the_server_under_test(database, db_url, api_for):
    from hub import rls
    from tests.rows import minimal

    rls.install(database)
    ids = {}
    ids['org'] = minimal(database, 'organizations', ids)
    ids['user'] = minimal(database, 'users', ids)
    minimal(database, 'organization_members', ids, accepted_at='now()')
    rows = api_for(db_url).run(
        "INSERT INTO workflows (name, nodes, edges, organization_id, created_by) "
        "VALUES ('via PostgREST', '[]', '[]', %s, %s) RETURNING id", (ids['org'], ids['user']),
        user=ids['user'])
    assert CUID.match(rows[0][0]), rows


def test_database_ids_have_the_cuid_format(txn):
    ids = [row[0] for row in txn.execute_sql(
        'SELECT public.hub_new_id() FROM generate_series(1, 5000)').fetchall()]
    assert all(CUID.match(i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert set(''.join(i[1:] for i in ids)) == set('0123456789abcdefghijklmnopqrstuvwxyz')


def check_users_sign_in(url):
    """Every user of `url` is a confirmed Auth user (same id and e-mail) with the dev password
    and an e-mail identity, and nobody else is; returns the users' (id, email)."""
    users = query(url, 'SELECT id, email FROM users ORDER BY id')
    accounts = query(url, """
        SELECT u.id::text, u.email, u.email_confirmed_at IS NOT NULL, u.aud, u.role,
               u.encrypted_password = extensions.crypt(%s, u.encrypted_password),
               u.encrypted_password LIKE '$2a$10$%%',
               (SELECT count(*) FROM auth.identities i
                WHERE i.user_id = u.id AND i.provider = 'email' AND i.provider_id = u.id::text
                  AND i.identity_data ->> 'email' = u.email)
        FROM auth.users u ORDER BY u.id::text""", (auth.DEV_PASSWORD,))
    assert users and [(i, e) for i, e, *_ in accounts] == users
    assert all(rest == [True, 'authenticated', 'authenticated', True, True, 1]
               for _, _, *rest in accounts)
    return users


def test_seeded_users_are_supabase_auth_users(seeded):
    users = check_users_sign_in(seeded)
    assert query(seeded, 'SELECT count(*) FROM organization_members')[0][0] >= len(users)


AUTH_ROWS = "SELECT md5(string_agg(t::text, ',' ORDER BY t.id)) FROM %s t"
AUTH_TABLES = ('auth.users', 'auth.identities', 'public.users')


def test_scenario_users_are_supabase_auth_users(supabase_databases, supabase_db_url, secret):
    from hub import scenarios

    url = supabase_db_url
    doc = scenarios.read('content-pipeline')
    result = hub(url, 'seed', '--scenario', 'content-pipeline', '-q')
    assert result.returncode == 0, result.stderr
    # uuids derived from the snapshot's ids, through every reference to them.
    expected = sorted((auth.scenario_user_id(u['id']), u['email']) for u in doc['tables']['users'])
    assert check_users_sign_in(url) == expected
    ids = {i for i, _ in expected}
    for table, column in (('organization_members', 'user_id'), ('workflows', 'created_by'),
                          ('ai_agents', 'created_by'), ('agent_teams', 'created_by')):
        values = {v for (v,) in query(url, 'SELECT %s FROM %s' % (column, table)) if v}
        assert values and values <= ids, table
    before = [query(url, AUTH_ROWS % table) for table in AUTH_TABLES]
    again = hub(url, 'seed', '--scenario', 'content-pipeline')
    assert again.returncode == 0 and 'already loaded' in again.stderr, again.stderr
    assert [query(url, AUTH_ROWS % table) for table in AUTH_TABLES] == before
    # Another database gets the same rows: deterministic.
    other = supabase_databases.url(supabase_databases.create(template='supabase_template',
                                                             prefix='hub_supa'))
    assert hub(other, 'seed', '--scenario', 'content-pipeline', '-q').returncode == 0
    assert [query(other, AUTH_ROWS % table) for table in AUTH_TABLES] == before
    result = hub(url, 'seed', '--reset', '--yes', '--orgs', '1', '--scale', 'tiny',
                 '--as-of', AS_OF, '-q')
    assert result.returncode == 0, result.stderr
    assert not ids & {i for (i,) in query(url, 'SELECT id::text FROM auth.users')}
    check_users_sign_in(url)


def test_seeded_auth_users_are_deterministic_and_reset_removes_them(supabase_databases, seeded):
    other = supabase_databases.url(supabase_databases.create(template='supabase_template',
                                                             prefix='hub_supa'))
    result = hub(other, 'seed', '--orgs', '2', '--scale', 'tiny', '--as-of', AS_OF, '-q')
    assert result.returncode == 0, result.stderr
    for table in AUTH_TABLES:
        assert query(other, AUTH_ROWS % table) == query(seeded, AUTH_ROWS % table), table
    # A user that signed up through GoTrue is not the seeder's to remove.
    execute(seeded, "INSERT INTO auth.users (id, aud, role, email) VALUES "
                    "('00000000-0000-4000-8000-000000000001', 'authenticated', 'authenticated', "
                    "'real@example.com')")
    result = hub(seeded, 'seed', '--reset', '--yes', '--seed', '7', '--orgs', '1',
                 '--scale', 'tiny', '--as-of', AS_OF, '-q', '--allow-existing-users')
    assert result.returncode == 0, result.stderr
    users = {row[0] for row in query(seeded, 'SELECT id FROM users')}
    accounts = {row[0] for row in query(seeded, 'SELECT id::text FROM auth.users')}
    assert accounts == users | {'00000000-0000-4000-8000-000000000001'}


def test_plain_postgresql_seeds_cuid_users_and_no_auth_rows(database, secret):
    from hub import scenarios, seed

    seed.seed_database(database, orgs=1, scale='tiny', as_of=AS_OF)
    assert all(CUID.match(i) for (i,) in database.execute_sql('SELECT id FROM users'))
    assert not auth.available(database)
    # A scenario's users keep the snapshot's ids.
    seed.seed_database(database, scenario='support-escalation')
    doc = scenarios.read('support-escalation')
    assert {u['id'] for u in doc['tables']['users']} <= {
        i for (i,) in database.execute_sql('SELECT id FROM users')}


def test_supabase_linter_finds_no_warning_or_error(seeded):
    """Supabase's own linter (splinter's lints/*.sql, as `supabase db advisors` runs them) on
    our objects. Needs a checkout of github.com/supabase/splinter in $HUB_SPLINTER_DIR."""
    import os
    from tools.supabase_lint import lint
    from tools.throwaway import with_user

    folder = os.environ.get('HUB_SPLINTER_DIR')
    if not folder:
        pytest.skip('set HUB_SPLINTER_DIR to a checkout of github.com/supabase/splinter')
    admin = with_user(seeded, 'supabase_admin')  # the linter reads every catalog: as the superuser
    findings, ran, skipped = lint(folder, admin)
    assert len(ran) >= 20 and not skipped, skipped
    assert [f for f in findings if f[1] in ('WARN', 'ERROR')] == []
