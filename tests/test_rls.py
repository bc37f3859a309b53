"""hub.rls: install/uninstall/status, the identity helpers, the catalog, drift and plans."""
import pytest
from peewee import ProgrammingError

from hub import lifecycle, rls, schema
from hub.models import Workflow
from tests.rows import make_tenant, minimal


def rows(database, sql, params=()):
    return database.execute_sql(sql, params).fetchall()


def policies(database):
    return {(t, p, c) for t, p, c in rows(database, """
        SELECT tablename::text, policyname::text, cmd FROM pg_policies
        WHERE schemaname = 'public'""")}


@pytest.fixture
def secured(database):
    rls.install(database)
    return database


def tenant(database, slug):
    """An organization with a row in every table; returns (org, owner, workflow) ids."""
    ids = make_tenant(database, slug)
    return ids['org'], ids['user'], ids['workflow']


def test_install_creates_every_piece_once(database):
    actions = rls.install(database)
    assert any(a.startswith('created policy hub_select on workflows') for a in actions)
    assert policies(database) == rls.expected_policies() | rls.guard_policies()
    # 48 tenant policies (12 tables x 4 commands) and the helpers' owner's read of memberships;
    # the definer roles of migrations 0007 and 0008 have five, installed or not.
    assert len(rls.expected_policies()) == 49 and len(rls.guard_policies()) == 5
    assert rls.install(database) == []  # idempotent: nothing to do the second time
    assert rls.installed(database)
    for role, bypass in rows(database, """SELECT rolname, rolbypassrls FROM pg_roles
                                          WHERE rolname IN ('anon', 'authenticated', 'service_role')"""):
        assert bypass == (role == 'service_role')
    assert {r[0] for r in rows(database, """
        SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'auth'""")} >= {'uid', 'jwt'}


def test_helpers_are_security_definer_with_a_pinned_search_path(secured):
    found = {name: (definer, config) for name, definer, config in rows(secured, """
        SELECT p.proname, p.prosecdef, p.proconfig FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'hub_private'""")}
    assert set(found) == set(rls.HELPERS) | {f.split('.')[1] for f in rls.kept_functions()}
    for name in rls.kept_functions():  # they read as the caller: SECURITY INVOKER
        assert found[name.split('.')[1]] == (False, ['search_path=pg_catalog, pg_temp'])
    for name in ('org_ids', 'admin_org_ids', 'owner_org_ids', 'co_member_ids'):
        assert found[name] == (True, ['search_path=pg_catalog, pg_temp', 'enable_seqscan=off'])
    # PUBLIC may neither create objects in the helpers' schema nor call them.
    assert rows(secured, "SELECT has_schema_privilege('public', 'hub_private', 'CREATE')") == [(False,)]
    assert rows(secured, "SELECT has_function_privilege('anon', 'hub_private.org_ids()', "
                         "'EXECUTE')") == [(False,)]


def test_install_needs_the_tables(empty_database):
    with pytest.raises(rls.RlsError, match='hub db migrate'):
        rls.install(empty_database)
    assert rows(empty_database, "SELECT count(*) FROM pg_namespace WHERE nspname = 'hub_private'") \
        == [(0,)]


def test_install_repairs_a_changed_policy(secured):
    secured.execute_sql('DROP POLICY hub_update ON integrations')
    secured.execute_sql('CREATE POLICY hub_update ON integrations FOR UPDATE TO authenticated '
                        'USING (true)')
    report = rls.status(secured)
    entry = next(t for t in report['tables'] if t['table'] == 'integrations')
    assert not report['complete'] and any('hub_update differs' in m for m in entry['missing'])
    assert rls.install(secured) == ['replaced policy hub_update on integrations (UPDATE)']
    assert rls.status(secured)['complete']


def test_uninstall_removes_what_install_made_and_is_a_no_op_otherwise(database):
    assert rls.uninstall(database) == []
    rls.install(database)
    actions = rls.uninstall(database)
    assert 'dropped schema hub_private' in actions and 'dropped schema auth' in actions
    assert policies(database) == rls.guard_policies()  # the migration's, not install's
    assert not rls.installed(database)
    # Deny-all, as a migration leaves a database where install never ran: RLS stays on.
    assert rows(database, """SELECT count(*) FROM pg_class c JOIN pg_namespace n
                             ON n.oid = c.relnamespace WHERE n.nspname = 'public'
                             AND c.relkind = 'r' AND NOT c.relrowsecurity""") == [(0,)]
    # The migration history stays locked: uninstalling must not reopen it.
    assert rows(database, "SELECT has_table_privilege('anon', 'public.hub_migrations', "
                          "'SELECT')") == [(False,)]
    # No API role keeps a grant on a table whose policies are gone.
    assert rows(database, "SELECT has_table_privilege(r, 'public.workflows', 'SELECT') "
                          "FROM unnest(ARRAY['anon', 'authenticated', 'service_role']) r"
                ) == [(False,)] * 3
    # Roles are cluster-wide: other databases may use them.
    assert rows(database, "SELECT count(*) FROM pg_roles WHERE rolname IN "
                          "('anon', 'authenticated', 'service_role')") == [(3,)]
    assert rls.uninstall(database) == []


