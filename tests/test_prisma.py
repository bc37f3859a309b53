"""`hub db prisma`: the schema.prisma has the platform's names, and Prisma 7 agrees with it.

The first tests read the generated text. The last ones run Prisma itself (`prisma validate`,
`prisma generate`, Prisma Client through @prisma/adapter-pg, `migrate diff` on
@prisma/schema-engine-wasm) from $HUB_PRISMA_DIR, the folder where tests/prisma/package.json
was installed (.ci/run's install_prisma). Without it they skip; HUB_REQUIRE_PRISMA=1 (CI)
makes that a failure.
"""
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from peewee import ForeignKeyField, TextField

from hub import models, prisma, schema
from hub.cli.main import cli
from hub.errors import ConfigError, SchemaDrift
from tests.conftest import _required

HERE = Path(__file__).resolve().parent / 'prisma'
SPEC_MODELS = ('Workflow', 'AIAgent', 'AgentTeam', 'TeamMember', 'WorkflowExecution',
               'AgentExecution', 'TeamExecution', 'Integration', 'WorkflowTemplate',
               'Organization', 'User', 'OrganizationMember')
ID = re.compile(r'^c[0-9a-z]{24}$')


def parse(text):
    """{model or enum name: {'fields': {name: 'Type attributes'}, 'block': [@@...], 'comments': [...]}}"""
    found, current, comments = {}, None, []
    for line in text.splitlines():
        start = re.match(r'^(model|enum) (\w+) \{$', line)
        if start:
            current = found[start.group(2)] = {'kind': start.group(1), 'fields': {}, 'block': [],
                                               'comments': comments}
            comments = []
        elif line == '}':
            current = None
        elif current is None:
            comments = comments + [line] if line.startswith('// Prisma cannot') else []
        elif line.strip().startswith('///'):
            current.setdefault('docs', []).append(line.strip()[3:].strip())
        elif line.strip().startswith('@@'):
            current['block'].append(line.strip())
        elif line.strip():
            name, rest = line.strip().split(None, 1) if ' ' in line.strip() else (line.strip(), '')
            current['fields'][name] = ' '.join(rest.split())
    return found


@pytest.fixture
def text(txn):
    return prisma.schema(txn)


@pytest.fixture
def parsed(text):
    return parse(text)


def test_every_model_and_enum_has_the_spec_name_and_maps_to_our_table(parsed):
    for model in models.MODELS:
        assert parsed[model.__name__]['kind'] == 'model'
        assert parsed[model.__name__]['block'][-1] == '@@map("%s")' % model._meta.table_name
    assert set(SPEC_MODELS) <= set(parsed)
    for type_name, enum_class in models.ENUMS.items():
        enum = parsed[enum_class.__name__]
        assert enum['kind'] == 'enum' and enum['block'] == ['@@map("%s")' % type_name]
        assert list(enum['fields']) == [m.value for m in enum_class]
    assert len([p for p in parsed.values() if p['kind'] == 'model']) == len(models.MODELS)


def test_relations_carry_the_spec_names(parsed):
    workflow, user = parsed['Workflow']['fields'], parsed['User']['fields']
    assert workflow['creator'].startswith(
        'User @relation("WorkflowCreator", fields: [createdBy], references: [id], '
        'onDelete: Cascade, onUpdate: NoAction)')
    assert workflow['template'].startswith(
        'WorkflowTemplate? @relation(fields: [templateId], references: [id], onDelete: SetNull')
    assert workflow['executions'] == 'WorkflowExecution[]'
    for field, model in [('workflows', 'Workflow'), ('aiAgents', 'AIAgent'),
                         ('agentTeams', 'AgentTeam'), ('integrations', 'Integration'),
                         ('workflowTemplates', 'WorkflowTemplate')]:
        assert user[field] == '%s[] @relation("%sCreator")' % (model, model)
        assert parsed['Organization']['fields'][field] == '%s[]' % model
    assert 'onDelete: SetNull' in parsed['WorkflowTemplate']['fields']['creator']
    assert parsed['AgentTeam']['fields']['members'] == 'TeamMember[]'
    assert parsed['AgentTeam']['fields']['executions'] == 'TeamExecution[]'
    assert parsed['AIAgent']['fields']['teamMembers'] == 'TeamMember[]'
    assert parsed['AIAgent']['fields']['executions'] == 'AgentExecution[]'
    assert parsed['WorkflowExecution']['fields']['agentExecutions'] == 'AgentExecution[]'
    assert parsed['WorkflowTemplate']['fields']['workflows'] == 'Workflow[]'


