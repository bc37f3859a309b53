"""The models are the one declaration of the tables: a tenant model that only this module
declares (`WorkflowNote`), with its table created here as a later migration would, gets the
tenant policies from `hub rls install`, is named by `hub rls status` until then, gets its cases
in the isolation matrix and travels in snapshots, without an entry in any other list.

The one step besides the model and its table: the model joins `hub.models.MODELS` (the fixture
`registered` does it with monkeypatch, as a model in hub/models.py is listed there).
"""
import json

import pytest
from click.testing import CliRunner
from peewee import ForeignKeyField, TextField

from hub import catalog, graph, models, rls, rls_matrix, snapshot
from hub.cli.main import cli
from tests.rows import make_tenant


class WorkflowNote(models.Timestamped):
    """A note on a workflow: a tenant table (organization_id, created_by) whose workflow is a
    composite tenant reference. backref='+': the shipped models stay untouched."""

    organization = ForeignKeyField(models.Organization, backref='+', on_delete='CASCADE',
                                   index=False)
    workflow = models.TenantForeignKey(models.Workflow, backref='+', on_delete='CASCADE')
    body = TextField()
    creator = ForeignKeyField(models.User, column_name='created_by', object_id_name='created_by',
                              backref='+', on_delete='CASCADE')

    class Meta:
        table_name = 'workflow_notes'
        indexes = ((('organization', 'id'), True),)


#: What a migration adding the model would run (hub db generate, once it exists, writes this).
CREATE_TABLE = """
CREATE TABLE public.workflow_notes (
    id              text PRIMARY KEY DEFAULT public.hub_new_id(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    organization_id text NOT NULL REFERENCES public.organizations (id) ON DELETE CASCADE,
    workflow_id     text NOT NULL,
    body            text NOT NULL CHECK (btrim(body) <> ''),
    created_by      text NOT NULL REFERENCES public.users (id) ON DELETE CASCADE,
    UNIQUE (organization_id, id),
    FOREIGN KEY (organization_id, workflow_id)
        REFERENCES public.workflows (organization_id, id) ON DELETE CASCADE
);
CREATE INDEX workflow_notes_workflow_id ON public.workflow_notes (workflow_id);
CREATE TRIGGER workflow_notes_updated_at BEFORE UPDATE ON public.workflow_notes
    FOR EACH ROW EXECUTE FUNCTION public.hub_touch_updated_at();
"""

TENANT_POLICIES = {
    'SELECT': (rls.MINE, None),
    'INSERT': (None, '%s AND %s' % (rls.MINE, rls.CREATED_BY_ME)),
    'UPDATE': (rls.MINE, rls.MINE),
    'DELETE': (rls.MINE, None),
}


@pytest.fixture
def registered(monkeypatch):
    """WorkflowNote is one of hub.models.MODELS for this test only."""
    monkeypatch.setattr(models, 'MODELS', models.MODELS + (WorkflowNote,))
    return WorkflowNote


def tenant_with_graphs(database, slug):
    """tests.rows.make_tenant, with workflow graphs an import accepts (hub.graph)."""
    ids = make_tenant(database, slug)
    nodes = [graph.node('t', 'trigger', {'label': 'Start'}, 0, 0),
             graph.node('o', 'end', {'label': 'Done'}, 280, 0)]
    for table in ('workflows', 'workflow_templates'):
        database.execute_sql('UPDATE %s SET nodes = %%s, edges = %%s WHERE organization_id = %%s'
                             % table, (json.dumps(nodes), json.dumps([graph.edge('t', 'o')]),
                                       ids['org']))
    return ids


@pytest.fixture
def noted(database):
    """A migrated database with RLS installed for the shipped models, then the new table (as a
    migration after `hub rls install` would leave it)."""
    rls.install(database)
    database.execute_sql(CREATE_TABLE)
    return database


def test_the_shipped_models_have_the_kinds_their_shape_says():
    kinds = {m._meta.table_name: rls.kind(m) for m in models.MODELS}
    assert kinds == {
        'organizations': 'special', 'users': 'special', 'organization_members': 'special',
        'workflow_templates': 'special',
        'workflows': 'tenant', 'ai_agents': 'tenant', 'agent_teams': 'tenant',
        'integrations': 'tenant',
        'team_members': 'child', 'workflow_executions': 'child', 'agent_executions': 'child',
        'team_executions': 'child'}
    assert rls.policy_tables() == tuple(m._meta.table_name for m in models.MODELS)
    assert len([c for by_cmd in rls.policies().values() for c in by_cmd]) == 48
    # A reference to workflow_templates adds its visibility check; the rest is the plain shape.
    assert rls.policies()['workflows']['INSERT'][1] == '%s AND %s AND %s' % (
        rls.MINE, rls.TEMPLATE_VISIBLE, rls.CREATED_BY_ME)
    assert rls.policies()['ai_agents'] == TENANT_POLICIES


def test_a_new_tenant_model_gets_the_tenant_policies(registered):
    assert rls.kind(WorkflowNote) == rls.TENANT
    assert rls.policies()['workflow_notes'] == TENANT_POLICIES
    assert rls.policy_tables()[-1] == 'workflow_notes'
    assert rls.policy_sql('workflow_notes', 'INSERT') == (
        'CREATE POLICY hub_insert ON public.workflow_notes AS PERMISSIVE FOR INSERT TO '
        'authenticated\n    WITH CHECK (%s AND %s)' % (rls.MINE, rls.CREATED_BY_ME))