def test_an_existing_auth_schema_is_used_and_left_alone(database):
    # As on Supabase: auth.uid() and auth.jwt() exist and are not ours.
    database.execute_sql('CREATE SCHEMA auth')
    for name, (returns, body) in rls.AUTH_FUNCTIONS.items():
        database.execute_sql('CREATE FUNCTION auth.%s() RETURNS %s LANGUAGE sql STABLE '
                             'AS $$%s$$' % (name, returns, body))
    actions = rls.install(database)
    assert not [a for a in actions if 'auth.' in a or 'schema auth' in a]
    rls.uninstall(database)
    assert rows(database, """SELECT count(*) FROM pg_proc p JOIN pg_namespace n
                             ON n.oid = p.pronamespace WHERE n.nspname = 'auth'""") == [(2,)]


def test_reset_uninstalls_first(secured):
    lifecycle.reset(secured)
    assert policies(secured) == rls.guard_policies()
    assert rls.install(secured)  # and it installs again on the fresh tables


def test_schema_check_compares_the_policies(secured):
    assert schema.check(secured) == []
    secured.execute_sql('DROP POLICY hub_delete ON team_members')
    secured.execute_sql('CREATE POLICY sneaky ON integrations FOR SELECT USING (true)')
    assert schema.check(secured) == [
        'team_members: policy hub_delete (DELETE) is missing from the database',
        'integrations: policy sneaky (SELECT) is in the database but not in hub.rls']


def test_status_names_each_missing_piece(secured):
    assert rls.status(secured)['complete']
    secured.execute_sql('DROP POLICY hub_insert ON workflows')
    secured.execute_sql('ALTER TABLE agent_teams DISABLE ROW LEVEL SECURITY')
    secured.execute_sql('ALTER FUNCTION hub_private.org_ids() SECURITY INVOKER')
    secured.execute_sql('CREATE TABLE public.audit_log (id text PRIMARY KEY)')
    report = rls.status(secured)
    by_table = {t['table']: t for t in report['tables']}
    assert not report['complete']
    assert by_table['workflows']['missing'] == ['policy hub_insert (INSERT) is missing']
    assert by_table['workflows']['policies']['INSERT'] == []
    assert by_table['agent_teams']['missing'] == ['row-level security is disabled']
    assert by_table['audit_log']['missing'] == ['no policies are defined for this table in hub.rls',
                                                'row-level security is disabled']
    assert 'helper hub_private.org_ids() should be SECURITY DEFINER' in report['missing']
    # Each table that `hub rls install` would cover is named once, with the fix.
    assert 'table workflows: 1 of its 4 policies is missing (INSERT) (run `hub rls install`)' \
        in report['missing']
    assert 'table agent_teams: row-level security is disabled (run `hub rls install`)' \
        in report['missing']
    assert [m for m in report['missing'] if m.startswith('table audit_log')] == [
        'table audit_log has no model in hub.models, so no policies, and row-level security is '
        'disabled: declare its model (a tenant or child table gets its policies from it) and '
        'run `hub rls install`, or drop it']
    assert by_table['integrations'] == {
        'table': 'integrations', 'rls_enabled': True, 'rls_forced': False,
        'policies': {c: ['hub_%s' % c.lower()] for c in rls.COMMANDS}, 'missing': [],
        'extra': []}


def test_every_catalog_table_is_covered(secured):
    """A table added later without policies fails here (the list comes from the catalog)."""
    live = policies(secured)
    for table in schema.live_tables(secured):
        assert rows(secured, "SELECT relrowsecurity FROM pg_class WHERE oid = %s::regclass",
                    ('public.%s' % table,)) == [(True,)], table
        assert {c for t, _, c in live if t == table} == set(rls.COMMANDS), table


