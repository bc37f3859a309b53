"""Attacks on the row-level security install, each performed as the tenant next door.

Every attack runs through `api_for` (a LOGIN role that is neither owner nor superuser and does
SET LOCAL ROLE + request.jwt.claims per transaction, as PostgREST does) against a database that
carries Supabase's default privileges (ALL on every new table in public to anon, authenticated
and service_role), migrated and then secured with `hub rls install`. Each test asserts that the
attack fails; each one succeeded before the fix it guards (see docs/rls.md).
"""
import contextlib
import json
import uuid

import pytest
from click.testing import CliRunner

from hub import connection
from hub import migrate, rls, rls_matrix
from hub.cli.main import cli
from hub.ids import new_id, stable_id
from tools.throwaway import with_user

#: What Supabase does to every project's public schema before any migration runs.
SUPABASE_GRANTS = """
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;
"""


@pytest.fixture(scope='module')
def supabase_template(databases, api_login):
    """A database given Supabase's default privileges while empty, then migrated."""
    name = databases.create(prefix='hub_supa')
    database = connection.open_database(databases.url(name))
    try:
        database.execute_sql(SUPABASE_GRANTS)
        migrate.migrate(database)
    finally:
        database.close()
    return name


class Secured:
    """A fresh copy of the Supabase-shaped database, secured, with two tenants' rows."""

    def __init__(self, url, database, fixture):
        self.url, self.db, self.f = url, database, fixture

    def count(self, sql, params=()):
        return self.db.execute_sql(sql, params).fetchone()[0]


@pytest.fixture
def secured(databases, supabase_template):
    name = databases.create(template=supabase_template)
    url = databases.url(name)
    database = connection.bind(connection.open_database(url))
    rls.install(database)
    fixture = rls_matrix.build_fixture(database)  # committed: A and B with a row in every table
    yield Secured(url, database, fixture)
    database.close()
    databases.drop(name)


def claims(user):
    return json.dumps({'sub': user, 'role': 'authenticated'})


# -- 1. a temporary domain named like a type runs code as the helpers' owner ---------------------

HIJACK = """
CREATE FUNCTION pg_temp.evil(value pg_catalog.text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.set_config('attack.ran_as', current_user || ' saw '
        || (SELECT count(*) FROM public.integrations) || ' integrations', false);
    RETURN true;
END $$;
CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (pg_temp.evil(VALUE));
CREATE DOMAIN pg_temp.jsonb AS pg_catalog.jsonb CHECK (pg_temp.evil(VALUE::pg_catalog.text));
"""


def test_a_temp_domain_cannot_run_code_as_the_helpers_owner(secured, api_for):
    api = api_for(secured.url)
    with contextlib.closing(api.connect()) as conn:
        with conn, conn.cursor() as cur:
            cur.execute('SET LOCAL ROLE authenticated')
            cur.execute("SELECT set_config('request.jwt.claims', %s, true)",
                        (claims(secured.f['a_member']),))
            cur.execute(HIJACK)
            # Every policy calls the helpers: any tenant query triggers the hijack.
            cur.execute('SELECT count(*) FROM public.integrations')
            seen = cur.fetchone()[0]
            cur.execute("SELECT current_setting('attack.ran_as', true)")
            ran_as = cur.fetchone()[0]
    assert (ran_as or None) is None, 'tenant code ran inside a helper as: %s' % ran_as
    assert seen == 1


def test_helpers_are_pinned_and_owned_by_a_nologin_role(secured):
    rows = secured.db.execute_sql("""
        SELECT p.proname, p.proconfig, r.rolname, r.rolsuper, r.rolcanlogin
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        JOIN pg_roles r ON r.oid = p.proowner WHERE n.nspname = %s""", (rls.HELPER_SCHEMA,))
    found = {name: rest for name, *rest in rows}
    # The kept functions read as the caller (SECURITY INVOKER): nobody's power to borrow.
    invokers = {name.split('.')[1] for name in rls.kept_functions()}
    assert set(found) == set(rls.HELPERS) | invokers
    for name, (config, owner, superuser, login) in found.items():
        if name in invokers:
            continue
        assert 'search_path=pg_catalog, pg_temp' in config, name
        assert (owner, superuser, login) == (rls.DEFINER_ROLE, False, False), name


