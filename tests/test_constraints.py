"""What PostgreSQL itself enforces: defaults, CHECKs, enums, the updated_at trigger, field types."""
import datetime
import decimal

import pytest
from psycopg2 import errors

from hub.errors import pg_error
from hub import catalog, models
from tests.rows import DEFAULTS, REQUIRED, fetch, minimal


@pytest.fixture
def tenant(txn):
    """One organization with a user, a workflow, an agent and a team, all inserted raw."""
    ids = {}
    ids['org'] = minimal(txn, 'organizations', ids)
    ids['user'] = minimal(txn, 'users', ids)
    ids['workflow'] = minimal(txn, 'workflows', ids)
    ids['agent'] = minimal(txn, 'ai_agents', ids)
    ids['team'] = minimal(txn, 'agent_teams', ids)
    return ids


def test_the_models_require_what_the_database_requires(txn):
    """tests.rows.REQUIRED comes from the models (NOT NULL, no default): the database must
    require exactly those columns, or a minimal row would fail or skip one."""
    assert set(REQUIRED) == {m._meta.table_name for m in models.MODELS}
    for table, columns in REQUIRED.items():
        database = {name for name, _, not_null, default in catalog.live_columns(txn, table)
                    if not_null and default is None}
        assert set(columns) == database, table


@pytest.mark.parametrize('table', sorted(REQUIRED))
def test_required_columns_only_get_database_defaults(txn, tenant, table):
    ids = dict(tenant)
    overrides = {}
    if table == 'organizations':
        overrides = {'slug': "'other'"}
    if table == 'users':
        overrides = {'email': "'grace@example.com'"}
    row = fetch(txn, table, minimal(txn, table, ids, **overrides))
    for column, expected in DEFAULTS.get(table, {}).items():
        assert row[column] == expected, column
    for column in ('created_at', 'updated_at', 'started_at', 'joined_at'):
        if column in row:
            assert isinstance(row[column], datetime.datetime) and row[column].tzinfo is not None


@pytest.mark.parametrize('table, overrides', [
    ('workflow_executions', {'cost': '-1'}),
    ('agent_executions', {'cost': '-0.01'}),
    ('workflow_executions', {'tokens_used': '-5'}),
    ('workflow_executions', {'duration': '-1'}),
    ('workflows', {'execution_count': '-1'}),
    ('workflows', {'name': "'   '"}),
    ('ai_agents', {'name': "''"}),
    ('integrations', {'name': "' '"}),
    ('workflow_templates', {'name': "''"}),
    ('organizations', {'name': "'  '", 'slug': "'blank'"}),
    ('organizations', {'name': "'X'", 'slug': "'Not A Slug'"}),
    ('users', {'email': "'not-an-email'"}),
    ('workflow_executions', {'started_at': "'2026-01-02'", 'completed_at': "'2026-01-01'"}),
    ('agent_executions', {'started_at': "'2026-01-02'", 'completed_at': "'2026-01-01'"}),
    ('team_executions', {'started_at': "'2026-01-02'", 'completed_at': "'2026-01-01'"}),
    ('workflows', {'nodes': "'{\"id\": 1}'"}),
    ('workflows', {'edges': "'\"a\"'"}),
    ('workflow_templates', {'nodes': "'{}'"}),
    ('ai_agents', {'success_rate': '1.5'}),
    ('ai_agents', {'avg_response_time': '-3'}),
    ('agent_teams', {'success_rate': '-0.1'}),
    ('workflow_templates', {'rating': '5.5'}),
    ('workflow_templates', {'estimated_time': '-10'}),
    ('team_members', {'priority': '-1'}),
])
def test_check_constraints_reject_bad_values(txn, tenant, table, overrides):
    with pytest.raises(Exception) as caught, txn.atomic():
        minimal(txn, table, tenant, **overrides)
    assert isinstance(pg_error(caught.value), errors.CheckViolation), caught.value


