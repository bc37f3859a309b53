"""`hub import` as an attack vector: a snapshot is a file someone sent you.

Each test crafts a snapshot from a legitimate export of the attacker's organization ("evil",
made in another database), imports it into the victim's database with the real command, and
checks that nothing outside the imported organization changed: exit 1, one line naming the file
and the bad field, every table's rows (count and content) exactly as before.
"""
import json

import pytest
from click.testing import CliRunner

from hub import connection
from hub import graph, marketplace, rls, snapshot
from hub.cli.main import cli
from hub.ids import new_id, stable_id
from tests.rows import make_tenant

NODES = [graph.node('t', 'trigger', {'label': 'Start'}, 0, 0),
         graph.node('o', 'end', {'label': 'Done'}, 280, 0)]
EDGES = [graph.edge('t', 'o')]
SHIPPED = stable_id('template', 'lead-qualification')


def valid_graphs(database, org_id):
    for table in ('workflows', 'workflow_templates'):
        database.execute_sql('UPDATE %s SET nodes = %%s, edges = %%s WHERE organization_id = %%s'
                             % table, (json.dumps(NODES), json.dumps(EDGES), org_id))


@pytest.fixture
def source(databases, migrated_template):
    """The attacker's own database, where "evil" is made and exported."""
    name = databases.create(template=migrated_template)
    database = connection.bind(connection.open_database(databases.url(name)))
    yield database
    database.close()
    databases.drop(name)


@pytest.fixture
def evil(source):
    """A legitimate export of the attacker's organization, as parsed JSON, ready to tamper with."""
    ids = make_tenant(source, 'evil')
    valid_graphs(source, ids['org'])
    doc = json.loads(snapshot.dumps(snapshot.export_organization(source, ids['org'])))
    doc['ids'] = ids
    return doc


@pytest.fixture
def victim(database):
    """The database the snapshot is imported into: the marketplace, RLS, and a tenant "globex"."""
    marketplace.load(database)
    rls.install(database)
    ids = make_tenant(database, 'globex')
    valid_graphs(database, ids['org'])
    return ids


def fingerprint(database):
    """Every table's row count and a digest of its content."""
    result = {}
    for table in snapshot.table_names():
        result[table] = database.execute_sql(
            "SELECT count(*), md5(coalesce(string_agg(t::text, ',' ORDER BY t.id), '')) FROM %s t"
            % table).fetchone()
    return result


def run_import(db_url, doc, tmp_path, *flags):
    doc = {k: v for k, v in doc.items() if k != 'ids'}
    path = tmp_path / 'evil.json'
    path.write_text(json.dumps(doc))
    return CliRunner().invoke(cli, ['--database-url', db_url, 'import', str(path)] + list(flags))


def refused(result, *fragments):
    assert result.exit_code == 1, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith('Error: ') and 'evil.json: ' in lines[0], lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert 'Traceback' not in result.output


def user_row(database, user_id):
    return database.execute_sql('SELECT row_to_json(u) FROM users u WHERE id = %s',
                                (user_id,)).fetchone()[0]


def test_an_untouched_export_imports(database, db_url, victim, evil, tmp_path):
    result = run_import(db_url, evil, tmp_path)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == evil['organization_id']


def test_a_system_template_entry_cannot_write_into_another_organization(
        database, db_url, victim, evil, tmp_path):
    before = fingerprint(database)
    evil['system_templates'].append(dict(
        evil['tables']['workflow_templates'][0], id=new_id(), organization_id=victim['org'],
        is_public=False, name='Planted', created_by=None))
    refused(run_import(db_url, evil, tmp_path), 'system_templates[0].organization_id')
    assert fingerprint(database) == before


def test_a_forged_system_template_is_refused(database, db_url, victim, evil, tmp_path):
    before = fingerprint(database)
    evil['system_templates'].append(dict(
        evil['tables']['workflow_templates'][0], id=new_id(), organization_id=None,
        created_by=None, is_public=True, is_featured=True, usage_count=999999, rating=5,
        name='Totally official'))
    refused(run_import(db_url, evil, tmp_path), 'system_templates[0].id',
            'not a template of the shipped marketplace')
    assert fingerprint(database) == before


