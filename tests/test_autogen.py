"""`hub db generate`: each kind of difference it writes (applied, `hub db check` clean, and
up -> down -> up gives the same catalog), each kind it refuses to guess (a TODO in the file, a
warning, a guard that stops `hub db migrate`), and the cases where it writes nothing.

Every case runs on a copy of the project (tests/project.py) whose models are edited."""
import json
from pathlib import Path

import pytest

from tests.project import Project
from tests.test_migrations import ALL

DRIVER = Path(__file__).with_name('autogen_driver.py')

MODELS = 'hub/models.py'


@pytest.fixture
def project(tmp_path):
    return Project(tmp_path)


def change(project, url, edits, sql=()):
    """Edit the copy's models, and run `sql` on the database (a difference of its own)."""
    for old, new in edits:
        project.edit(MODELS, old, new)
    if sql:
        import psycopg2
        with psycopg2.connect(url) as conn, conn.cursor() as cur:
            for statement in sql:
                cur.execute(statement)
        conn.close()


def run(project, url, edits, sql=(), name='change'):
    change(project, url, edits, sql)
    result = project.script(url, DRIVER, name)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


WORKFLOW_VERSION = "    version = CharField(max_length=20, default='1.0.0')\n"
AGENT_STATUS = "    ERROR = 'ERROR'\n\n\nclass TeamStructure"

