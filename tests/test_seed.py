"""Every consistency rule of issue 4, checked on databases seeded with several seeds.

One database per seed (small scale, 3 organizations) is seeded once for the module; each test
checks one rule on all of them.
"""
import datetime
import json

import pytest

from hub import connection
from hub import graph
from hub.crypto import Credentials
from hub.seed import catalog, seed_database

AS_OF = datetime.datetime(2025, 1, 31, tzinfo=datetime.timezone.utc)
SEEDS = [1, 2, 3]


@pytest.fixture(scope='module')
def secret(server_url, tmp_path_factory):
    """A Fernet key in HUB_SECRET_KEY and a HUB_HOME of our own for the module."""
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv('HUB_SECRET_KEY', key)
        patch.setenv('HUB_HOME', str(tmp_path_factory.mktemp('hub_home')))
        yield key


@pytest.fixture(scope='module', params=SEEDS, ids=lambda s: 'seed%d' % s)
def seeded(request, databases, migrated_template, secret):
    name = databases.create(template=migrated_template)
    database = connection.open_database(databases.url(name))
    result = seed_database(database, orgs=3, scale='small', seed=request.param,
                           as_of=AS_OF.date())
    assert result.added == 3
    yield database
    database.close()
    databases.drop(name)


def rows(database, sql, params=()):
    return database.execute_sql(sql, params).fetchall()


def one(database, sql, params=()):
    return database.execute_sql(sql, params).fetchone()[0]


# -- organizations and users -------------------------------------------------------------------

def test_each_organization_has_one_owner_and_other_members(seeded):
    counts = rows(seeded, """
        SELECT o.id, count(*) FILTER (WHERE m.role = 'OWNER'),
               count(*) FILTER (WHERE m.role <> 'OWNER')
        FROM organizations o LEFT JOIN organization_members m ON m.organization_id = o.id
        GROUP BY o.id""")
    assert len(counts) == 3
    assert all(owners == 1 and others >= 1 for _, owners, others in counts), counts
    roles = {r for r, in rows(seeded, 'SELECT DISTINCT role FROM organization_members')}
    assert roles == {'OWNER', 'ADMIN', 'MEMBER'}


def test_users_have_unique_emails_and_belong_to_an_organization(seeded):
    total, distinct = rows(seeded, 'SELECT count(*), count(DISTINCT lower(email)) FROM users')[0]
    assert total == distinct > 3
    assert one(seeded, 'SELECT count(*) FROM users u WHERE NOT EXISTS '
                       '(SELECT 1 FROM organization_members m WHERE m.user_id = u.id)') == 0


# -- agents and teams ----------------------------------------------------------------------------

def test_agents_have_personality_real_models_and_known_tools(seeded):
    agents = rows(seeded, 'SELECT personality, model_config, capabilities FROM ai_agents')
    assert agents
    for personality, config, capabilities in agents:
        assert personality['traits'] and all(isinstance(t, str) for t in personality['traits'])
        assert personality['tone'] and personality['style']
        model = catalog.MODELS[config['model']]
        assert config['provider'] == model.provider
        assert 0 <= config['temperature'] <= 1 and config['maxTokens'] > 0
        assert capabilities and set(capabilities) <= set(catalog.TOOLS)


def test_agent_status_is_mostly_idle_and_busy_means_running(seeded):
    statuses = dict(rows(seeded, 'SELECT status, count(*) FROM ai_agents GROUP BY status'))
    assert statuses['IDLE'] > sum(statuses.values()) / 2, statuses
    mismatched = one(seeded, """
        SELECT count(*) FROM ai_agents a
        WHERE (a.status = 'BUSY') <> EXISTS (SELECT 1 FROM agent_executions e
                                             WHERE e.agent_id = a.id AND e.status = 'RUNNING')""")
    assert mismatched == 0