def test_tenant_relations_are_composite_and_their_targets_unique(parsed):
    composite = {('TeamMember', 'team'): 'AgentTeam', ('TeamMember', 'agent'): 'AIAgent',
                 ('WorkflowExecution', 'workflow'): 'Workflow',
                 ('AgentExecution', 'agent'): 'AIAgent',
                 ('AgentExecution', 'workflowExecution'): 'WorkflowExecution?',
                 ('TeamExecution', 'team'): 'AgentTeam'}
    for (model, field), target in composite.items():
        line = parsed[model]['fields'][field]
        scalar = field + 'Id'
        assert line.startswith('%s @relation(fields: [organizationId, %s], references: '
                               '[organizationId, id]' % (target, scalar)), line
        assert '@@unique([organizationId, id])' in parsed[target.rstrip('?')]['block']


def test_columns_are_camel_case_with_their_types_defaults_and_mapping(parsed):
    agent = parsed['AIAgent']['fields']
    assert agent['modelConfig'] == 'Json @db.JsonB @map("model_config")'
    assert agent['avgResponseTime'] == 'Float? @map("avg_response_time")'
    assert agent['status'] == 'AgentStatus @default(IDLE)'
    assert agent['capabilities'] == 'String[] @default([])'
    assert agent['description'] == 'String? @db.Text'
    assert agent['avatar'] == 'String? @db.VarChar(500)'
    execution = parsed['WorkflowExecution']['fields']
    assert execution['cost'] == 'Decimal @default(0) @db.Decimal(12, 2)'
    assert execution['logs'] == 'Json[] @default([])'
    assert execution['startedAt'] == 'DateTime @default(now()) @db.Timestamptz(6) @map("started_at")'
    assert parsed['Workflow']['fields']['version'] == 'String @default("1.0.0") @db.VarChar(20)'
    assert parsed['User']['fields']['email'] == 'String @unique @db.VarChar(255)'
    timestamped = [m.__name__ for m in models.MODELS if issubclass(m, models.Timestamped)]
    assert len(timestamped) == 7
    for name in timestamped:
        assert parsed[name]['fields']['updatedAt'].startswith(
            'DateTime @default(now()) @updatedAt @db.Timestamptz(6) @map("updated_at")')
    for model in models.MODELS:
        assert parsed[model.__name__]['fields']['id'] == \
            'String @id @default(dbgenerated("hub_new_id()"))', model


def test_cuid_ids_are_an_option(txn):
    parsed = parse(prisma.schema(txn, ids='cuid'))
    for model in models.MODELS:
        line = parsed[model.__name__]['fields']['id']
        assert line.startswith('String @id @default(cuid())') and 'hub_new_id()' in line
    with pytest.raises(ConfigError, match='unknown id mode "uuid"; use database or cuid'):
        prisma.schema(txn, ids='uuid')


def test_every_index_and_constraint_name_of_the_database_is_in_the_schema(txn, text):
    for model in models.MODELS:
        table = model._meta.table_name
        for name, cols, unique, definition in schema.live_indexes(txn, table):
            if name == '%s_pkey' % table:
                continue  # Prisma's default name for @id
            if unique:  # Prisma's default name for @unique / @@unique: ours match it
                assert name == '%s_%s_key' % (table, '_'.join(cols))
            elif ' USING brin ' in definition:  # the started_at indexes (migration 0006)
                assert 'map: "%s", type: Brin)' % name in text
            else:
                assert 'map: "%s")' % name in text
        for name, cols, *_ in schema.live_foreign_keys(txn, table):
            assert name == '%s_%s_fkey' % (table, '_'.join(cols))  # Prisma's default too
    assert 'hub_migrations' not in text


