"""The worked example of docs/migrations.md, performed on a copy of the project: a column on
Workflow, a label on AgentStatus and a tenant table workflow_notes, through `hub db generate`,
`hub db migrate`, `hub rls install`, `hub db check`, `hub rls status`, `hub rls verify`,
`hub seed`, `hub db rollback` and back.

The file `hub db generate` writes is the one docs/migrations.md shows, byte for byte."""
import re
from pathlib import Path

import psycopg2
import pytest

from tests.project import ROOT, Project

KEY = 'GjCwG5Nj1cH4c5c9ZqZ0ajnRrjyYt5z8b9Lx4d2YfQM='
GUIDE = ROOT / 'docs' / 'migrations.md'

def edit_models(project):
    """Step 1 of the guide: the changes to hub/models.py (the new model is the guide's)."""
    guide = GUIDE.read_text()
    project.edit('hub/models.py', "    version = CharField(max_length=20, default='1.0.0')\n",
                 "    version = CharField(max_length=20, default='1.0.0')\n"
                 "    priority = IntegerField(default=0)  # lower runs first\n")
    project.edit('hub/models.py', "    ERROR = 'ERROR'\n\n\nclass TeamStructure",
                 "    ERROR = 'ERROR'\n    PAUSED = 'PAUSED'\n\n\nclass TeamStructure")
    note = _block(guide, 'class WorkflowNote')
    project.edit('hub/models.py', '\n#: Every model, parents before children',
                 '\n%s\n\n#: Every model, parents before children' % note)
    project.edit('hub/models.py', 'TeamExecution, Integration)',
                 'TeamExecution, Integration, WorkflowNote)')
    project.edit('hub/models.py', 'from peewee import (SQL, ', 'from peewee import (SQL, Check, ')


def _block(text, starts):
    """The fenced code block of the guide whose first line starts with `starts`."""
    for block in re.findall(r'```(?:python|sql|sh)?\n(.*?)```', text, re.S):
        if block.startswith(starts):
            return block
    raise AssertionError('docs/migrations.md has no code block starting with %r' % starts)


def query(url, sql):
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql)
        rows = cur.fetchall()
    conn.close()
    return rows


@pytest.fixture
def example(tmp_path, empty_db_url):
    """The copy, migrated as the checkout is, with the models edited and the file generated."""
    project = Project(tmp_path)
    assert project.hub(empty_db_url, 'db', 'migrate').returncode == 0
    edit_models(project)
    result = project.hub(empty_db_url, 'db', 'check')
    assert result.returncode == 1 and 'table workflow_notes is missing' in result.stdout
    result = project.hub(empty_db_url, 'db', 'generate', 'workflow_notes')
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip())
    assert project.new_files() == [path] and 'warning' not in result.stderr
    return project, empty_db_url, path


def test_the_worked_example(example):
    project, url, path = example
    # the file is the one the guide shows
    assert _block(GUIDE.read_text(), '"""Workflow notes.') == path.read_text()

    result = project.hub(url, 'db', 'migrate')
    assert result.stdout == 'applied %s\n' % path.stem, result.stderr
    assert project.hub(url, 'rls', 'install').returncode == 0
    result = project.hub(url, 'db', 'check')
    assert result.returncode == 0, result.stdout
    assert result.stderr == 'no differences: the database matches hub.models\n'
    assert project.hub(url, 'db', 'status').returncode == 0
    # row-level security follows the models: the new tenant table is secured and isolated
    result = project.hub(url, 'rls', 'status')
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r'^workflow_notes +on ', result.stdout, re.M), result.stdout
    result = project.hub(url, 'rls', 'verify')
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'workflow_notes' in result.stdout and result.stderr.endswith(' cases, no leaks\n')

    # the seeder still works, and the new column has its database default in every row
    result = project.hub(url, 'seed', '--orgs', '2', '--scale', 'tiny', env={'HUB_SECRET_KEY': KEY})
    assert result.returncode == 0, result.stderr
    assert query(url, 'SELECT count(*) > 0, min(priority), max(priority) FROM workflows') == [
        (True, 0, 0)]
    assert query(url, 'SELECT count(*) FROM workflow_notes') == [(0,)]
    # the new table works: id and timestamps from the database, the composite key holds
    org, workflow, user = query(url, 'SELECT organization_id, id, created_by FROM workflows '
                                     'ORDER BY id LIMIT 1')[0]
    query(url, "INSERT INTO workflow_notes (organization_id, workflow_id, body, created_by) "
               "VALUES ('%s', '%s', 'ship it', '%s') RETURNING id" % (org, workflow, user))
    other = query(url, "SELECT id FROM organizations WHERE id <> '%s' LIMIT 1" % org)[0][0]
    with pytest.raises(psycopg2.errors.ForeignKeyViolation):
        query(url, "INSERT INTO workflow_notes (organization_id, workflow_id, body, created_by) "
                   "VALUES ('%s', '%s', 'cross-tenant', '%s') RETURNING id" % (other, workflow, user))
    with pytest.raises(psycopg2.errors.CheckViolation):
        query(url, "INSERT INTO workflow_notes (organization_id, workflow_id, body, created_by) "
                   "VALUES ('%s', '%s', '  ', '%s') RETURNING id" % (org, workflow, user))
    query(url, "UPDATE agent_executions SET status = status RETURNING id")  # the label is usable
    query(url, "UPDATE ai_agents SET status = 'PAUSED' WHERE id = (SELECT min(id) FROM ai_agents) "
               "RETURNING id")

    # rollback: the difference is back; migrate again: clean, and the same catalog
    schema = project.hub(url, 'db', 'docs').stdout
    assert '## workflow_notes' in schema
    result = project.hub(url, 'db', 'rollback', '-y')
    assert result.stdout == 'reverted %s\n' % path.stem, result.stderr
    result = project.hub(url, 'db', 'check')
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[:2] == ['workflows.priority: column is missing from the database (models: '
                         'integer)', 'table workflow_notes is missing from the database']
    # once policies follow the models, the table's are missing too (RLS is installed)
    assert all(line.startswith('workflow_notes: policy ') for line in lines[2:]), lines
    assert project.hub(url, 'db', 'migrate').stdout == 'applied %s\n' % path.stem
    assert project.hub(url, 'rls', 'install').returncode == 0
    assert project.hub(url, 'db', 'check').returncode == 0
    assert project.hub(url, 'db', 'docs').stdout == schema
    assert project.hub(url, 'seed', '--orgs', '2', '--scale', 'tiny',
                       env={'HUB_SECRET_KEY': KEY}).returncode == 0