def test_teams_have_two_to_six_members_and_hierarchies_one_leader(seeded):
    teams = rows(seeded, """
        SELECT t.structure, count(*), count(*) FILTER (WHERE m.role = 'LEADER'),
               t.coordination->>'leaderId',
               max(m.agent_id) FILTER (WHERE m.role = 'LEADER')
        FROM agent_teams t JOIN team_members m ON m.team_id = t.id GROUP BY t.id""")
    assert teams
    for structure, size, leaders, leader_id, leader in teams:
        assert 2 <= size <= 6
        if structure == 'HIERARCHICAL':
            assert leaders == 1 and leader_id == leader


def test_pipeline_teams_have_priorities_zero_to_k_minus_one(seeded):
    pipelines = rows(seeded, """
        SELECT array_agg(m.priority ORDER BY m.priority), t.coordination->'stages',
               array_agg(m.agent_id ORDER BY m.priority)
        FROM agent_teams t JOIN team_members m ON m.team_id = t.id
        WHERE t.structure = 'PIPELINE' GROUP BY t.id""")
    for priorities, stages, agents in pipelines:
        assert priorities == list(range(len(priorities)))
        assert stages == agents


def test_team_executions_follow_their_team(seeded):
    checked = rows(seeded, """
        SELECT e.pattern = t.structure,
               (SELECT array_agg(r->>'agentId' ORDER BY r->>'agentId')
                FROM unnest(e.agent_results) r),
               (SELECT array_agg(m.agent_id ORDER BY m.agent_id)
                FROM team_members m WHERE m.team_id = t.id)
        FROM team_executions e JOIN agent_teams t ON t.id = e.team_id""")
    assert checked
    for same_pattern, results, members in checked:
        assert same_pattern
        assert results == members  # one entry per member, no one else


# -- workflows and templates ---------------------------------------------------------------------

def test_every_workflow_and_template_graph_is_valid(seeded):
    graphs = rows(seeded, 'SELECT id, nodes, edges FROM workflows UNION ALL '
                          'SELECT id, nodes, edges FROM workflow_templates')
    assert len(graphs) > 20
    for graph_id, nodes, edges in graphs:
        assert graph.validate(nodes, edges) == [], graph_id


def test_workflows_from_templates_copy_the_graph(seeded):
    pairs = rows(seeded, """
        SELECT w.nodes = t.nodes AND w.edges = t.edges AND w.variables = t.variables,
               t.organization_id IS NULL OR t.organization_id = w.organization_id
        FROM workflows w JOIN workflow_templates t ON t.id = w.template_id""")
    assert pairs
    assert all(same and tenant_ok for same, tenant_ok in pairs)


def test_every_organization_has_private_templates_with_true_usage_counts(seeded):
    per_org = rows(seeded, """
        SELECT o.id, count(t.id) FROM organizations o
        LEFT JOIN workflow_templates t ON t.organization_id = o.id AND NOT t.is_public
        GROUP BY o.id""")
    assert all(count >= 1 for _, count in per_org)
    wrong = one(seeded, """
        SELECT count(*) FROM workflow_templates t WHERE t.organization_id IS NOT NULL
        AND t.usage_count <> (SELECT count(*) FROM workflows w WHERE w.template_id = t.id)""")
    assert wrong == 0


# -- executions ----------------------------------------------------------------------------------

def test_execution_logs_name_graph_nodes_in_topological_order(seeded):
    runs = rows(seeded, """
        SELECT e.status, e.logs, e.nodes_executed, w.nodes, w.edges
        FROM workflow_executions e JOIN workflows w ON w.id = e.workflow_id""")
    assert len(runs) > 100
    for status, logs, executed, nodes, edges in runs:
        entries = [json.loads(e) if isinstance(e, str) else e for e in logs]
        names = [e['nodeId'] for e in entries]
        types = {n['id']: n['type'] for n in nodes}
        assert executed == len(names) <= len(nodes)
        assert set(names) <= set(types) and len(set(names)) == len(names)
        if names:
            assert types[names[0]] == 'trigger'
        position = {name: i for i, name in enumerate(names)}
        for item in edges:
            if item['source'] in position and item['target'] in position:
                assert position[item['source']] < position[item['target']]
        order = graph.topological_order(nodes, edges)
        assert [n for n in order if n in position] == names
        if status == 'PENDING':
            assert names == []