def test_status_flags_a_helper_that_was_tampered_with(secured):
    assert rls.status(secured.db)['complete']
    db = secured.db
    with db.atomic() as txn:
        db.execute_sql("ALTER FUNCTION hub_private.org_ids() SET search_path = ''")
        db.execute_sql('ALTER FUNCTION hub_private.admin_org_ids() OWNER TO CURRENT_USER')
        report = rls.status(db)
        txn.rollback()
    assert not report['complete']
    text = '\n'.join(report['missing'])
    assert 'hub_private.org_ids() does not SET search_path=pg_catalog, pg_temp' in text
    assert 'hub_private.admin_org_ids() is owned by' in text
    assert rls.status(db)['complete']


# -- 2. Supabase's default privileges: TRUNCATE, REFERENCES, TRIGGER, the history table ---------

@pytest.mark.parametrize('role', ['anon', 'authenticated'])
@pytest.mark.parametrize('table', ['team_executions', 'integrations'])
def test_api_roles_cannot_truncate(secured, api_for, role, table):
    before = secured.count('SELECT count(*) FROM public.%s' % table)
    assert before == 2
    user = secured.f['loner'] if role == 'authenticated' else None
    assert api_for(secured.url).error('TRUNCATE public.%s' % table, role=role, user=user) \
        == '42501'
    assert secured.count('SELECT count(*) FROM public.%s' % table) == before


@pytest.fixture
def attacker_schema(secured):
    """A schema where authenticated may create objects (some databases have one: PostgreSQL
    14's public, an extension's). Dropped with the test's database."""
    secured.db.execute_sql('CREATE SCHEMA attacker; '
                           'GRANT USAGE, CREATE ON SCHEMA attacker TO authenticated')
    return 'attacker'


def test_references_cannot_probe_for_user_ids(secured, api_for, attacker_schema):
    # A foreign key is checked past RLS: inserting an id would say whether that user exists.
    api = api_for(secured.url)
    assert api.error('CREATE TABLE attacker.probe (u text REFERENCES public.users (id))',
                     user=secured.f['loner']) == '42501'


def test_trigger_cannot_plant_code_that_runs_as_the_owner(secured, api_for, attacker_schema):
    api = api_for(secured.url)
    api.run("""CREATE FUNCTION attacker.spy() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN RAISE NOTICE 'ran as %', current_user; RETURN NEW; END $$""",
            user=secured.f['loner'])
    assert api.error('CREATE TRIGGER spy BEFORE INSERT ON public.workflows FOR EACH ROW '
                     'EXECUTE FUNCTION attacker.spy()', user=secured.f['loner']) == '42501'
    assert secured.count("SELECT count(*) FROM pg_trigger WHERE tgname = 'spy'") == 0


@pytest.mark.parametrize('role', ['anon', 'authenticated', 'service_role'])
@pytest.mark.parametrize('sql', ['SELECT count(*) FROM public.hub_migrations',
                                 "UPDATE public.hub_migrations SET name = 'x'",
                                 'DELETE FROM public.hub_migrations'])
def test_the_migration_history_is_unreachable(secured, api_for, role, sql):
    before = secured.db.execute_sql('SELECT name FROM public.hub_migrations ORDER BY id').fetchall()
    assert api_for(secured.url).error(sql, role=role) == '42501'
    assert secured.db.execute_sql('SELECT name FROM public.hub_migrations ORDER BY id') \
        .fetchall() == before


def test_the_history_table_has_rls_and_the_trigger_function_a_pinned_search_path(secured):
    assert secured.count("SELECT relrowsecurity FROM pg_class "
                         "WHERE oid = 'public.hub_migrations'::regclass") is True
    assert secured.db.execute_sql("SELECT proconfig FROM pg_proc WHERE oid = "
                                  "'public.hub_touch_updated_at()'::regprocedure").fetchone()[0] \
        == ['search_path=pg_catalog, pg_temp']