#: (id, edits of hub/models.py, SQL run on the database first, what UP must say, what DOWN must say)
HANDLED = [
    ('column_with_default',
     [(WORKFLOW_VERSION, WORKFLOW_VERSION + '    priority = IntegerField(default=0)\n')], (),
     ['ALTER TABLE public.workflows ADD COLUMN priority integer NOT NULL DEFAULT 0;'],
     ['ALTER TABLE public.workflows DROP COLUMN priority;']),
    ('nullable_foreign_key_column_with_index',
     [(WORKFLOW_VERSION, WORKFLOW_VERSION +
       "    reviewer = ForeignKeyField(User, null=True, column_name='reviewed_by',\n"
       "                               object_id_name='reviewed_by', on_delete='SET NULL')\n")], (),
     ['ALTER TABLE public.workflows ADD COLUMN reviewed_by text;',
      'CREATE INDEX CONCURRENTLY workflows_reviewed_by ON public.workflows (reviewed_by);',
      'ALTER TABLE public.workflows ADD CONSTRAINT workflows_reviewed_by_fkey FOREIGN KEY '
      '(reviewed_by) REFERENCES public.users (id) ON DELETE SET NULL;'],
     ['ALTER TABLE public.workflows DROP CONSTRAINT workflows_reviewed_by_fkey;',
      'DROP INDEX public.workflows_reviewed_by;']),
    ('dropped_column',
     [('    last_executed = DateTimeTZField(null=True)\n    template = ForeignKeyField(WorkflowTemplate',
       '    template = ForeignKeyField(WorkflowTemplate')], (),
     ['ALTER TABLE public.workflows DROP COLUMN last_executed;'],
     ['ALTER TABLE public.workflows ADD COLUMN last_executed timestamp with time zone;']),
    ('new_enum_type_and_column',
     [("class MemberRole(str, enum.Enum):",
       "class Urgency(str, enum.Enum):\n    LOW = 'LOW'\n    HIGH = 'HIGH'\n\n\n"
       "class MemberRole(str, enum.Enum):"),
      (WORKFLOW_VERSION, WORKFLOW_VERSION +
       "    urgency = PgEnumField(Urgency, 'urgency', default=Urgency.LOW)\n"),
      ("         'member_role': MemberRole}", "         'member_role': MemberRole, 'urgency': Urgency}")],
     (), ["CREATE TYPE public.urgency AS ENUM ('LOW', 'HIGH');",
          "ALTER TABLE public.workflows ADD COLUMN urgency urgency NOT NULL DEFAULT 'LOW';"],
     ['DROP TYPE public.urgency;']),
    ('label_used_by_a_default_in_the_same_migration',
     [(AGENT_STATUS, "    ERROR = 'ERROR'\n    PAUSED = 'PAUSED'\n\n\nclass TeamStructure"),
      ("    is_active = BooleanField(default=True, index=True)\n    status = PgEnumField(AgentStatus",
       "    is_active = BooleanField(default=True, index=True)\n"
       "    wanted = PgEnumField(AgentStatus, 'agent_status', default=AgentStatus.PAUSED)\n"
       "    status = PgEnumField(AgentStatus")], (),
     ["ALTER TABLE public.ai_agents ADD COLUMN wanted agent_status NOT NULL DEFAULT 'PAUSED';"],
     ['-- Enum labels stay (PostgreSQL cannot drop one): agent_status.PAUSED.']),
    ('nullable_to_not_null_with_default',
     [('    description = TextField(null=True)\n    nodes = JSONField()  # React Flow nodes',
       "    description = TextField(default='')\n    nodes = JSONField()  # React Flow nodes")], (),
     ["UPDATE public.workflows SET description = '' WHERE description IS NULL;\n"
      'ALTER TABLE public.workflows ALTER COLUMN description SET NOT NULL;'],
     ['ALTER TABLE public.workflows ALTER COLUMN description DROP NOT NULL;']),
    ('not_null_to_nullable',
     [(WORKFLOW_VERSION, "    version = CharField(max_length=20, default='1.0.0', null=True)\n")],
     (), ['ALTER TABLE public.workflows ALTER COLUMN version DROP NOT NULL;'],
     ['ALTER TABLE public.workflows ALTER COLUMN version SET NOT NULL;']),
    ('widened_type',
     [(WORKFLOW_VERSION, "    version = CharField(max_length=40, default='1.0.0')\n")], (),
     ['ALTER TABLE public.workflows ALTER COLUMN version TYPE character varying(40);'],
     ['ALTER TABLE public.workflows ALTER COLUMN version TYPE character varying(20);']),
    ('widened_to_bigint_and_new_types',
     [('    execution_count = IntegerField(default=0)\n    last_executed',
       '    execution_count = BigIntegerField(default=0)\n    due = DateField(null=True)\n'
       '    external_id = UUIDField(null=True, unique=True)\n    last_executed'),
      ('from peewee import (SQL, ', 'from peewee import (SQL, BigIntegerField, DateField, UUIDField, ')],
     (), ['ALTER TABLE public.workflows ALTER COLUMN execution_count TYPE bigint;',
          'ALTER TABLE public.workflows ADD COLUMN due date;',
          'ALTER TABLE public.workflows ADD COLUMN external_id uuid;',
          'CREATE UNIQUE INDEX CONCURRENTLY workflows_external_id ON public.workflows (external_id);'],
     ['ALTER TABLE public.workflows ALTER COLUMN execution_count TYPE integer;']),
    ('index_added_and_dropped',
     [('    is_active = BooleanField(default=True, index=True)\n    version',
       '    is_active = BooleanField(default=True)\n    version'),
      ("        indexes = ((('organization', 'id'), True), (('created_at',), False))",
       "        indexes = ((('organization', 'id'), True), (('created_at',), False),\n"
       "                   (('organization', 'name'), False))")], (),
     ['DROP INDEX CONCURRENTLY public.workflows_is_active;',
      'CREATE INDEX CONCURRENTLY workflows_organization_id_name ON public.workflows (organization_id, name);'],
     ['CREATE INDEX workflows_is_active ON public.workflows USING btree (is_active);']),
    ('unique_constraint_dropped',
     [('    slug = CharField(max_length=100, unique=True)', '    slug = CharField(max_length=100)')],
     (), ['ALTER TABLE public.organizations DROP CONSTRAINT organizations_slug_key;'],
     ['ALTER TABLE public.organizations ADD CONSTRAINT organizations_slug_key UNIQUE (slug);']),
    ('on_delete_changed',
     [("    template = ForeignKeyField(WorkflowTemplate, null=True, backref='workflows',\n"
       "                               on_delete='SET NULL')",
       "    template = ForeignKeyField(WorkflowTemplate, null=True, backref='workflows',\n"
       "                               on_delete='CASCADE')")], (),
     ['ALTER TABLE public.workflows DROP CONSTRAINT workflows_template_id_fkey;',
      'ALTER TABLE public.workflows ADD CONSTRAINT workflows_template_id_fkey FOREIGN KEY '
      '(template_id) REFERENCES public.workflow_templates (id) ON DELETE CASCADE;'],
     ['ALTER TABLE public.workflows ADD CONSTRAINT workflows_template_id_fkey FOREIGN KEY '
      '(template_id) REFERENCES workflow_templates(id) ON DELETE SET NULL;']),
    ('new_tenant_table_with_composite_key',
     [("\n#: Every model, parents before children",
       "\nclass WorkflowTag(BaseModel):\n"
       "    organization = ForeignKeyField(Organization, on_delete='CASCADE')\n"
       "    workflow = TenantForeignKey(Workflow, on_delete='CASCADE')\n"
       "    label = CharField(max_length=50, constraints=[SQL(\"CHECK (label ~ '^[a-z]+%?$')\")])\n"
       "    weight = DecimalField(max_digits=5, decimal_places=2, default=1)\n\n"
       "    class Meta:\n        table_name = 'workflow_tags'\n"
       "        indexes = ((('workflow', 'label'), True),)\n\n\n"
       "#: Every model, parents before children"),
      ("TeamExecution, Integration)", "TeamExecution, Integration, WorkflowTag)")], (),
     ['CREATE TABLE public.workflow_tags (\n'
      '    id text PRIMARY KEY DEFAULT public.hub_new_id(),\n'
      '    organization_id text NOT NULL REFERENCES public.organizations (id) ON DELETE CASCADE,\n'
      '    workflow_id text NOT NULL,\n'
      "    label character varying(50) NOT NULL CHECK (label ~ '^[a-z]+%%?$'),\n"
      '    weight numeric(5,2) NOT NULL DEFAULT 1\n);',
      'CREATE UNIQUE INDEX workflow_tags_workflow_id_label ON public.workflow_tags '
      '(workflow_id, label);\n'
      'ALTER TABLE public.workflow_tags ADD CONSTRAINT workflow_tags_organization_id_workflow_id_fkey\n'
      '    FOREIGN KEY (organization_id, workflow_id) REFERENCES public.workflows '
      '(organization_id, id) ON DELETE CASCADE;'],
     ['DROP TABLE public.workflow_tags;']),
]


