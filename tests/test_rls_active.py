"""`hub rls install --mode active`: one organization per request, named by the JWT claim.

Every request runs through `api_for` (a LOGIN role that is neither owner nor superuser, SET
LOCAL ROLE + request.jwt.claims per transaction, as PostgREST does). The attacks: a tenant
naming another tenant's organization, a removed member or a pending invitee keeping the claim,
no claim at all, and a forged per-claim setting next to the JSON claims. The last test shows
that these tests fail against a policy that trusts the claim without checking membership.
"""
import contextlib
import json

import pytest
from click.testing import CliRunner

from hub import connection
from hub import rls, rls_matrix
from hub.cli.main import cli
from hub.errors import RlsError

DENIED = '42501'
READ = 'SELECT count(*) FROM workflow_executions WHERE id = %s'


class Tenants:
    def __init__(self, url, database, f):
        self.url, self.db, self.f = url, database, f


@pytest.fixture
def active(db_url):
    database = connection.bind(connection.open_database(db_url))
    rls.install(database, mode='active')
    f = rls_matrix.build_fixture(database)  # committed: A and B with a row in every table
    yield Tenants(db_url, database, f)
    database.close()


def claims(f, user, org=None):
    out = {'sub': f[user], 'role': 'authenticated'}
    if org is not None:
        out['organization_id'] = f[org]
    return out


def seen(api, t, user, org, key='workflow_executions_a'):
    return api.run(READ, (t.f[key],), claims=claims(t.f, user, org))[0][0]


def insert_execution(api, t, user, org_claim, into):
    x = into.lower()
    return api.error('INSERT INTO workflow_executions (id, organization_id, workflow_id) '
                     'VALUES (%s, %s, %s)', ('x' + t.f.tag + x, t.f[into], t.f['workflows_' + x]),
                     claims=claims(t.f, user, org_claim))


def test_the_claim_selects_one_of_the_callers_organizations(active, api_for):
    api, t = api_for(active.url), active
    assert seen(api, t, 'multi', 'A', 'workflow_executions_a') == 1
    assert seen(api, t, 'multi', 'A', 'workflow_executions_b') == 0
    assert seen(api, t, 'multi', 'B', 'workflow_executions_b') == 1
    assert seen(api, t, 'multi', 'B', 'workflow_executions_a') == 0
    # Unfiltered, as supabase-js sends it: only the active organization's rows.
    rows = api.run('SELECT DISTINCT organization_id FROM workflow_executions',
                   claims=claims(t.f, 'multi', 'B'))
    assert rows == [(t.f['B'],)]
    assert insert_execution(api, t, 'a_member', 'A', 'A') is None
    assert insert_execution(api, t, 'multi', 'A', 'B') == DENIED  # writes stay in the active one


def test_no_claim_shows_no_tenant_rows_but_lists_the_callers_organizations(active, api_for):
    api, t = api_for(active.url), active
    for table in ('workflows', 'workflow_executions', 'integrations', 'ai_agents'):
        assert api.run('SELECT count(*) FROM %s' % table,
                       claims=claims(t.f, 'multi'))[0][0] == 0, table
    # The organization switcher still works: organizations and one's own memberships.
    assert api.run('SELECT count(*) FROM organizations', claims=claims(t.f, 'multi'))[0][0] == 2
    assert api.run('SELECT count(*) FROM organization_members WHERE user_id = %s',
                   (t.f['multi'],), claims=claims(t.f, 'multi'))[0][0] == 2
    assert insert_execution(api, t, 'a_member', None, 'A') == DENIED


def test_a_claim_naming_another_tenants_organization_shows_nothing(active, api_for):
    api, t = api_for(active.url), active
    assert seen(api, t, 'b_owner', 'A', 'workflow_executions_a') == 0
    assert api.run('SELECT count(*) FROM integrations', claims=claims(t.f, 'b_owner', 'A'))[0][0] == 0
    assert insert_execution(api, t, 'b_owner', 'A', 'A') == DENIED
    # Nor does the foreign claim leave the caller its own organization.
    assert seen(api, t, 'b_owner', 'A', 'workflow_executions_b') == 0
    assert insert_execution(api, t, 'b_owner', 'A', 'B') == DENIED


def test_a_removed_member_keeping_the_claim_sees_nothing(active, api_for):
    api, t = api_for(active.url), active
    assert seen(api, t, 'a_member', 'A') == 1
    t.db.execute_sql('DELETE FROM organization_members WHERE id = %s', (t.f['m_a_member'],))
    assert seen(api, t, 'a_member', 'A') == 0
    assert api.run('UPDATE workflow_executions SET error = %s', ('x',),
                   claims=claims(t.f, 'a_member', 'A')) == 0
    assert insert_execution(api, t, 'a_member', 'A', 'A') == DENIED


def test_a_pending_invitee_with_the_claim_sees_nothing(active, api_for):
    api, t = api_for(active.url), active
    assert seen(api, t, 'invitee', 'A') == 0
    assert insert_execution(api, t, 'invitee', 'A', 'A') == DENIED