def test_a_missing_shipped_template_arrives_as_shipped_not_as_the_file_says(
        database, db_url, victim, evil, tmp_path):
    database.execute_sql('DELETE FROM workflow_templates WHERE id = %s', (SHIPPED,))
    evil['system_templates'].append(dict(
        evil['tables']['workflow_templates'][0], id=SHIPPED, organization_id=None,
        created_by=None, is_public=True, is_featured=True, usage_count=999999, rating=5,
        name='Phishing kit'))
    evil['tables']['workflows'][0]['template_id'] = SHIPPED
    result = run_import(db_url, evil, tmp_path)
    assert result.exit_code == 0, result.output
    shipped = {r['id']: r for r in marketplace.read_fixtures()}[SHIPPED]
    row = database.execute_sql(
        'SELECT name, is_featured, usage_count, rating, organization_id FROM workflow_templates '
        'WHERE id = %s', (SHIPPED,)).fetchone()
    assert row == (shipped['name'], shipped['is_featured'], 0, None, None)


def test_an_existing_system_template_is_never_rewritten(database, db_url, victim, evil, tmp_path):
    before = fingerprint(database)
    evil['system_templates'].append(dict(
        evil['tables']['workflow_templates'][0], id=SHIPPED, organization_id=None,
        created_by=None, is_public=True, usage_count=999999, name='Phishing kit'))
    evil['tables']['workflows'][0]['template_id'] = SHIPPED
    result = run_import(db_url, evil, tmp_path)
    assert result.exit_code == 0, result.output
    after = fingerprint(database)
    assert after['workflow_templates'][0] == before['workflow_templates'][0] + 1  # evil's own
    assert database.execute_sql('SELECT name, usage_count FROM workflow_templates WHERE id = %s',
                                (SHIPPED,)).fetchone()[1] == 0


def test_a_squatted_shipped_id_is_not_adopted_as_a_system_template(
        database, db_url, victim, evil, tmp_path):
    # globex planted a private row under a shipped id (possible before `templates load`).
    database.execute_sql('UPDATE workflow_templates SET organization_id = %s, is_public = false '
                         'WHERE id = %s', (victim['org'], SHIPPED))
    before = fingerprint(database)
    evil['system_templates'].append({'id': SHIPPED, 'organization_id': None})
    evil['tables']['workflows'][0]['template_id'] = SHIPPED
    refused(run_import(db_url, evil, tmp_path), 'system_templates[0].id', 'organization')
    assert fingerprint(database) == before


def test_a_workflow_cannot_use_another_organizations_private_template(
        database, db_url, victim, evil, tmp_path):
    evil['tables']['workflows'][0]['template_id'] = victim['template']
    result = run_import(db_url, evil, tmp_path)
    assert result.exit_code == 0, result.output
    # Imported without the reference, and said so in one line.
    notice = [line for line in result.stderr.splitlines() if 'template' in line]
    assert len(notice) == 1 and 'tables.workflows[0].template_id' in notice[0], result.stderr
    assert victim['template'] in notice[0] and 'NULL' in notice[0], notice
    assert database.execute_sql('SELECT count(*) FROM workflows WHERE template_id = %s AND '
                                'organization_id <> %s', (victim['template'], victim['org'])
                                ).fetchone() == (0,)


def test_a_listed_foreign_user_is_not_enrolled(database, db_url, victim, evil, tmp_path, api_for):
    before = fingerprint(database)
    evil['tables']['users'].append(user_row(database, victim['user']))
    evil['tables']['organization_members'].append(dict(
        evil['tables']['organization_members'][0], id=new_id(), user_id=victim['user'],
        role='MEMBER'))
    refused(run_import(db_url, evil, tmp_path), 'tables.users[1].email', 'owner@globex.example',
            '--link-users')
    assert fingerprint(database) == before
    # And the attacker's user (had the import worked) could not read the victim's profile.
    emails = api_for(db_url).run('SELECT email FROM users', user=evil['ids']['user'])
    assert ['owner@globex.example'] not in [list(r) for r in emails]


def test_a_membership_for_an_unlisted_user_is_refused(database, db_url, victim, evil, tmp_path):
    before = fingerprint(database)
    evil['tables']['organization_members'].append(dict(
        evil['tables']['organization_members'][0], id=new_id(), user_id=victim['user'],
        role='MEMBER'))
    refused(run_import(db_url, evil, tmp_path), 'tables.organization_members[1].user_id',
            victim['user'])
    assert fingerprint(database) == before