@pytest.mark.parametrize('edits, sql, up, down', [case[1:] for case in HANDLED],
                         ids=[case[0] for case in HANDLED])
def test_generate_writes_applies_and_reverts(project, empty_db_url, edits, sql, up, down):
    assert project.hub(empty_db_url, 'db', 'migrate').returncode == 0
    out = run(project, empty_db_url, edits, sql)
    assert out['warnings'] == [] and 'TODO' not in out['source']
    source = out['source']
    for statement in up:
        assert statement in source.split('DOWN = r"""')[0].split('UP = r"""')[-1], statement
    for statement in down:
        assert statement in source.split('DOWN = r"""')[1], statement
    assert '\nimport' not in source and '\nfrom' not in source  # frozen SQL
    name = Path(out['path']).stem
    assert out['applied'] == [name] and out['check_up'] == []
    assert out['reverted'] == [name] and out['check_down'] != []
    assert out['reapplied'] == [name] and out['check_again'] == []
    assert out['up_again'] == out['up']  # up -> down -> up: the same catalog


def test_a_label_is_placed_where_the_models_have_it(project, empty_db_url):
    assert project.hub(empty_db_url, 'db', 'migrate').returncode == 0
    out = run(project, empty_db_url, [("    BUSY = 'BUSY'\n", "    BUSY = 'BUSY'\n    WAITING = 'WAITING'\n")])
    assert ("COMMIT_FIRST = r\"\"\"\nALTER TYPE public.agent_status ADD VALUE IF NOT EXISTS "
            "'WAITING' AFTER 'BUSY';\n\"\"\"") in out['source']
    assert 'def up(migrator, db):\n    pass  # nothing to do' in out['source']
    assert out['check_up'] == [] and out['check_again'] == []
    assert out['check_down'] == []  # down cannot take a label back: it stays, as the file says
    assert out['up_again'] == out['up'] == out['down']
    assert "'BUSY', 'WAITING', 'OFFLINE'" in ' '.join(out['up'][0].split()).replace('`', "'")