def _session_claim(api, setup, sql, params=()):
    """One transaction as `authenticated` after `setup` (settings made on the connection)."""
    with contextlib.closing(api.connect()) as conn:
        with conn, conn.cursor() as cur:
            for statement, args in setup:
                cur.execute(statement, args)
            cur.execute('SET LOCAL ROLE authenticated')
            cur.execute(sql, params)
            return cur.fetchall()[0][0]


def test_a_forged_per_claim_setting_does_not_override_the_json_claims(active, api_for):
    api, t = api_for(active.url), active
    forged = ("SELECT set_config('request.jwt.claim.organization_id', %s, false)", (t.f['A'],))
    # The JSON claims name a member of A without an organization: the legacy setting, left on the
    # connection (or set by whoever holds it), must not supply one.
    json_claims = ("SELECT set_config('request.jwt.claims', %s, true)",
                   (json.dumps(claims(t.f, 'a_member')),))
    assert _session_claim(api, [forged, json_claims], READ, (t.f['workflow_executions_a'],)) == 0
    # Nor make an outsider a member of A.
    outsider = ("SELECT set_config('request.jwt.claims', %s, true)",
                (json.dumps(claims(t.f, 'b_owner')),))
    assert _session_claim(api, [forged, outsider], READ, (t.f['workflow_executions_a'],)) == 0
    # The legacy settings alone (no JSON claims) are still a caller, checked like the JSON one.
    legacy = [("SELECT set_config('request.jwt.claim.sub', %s, true)", (t.f['a_member'],)),
              ("SELECT set_config('request.jwt.claim.organization_id', %s, true)", (t.f['A'],))]
    assert _session_claim(api, legacy, READ, (t.f['workflow_executions_a'],)) == 1
    legacy[0] = ("SELECT set_config('request.jwt.claim.sub', %s, true)", (t.f['b_owner'],))
    assert _session_claim(api, legacy, READ, (t.f['workflow_executions_a'],)) == 0


def test_these_attacks_succeed_against_a_policy_that_trusts_the_claim(active, api_for):
    api, t = api_for(active.url), active
    t.db.execute_sql("""
        DROP POLICY hub_select ON workflow_executions;
        CREATE POLICY hub_select ON workflow_executions FOR SELECT TO authenticated
            USING (organization_id = (SELECT nullif(current_setting('request.jwt.claims', true),
                                                    '')::jsonb ->> 'organization_id'))""")
    assert seen(api, t, 'b_owner', 'A', 'workflow_executions_a') == 1     # the leak the helper prevents
    assert seen(api, t, 'invitee', 'A', 'workflow_executions_a') == 1
    assert rls.install(t.db) == ['replaced policy hub_select on workflow_executions (SELECT)']
    assert seen(api, t, 'b_owner', 'A', 'workflow_executions_a') == 0
    assert seen(api, t, 'invitee', 'A', 'workflow_executions_a') == 0


def test_the_mode_is_kept_reported_and_verified(database):
    assert rls.installed_mode(database) is None
    rls.install(database, mode='active')
    assert rls.installed_mode(database) == 'active'
    assert rls.install(database) == []                       # keeps the installed mode
    report = rls.status(database)
    assert report['complete'] and report['mode'] == 'active'
    verified = rls_matrix.verify(database)
    assert verified['mode'] == 'active' and not verified['failures']
    actions = rls.install(database, mode='members')
    assert 'row-level security mode: members' in actions
    assert len([a for a in actions if a.startswith('replaced policy')]) == 36
    report = rls.status(database)
    assert report['complete'] and report['mode'] == 'members'
    with pytest.raises(RlsError, match="unknown row-level security mode 'everyone'"):
        rls.install(database, mode='everyone')


def test_status_flags_policies_of_the_other_mode(database):
    rls.install(database, mode='active')
    database.execute_sql("COMMENT ON SCHEMA hub_private IS %s",
                         (rls._SCHEMA_COMMENT % 'members',))
    problems = [m for t in rls.status(database)['tables'] for m in t['missing']]
    assert 'policy hub_select differs from hub.rls (run `hub rls install`)' in problems


def test_cli_install_mode_and_status(db_url):
    runner = CliRunner()
    result = runner.invoke(cli, ['--database-url', db_url, 'rls', 'install', '--mode', 'active'])
    assert result.exit_code == 0, result.output
    assert 'row-level security mode: active' in result.output
    result = runner.invoke(cli, ['--database-url', db_url, 'rls', 'status'])
    assert result.exit_code == 0 and 'mode: active' in result.output
    result = runner.invoke(cli, ['--database-url', db_url, 'rls', 'install', '--mode', 'all'])
    assert result.exit_code == 2 and "'all' is not one of 'members', 'active'" in result.output


def test_reset_reinstalls_the_mode(db_url):
    runner = CliRunner()
    assert runner.invoke(cli, ['--database-url', db_url, 'rls', 'install', '--mode',
                               'active']).exit_code == 0
    result = runner.invoke(cli, ['--database-url', db_url, 'db', 'reset', '-y'])
    assert result.exit_code == 0, result.output
    database = connection.open_database(db_url)
    try:
        assert rls.installed_mode(database) == 'active' and rls.status(database)['complete']
    finally:
        database.close()