def test_status_reports_extra_privileges_and_tables_without_rls(secured):
    db = secured.db
    assert rls.status(db)['complete']
    with db.atomic() as txn:
        db.execute_sql('GRANT TRUNCATE ON public.integrations TO anon')
        db.execute_sql('GRANT UPDATE (created_by) ON public.workflows TO authenticated')
        db.execute_sql('CREATE TABLE public.notes (id text PRIMARY KEY)')
        report = rls.status(db)
        txn.rollback()
    assert not report['complete']
    by_table = {t['table']: t['missing'] for t in report['tables']}
    assert 'anon holds TRUNCATE' in '; '.join(by_table['integrations'])
    assert 'authenticated holds UPDATE (created_by)' in '; '.join(by_table['workflows'])
    assert 'row-level security is disabled' in '; '.join(by_table['notes'])


def test_install_leaves_exactly_the_privileges_the_policies_need(secured):
    """Even a column-level grant made by hand before install is taken away."""
    db = secured.db
    db.execute_sql('GRANT UPDATE (organization_id), REFERENCES (id) ON public.ai_agents '
                   'TO authenticated; GRANT SELECT ON public.integrations TO PUBLIC')
    assert not rls.status(db)['complete']
    actions = rls.install(db)
    assert any('ai_agents' in a for a in actions) and any('integrations' in a for a in actions)
    assert rls.status(db)['complete']
    assert rls.install(db) == []


# -- 3. identity and ownership columns are immutable for tenants --------------------------------

def _identity_attacks():
    """(table, fixture row, acting user, column, new value) for every identity column."""
    cases = []
    for table in rls_matrix.derived_tables() + ('workflow_templates',):
        key = rls_matrix.row(table)[0]
        cases += [(table, key, 'multi', 'organization_id', 'B'),
                  (table, key, 'a_member', 'id', None)]
        if table in rls_matrix.created_by_tables():
            cases += [(table, key, 'a_member', 'created_by', 'b_owner'),
                      (table, key, 'a_member', 'created_at', '2000-01-01')]
    cases += [('organizations', 'A', 'a_owner', 'id', None),
              ('organizations', 'A', 'a_owner', 'created_at', '2000-01-01'),
              ('users', 'a_member', 'a_member', 'id', None),
              ('users', 'a_member', 'a_member', 'created_at', '2000-01-01'),
              ('organization_members', 'm_a_member', 'a_owner', 'user_id', 'b_member'),
              ('organization_members', 'm_a_member', 'a_owner', 'id', None)]
    return cases


@pytest.mark.parametrize('table,key,actor,column,value', _identity_attacks(),
                         ids=lambda v: v if isinstance(v, str) else None)
def test_identity_columns_cannot_be_rewritten(secured, api_for, table, key, actor, column, value):
    f = secured.f
    value = new_id() if value is None else f[value] if value in f.ids else value
    before = secured.db.execute_sql('SELECT %s FROM public.%s WHERE id = %%s' % (column, table),
                                    (f[key],)).fetchone()
    assert before is not None
    error = api_for(secured.url).error('UPDATE public.%s SET %s = %%s WHERE id = %%s'
                                       % (table, column), (value, f[key]), user=f[actor])
    assert error == '42501'
    assert secured.db.execute_sql('SELECT %s FROM public.%s WHERE id = %%s' % (column, table),
                                  (f[key],)).fetchone() == before


def test_tenants_still_update_their_own_content(secured, api_for):
    f = secured.f
    api = api_for(secured.url)
    assert api.run("UPDATE public.workflows SET name = 'Renamed', is_active = false "
                   'WHERE id = %s', (f[rls_matrix.row_key('workflows')],), user=f['a_member']) == 1
    assert api.run("UPDATE public.workflow_templates SET description = 'new', is_public = true "
                   'WHERE id = %s', (f['tpl_a_private'],), user=f['a_member']) == 1


# -- 4. marketplace curation ---------------------------------------------------------------------

@pytest.mark.parametrize('column,value', [('is_featured', True), ('rating', 5),
                                          ('usage_count', 1000000)])
