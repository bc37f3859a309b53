"""Curated scenarios load whole, keep the seeder's rules, and load once."""
import pytest

from hub import graph, rules, scenarios, snapshot
from hub.errors import ConfigError


@pytest.mark.parametrize('name', scenarios.names())
def test_scenario_loads_and_keeps_the_invariants(database, name):
    org_id, counts = scenarios.load(database, name)
    assert counts['organizations'] == 1 and counts['workflow_executions'] > 0
    assert scenarios.load(database, name) is None  # a second load adds nothing
    sql = database.execute_sql
    for nodes, edges in sql('SELECT nodes, edges FROM workflows WHERE organization_id = %s', (org_id,)):
        assert graph.validate(nodes, edges) == []
    for count, last, runs, latest in sql("""
            SELECT w.execution_count, w.last_executed, count(e.id), max(e.started_at)
            FROM workflows w LEFT JOIN workflow_executions e ON e.workflow_id = w.id
            WHERE w.organization_id = %s GROUP BY w.id""", (org_id,)):
        assert (count, last) == (runs, latest)
    for rate, avg_ms, completed, failed, total_ms in sql("""
            SELECT a.success_rate, a.avg_response_time,
                   count(*) FILTER (WHERE x.status = 'COMPLETED'),
                   count(*) FILTER (WHERE x.status = 'FAILED'),
                   coalesce(sum(x.duration) FILTER (WHERE x.status = 'COMPLETED'), 0)
            FROM ai_agents a LEFT JOIN agent_executions x ON x.agent_id = a.id
            WHERE a.organization_id = %s GROUP BY a.id""", (org_id,)):
        assert rate == rules.success_rate(completed, failed)
        assert avg_ms == rules.mean_duration(total_ms, completed)
    for structure, roles, priorities in sql("""
            SELECT t.structure, array_agg(m.role::text), array_agg(m.priority ORDER BY m.priority)
            FROM agent_teams t JOIN team_members m ON m.team_id = t.id
            WHERE t.organization_id = %s GROUP BY t.id""", (org_id,)):
        if structure == 'HIERARCHICAL':
            assert roles.count('LEADER') == 1
        if structure == 'PIPELINE':
            assert priorities == list(range(len(priorities)))
    assert sql("SELECT count(*) FROM workflow_executions WHERE organization_id = %s "
               "AND status = 'FAILED' AND error IS NULL", (org_id,)).fetchone()[0] == 0


def test_scenario_files_are_their_own_export(database):
    for name in scenarios.names():
        org_id, _ = scenarios.load(database, name)
        exported = snapshot.dumps(snapshot.export_organization(database, org_id))
        assert exported == (scenarios.scenarios_dir() / ('%s.json' % name)).read_text()


def test_unknown_scenario_lists_the_known_ones(txn):
    with pytest.raises(ConfigError, match="unknown scenario 'nope'; choose one of: content-pipeline"):
        scenarios.load(txn, 'nope')


def test_hub_seed_scenario_loads_it_once(db_url, secret):
    from click.testing import CliRunner

    from hub.cli.main import cli

    args = ['--database-url', db_url, 'seed', '--scenario', 'content-pipeline']
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert 'scenario content-pipeline' in first.stdout
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0 and 'already loaded' in again.stderr
    unknown = CliRunner().invoke(cli, ['--database-url', db_url, 'seed', '--scenario', 'nope'])
    assert unknown.exit_code == 2 and "unknown scenario 'nope'" in unknown.stderr


@pytest.mark.parametrize('name', scenarios.names())
def test_renamed_users_are_the_same_organization_under_new_ids(database, databases,
                                                                migrated_template, name):
    """`hub seed --scenario` on Supabase renames the users (uuids): the snapshot's own id
    mapping follows every foreign key, so the rows equal a plain load with the ids replaced."""
    from hub import connection
    from hub.seed.auth import scenario_user_id

    doc = scenarios.read(name)
    renamed = {u['id']: scenario_user_id(u['id']) for u in doc['tables']['users']}
    org_id, _ = scenarios.load_document(database, doc, scenario_user_id)
    got = snapshot.dumps(snapshot.export_organization(database, org_id))
    other_name = databases.create(template=migrated_template)
    try:
        other = connection.open_database(databases.url(other_name))
        try:
            scenarios.load_document(other, doc)
            plain = snapshot.dumps(snapshot.export_organization(other, org_id))
        finally:
            other.close()
    finally:
        databases.drop(other_name)
    assert all(old in plain and old not in got for old in renamed)
    for old, new in renamed.items():
        plain = plain.replace(old, new)
    assert _rows(got) == _rows(plain)  # exports list rows by id: the new ids sort elsewhere


def _rows(text):
    import json

    doc = json.loads(text)
    return {table: sorted(json.dumps(row, sort_keys=True) for row in rows)
            for table, rows in doc['tables'].items()}
