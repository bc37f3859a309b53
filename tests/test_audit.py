"""The catalog audit (hub.audit) catches what hub did not create.

On the server under test and on the Supabase-shaped cluster ($HUB_SUPABASE_URL; skipped without
it unless HUB_REQUIRE_SUPABASE=1): after migrate and `hub rls install` the audit is clean; then,
behind hub's back, as the owner with Supabase's default privileges in place (the cluster has
them; on the server under test the test sets the same ones), a table, a column on a hub table,
a SECURITY DEFINER function, a trigger function and a view that runs as its owner are created.
Each is first shown to be an exposure (the attack works as PostgREST's login role), then
`hub rls status` and `hub rls verify` must name each one and exit 1; dropped, all is clean again.
"""
import contextlib
import time

import psycopg2
import pytest

from hub import audit, connection, rls
from hub.ids import new_id
from tests.commands import hub
from tests.conftest import Api
from tests.rows import make_tenant, minimal

#: Supabase's default privileges (tools/supabase_shape.sql) for objects the owner creates.
SUPABASE_DEFAULTS = """
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
"""

#: What the platform adds by hand, and the qualified name each must be reported under.
BEHIND_HUBS_BACK = {
    'public.platform_notes': 'CREATE TABLE public.platform_notes (id bigserial PRIMARY KEY, '
                             'organization_id text, body text)',
    'public.users.stripe_customer_id': 'ALTER TABLE public.users ADD COLUMN stripe_customer_id text',
    'public.platform_integration_count()': (
        'CREATE FUNCTION public.platform_integration_count() RETURNS bigint LANGUAGE sql STABLE '
        'SECURITY DEFINER SET search_path = pg_catalog AS '
        "'SELECT count(*) FROM public.integrations'"),
    'public.platform_touch()': (
        'CREATE FUNCTION public.platform_touch() RETURNS trigger LANGUAGE plpgsql '
        "SET search_path = pg_catalog AS 'BEGIN RETURN NEW; END'"),
    'public.platform_workflows': ('CREATE VIEW public.platform_workflows AS '
                                  'SELECT id, organization_id, name FROM public.workflows'),
}
DROP = """
DROP VIEW public.platform_workflows;
DROP FUNCTION public.platform_touch();
DROP FUNCTION public.platform_integration_count();
ALTER TABLE public.users DROP COLUMN stripe_customer_id;
DROP TABLE public.platform_notes;
"""


def execute(url, sql, params=None):
    with contextlib.closing(psycopg2.connect(url)) as conn:
        with conn, conn.cursor() as cur:
            cur.execute(sql, params)


def current_database(url):
    with contextlib.closing(psycopg2.connect(url)) as conn, conn.cursor() as cur:
        cur.execute('SELECT current_database()')
        return cur.fetchone()[0]


def violations(url):
    database = connection.open_database(url)
    try:
        return [str(v) for v in audit.violations(database, rls)]
    finally:
        database.close()


@pytest.fixture(params=['server', 'supabase'])
def target(request):
    """(url of a migrated and secured database, an Api as PostgREST's login role) on the server
    under test or on the Supabase-shaped cluster, with Supabase's default privileges."""
    if request.param == 'server':
        url = request.getfixturevalue('db_url')
        api = request.getfixturevalue('api_for')(url)
        execute(url, SUPABASE_DEFAULTS)
    else:
        url = request.getfixturevalue('supabase_db_url')
        api = Api(url, 'authenticator')
        assert hub(url, 'db', 'migrate').returncode == 0
    result = hub(url, 'rls', 'install')
    assert result.returncode == 0, result.stderr
    return url, api


def tenants(url):
    """Organizations A and B with a row in every table (tests/rows.py), and a second, accepted
    member of A. Returns {name: id}."""
    database = connection.open_database(url)
    try:
        with database.atomic():
            a, b = make_tenant(database, 'a'), make_tenant(database, 'b')
            member = minimal(database, 'users', a, email="'member@a.example'")
            minimal(database, 'organization_members', dict(a, user=member), role="'MEMBER'",
                    accepted_at='now()')
    finally:
        database.close()
    return {'org_a': a['org'], 'owner_a': a['user'], 'org_b': b['org'], 'owner_b': b['user'],
            'member_a': member}


def test_a_secured_database_is_clean(target):
    url, _ = target
    assert violations(url) == []
    for command in (('rls', 'status'), ('rls', 'verify'), ('db', 'check')):
        result = hub(url, *command)
        assert result.returncode == 0, (command, result.stdout[-3000:], result.stderr)


