"""Organization snapshots: export -> import -> export is identical; --as-new copies beside."""
import json

import pytest

from hub import connection
from hub import graph, marketplace, snapshot
from hub.cli.main import cli
from hub.errors import ConfigError
from hub.ids import stable_id
from tests.rows import make_tenant
from click.testing import CliRunner


@pytest.fixture
def other_database(databases, migrated_template):
    name = databases.create(template=migrated_template)
    database = connection.open_database(databases.url(name))
    yield database
    database.close()
    databases.drop(name)


SHIPPED = stable_id('template', 'lead-qualification')


def valid_graphs(database, org_id):
    """Imports validate workflow graphs as hub.graph does; the minimal rows have none."""
    nodes = [graph.node('t', 'trigger', {'label': 'Start'}, 0, 0),
             graph.node('o', 'end', {'label': 'Done'}, 280, 0)]
    for table in ('workflows', 'workflow_templates'):
        database.execute_sql('UPDATE %s SET nodes = %%s, edges = %%s WHERE organization_id = %%s'
                             % table, (json.dumps(nodes), json.dumps([graph.edge('t', 'o')]),
                                       org_id))


def enrich(database, ids):
    """Values of every awkward type, and a shipped system template the workflow uses."""
    marketplace.load(database)
    valid_graphs(database, ids['org'])
    database.execute_sql(
        "UPDATE workflows SET template_id = %s, tags = '{a,\"b c\"}', variables = '{\"x\": [1, 2.5]}' "
        "WHERE id = %s", (SHIPPED, ids['workflow']))
    database.execute_sql(
        "UPDATE workflow_executions SET status = 'FAILED', cost = 12.3, tokens_used = 812, "
        "logs = ARRAY['{\"node\": \"t\", \"ok\": true}', '{\"node\": \"a\"}']::jsonb[], "
        "completed_at = started_at + interval '1.5 seconds', duration = 1500, error = 'timeout' "
        "WHERE id = %s", (ids['execution'],))
    database.execute_sql("UPDATE ai_agents SET success_rate = 0.1 + 0.2, capabilities = '{web_search}' "
                         "WHERE id = %s", (ids['agent'],))
    return SHIPPED


@pytest.fixture
def acme(database):
    ids = make_tenant(database, 'acme')
    ids['system_template'] = enrich(database, ids)
    globex = make_tenant(database, 'globex')  # a neighbour that must not travel along
    valid_graphs(database, globex['org'])
    return ids


def test_export_import_export_is_identical(database, other_database, acme):
    first = snapshot.dumps(snapshot.export_organization(database, acme['org']))
    org_id, counts = snapshot.import_organization(other_database, snapshot.loads(first))
    assert org_id == acme['org']
    assert counts['workflow_executions'] == 1 and counts['organizations'] == 1
    second = snapshot.dumps(snapshot.export_organization(other_database, acme['org']))
    assert second == first
    doc = json.loads(first)
    # System templates are named, not copied: the import added the shipped one.
    assert doc['system_templates'] == [{'id': SHIPPED, 'name': 'Inbound Lead Qualification'}]
    assert all(r['organization_id'] == acme['org'] for r in doc['tables']['workflows'])
    assert 'globex' not in first


def test_as_new_loads_a_copy_beside_the_original(database, acme):
    doc = snapshot.export_organization(database, acme['org'])
    org_id, counts = snapshot.import_organization(database, doc, as_new=True, link_users=True,
                                                  owner=acme['user'])
    assert org_id != acme['org']
    assert counts['users'] == 0  # the same people, matched by email
    copy = snapshot.export_organization(database, org_id)
    for table, rows in doc['tables'].items():
        assert len(copy['tables'][table]) == len(rows), table
        if table != 'users':
            assert not {r['id'] for r in rows} & {r['id'] for r in copy['tables'][table]}, table
    [organization] = copy['tables']['organizations']
    assert organization['slug'] == 'acme-copy'
    [workflow] = copy['tables']['workflows']
    assert workflow['template_id'] == acme['system_template']  # system templates keep their ids
    [execution] = copy['tables']['agent_executions']
    assert execution['workflow_execution_id'] == copy['tables']['workflow_executions'][0]['id']
    # and once more: the slug stays unique
    org_id, _ = snapshot.import_organization(database, doc, as_new=True, link_users=True,
                                             owner=acme['user'])
    assert snapshot.export_organization(database, org_id)['tables']['organizations'][0]['slug'] == 'acme-copy-2'


def test_importing_an_existing_organization_needs_as_new(database, acme):
    doc = snapshot.export_organization(database, acme['org'])
    with pytest.raises(snapshot.SnapshotError, match='already exists.*--as-new'):
        snapshot.import_organization(database, doc)


def test_unknown_organization(database):
    with pytest.raises(ConfigError, match="organization 'nope' does not exist"):
        snapshot.export_organization(database, 'nope')


@pytest.mark.parametrize('text, message', [
    ('{"format": ', 'not JSON'),
    ('[1, 2]', 'not an organization snapshot'),
    ('{"format": "neuroflow-hub/organization", "version": 9}', 'version 9 is not supported'),
    ('{"format": "neuroflow-hub/organization", "version": 1, "tables": {}}', 'tables.organizations'),
])
def test_malformed_documents_are_rejected(text, message):
    with pytest.raises(snapshot.SnapshotError, match=message):
        snapshot.loads(text, name='x.json')