def test_created_by_cannot_name_a_user_outside_the_snapshot(
        database, db_url, victim, evil, tmp_path):
    before = fingerprint(database)
    evil['tables']['ai_agents'][0]['created_by'] = victim['user']
    refused(run_import(db_url, evil, tmp_path), 'tables.ai_agents[0].created_by')
    assert fingerprint(database) == before


def test_a_user_id_taken_here_is_not_adopted(database, db_url, victim, evil, tmp_path):
    # The victim's id under a fresh e-mail: today's ON CONFLICT (id) DO NOTHING would enrol them.
    before = fingerprint(database)
    old = evil['tables']['users'][0]['id']
    doc = json.loads(json.dumps(evil).replace(old, victim['user']))
    refused(run_import(db_url, doc, tmp_path), 'tables.users[0].id', victim['user'])
    assert fingerprint(database) == before


def test_a_user_who_is_no_member_is_refused(database, db_url, victim, evil, tmp_path):
    before = fingerprint(database)
    evil['tables']['users'].append({'id': new_id(), 'email': 'stray@example.com', 'name': None,
                                    'avatar_url': None, 'created_at': '2026-01-01T00:00:00+00:00',
                                    'updated_at': '2026-01-01T00:00:00+00:00'})
    refused(run_import(db_url, evil, tmp_path), 'tables.users[1]', 'no membership')
    assert fingerprint(database) == before


def test_as_new_does_not_enrol_an_existing_user_by_email(
        database, db_url, victim, evil, tmp_path, api_for):
    before = fingerprint(database)
    evil['tables']['users'].append(dict(user_row(database, victim['user']), id=new_id()))
    evil['tables']['organization_members'].append(dict(
        evil['tables']['organization_members'][0], id=new_id(),
        user_id=evil['tables']['users'][1]['id'], role='MEMBER'))
    refused(run_import(db_url, evil, tmp_path, '--as-new'), 'tables.users[1].email',
            'owner@globex.example', '--link-users')
    assert fingerprint(database) == before


def test_link_users_is_the_explicit_way_to_enrol(database, db_url, victim, evil, tmp_path, api_for):
    evil['tables']['users'].append(dict(user_row(database, victim['user']), id=new_id()))
    # The file claims the victim accepted long ago: a file cannot consent for anybody.
    evil['tables']['organization_members'].append(dict(
        evil['tables']['organization_members'][0], id=new_id(),
        user_id=evil['tables']['users'][1]['id'], role='MEMBER',
        accepted_at='2020-01-01T00:00:00+00:00'))
    before = user_row(database, victim['user'])
    result = run_import(db_url, evil, tmp_path, '--as-new', '--link-users')
    assert result.exit_code == 0, result.output
    org_id = result.stdout.strip()
    assert database.execute_sql(
        'SELECT role, accepted_at FROM organization_members '
        'WHERE organization_id = %s AND user_id = %s',
        (org_id, victim['user'])).fetchone() == ('MEMBER', None)   # invited, not enrolled
    assert user_row(database, victim['user']) == before  # the profile is never rewritten


@pytest.mark.parametrize('table', ['workflows', 'ai_agents', 'workflow_templates', 'team_members'])
def test_a_row_of_another_organization_is_refused(database, db_url, victim, evil, tmp_path, table):
    before = fingerprint(database)
    evil['tables'][table][0]['organization_id'] = victim['org']
    refused(run_import(db_url, evil, tmp_path, '--as-new'), 'tables.%s[0].organization_id' % table)
    assert fingerprint(database) == before


def test_a_reference_to_another_organizations_row_is_refused(
        database, db_url, victim, evil, tmp_path):
    before = fingerprint(database)
    evil['tables']['workflow_executions'][0]['workflow_id'] = victim['workflow']
    refused(run_import(db_url, evil, tmp_path, '--as-new'),
            'tables.workflow_executions[0].workflow_id')
    assert fingerprint(database) == before


def test_an_imported_public_template_arrives_without_curation(
        database, db_url, victim, evil, tmp_path):
    template = evil['tables']['workflow_templates'][0]
    template.update(is_public=True, is_featured=True, rating=5, usage_count=1000000)
    result = run_import(db_url, evil, tmp_path)
    assert result.exit_code == 0, result.output
    assert database.execute_sql(
        'SELECT is_public, is_featured, rating, usage_count FROM workflow_templates WHERE id = %s',
        (template['id'],)).fetchone() == (True, False, None, 0)