def test_tenants_cannot_forge_curation(secured, api_for, column, value):
    f = secured.f
    api = api_for(secured.url)
    row = rls_matrix.new_row(f, 'workflow_templates', 'A', 'a_member', is_public=True,
                             **{column: value})
    columns = list(row)
    assert api.error('INSERT INTO public.workflow_templates (%s) VALUES (%s)' % (
        ', '.join(columns), ', '.join(['%s'] * len(columns))), [row[c] for c in columns],
        user=f['a_member']) == '42501'
    assert api.error('UPDATE public.workflow_templates SET %s = %%s WHERE id = %%s' % column,
                     (value, f['tpl_a_public']), user=f['a_member']) == '42501'
    assert secured.count('SELECT count(*) FROM public.workflow_templates WHERE is_featured '
                         'OR rating IS NOT NULL OR usage_count > 0') == 0
    # A plain template (the defaults apply) is still the tenant's to publish.
    plain = rls_matrix.new_row(f, 'workflow_templates', 'A', 'a_member', is_public=True)
    assert api.run('INSERT INTO public.workflow_templates (%s) VALUES (%s)' % (
        ', '.join(plain), ', '.join(['%s'] * len(plain))), list(plain.values()),
        user=f['a_member']) == 1


def test_templates_load_never_adopts_a_tenants_row(secured, api_for):
    from hub import marketplace

    f = secured.f
    stem = sorted(p.name for p in marketplace.fixtures_dir().iterdir()
                  if p.name.endswith('.json'))[0][:-len('.json')]
    squatted = stable_id('template', stem)
    row = rls_matrix.new_row(f, 'workflow_templates', 'A', 'a_member', id=squatted,
                             is_public=True, name='Squatter')
    api_for(secured.url).run('INSERT INTO public.workflow_templates (%s) VALUES (%s)' % (
        ', '.join(row), ', '.join(['%s'] * len(row))), list(row.values()), user=f['a_member'])
    count = 'SELECT count(*) FROM public.workflow_templates'
    before = secured.count(count)
    result = CliRunner().invoke(cli, ['--database-url', secured.url, 'templates', 'load'])
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and squatted in lines[0] and f['A'] in lines[0], result.stderr
    assert 'Traceback' not in result.output
    assert secured.count(count) == before
    assert secured.db.execute_sql('SELECT organization_id, name FROM public.workflow_templates '
                                  'WHERE id = %s', (squatted,)).fetchone() == (f['A'], 'Squatter')


# -- 5. a stale session-level claim never overrides the transaction's claims ---------------------

def test_a_stale_legacy_claim_does_not_override_the_json_claims(secured, api_for):
    f = secured.f
    with contextlib.closing(api_for(secured.url).connect()) as conn:
        with conn.cursor() as cur:
            # Left behind by an earlier request on a pooled connection (session level).
            cur.execute("SELECT set_config('request.jwt.claim.sub', %s, false)", (f['b_owner'],))
        conn.commit()
        with conn, conn.cursor() as cur:
            cur.execute('SET LOCAL ROLE authenticated')
            cur.execute("SELECT set_config('request.jwt.claims', %s, true)",
                        (claims(f['a_member']),))
            cur.execute('SELECT organization_id FROM public.integrations')
            seen = {r[0] for r in cur.fetchall()}
        with conn, conn.cursor() as cur:  # claims without a sub: nobody, not the stale user
            cur.execute('SET LOCAL ROLE authenticated')
            cur.execute("SELECT set_config('request.jwt.claims', %s, true)",
                        (json.dumps({'role': 'authenticated'}),))
            cur.execute('SELECT count(*) FROM public.integrations')
            nobody = cur.fetchone()[0]
    assert seen == {f['A']}
    assert nobody == 0


# -- 6. verify sees every class ------------------------------------------------------------------

def test_verify_on_a_supabase_shaped_database_reports_nothing(secured):
    report = rls_matrix.verify(secured.db)
    assert [c.label for c in report['failures']] == []
    assert report['leaks'] == [] and report['extra_privileges'] == []
    kinds = {c.kind for c in report['cases']}
    assert {'privilege', 'audit'} <= kinds


@pytest.mark.parametrize('statement,label', [
    ('GRANT TRUNCATE ON public.team_executions TO anon', 'privileges of anon on team_executions'),
    ('GRANT REFERENCES ON public.users TO authenticated',
     'privileges of authenticated on users'),
    ('GRANT SELECT ON public.hub_migrations TO anon', 'privileges of anon on hub_migrations'),
    ('GRANT UPDATE (created_by) ON public.workflows TO authenticated',
     'update workflows.created_by'),
    ('GRANT UPDATE (is_featured) ON public.workflow_templates TO authenticated',
     'update workflow_templates.is_featured'),
    ('ALTER TABLE public.hub_migrations DISABLE ROW LEVEL SECURITY',
     'row-level security on hub_migrations'),
    ("ALTER FUNCTION hub_private.co_member_ids() SET search_path = ''",
     'helper hub_private.co_member_ids()'),
])
def test_verify_sees_each_class(secured, statement, label):
    db = secured.db
    with db.atomic() as txn:
        db.execute_sql(statement)
        report = rls_matrix.verify(db)
        txn.rollback()
    assert label in {c.label for c in report['failures']}, [c.label for c in report['failures']]