def test_a_model_without_organization_gets_no_policies():
    class Setting(models.BaseModel):
        value = TextField()

        class Meta:
            table_name = 'hub_test_settings'

    assert rls.kind(Setting) is None and rls.model_policies(Setting) is None


def test_status_names_the_uncovered_table_until_install_covers_it(noted, db_url, registered):
    report = rls.status(noted)
    assert not report['complete']
    assert ('table workflow_notes: row-level security is disabled and 4 of its 4 policies are '
            'missing (SELECT, INSERT, UPDATE, DELETE) (run `hub rls install`)') in report['missing']
    shown = CliRunner().invoke(cli, ['--database-url', db_url, 'rls', 'status'])
    assert shown.exit_code == 1
    assert 'missing: table workflow_notes: row-level security is disabled' in shown.stdout

    actions = rls.install(noted)
    assert 'enabled row-level security on workflow_notes' in actions
    assert {a for a in actions if a.startswith('created policy')} == {
        'created policy hub_%s on workflow_notes (%s)' % (c.lower(), c) for c in rls.COMMANDS}
    live = catalog.live_policy_map(noted)
    for command in rls.COMMANDS:
        cmd, roles, _, _, comment, permissive = live['workflow_notes', rls.policy_name(command)]
        assert (cmd, roles, permissive) == (command, ['authenticated'], True)
        assert comment == rls._fingerprint(rls.policy_sql('workflow_notes', command))
    assert rls.status(noted)['complete']
    assert rls.install(noted) == []


def test_the_matrix_covers_the_new_table(noted, registered):
    rls.install(noted)
    report = rls_matrix.verify(noted)
    assert report['leaks'] == [] and report['failures'] == []
    notes = [c for c in report['cases'] if c.table == 'workflow_notes']
    grid = {(c.command, c.actor) for c in notes if c.kind == 'matrix'}
    assert grid == {(cmd, a) for cmd in rls.COMMANDS for a in rls_matrix.ACTORS}
    attacks = {c.label for c in notes if c.kind == 'attack'}
    assert {'move a row of A to B', "insert into A pointing at B's parent",
            "insert into B pointing at A's parent", 'insert with created_by of someone else',
            'blind UPDATE of the whole table'} <= attacks
    audits = {c.label for c in notes if c.kind in ('audit', 'privilege')}
    assert {'update workflow_notes.created_by', 'truncate workflow_notes',
            'privileges of authenticated on workflow_notes'} <= audits


def test_a_snapshot_carries_the_new_table(noted, registered):
    ids = tenant_with_graphs(noted, 'notes')
    noted.execute_sql("INSERT INTO workflow_notes (organization_id, workflow_id, body, created_by) "
                      "VALUES (%s, %s, 'remember', %s)", (ids['org'], ids['workflow'], ids['user']))
    doc = snapshot.loads(snapshot.dumps(snapshot.export_organization(noted, ids['org'])))
    [note] = doc['tables']['workflow_notes']
    assert (note['body'], note['workflow_id']) == ('remember', ids['workflow'])

    copy_id, counts = snapshot.import_organization(noted, doc, as_new=True, link_users=True,
                                                   owner=ids['user'])
    assert counts['workflow_notes'] == 1
    copy = snapshot.export_organization(noted, copy_id)
    [copied] = copy['tables']['workflow_notes']
    assert copied['body'] == 'remember' and copied['id'] != note['id']
    assert copied['workflow_id'] == copy['tables']['workflows'][0]['id'] != ids['workflow']

    # A reference outside the snapshot is refused like any other table's.
    doc['tables']['workflow_notes'][0]['workflow_id'] = 'elsewhere'
    with pytest.raises(snapshot.SnapshotError, match=r'tables\.workflow_notes\[0\]\.workflow_id'):
        snapshot.import_organization(noted, doc, as_new=True, link_users=True, owner=ids['user'])


def test_a_snapshot_from_before_the_table_loads(noted, registered):
    ids = tenant_with_graphs(noted, 'older')
    doc = snapshot.export_organization(noted, ids['org'])
    del doc['tables']['workflow_notes']
    _, counts = snapshot.import_organization(noted, doc, as_new=True, link_users=True,
                                             owner=ids['user'])
    assert counts['workflow_notes'] == 0 and counts['workflows'] == 1


def test_the_seeder_leaves_the_new_table_empty(noted, registered, secret):
    from hub import seed

    ids = make_tenant(noted, 'noted')
    noted.execute_sql("INSERT INTO workflow_notes (organization_id, workflow_id, body, created_by) "
                      "VALUES (%s, %s, 'gone on reset', %s)", (ids['org'], ids['workflow'],
                                                               ids['user']))
    result = seed.seed_database(noted, orgs=1, scale='tiny', as_of='2026-01-01', reset=True)
    assert result.total_rows > 0
    assert noted.execute_sql('SELECT count(*) FROM workflow_notes').fetchone() == (0,)
    assert noted.execute_sql('SELECT count(*) FROM workflows').fetchone()[0] > 0