@pytest.mark.parametrize('table, column, value', [
    ('ai_agents', 'status', 'SLEEPING'),
    ('agent_teams', 'structure', 'ANARCHY'),
    ('organization_members', 'role', 'GUEST'),
    ('workflow_templates', 'category', 'GAMES'),
])
def test_enums_reject_unknown_labels(txn, tenant, table, column, value):
    with pytest.raises(Exception) as caught, txn.atomic():
        minimal(txn, table, tenant, **{column: "'%s'" % value})
    assert isinstance(pg_error(caught.value), errors.InvalidTextRepresentation)


def test_enum_types_have_exactly_the_spec_labels(txn):
    rows = txn.execute_sql("""
        SELECT t.typname, array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
        FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY t.typname""").fetchall()
    live = dict(rows)
    for name, enum_class in models.ENUMS.items():
        assert live[name] == [m.value for m in enum_class]
    assert len(models.ENUMS) == 8


def test_updated_at_is_kept_by_the_database(txn, tenant):
    txn.execute_sql("UPDATE workflows SET updated_at = '2020-01-01' WHERE id = %s",
                         (tenant['workflow'],))
    before = fetch(txn, 'workflows', tenant['workflow'])['updated_at']
    assert before.year == 2020  # an explicit value is kept (imports, backfills)
    # A bulk UPDATE that does not mention updated_at bumps it.
    txn.execute_sql("UPDATE workflows SET name = 'renamed'")
    after = fetch(txn, 'workflows', tenant['workflow'])
    assert after['updated_at'] > before and after['name'] == 'renamed'


def test_unique_slug_email_and_membership(txn, tenant):
    for table, overrides in (('organizations', {}), ('users', {}),
                             ('organization_members', {})):
        if table == 'organization_members':
            minimal(txn, table, tenant)
        with pytest.raises(Exception) as caught, txn.atomic():
            minimal(txn, table, tenant, **overrides)
        assert isinstance(pg_error(caught.value), errors.UniqueViolation)


def test_models_round_trip_every_field_type(txn, tenant):
    org = models.Organization.get_by_id(tenant['org'])
    user = models.User.get_by_id(tenant['user'])
    workflow = models.Workflow.get_by_id(tenant['workflow'])
    execution = models.WorkflowExecution.create(
        organization=org, workflow=workflow, status=models.ExecutionStatus.COMPLETED,
        started_at=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
        completed_at=datetime.datetime(2026, 1, 1, 0, 0, 2, tzinfo=datetime.timezone.utc),
        duration=2000, input={'lead': 'x'}, logs=[{'node': 'a', 'ok': True}, {'node': 'b'}],
        tokens_used=1200, cost=decimal.Decimal('12.34'))
    agent = models.AIAgent.create(name='Scout', personality={'tone': 'warm'}, memory={},
                                  model_config={'provider': 'openai', 'model': 'gpt-4o'},
                                  capabilities=['web_search', 'email'], success_rate=0.5,
                                  organization=org, creator=user)
    got = models.WorkflowExecution.get_by_id(execution.id)
    assert got.logs == [{'node': 'a', 'ok': True}, {'node': 'b'}]
    assert got.status is models.ExecutionStatus.COMPLETED
    assert got.cost == decimal.Decimal('12.34') and got.input == {'lead': 'x'}
    assert got.workflow.id == workflow.id and got.organization_id == org.id
    got_agent = models.AIAgent.get_by_id(agent.id)
    assert got_agent.capabilities == ['web_search', 'email']
    assert got_agent.status is models.AgentStatus.IDLE and got_agent.success_rate == 0.5
    assert got_agent.creator.email == user.email
    # a decimal with more places is rounded by numeric(12, 2)
    models.WorkflowExecution.update(cost=decimal.Decimal('0.129')).where(
        models.WorkflowExecution.id == execution.id).execute()
    assert models.WorkflowExecution.get_by_id(execution.id).cost == decimal.Decimal('0.13')