def test_what_is_created_behind_hubs_back_is_named_then_clean_once_dropped(target):
    url, api = target
    ids = tenants(url)
    for sql in BEHIND_HUBS_BACK.values():
        execute(url, sql)
    execute(url, 'UPDATE users SET stripe_customer_id = %s WHERE id = %s',
            ('cus_secret', ids['owner_a']))

    # Each is an exposure, as PostgREST's login role: these attacks work.
    assert api.run("INSERT INTO platform_notes (organization_id, body) VALUES (%s, 'planted')",
                   (ids['org_b'],), role='anon') == 1
    assert api.run('SELECT stripe_customer_id FROM users WHERE id = %s', (ids['owner_a'],),
                   user=ids['member_a']) == [('cus_secret',)]          # a co-member reads it
    assert api.run('SELECT public.platform_integration_count()', role='anon') == [(2,)]
    assert api.run('SELECT count(*) FROM platform_workflows', role='anon') == [(2,)]  # A's and B's
    assert api.error('CREATE TEMP TABLE mine (x int); CREATE TRIGGER t BEFORE INSERT ON mine '
                     'FOR EACH ROW EXECUTE FUNCTION public.platform_touch()', role='anon') is None

    found = violations(url)
    for name in BEHIND_HUBS_BACK:
        assert [v for v in found if v.startswith(name + ':')], (name, found)
    status = hub(url, 'rls', 'status')
    verify = hub(url, 'rls', 'verify')
    check = hub(url, 'db', 'check')
    for result in (status, verify, check):
        assert result.returncode == 1, (result.args, result.stdout[-3000:], result.stderr)
        for name in BEHIND_HUBS_BACK:
            assert name + ':' in result.stdout, (result.args, name, result.stdout[-3000:])
    migrate = hub(url, 'db', 'migrate')  # nothing to apply, and a warning for each
    assert migrate.returncode == 0, migrate.stderr
    for name in BEHIND_HUBS_BACK:
        assert 'warning: %s:' % name in migrate.stderr, (name, migrate.stderr)

    # install repairs what it can decide alone and names exactly what remains: the column, the
    # view and the function's owner need a person; EXECUTE on the functions is revoked.
    install = hub(url, 'rls', 'install')
    assert install.returncode == 0, install.stderr
    remains = {line[len('remains: '):].split(': ', 1)[0] for line in install.stderr.splitlines()
               if line.startswith('remains: ')}
    assert remains == {v.split(': ', 1)[0] for v in violations(url)}, install.stderr
    assert {'public.users.stripe_customer_id', 'public.platform_workflows',
            'public.platform_integration_count()'} <= remains, install.stderr
    assert 'public.platform_touch()' not in remains, install.stderr
    if 'public.platform_notes' not in remains:  # closed instead: RLS on, nothing granted
        denied = api.error('SELECT count(*) FROM platform_notes', role='anon') == '42501'
        assert denied or api.run('SELECT count(*) FROM platform_notes', role='anon') == [(0,)]
    assert api.error('SELECT public.platform_integration_count()', role='anon') == '42501'
    assert api.error('CREATE TEMP TABLE mine (x int); CREATE TRIGGER t BEFORE INSERT ON mine '
                     'FOR EACH ROW EXECUTE FUNCTION public.platform_touch()', role='anon') \
        == '42501'

    execute(url, DROP)
    assert violations(url) == []
    for command in (('rls', 'status'), ('rls', 'verify')):
        result = hub(url, *command)
        assert result.returncode == 0, (command, result.stdout[-3000:], result.stderr)


def test_install_leaves_trigger_functions_unexecutable_and_triggers_still_fire(target):
    url, api = target
    ids = tenants(url)
    for role in ('anon', 'authenticated'):
        assert api.error("CREATE TEMP TABLE m (role text); CREATE TRIGGER t AFTER UPDATE ON m "
                         "FOR EACH ROW EXECUTE FUNCTION public.hub_touch_updated_at()",
                         role=role) == '42501'
    # The trigger itself still runs for a tenant (it needs no EXECUTE to fire).
    before = api.run('SELECT updated_at FROM workflows WHERE organization_id = %s',
                     (ids['org_a'],), user=ids['owner_a'])
    assert api.run("UPDATE workflows SET name = 'renamed' WHERE organization_id = %s",
                   (ids['org_a'],), user=ids['owner_a']) == 1
    assert api.run('SELECT updated_at FROM workflows WHERE organization_id = %s',
                   (ids['org_a'],), user=ids['owner_a']) != before


# -- each rule on its own, on the server under test ----------------------------------------------

@pytest.fixture
def secured(db_url):
    assert hub(db_url, 'rls', 'install').returncode == 0
    return db_url


def named(url, name):
    return [v for v in violations(url) if v.startswith(name + ':')]