def test_what_prisma_cannot_express_is_said_in_comments(txn, parsed, text):
    assert 'NEVER run `prisma migrate dev`' in text and '`prisma db pull` loses' in text
    line = parsed['AgentExecution']['fields']['workflowExecution']
    assert 'onDelete: SetNull' in line
    assert ('// Prisma cannot express ON DELETE SET NULL (workflow_execution_id): the database '
            'clears only that column and keeps organization_id') in line
    for model in models.MODELS:
        table, comments = model._meta.table_name, parsed[model.__name__]['comments']
        checks = schema.live_checks(txn, table)
        assert len([c for c in comments if 'CHECK' in c]) == len(checks)
        assert any('row-level security' in c for c in comments)
    members = '\n'.join(parsed['OrganizationMember']['comments'])
    assert 'organization_members_consent' in members
    assert 'organization_members_keep_an_owner' in members


def test_output_is_stable_and_the_same_from_any_migrated_database(txn, database):
    from hub import rls

    rls.install(database)  # the policies' state must not change the output
    assert prisma.schema(database) == prisma.schema(txn) == prisma.schema(txn)


def test_a_table_added_to_the_models_appears_with_sensible_names(txn, monkeypatch):
    class ReviewNote(models.BaseModel):
        organization = ForeignKeyField(models.Organization, backref='review_notes',
                                       on_delete='CASCADE')
        author = ForeignKeyField(models.User, null=True, backref='review_notes',
                                 on_delete='SET NULL')
        body_text = TextField()

        class Meta:
            table_name = 'review_notes'

    txn.execute_sql("""
        CREATE TABLE review_notes (
            id text PRIMARY KEY DEFAULT public.hub_new_id(),
            organization_id text NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
            author_id text REFERENCES users (id) ON DELETE SET NULL,
            body_text text NOT NULL);
        CREATE INDEX review_notes_organization_id ON review_notes (organization_id);
        CREATE INDEX review_notes_author_id ON review_notes (author_id)""")
    monkeypatch.setattr(models, 'MODELS', models.MODELS + (ReviewNote,))
    parsed = parse(prisma.schema(txn))
    note = parsed['ReviewNote']
    assert note['fields']['bodyText'] == 'String @db.Text @map("body_text")'
    assert note['fields']['author'].startswith('User? @relation(fields: [authorId], references: '
                                               '[id], onDelete: SetNull, onUpdate: NoAction)')
    assert note['block'] == ['@@index([authorId], map: "review_notes_author_id")',
                             '@@index([organizationId], map: "review_notes_organization_id")',
                             '@@map("review_notes")']
    assert parsed['Organization']['fields']['reviewNotes'] == 'ReviewNote[]'
    assert parsed['User']['fields']['reviewNotes'] == 'ReviewNote[]'


def test_a_database_that_differs_from_the_models_is_refused(txn):
    txn.execute_sql('ALTER TABLE workflows ADD COLUMN color text')
    with pytest.raises(SchemaDrift, match=r'differs from hub.models \(1 difference\(s\), first: '
                                          r'workflows.color: column is in the database'):
        prisma.schema(txn)


# -- the command ------------------------------------------------------------------------------

def run(url, *args):
    return CliRunner().invoke(cli, ['--database-url', url, 'db', 'prisma', *args])


def test_command_prints_the_schema_and_writes_the_same_to_a_file(db_url, tmp_path):
    first, second = run(db_url), run(db_url)
    assert first.exit_code == 0 and first.stdout == second.stdout
    assert first.stdout.startswith('// NeuroFlow Hub: Prisma schema generated by `hub db prisma`')
    target = tmp_path / 'schema.prisma'
    written = run(db_url, '-o', str(target))
    assert written.exit_code == 0 and written.stdout == ''
    assert written.stderr == 'wrote %s\n' % target
    assert target.read_text() == first.stdout
    assert 'cuid()' in run(db_url, '--ids', 'cuid').stdout