@pytest.mark.parametrize('table', ['workflow_executions', 'agent_executions',
                                   'team_executions'])
def test_finished_executions_have_completed_at_and_duration(seeded, table):
    wrong = one(seeded, """
        SELECT count(*) FROM %s WHERE CASE
          WHEN status IN ('COMPLETED', 'FAILED', 'CANCELLED') THEN
            completed_at IS NULL OR duration IS DISTINCT FROM
              round(extract(epoch FROM completed_at - started_at) * 1000)::int
          ELSE completed_at IS NOT NULL OR duration IS NOT NULL END""" % table)
    assert wrong == 0
    statuses = {s for s, in rows(seeded, 'SELECT DISTINCT status FROM %s' % table)}
    assert {'COMPLETED', 'FAILED'} <= statuses


def test_failed_workflow_executions_have_an_error_and_only_they(seeded):
    runs = rows(seeded, 'SELECT status, error, logs FROM workflow_executions')
    assert any(status == 'FAILED' for status, _, _ in runs)
    for status, error, logs in runs:
        if status == 'FAILED':
            last = logs[-1] if isinstance(logs[-1], dict) else json.loads(logs[-1])
            assert error and last['level'] == 'error' and last['message'] in error
        else:
            assert error is None


@pytest.mark.parametrize('table', ['workflow_executions', 'agent_executions',
                                   'team_executions'])
def test_pending_and_running_executions_are_recent(seeded, table):
    old = one(seeded, "SELECT count(*) FROM %s WHERE status IN ('PENDING', 'RUNNING') AND NOT "
                      "(started_at >= %%s - interval '1 hour' AND started_at < %%s)" % table,
              (AS_OF, AS_OF))
    assert old == 0


def test_every_timestamp_is_in_the_weeks_before_as_of(seeded):
    columns = rows(seeded, """
        SELECT table_name, column_name FROM information_schema.columns
        WHERE table_schema = 'public' AND data_type = 'timestamp with time zone'
        AND table_name <> 'hub_migrations'""")
    assert len(columns) > 20
    for table, column in columns:
        late = one(seeded, 'SELECT count(*) FROM %s WHERE %s >= %%s' % (table, column), (AS_OF,))
        assert late == 0, (table, column)
    earliest = one(seeded, 'SELECT min(created_at) FROM organizations')
    assert AS_OF - datetime.timedelta(weeks=8) < earliest
    for table in ('users', 'workflows', 'ai_agents', 'agent_teams', 'integrations'):
        assert one(seeded, 'SELECT count(*) FROM %s WHERE updated_at < created_at' % table) == 0


def price_table():
    return ', '.join("('%s', '%s', %d, %d)" % (m.name, m.provider, m.input_cents, m.output_cents)
                     for m in catalog.MODELS.values())


def test_agent_executions_cost_follows_the_price_table_and_the_agents_model(seeded):
    wrong = rows(seeded, """
        WITH price(model, provider, input_cents, output_cents) AS (VALUES %s)
        SELECT e.id, e.tokens_used, e.cost, e.output FROM agent_executions e
        JOIN ai_agents a ON a.id = e.agent_id
        LEFT JOIN price p ON p.model = e.model AND p.provider = e.provider
        WHERE e.model IS DISTINCT FROM a.model_config->>'model'
           OR e.provider IS DISTINCT FROM a.model_config->>'provider'
           OR p.model IS NULL
           OR CASE WHEN e.output ? 'usage' THEN
                e.tokens_used <> (e.output->'usage'->>'inputTokens')::int
                                 + (e.output->'usage'->>'outputTokens')::int
                OR e.cost <> round(((e.output->'usage'->>'inputTokens')::numeric * p.input_cents
                                   + (e.output->'usage'->>'outputTokens')::numeric
                                     * p.output_cents) / 1000000, 2)
              ELSE e.tokens_used <> 0 OR e.cost <> 0 END""" % price_table())
    assert wrong == []
    assert one(seeded, 'SELECT count(*) FROM agent_executions WHERE cost > 0') > 50