def test_policy_columns_are_indexed(secured):
    """Every column a policy compares with the helpers leads an index of its table."""
    for table in rls.policy_tables():
        column = 'id' if table in ('organizations', 'users') else 'organization_id'
        leading = {r[0] for r in rows(secured, """
            SELECT a.attname FROM pg_index x
            JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[0]
            WHERE x.indrelid = %s::regclass""", ('public.%s' % table,))}
        assert column in leading, table


def test_membership_is_an_initplan_not_a_per_row_subplan(secured):
    org, user, _ = tenant(secured, 'plans')
    with rls.as_user(secured, user):
        for table in rls.policy_tables():
            plan = '\n'.join(r[0] for r in rows(secured, 'EXPLAIN SELECT * FROM %s' % table))
            assert 'InitPlan' in plan and 'SubPlan' not in plan, (table, plan)
        # A test database is tiny; forbid the sequential scan to see that the index serves.
        secured.execute_sql('SET LOCAL enable_seqscan = off')
        plan = '\n'.join(r[0] for r in rows(secured, """
            EXPLAIN SELECT status, count(*) FROM workflow_executions GROUP BY status"""))
        assert 'workflow_executions_organization_id_status' in plan, plan


def test_as_user_sees_their_organizations_and_restores_the_session(secured):
    _, ada, ada_workflow = tenant(secured, 'ada')
    _, bob, _ = tenant(secured, 'bob')
    assert Workflow.select().count() == 2  # the owner bypasses RLS
    with rls.as_user(secured, ada):
        assert [w.id for w in Workflow.select()] == [ada_workflow]
        assert rows(secured, 'SELECT current_user, hub_private.uid()') == [('authenticated', ada)]
        with rls.as_user(secured, bob):
            assert rows(secured, 'SELECT hub_private.uid()') == [(bob,)]
        assert rows(secured, 'SELECT hub_private.uid()') == [(ada,)]
    assert rows(secured, "SELECT current_setting('role'), "
                         "current_setting('request.jwt.claims', true)") == [('none', '')]
    with pytest.raises(ProgrammingError, match='permission denied'):
        with rls.as_anon(secured):  # no grants at all, not even zero rows
            Workflow.select().count()
    with rls.as_service(secured):
        assert Workflow.select().count() == 2


def test_a_failed_statement_inside_as_user_leaves_the_transaction_usable(secured):
    _, ada, _ = tenant(secured, 'ada')
    with secured.atomic():
        with pytest.raises(Exception, match='row-level security'):
            with rls.as_user(secured, ada):
                # (organization_id is not the tenant's to update at all: a WITH CHECK refusal
                # needs an INSERT into an organization one is not in.)
                secured.execute_sql(
                    "INSERT INTO integrations (id, organization_id, created_by, name, provider, "
                    "credentials, config) VALUES ('x', 'elsewhere', %s, 'n', 'p', '{}', '{}')",
                    (ada,))
        assert rows(secured, "SELECT current_setting('role')") == [('none',)]
        assert Workflow.select().count() == 1


def test_the_organization_claim_narrows_and_cannot_widen(secured):
    org_a, ada, wf_a = tenant(secured, 'ada')
    org_b, bob, wf_b = tenant(secured, 'bob')
    minimal(secured, 'organization_members', {'org': org_b, 'user': ada}, role="'MEMBER'",
            accepted_at='now()')
    with rls.as_user(secured, ada):
        assert {w.id for w in Workflow.select()} == {wf_a, wf_b}
    with rls.as_user(secured, ada, organization_id=org_b):
        assert {w.id for w in Workflow.select()} == {wf_b}
    with rls.as_user(secured, bob, organization_id=org_a):
        assert Workflow.select().count() == 0


def test_acting_as_a_missing_role_says_how_to_fix_it(database):
    with pytest.raises(rls.RlsError, match='cannot act as role hub_missing_role .*hub rls install'):
        with rls.as_role(database, 'hub_missing_role'):
            pass


def test_the_api_login_role_is_neither_owner_nor_superuser(secured, db_url, api_for):
    """The attack tests' caller: PostgREST's shape, subject to every policy and grant."""
    api = api_for(db_url)
    org, user, workflow = tenant(secured, 'acme')
    assert api.run('SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = session_user',
                   role='authenticated') == [(False, False)]
    assert api.run('SELECT id FROM workflows', user=user) == [(workflow,)]
    assert api.run('SELECT id FROM workflows', user='nobody') == []
    assert api.error('SELECT id FROM workflows', role='anon') == '42501'