def test_command_refuses_a_drifted_database_in_one_line(database, db_url):
    database.execute_sql('ALTER TABLE integrations DROP COLUMN provider')
    result = run(db_url)
    assert result.exit_code == 1 and result.stdout == ''
    assert result.stderr.count('\n') == 1 and 'Traceback' not in result.stderr
    assert 'integrations.provider: column is missing from the database' in result.stderr
    assert 'run `hub db migrate`, then `hub db check`' in result.stderr
    bad = run(db_url, '--ids', 'uuid')
    assert bad.exit_code == 2 and "'uuid' is not one of 'database', 'cuid'" in bad.stderr


# -- Prisma itself ----------------------------------------------------------------------------

@pytest.fixture(scope='session')
def npm_dir():
    """$HUB_PRISMA_DIR with prisma, @prisma/client, @prisma/adapter-pg, pg installed."""
    folder = os.environ.get('HUB_PRISMA_DIR')
    reason = ('Prisma\'s npm packages are not installed: `npm install --prefix DIR` with '
              'tests/prisma/package.json, then set HUB_PRISMA_DIR=DIR (.ci/run does both)')
    if not folder or not (Path(folder) / 'node_modules' / 'prisma').is_dir():
        _required('HUB_REQUIRE_PRISMA', reason)
    if shutil.which('node') is None:
        _required('HUB_REQUIRE_PRISMA', 'node is not installed')
    return Path(folder)