def test_workflow_execution_tokens_and_cost_add_up_its_agent_executions(seeded):
    wrong = one(seeded, """
        SELECT count(*) FROM workflow_executions w
        LEFT JOIN LATERAL (SELECT coalesce(sum(tokens_used), 0) AS tokens,
                                  coalesce(sum(cost), 0) AS cost
                           FROM agent_executions a WHERE a.workflow_execution_id = w.id) s ON true
        WHERE w.tokens_used <> s.tokens OR w.cost <> s.cost""")
    assert wrong == 0
    assert one(seeded, 'SELECT count(*) FROM workflow_executions WHERE tokens_used > 0') > 50


# -- counters ------------------------------------------------------------------------------------

def test_workflow_counters_match_their_executions(seeded):
    wrong = one(seeded, """
        SELECT count(*) FROM workflows w LEFT JOIN LATERAL (
            SELECT count(*) AS runs, max(started_at) AS last
            FROM workflow_executions e WHERE e.workflow_id = w.id) s ON true
        WHERE w.execution_count <> s.runs OR w.last_executed IS DISTINCT FROM s.last""")
    assert wrong == 0


def _rate_rows(database, parent, child, key, with_time):
    return rows(database, """
        SELECT p.execution_count, p.success_rate, %s,
               count(c.id), count(c.id) FILTER (WHERE c.status = 'COMPLETED'),
               count(c.id) FILTER (WHERE c.status = 'FAILED'),
               avg(c.duration) FILTER (WHERE c.status = 'COMPLETED')
        FROM %s p LEFT JOIN %s c ON c.%s = p.id GROUP BY p.id"""
                % ('p.avg_response_time' if with_time else 'NULL', parent, child, key))


def _check_rates(counters, with_time):
    assert counters
    for count, rate, avg_ms, runs, completed, failed, avg_actual in counters:
        assert count == runs
        if completed + failed:
            assert rate == pytest.approx(completed / (completed + failed), abs=1e-12)
        else:
            assert rate is None
        if with_time:
            assert (avg_ms is None) == (avg_actual is None)
            if avg_ms is not None:
                assert avg_ms == pytest.approx(float(avg_actual), rel=1e-12)


def test_agent_counters_match_their_executions(seeded):
    _check_rates(_rate_rows(seeded, 'ai_agents', 'agent_executions', 'agent_id', True), True)
    assert one(seeded, 'SELECT count(*) FROM ai_agents a WHERE a.updated_at < '
                       '(SELECT max(started_at) FROM agent_executions e '
                       'WHERE e.agent_id = a.id)') == 0


def test_team_counters_match_their_executions(seeded):
    _check_rates(_rate_rows(seeded, 'agent_teams', 'team_executions', 'team_id', False), False)


# -- integrations --------------------------------------------------------------------------------

def test_integration_credentials_are_encrypted_never_plaintext(seeded, secret):
    box = Credentials(secret.encode())
    found = rows(seeded, 'SELECT i.credentials, i::text FROM integrations i')
    assert found
    for sealed, row_text in found:
        assert set(sealed) == {'alg', 'kid', 'fields', 'ciphertext'} and sealed['kid'] == box.kid
        secrets = box.decrypt(sealed)
        assert sorted(secrets) == sealed['fields']
        for value in secrets.values():
            assert len(value) >= 8 and value not in row_text
    assert one(seeded, "SELECT count(*) FROM integrations WHERE credentials::text ~ "
                       "'xoxb-|whsec_|GOCSPX-|1//0g'") == 0


def test_integration_status_agrees_with_last_tested(seeded):
    wrong = rows(seeded, """
        SELECT id, status, last_tested FROM integrations WHERE CASE status
          WHEN 'DISCONNECTED' THEN last_tested IS NOT NULL
          WHEN 'TESTING' THEN last_tested IS NULL OR last_tested < %s - interval '10 minutes'
          ELSE last_tested IS NULL OR last_tested < created_at END
          OR (status = 'ERROR') <> (config ? 'lastError')""", (AS_OF,))
    assert wrong == []
