"""`hub db check` finds every kind of drift; docs/schema.md matches the live schema."""
from pathlib import Path

import pytest

from hub import rls, schema

DOCS = Path(__file__).resolve().parents[1] / 'docs' / 'schema.md'


def test_fresh_database_has_no_drift(txn):
    assert schema.check(txn) == []


@pytest.mark.parametrize('ddl, expected', [
    ('ALTER TABLE workflows DROP COLUMN tags',
     ['workflows.tags: column is missing from the database (models: text[])']),
    ('ALTER TABLE workflows ADD COLUMN color text',
     ['workflows.color: column is in the database (text) but not in the models']),
    ('ALTER TABLE ai_agents ALTER COLUMN name TYPE varchar(200)',
     ['ai_agents.name: type is character varying(200) in the database, '
      'character varying(100) in the models']),
    ('ALTER TABLE integrations ALTER COLUMN provider DROP NOT NULL',
     ['integrations.provider: nullable in the database, NOT NULL in the models']),
    ("ALTER TYPE agent_status ADD VALUE 'SLEEPING'",
     ['enum agent_status: labels are IDLE, BUSY, OFFLINE, ERROR, SLEEPING in the database, '
      'IDLE, BUSY, OFFLINE, ERROR in the models']),
    ("CREATE TYPE mood AS ENUM ('happy')",
     ['enum mood is in the database but not in the models']),
    ('DROP INDEX workflow_executions_organization_id_started_at',
     ['workflow_executions: index (organization_id, started_at) is missing from the database']),
    ('CREATE INDEX extra ON workflows (name)',
     ['workflows: index (name) is in the database but not in the models']),
    ('ALTER TABLE team_members DROP CONSTRAINT team_members_organization_id_agent_id_fkey',
     ['team_members: foreign key (organization_id, agent_id) -> ai_agents (organization_id, id) '
      'ON DELETE CASCADE is missing from the database']),
    ('CREATE TABLE notes (id text)',
     ['table notes is in the database but not in the models']),
    ('DROP TABLE integrations',
     ['table integrations is missing from the database']),
])
def test_check_reports_exactly_the_drift(txn, ddl, expected):
    txn.execute_sql(ddl)
    assert schema.check(txn) == expected


def test_check_sees_a_changed_on_delete_action(txn):
    txn.execute_sql("""
        ALTER TABLE agent_executions
            DROP CONSTRAINT agent_executions_organization_id_workflow_execution_id_fkey,
            ADD FOREIGN KEY (organization_id, workflow_execution_id)
                REFERENCES workflow_executions (organization_id, id) ON DELETE SET NULL""")
    diffs = schema.check(txn)
    assert len(diffs) == 2
    assert 'ON DELETE SET NULL (workflow_execution_id) is missing' in diffs[0]
    assert 'ON DELETE SET NULL is in the database but not in the models' in diffs[1]


def test_committed_docs_are_current(database):
    rls.install(database)  # the committed docs include the policies
    current = schema.docs(database)
    assert DOCS.exists(), 'docs/schema.md is missing: run hub db docs -o docs/schema.md'
    assert DOCS.read_text() == current, (
        'docs/schema.md is stale: run `hub db migrate && hub rls install && hub db docs -o docs/schema.md`')


def test_docs_describe_every_table_enum_and_relation(txn):
    text = schema.docs(txn)
    assert '```mermaid\nerDiagram' in text
    for table in schema.live_tables(txn):
        assert '\n## %s\n' % table in text
    for name in schema.live_enums(txn):
        assert '`%s`' % name in text
    assert 'workflow_executions |o--o{ agent_executions : "organization_id, workflow_execution_id"' in text
    assert 'ON DELETE SET NULL (workflow_execution_id)' in text