def node(npm_dir, *args, check=True):
    env = dict(os.environ, HUB_PRISMA_DIR=str(npm_dir), CHECKPOINT_DISABLE='1',
               PRISMA_HIDE_UPDATE_MESSAGE='1')
    # Prisma downloads its schema-engine binary unless told where one is; validate and
    # generate never run it, and nothing here may migrate the database.
    env.setdefault('PRISMA_SCHEMA_ENGINE_BINARY', str(HERE / 'schema-engine-stub'))
    result = subprocess.run(['node', *args], cwd=npm_dir, env=env, capture_output=True,
                            text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def prisma_cli(npm_dir, *args):
    return node(npm_dir, str(npm_dir / 'node_modules' / 'prisma' / 'build' / 'index.js'), *args)


def diff(npm_dir, url, schema_file):
    return node(npm_dir, '--experimental-wasm-modules', '--no-warnings', str(HERE / 'diff.mjs'),
                url, str(schema_file), check=False)


def generate(npm_dir, db):
    """Validate the schema of `db` and generate its Prisma Client; the `prisma validate` run."""
    # generate resolves @prisma/client from the schema's folder: it goes inside npm_dir.
    target = npm_dir / 'prisma' / 'schema.prisma'
    target.parent.mkdir(exist_ok=True)
    target.write_text(prisma.schema(db))
    validated = prisma_cli(npm_dir, 'validate', '--schema', str(target))
    generated = prisma_cli(npm_dir, 'generate', '--schema', str(target))
    assert 'Generated Prisma Client' in generated.stdout + generated.stderr
    return validated


def test_prisma_validates_and_generates_the_schema(npm_dir, txn):
    validated = generate(npm_dir, txn)
    assert 'is valid' in validated.stdout
    # Prisma's only warning is the SET NULL (column) relation the schema comments on.
    warnings = [l for l in validated.stdout.splitlines() + validated.stderr.splitlines()
                if l.startswith('- ')]
    assert len(warnings) == 1 and 'should not be set to `SetNull`' in warnings[0]


def test_prisma_diff_against_our_database_is_empty(npm_dir, db_url, tmp_path):
    target = tmp_path / 'schema.prisma'
    assert run(db_url, '-o', str(target)).exit_code == 0
    result = diff(npm_dir, db_url, target)
    assert (result.returncode, result.stdout.strip()) == (0, '-- This is an empty migration.'), \
        result.stdout + result.stderr


def test_prisma_diff_with_cuid_ids_only_drops_the_id_defaults(npm_dir, db_url, tmp_path):
    target = tmp_path / 'schema.prisma'
    assert run(db_url, '-o', str(target), '--ids', 'cuid').exit_code == 0
    result = diff(npm_dir, db_url, target)
    assert result.returncode == 2, result.stderr
    statements = [s for s in result.stdout.splitlines() if s and not s.startswith('--')]
    assert sorted(statements) == sorted('ALTER TABLE "%s" ALTER COLUMN "id" DROP DEFAULT;'
                                        % m._meta.table_name for m in models.MODELS)


def test_prisma_client_counts_every_model_and_creates_with_the_database_defaults(
        npm_dir, database, db_url, secret):
    from hub.seed import seed_database

    seed_database(database, orgs=2, scale='tiny', as_of='2025-01-31')
    generate(npm_dir, database)
    sql = {m.__name__: database.execute_sql('SELECT count(*) FROM %s' % m._meta.table_name)
           .fetchone()[0] for m in models.MODELS}
    out = json.loads(node(npm_dir, str(HERE / 'client.mjs'), db_url, 'hub-test').stdout)
    assert out['counts'] == sql and all(sql.values())
    assert all(ID.match(i) for i in out['sampled'].values())

    created = out['created']
    for row in created.values():
        assert ID.match(row['id'])  # the database's hub_new_id()
    org_id, workflow_id = created['organization']['id'], created['workflow']['id']
    # The database's clock (not this machine's) made the timestamps, just now.
    assert database.execute_sql(
        "SELECT name, slug, created_at = updated_at, now() - created_at < interval '5 minutes' "
        'FROM organizations WHERE id = %s', (org_id,)).fetchone() == \
        ('Made by Prisma', 'made-by-hub-test', True, True)
    workflow = created['workflow']
    assert (workflow['isActive'], workflow['version'], workflow['tags'],
            workflow['executionCount']) == (True, '1.0.0', [], 0)
    row = database.execute_sql(
        'SELECT status, cost, logs, organization_id, workflow_id FROM workflow_executions '
        'WHERE id = %s', (created['execution']['id'],)).fetchone()
    assert row == ('PENDING', 0, [], org_id, workflow_id)
    execution = created['execution']
    assert (execution['status'], execution['cost'], execution['logs']) == ('PENDING', '0', [])
    assert execution['workflow']['creator']['id'] == created['user']['id']


def test_the_platforms_plain_create_organization_makes_an_owner_who_works_under_rls(
        npm_dir, database, db_url, api_for):
    """`prisma.organization.create({ data: { ..., memberships: { create: { userId, role:
    'OWNER' } } } })` as server code. Before migration 0008 it made an invitation: the owner
    saw no organization and could not create a workflow (42501)."""
    from hub import rls
    from hub.ids import new_id

    rls.install(database)
    generate(npm_dir, database)
    user = new_id()
    database.execute_sql("INSERT INTO users (id, email) VALUES (%s, %s)",
                         (user, user + '@prisma.example'))
    out = json.loads(node(npm_dir, str(HERE / 'create_organization.mjs'), db_url, user,
                          'platform-' + user).stdout)
    [membership] = out['memberships']
    assert (membership['userId'], membership['role']) == (user, 'OWNER')
    assert membership['acceptedAt'] is not None  # the database's default
    # The owner, signed in, as PostgREST runs their requests.
    api = api_for(db_url)
    assert api.run('SELECT id, name FROM organizations', user=user) == [
        (out['id'], 'Made by the platform')]
    assert api.run("INSERT INTO workflows (name, nodes, edges, organization_id, created_by) "
                   "VALUES ('First', '[]', '[]', %s, %s) RETURNING organization_id",
                   (out['id'], user), user=user) == [(out['id'],)]


def test_supabase_shaped_database_gives_the_same_schema_and_an_empty_diff(
        npm_dir, supabase_db_url, txn, tmp_path):
    from hub import connection
    from hub import migrate, rls

    database = connection.open_database(supabase_db_url)  # as its non-superuser owner
    try:
        migrate.migrate(database)
        rls.install(database)
        text = prisma.schema(database)
    finally:
        database.close()
    assert text == prisma.schema(txn)
    target = tmp_path / 'schema.prisma'
    target.write_text(text)
    result = diff(npm_dir, supabase_db_url, target)
    assert (result.returncode, result.stdout.strip()) == (0, '-- This is an empty migration.'), \
        result.stdout + result.stderr