def test_exposed_and_reachable_schemas(secured):
    database = current_database(secured)
    execute(secured, """
        CREATE SCHEMA api; CREATE TABLE api.orders (id int);
        CREATE SCHEMA other; GRANT USAGE ON SCHEMA other TO anon; CREATE TABLE other.quiet (id int);
        CREATE SCHEMA hidden; CREATE TABLE hidden.t (id int); GRANT SELECT ON hidden.t TO anon;
        CREATE SCHEMA storage; GRANT USAGE ON SCHEMA storage TO anon;
        CREATE TABLE storage.objects (id int); GRANT ALL ON storage.objects TO anon""")
    # In a reachable schema a table counts once an API role holds a privilege on it.
    assert named(secured, 'other.quiet') == []
    execute(secured, 'GRANT SELECT ON other.quiet TO anon')
    assert 'anon holds SELECT' in named(secured, 'other.quiet')[0]
    # A schema no API role can enter is out of reach: its grants do nothing.
    assert named(secured, 'hidden.t') == []
    # The platform vendor's schemas are Supabase's to answer for (splinter leaves them out too).
    assert named(secured, 'storage.objects') == []
    # A schema PostgREST serves counts like public, whatever its grants.
    assert named(secured, 'api.orders') == []
    execute(secured, "ALTER DATABASE %s SET pgrst.db_schemas = 'public, api'" % database)
    assert audit.RLS_OFF in named(secured, 'api.orders')[0]


def test_schema_sequence_and_materialized_view(secured):
    execute(secured, """
        GRANT CREATE ON SCHEMA public TO authenticated;
        GRANT USAGE ON SCHEMA hub_private TO anon;
        CREATE SEQUENCE public.counter; GRANT USAGE ON SEQUENCE public.counter TO anon;
        CREATE MATERIALIZED VIEW public.flows AS SELECT id, name FROM public.workflows;
        GRANT SELECT ON public.flows TO authenticated;
        CREATE VIEW public.safe WITH (security_invoker = on) AS SELECT id FROM public.workflows;
        GRANT SELECT ON public.safe TO authenticated""")
    assert named(secured, 'schema public')
    assert named(secured, 'schema hub_private')
    assert named(secured, 'public.counter')
    assert named(secured, 'public.flows')
    assert named(secured, 'public.safe') == []  # runs as the caller: the policies apply
    # install repairs the schemas and the sequence; the materialized view needs a decision.
    assert hub(secured, 'rls', 'install').returncode == 0
    assert [v.split(':')[0] for v in violations(secured)] == ['public.flows']


def test_a_definer_function_needs_an_entry_in_rpcs(secured, monkeypatch):
    execute(secured, """
        CREATE ROLE hub_audit_rpc_owner_%s NOLOGIN;
        CREATE FUNCTION public.ping(n integer, label text) RETURNS integer LANGUAGE sql
        SECURITY DEFINER SET search_path = pg_catalog AS 'SELECT n';
        ALTER FUNCTION public.ping(integer, text) OWNER TO hub_audit_rpc_owner_%s;
        GRANT EXECUTE ON FUNCTION public.ping(integer, text) TO authenticated"""
            % ((current_database(secured),) * 2))
    try:
        [line] = named(secured, 'public.ping(integer, text)')
        assert 'executable by anon, authenticated, service_role, PUBLIC' in line
        monkeypatch.setattr(rls, 'RPCS', {'public.ping(integer, text)': (('authenticated',),
                                                                          'a test RPC')})
        # Documented for authenticated: PUBLIC (every role, anon included) still may not.
        [line] = named(secured, 'public.ping(integer, text)')
        assert 'executable by anon, service_role, PUBLIC' in line
        execute(secured, 'REVOKE EXECUTE ON FUNCTION public.ping(integer, text) FROM PUBLIC')
        assert named(secured, 'public.ping(integer, text)') == []
    finally:
        execute(secured, 'DROP FUNCTION public.ping(integer, text); DROP ROLE '
                         'hub_audit_rpc_owner_%s' % current_database(secured))


def test_a_definer_function_owned_by_a_powerful_role_is_named_anywhere(secured):
    # Not reachable by any API role, and still named: whoever gets code into it runs as owner.
    execute(secured, """
        CREATE SCHEMA internal;
        CREATE FUNCTION internal.job() RETURNS void LANGUAGE sql SECURITY DEFINER
        SET search_path = pg_catalog AS 'SELECT'""")
    [line] = named(secured, 'internal.job()')
    assert 'SUPERUSER' in line and 'OWNER TO' in line


def test_the_audit_takes_milliseconds(seeded_url):
    database = connection.open_database(seeded_url)
    try:
        rls.violations(database)  # plans and catalog caches warm
        started = time.perf_counter()
        for _ in range(5):
            assert rls.violations(database) is not None
        elapsed = (time.perf_counter() - started) / 5
    finally:
        database.close()
    assert elapsed < 0.5, elapsed  # generous for a shared CI machine; ~20 ms measured


@pytest.fixture
def seeded_url(db_url, secret):
    result = hub(db_url, 'seed', '--orgs', '2', '--scale', 'tiny', '--as-of', '2025-01-31', '-q')
    assert result.returncode == 0, result.stderr
    return db_url