def test_verify_catches_a_hijackable_helper(secured):
    """The temp-domain attempt itself, in a fresh session, against a helper written the old way
    (empty search_path, unqualified types, owned by the superuser)."""
    db = secured.db
    db.execute_sql("""
        CREATE OR REPLACE FUNCTION hub_private.org_ids() RETURNS text[] LANGUAGE plpgsql STABLE
        SECURITY DEFINER SET search_path = '' AS $$
        DECLARE caller text := current_setting('request.jwt.claims', true);
        BEGIN RETURN ARRAY[caller]; END $$;
        ALTER FUNCTION hub_private.org_ids() OWNER TO CURRENT_USER""")
    try:
        report = rls_matrix.verify(db)
    finally:
        rls.install(db)
    hijack = {c.label: c.leak for c in report['cases'] if c.label.startswith('temp domain')}
    assert hijack['temp domain hijack of hub_private.org_ids()'] is True, hijack
    assert hijack['temp domain hijack of hub_private.owner_org_ids()'] is False, hijack
    assert rls.status(db)['complete']


# -- a non-superuser installer (Supabase's postgres: CREATEROLE, owns the database) ---------------

@pytest.fixture
def createrole_owner(databases, server_url):
    """(url, role): a fresh database owned by a LOGIN CREATEROLE role that is not a superuser
    and holds hub_rls_definer (and the migrations' roles, where they exist) only WITH ADMIN
    OPTION (as their creator would on PostgreSQL 16+)."""
    role = 'hub_test_installer_%s' % uuid.uuid4().hex[:8]
    name = databases.create()
    admin = connection.open_database(server_url)
    try:
        admin.execute_sql('CREATE ROLE %s LOGIN CREATEROLE' % role)
        rls._install_roles(admin)  # the cluster-wide roles, hub_rls_definer among them
        # Before 16, CREATEROLE alone may grant any non-superuser role; from 16 on, only with
        # ADMIN on it (which its creator gets), and then install must add SET and INHERIT.
        # The same for the roles the migrations create (0007, 0008), where an earlier database
        # of this cluster already made them: this owner did not create them.
        if int(admin.execute_sql('SHOW server_version_num').fetchone()[0]) >= 160000:
            for granted in (rls.DEFINER_ROLE, 'hub_owner_guard', 'hub_org_creator'):
                if admin.execute_sql('SELECT 1 FROM pg_roles WHERE rolname = %s',
                                     (granted,)).fetchone():
                    admin.execute_sql('GRANT %s TO %s WITH ADMIN TRUE, INHERIT FALSE, SET FALSE'
                                      % (granted, role))
        admin.execute_sql('ALTER DATABASE %s OWNER TO %s' % (name, role))
    finally:
        admin.close()
    owner_db = connection.open_database(databases.url(name))
    owner_db.execute_sql('ALTER SCHEMA public OWNER TO %s' % role)
    owner_db.close()
    yield with_user(databases.url(name), role), role
    databases.drop(name)
    admin = connection.open_database(server_url)
    try:
        admin.execute_sql('DROP ROLE %s' % role)
    finally:
        admin.close()


def test_a_createrole_owner_installs_and_hands_the_helpers_over(createrole_owner):
    url, role = createrole_owner
    database = connection.open_database(url)
    try:
        migrate.migrate(database)
        rls.install(database)
        assert rls.status(database)['complete']
        assert set(rls._helper_owners(database).values()) == {rls.DEFINER_ROLE}
        assert rls.install(database) == []
        # The CREATE it needed for the transfer is taken back.
        assert database.execute_sql("SELECT has_schema_privilege(%s, 'hub_private', 'CREATE')",
                                    (rls.DEFINER_ROLE,)).fetchone()[0] is False
    finally:
        database.close()