def test_a_new_column_keeps_old_inserts_working(project, empty_db_url):
    """The database default of a NOT NULL column: rows written without it (the seeder's COPY,
    code of the previous release) still go in."""
    assert project.hub(empty_db_url, 'db', 'migrate').returncode == 0
    run(project, empty_db_url, [(WORKFLOW_VERSION, WORKFLOW_VERSION + '    priority = IntegerField(default=0)\n')])
    result = project.hub(empty_db_url, 'seed', '--orgs', '1', '--scale', 'tiny',
                         env={'HUB_SECRET_KEY': 'GjCwG5Nj1cH4c5c9ZqZ0ajnRrjyYt5z8b9Lx4d2YfQM='})
    assert result.returncode == 0, result.stderr
    import psycopg2
    with psycopg2.connect(empty_db_url) as conn, conn.cursor() as cur:
        cur.execute('SELECT count(*), min(priority), max(priority) FROM workflows')
        count, low, high = cur.fetchone()
    conn.close()
    assert count > 0 and low == high == 0


#: (id, edits, SQL first, what the TODO says)
REFUSED = [
    ('renamed_column',
     [('    last_executed = DateTimeTZField(null=True)\n',
       '    last_run = DateTimeTZField(null=True)\n')], (),
     'workflows.last_executed is gone and last_run is new, of the same type (timestamp with '
     'time zone): if it is a rename, write ALTER TABLE public.workflows RENAME COLUMN '
     'last_executed TO last_run'),
    ('removed_label',
     [("    OFFLINE = 'OFFLINE'\n    ERROR = 'ERROR'\n\n\nclass TeamStructure",
       "    OFFLINE = 'OFFLINE'\n\n\nclass TeamStructure")], (),
     'enum agent_status: labels ERROR removed; PostgreSQL cannot drop or move a label'),
    ('reordered_labels',
     [("    IDLE = 'IDLE'\n    BUSY = 'BUSY'\n", "    BUSY = 'BUSY'\n    IDLE = 'IDLE'\n")], (),
     'enum agent_status: labels reordered (BUSY, IDLE, OFFLINE, ERROR)'),
    ('narrowed_type',
     [(WORKFLOW_VERSION, "    version = CharField(max_length=10, default='1.0.0')\n")], (),
     'workflows.version: type character varying(20) -> character varying(10) may not keep every '
     'value (narrowing or conversion)'),
    ('converted_type',
     [('    execution_count = IntegerField(default=0)\n    last_executed',
       '    execution_count = TextField(default=0)\n    last_executed')], (),
     'workflows.execution_count: type integer -> text may not keep every value'),
    ('table_the_models_lost', [], ['CREATE TABLE public.old_notes (id text PRIMARY KEY)'],
     'table old_notes is in the database but not in the models: if it was renamed, write ALTER '
     'TABLE public.old_notes RENAME TO <new name>'),
    ('enum_the_models_lost', [], ["CREATE TYPE public.mood AS ENUM ('HAPPY')"],
     'enum mood is in the database but not in the models'),
    ('not_null_without_a_database_default',
     [(WORKFLOW_VERSION, WORKFLOW_VERSION + '    owner_note = TextField()\n')], (),
     'workflows.owner_note is NOT NULL without a database default: adding it fails while the '
     'table has rows'),
]


@pytest.mark.parametrize('edits, sql, todo', [case[1:] for case in REFUSED],
                         ids=[case[0] for case in REFUSED])