def test_rows_of_another_organization_are_rejected(database, acme):
    doc = json.loads(snapshot.dumps(snapshot.export_organization(database, acme['org'])))
    doc['tables']['workflows'][0]['organization_id'] = 'someone-else'
    with pytest.raises(snapshot.SnapshotError, match=r'tables.workflows\[0\].organization_id'):
        snapshot.loads(json.dumps(doc))


def test_cli_round_trip(database, db_url, acme, tmp_path, other_database):
    target = tmp_path / 'acme.json'
    result = CliRunner().invoke(cli, ['--database-url', db_url, 'export', '--org', acme['org'],
                                      '-o', str(target)])
    assert result.exit_code == 0, result.output
    assert 'exported' in result.stderr and 'rows/s' in result.stderr
    result = CliRunner().invoke(cli, ['--database-url', db_url, 'import', str(target)])
    assert result.exit_code == 1 and 'already exists' in result.stderr
    result = CliRunner().invoke(cli, ['--database-url', db_url, 'import', str(target), '--as-new',
                                      '--link-users'])
    assert result.exit_code == 1 and 'would have no accepted OWNER' in result.stderr
    result = CliRunner().invoke(cli, ['--database-url', db_url, 'import', str(target), '--as-new',
                                      '--link-users', '--owner', 'owner@acme.example'])
    assert result.exit_code == 0 and result.stdout.strip() != acme['org']
    result = CliRunner().invoke(cli, ['--database-url', db_url, 'import', str(target), '--as-new',
                                      '--link-users', '--owner', 'nobody@acme.example'])
    assert result.exit_code == 2 and result.stderr.startswith(
        "Error: unknown --owner 'nobody@acme.example': no user of this database or of ")


def accepted_owners(database, org_id):
    return database.execute_sql(
        "SELECT user_id FROM organization_members WHERE organization_id = %s AND role = 'OWNER' "
        'AND accepted_at IS NOT NULL ORDER BY 1', (org_id,)).fetchall()


def test_an_untouched_export_reimported_with_link_users_keeps_an_accepted_owner(database, acme):
    """Before: the copy's only OWNER was the linked (existing) user, made an invitation: the
    organization had no accepted OWNER. Now that is refused, nothing written, unless --owner
    names who owns it."""
    doc = snapshot.export_organization(database, acme['org'])
    before = database.execute_sql('SELECT count(*) FROM organizations').fetchone()
    with pytest.raises(snapshot.SnapshotError) as info:
        snapshot.import_organization(database, doc, as_new=True, link_users=True, name='acme.json')
    assert str(info.value) == (
        'acme.json: tables.organization_members: the organization would have no accepted OWNER '
        '(its OWNER %s is a user of this database, only invited by --link-users); pass --owner '
        'USER (an id or e-mail of a user of this database) to make that user its OWNER'
        % acme['user'])
    assert database.execute_sql('SELECT count(*) FROM organizations').fetchone() == before
    # The OWNER named by e-mail: their (linked) membership becomes an accepted OWNER's.
    org_id, _ = snapshot.import_organization(database, doc, as_new=True, link_users=True,
                                             owner='owner@acme.example')
    assert accepted_owners(database, org_id) == [(acme['user'],)]
    # Another user of this database, named by id, who was not in the snapshot: added as OWNER;
    # the linked OWNER stays invited.
    globex_owner = database.execute_sql("SELECT id FROM users WHERE email = "
                                        "'owner@globex.example'").fetchone()[0]
    org_id, _ = snapshot.import_organization(database, doc, as_new=True, link_users=True,
                                             owner=globex_owner)
    assert accepted_owners(database, org_id) == [(globex_owner,)]


def test_a_snapshot_without_an_accepted_owner_is_refused_into_an_empty_database(
        database, other_database, acme):
    doc = json.loads(snapshot.dumps(snapshot.export_organization(database, acme['org'])))
    for membership in doc['tables']['organization_members']:
        membership['accepted_at'] = None  # a hand-edited file: every member only invited
    with pytest.raises(snapshot.SnapshotError, match=r'^snapshot: tables.organization_members: '
                       r'the organization would have no accepted OWNER; pass --owner USER'):
        snapshot.import_organization(other_database, doc)
    # --owner may name a user the snapshot brings along.
    org_id, _ = snapshot.import_organization(other_database, doc, owner='owner@acme.example')
    assert accepted_owners(other_database, org_id) == [(acme['user'],)]


def test_a_users_own_layout_and_old_end_nodes_are_accepted(database, other_database, acme):
    """Layout rules bind what this project ships and generates, not a user's own drawing; and
    snapshots made before 'end' replaced React Flow's built-in 'output' type still load."""
    doc = snapshot.export_organization(database, acme['org'])
    [workflow] = doc['tables']['workflows']
    workflow['nodes'][1]['type'] = 'output'
    workflow['nodes'][1]['position'] = {'x': 0, 'y': 0}   # drawn on top of the trigger
    assert graph.validate(workflow['nodes'], workflow['edges'])      # the layout rules object
    org_id, _ = snapshot.import_organization(other_database, snapshot.loads(snapshot.dumps(doc)))
    [(nodes,)] = other_database.execute_sql('SELECT nodes FROM workflows WHERE organization_id = %s',
                                            (org_id,)).fetchall()
    assert nodes[1]['type'] == 'end' and nodes[1]['position'] == {'x': 0, 'y': 0}
