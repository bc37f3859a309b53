"""Tenant-safe references and the spec's ON DELETE actions, checked as the table owner (no RLS)."""
import pytest
from psycopg2 import errors

from hub.errors import pg_error
from hub import models
from tests.rows import fetch, make_tenant, minimal

# users belong to no organization: deleting one leaves its members' accounts.
TABLES = [m._meta.table_name for m in models.MODELS if m is not models.User]


@pytest.fixture
def tenants(txn):
    return make_tenant(txn, 'acme'), make_tenant(txn, 'globex')


def assert_fk_violation(txn, table, ids, **overrides):
    with pytest.raises(Exception) as caught, txn.atomic():
        minimal(txn, table, ids, **overrides)
    assert isinstance(pg_error(caught.value), errors.ForeignKeyViolation), caught.value


def test_team_member_cannot_use_another_organizations_agent(txn, tenants):
    acme, globex = tenants
    other_team = minimal(txn, 'agent_teams', acme)
    assert_fk_violation(txn, 'team_members', acme, team_id="'%s'" % other_team,
                        agent_id="'%s'" % globex['agent'])


def test_agent_execution_cannot_point_at_another_organizations_workflow_execution(txn, tenants):
    acme, globex = tenants
    assert_fk_violation(txn, 'agent_executions', acme,
                        workflow_execution_id="'%s'" % globex['execution'])


def test_workflow_execution_cannot_run_another_organizations_workflow(txn, tenants):
    acme, globex = tenants
    assert_fk_violation(txn, 'workflow_executions', acme,
                        workflow_id="'%s'" % globex['workflow'])


def test_team_execution_cannot_use_another_organizations_team(txn, tenants):
    acme, globex = tenants
    assert_fk_violation(txn, 'team_executions', acme, team_id="'%s'" % globex['team'])


def test_deleting_a_workflow_execution_keeps_its_agent_executions(txn, tenants):
    acme, _ = tenants
    txn.execute_sql('DELETE FROM workflow_executions WHERE id = %s', (acme['execution'],))
    row = fetch(txn, 'agent_executions', acme['agent_execution'])
    assert row['workflow_execution_id'] is None
    assert row['organization_id'] == acme['org']


def counts(txn, org_id):
    result = {}
    for table in TABLES:
        column = 'id' if table == 'organizations' else 'organization_id'
        result[table] = txn.execute_sql(
            'SELECT count(*) FROM %s WHERE %s = %%s' % (table, column), (org_id,)).fetchone()[0]
    return result


def test_deleting_an_organization_removes_every_row_of_it(txn, tenants):
    acme, globex = tenants
    before = counts(txn, globex['org'])
    assert all(counts(txn, acme['org'])[t] > 0 for t in TABLES if t != 'users')
    txn.execute_sql('DELETE FROM organizations WHERE id = %s', (acme['org'],))
    assert set(counts(txn, acme['org']).values()) == {0}
    assert counts(txn, globex['org']) == before  # the neighbour is untouched


def test_deleting_a_template_nulls_workflows_template_id(txn, tenants):
    acme, _ = tenants
    txn.execute_sql('UPDATE workflows SET template_id = %s WHERE id = %s',
                         (acme['template'], acme['workflow']))
    txn.execute_sql('DELETE FROM workflow_templates WHERE id = %s', (acme['template'],))
    row = fetch(txn, 'workflows', acme['workflow'])
    assert row['template_id'] is None and row['organization_id'] == acme['org']


def test_deleting_a_user_nulls_their_templates_but_removes_their_workflows(txn, tenants):
    acme, _ = tenants
    txn.execute_sql('UPDATE workflow_templates SET created_by = %s WHERE id = %s',
                         (acme['user'], acme['template']))
    # The user is acme's only OWNER, and an organization keeps one: another first.
    heir = minimal(txn, 'users', {}, email="'heir@acme.example'")
    minimal(txn, 'organization_members', {'org': acme['org'], 'user': heir}, accepted_at='now()')
    txn.execute_sql('DELETE FROM users WHERE id = %s', (acme['user'],))
    assert fetch(txn, 'workflow_templates', acme['template'])['created_by'] is None
    assert txn.execute_sql('SELECT count(*) FROM workflows WHERE id = %s',
                                (acme['workflow'],)).fetchone()[0] == 0


def test_deleting_a_team_cascades_to_members_and_executions(txn, tenants):
    acme, _ = tenants
    txn.execute_sql('DELETE FROM agent_teams WHERE id = %s', (acme['team'],))
    for table in ('team_members', 'team_executions'):
        assert txn.execute_sql('SELECT count(*) FROM %s WHERE team_id = %%s' % table,
                                    (acme['team'],)).fetchone()[0] == 0