def test_generate_refuses_to_guess(project, empty_db_url, edits, sql, todo):
    assert project.hub(empty_db_url, 'db', 'migrate').returncode == 0
    change(project, empty_db_url, edits, sql)
    result = project.hub(empty_db_url, 'db', 'generate', 'change')
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip())
    assert path.exists() and project.new_files() == [path]
    assert 'warning: %s: TODO: %s' % (path.name, todo) in ' '.join(result.stderr.split())
    source = path.read_text()
    assert '-- TODO: %s' % todo in ' '.join(source.split('UP = r"""')[1].split())
    # applying it is refused, in one line naming it, until the TODOs are written
    before = project.hub(empty_db_url, 'db', 'check').stdout
    result = project.hub(empty_db_url, 'db', 'migrate')
    assert result.returncode == 1
    assert result.stderr == ('Error: %s: its TODOs are not written yet: write them, then delete '
                             'the guard in up()\n' % path.stem)
    assert project.hub(empty_db_url, 'db', 'check').stdout == before


def test_a_rename_writes_neither_column(project, empty_db_url):
    assert project.hub(empty_db_url, 'db', 'migrate').returncode == 0
    project.edit(MODELS, '    last_executed = DateTimeTZField(null=True)\n',
                 '    last_run = DateTimeTZField(null=True)\n')
    result = project.hub(empty_db_url, 'db', 'generate', 'rename')
    up = Path(result.stdout.strip()).read_text().split('UP = r"""')[1].split('"""')[0]
    assert [l for l in up.splitlines() if l and not l.startswith('-- TODO')] == []


def test_no_difference_writes_nothing(project, empty_db_url):
    assert project.hub(empty_db_url, 'db', 'migrate').returncode == 0
    result = project.hub(empty_db_url, 'db', 'generate', 'nothing')
    assert result.returncode == 0 and result.stdout == ''
    assert result.stderr == 'no differences: the database matches hub.models; nothing written\n'
    assert project.new_files() == []


def test_generate_refuses_a_database_with_pending_migrations(project, empty_db_url):
    assert project.hub(empty_db_url, 'db', 'migrate', '0002').returncode == 0
    result = project.hub(empty_db_url, 'db', 'generate', 'early')
    assert result.returncode == 1
    assert result.stderr.startswith('Error: %d migrations are pending (%s, ' % (len(ALL) - 2, ALL[2]))
    assert result.stderr.endswith('run `hub db migrate` first, so the new migration starts '
                                  'where they end\n')
    assert project.new_files() == []


def test_generate_refuses_a_bad_name_before_reading_anything(project, empty_db_url):
    result = project.hub(empty_db_url, 'db', 'generate', 'Bad-Name')
    assert result.returncode == 2 and "invalid migration name 'Bad-Name'" in result.stderr
    assert project.new_files() == []


def test_reset_applies_a_label_and_its_first_use_in_separate_transactions(project, empty_db_url):
    """`hub db reset` is one transaction up to the first file with COMMIT_FIRST; from there on
    one per migration, or the default 'PAUSED' would be an unsafe use of a new label."""
    assert project.hub(empty_db_url, 'db', 'migrate').returncode == 0
    edits, sql = next(case[1:3] for case in HANDLED
                      if case[0] == 'label_used_by_a_default_in_the_same_migration')
    change(project, empty_db_url, edits, sql)
    path = Path(project.hub(empty_db_url, 'db', 'generate', 'paused').stdout.strip())
    assert project.hub(empty_db_url, 'db', 'migrate').returncode == 0
    result = project.hub(empty_db_url, 'db', 'reset', '-y')
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == 'applied %s' % path.stem
    assert project.hub(empty_db_url, 'db', 'check').returncode == 0


def test_policies_are_left_to_rls_install(project, empty_db_url):
    assert project.hub(empty_db_url, 'db', 'migrate').returncode == 0
    assert project.hub(empty_db_url, 'rls', 'install').returncode == 0
    change(project, empty_db_url, [], ['DROP POLICY hub_select ON public.workflows'])
    result = project.hub(empty_db_url, 'db', 'generate', 'policies')
    assert result.returncode == 0 and result.stdout == ''
    assert result.stderr == ('no differences: the database matches hub.models; nothing written\n'
                             'the row-level-security policies differ from hub.rls: run `hub rls '
                             'install`\n')
    assert project.new_files() == []
