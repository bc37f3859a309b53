"""hub on a Citus cluster (a coordinator and two workers: tools/citus_cluster.sh).

Every test here runs against $HUB_CITUS_URL; without it they skip, unless HUB_REQUIRE_CITUS=1
(CI), where they may not. A Citus database costs ~10 s to make: the tests that only read share
the session's `citus_hub_url` (migrated and distributed by `hub db migrate`).
"""
import contextlib
import re

import psycopg2
import pytest

from hub import citus, connection, schema
from tests.test_prisma import npm_dir  # noqa: F401  (the fixture)

TENANT = ['agent_executions', 'agent_teams', 'ai_agents', 'integrations', 'team_executions',
          'team_members', 'workflow_executions', 'workflows']
REFERENCE = ['organization_members', 'organizations', 'users', 'workflow_templates']


@contextlib.contextmanager
def opened(url):
    database = connection.open_database(url)
    try:
        yield database
    finally:
        database.close()


def rows(url, sql, params=()):
    with contextlib.closing(psycopg2.connect(url)) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def test_a_citus_database_has_the_extension_and_its_workers_on_every_node(citus_databases,
                                                                         citus_db_url):
    coordinator, workers = citus_databases.nodes()
    with contextlib.closing(psycopg2.connect(citus_db_url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_dist_node WHERE groupid <> 0 AND isactive")
        assert cur.fetchone()[0] == len(workers) >= 2
        cur.execute("SELECT result FROM run_command_on_workers("
                    "$$SELECT extversion FROM pg_extension WHERE extname = 'citus'$$)")
        versions = {row[0] for row in cur.fetchall()}
    assert len(versions) == 1 and versions != {''}


def test_enabled_tells_a_citus_database_from_a_single_node(citus_hub_url, db_url):
    for url, expected in ((citus_hub_url, True), (db_url, False)):
        with opened(url) as database:
            assert citus.enabled(database) is expected


def test_migrate_distributes_the_tenant_tables_and_makes_the_others_reference_tables(
        citus_hub_url):
    found = dict(rows(citus_hub_url, """
        SELECT table_name::text, citus_table_type || coalesce(':' || distribution_column, '')
        FROM citus_tables"""))
    assert found == dict([(t, 'distributed:organization_id') for t in TENANT]
                         + [(t, 'reference:<none>') for t in REFERENCE])
    # colocated: one group for every tenant table
    groups = rows(citus_hub_url, """
        SELECT count(DISTINCT colocation_id) FROM citus_tables
        WHERE citus_table_type = 'distributed'""")
    assert groups == [(1,)]
    # hub's history stays a plain table of the coordinator
    assert rows(citus_hub_url, "SELECT count(*) FROM pg_dist_partition "
                               "WHERE logicalrelid = 'public.hub_migrations'::regclass") == [(0,)]


def test_every_tenant_key_holds_the_distribution_column(citus_hub_url):
    keys = rows(citus_hub_url, """
        SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid)
        FROM pg_constraint WHERE connamespace = 'public'::regnamespace
          AND contype IN ('p', 'u') AND conrelid::regclass::text = ANY (%s)
        ORDER BY 1, 2""", (TENANT,))
    for table, name, kind, definition in keys:
        assert definition.startswith(('PRIMARY KEY (organization_id, ', 'UNIQUE (organization_id, ')), \
            (table, name, definition)
    assert ('team_members', 'team_members_team_id_agent_id_key', 'u',
            'UNIQUE (organization_id, team_id, agent_id)') in keys
    assert {t for t, _, kind, _ in keys if kind == 'p'} == set(TENANT)
    fks = dict(rows(citus_hub_url, """
        SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
        WHERE contype = 'f' AND connamespace = 'public'::regnamespace"""))
    assert fks['agent_executions_organization_id_workflow_execution_id_fkey'] == (
        'FOREIGN KEY (organization_id, workflow_execution_id) '
        'REFERENCES workflow_executions(organization_id, id)')
    assert fks['team_members_organization_id_team_id_fkey'].startswith(
        'FOREIGN KEY (organization_id, team_id) REFERENCES agent_teams(organization_id, id)')


def test_distribute_has_nothing_left_to_do_after_migrate(citus_hub_url):
    with opened(citus_hub_url) as database:
        assert citus.plan(database) == []
        assert citus.distribute(database) == []


def test_db_check_is_clean_on_citus_and_still_reports_a_real_drift(citus_hub_url):
    with opened(citus_hub_url) as database, database.atomic() as transaction:
        assert schema.check(database) == []
        citus.prepare(database)
        database.execute_sql('ALTER TABLE public.workflows ADD COLUMN priority integer')
        database.execute_sql('CREATE INDEX workflows_priority ON public.workflows (priority)')
        assert schema.check(database) == [
            'workflows.priority: column is in the database (integer) but not in the models',
            'workflows: index (priority) is in the database but not in the models']
        transaction.rollback()


def _hub(url, *args):
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, '-m', 'hub', *args], capture_output=True, text=True,
                          env=dict(os.environ, DATABASE_URL=url), timeout=600)


def test_distribute_a_database_migrated_before_citus_then_its_triggers_and_a_rollback(
        citus_db_url):
    from hub import lifecycle, migrate, rls

    with opened(citus_db_url) as database:  # as an older hub, or before Citus, migrated it
        migrate.migrate(database, secure=rls.sync)
        assert citus.state(database) == {}
    undistributed = _hub(citus_db_url, 'db', 'check')  # drift there, until distributed
    assert undistributed.returncode == 1
    assert ('workflows: a local table on Citus, hub makes it a distributed table; run `hub db '
            'distribute`') in undistributed.stdout.splitlines()
    assert ('users: a local table on Citus, hub makes it a reference table; run `hub db '
            'distribute`') in undistributed.stdout.splitlines()
    first = _hub(citus_db_url, 'db', 'distribute')
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert 'table organizations: reference table (a copy on every node)' in lines
    assert 'table organization_members: reference table (a copy on every node)' in lines
    assert ('table ai_agents: distributed by organization_id, colocated with '
            'workflows') in lines
    assert any(line.startswith('foreign key agent_executions_organization_id_workflow_execution'
                               '_id_fkey: ON DELETE SET NULL (workflow_execution_id) by trigger')
               for line in lines)
    again = _hub(citus_db_url, 'db', 'distribute')
    assert (again.returncode, again.stdout) == (0, ''), again.stderr
    assert 'nothing to distribute' in again.stderr
    checked = _hub(citus_db_url, 'db', 'check')
    assert checked.returncode == 0, checked.stdout + checked.stderr
    status = _hub(citus_db_url, 'db', 'status')
    assert status.returncode == 0, status.stdout + status.stderr

    # ON DELETE SET NULL (workflow_execution_id), by the trigger: the agent execution stays
    with contextlib.closing(psycopg2.connect(citus_db_url)) as conn:
        with conn, conn.cursor() as cur:
            cur.execute("""
                INSERT INTO users (id, email) VALUES ('u1', 'u1@example.com');
                INSERT INTO organizations (id, name, slug) VALUES ('o1', 'One', 'one');
                INSERT INTO organization_members (organization_id, user_id, role, accepted_at)
                    VALUES ('o1', 'u1', 'OWNER', '2025-01-31 12:00+00');
                INSERT INTO workflows (id, organization_id, created_by, name, nodes, edges)
                    VALUES ('w1', 'o1', 'u1', 'W', '[]', '[]');
                INSERT INTO ai_agents (id, organization_id, created_by, name, personality,
                                       model_config, memory)
                    VALUES ('a1', 'o1', 'u1', 'A', '{}', '{}', '{}');
                INSERT INTO workflow_executions (id, organization_id, workflow_id)
                    VALUES ('e1', 'o1', 'w1');
                INSERT INTO agent_executions (id, organization_id, agent_id,
                                              workflow_execution_id, task, input)
                    VALUES ('x1', 'o1', 'a1', 'e1', 't', '{}')""")
        with conn, conn.cursor() as cur:
            cur.execute("DELETE FROM workflow_executions WHERE organization_id = 'o1'")
            cur.execute("SELECT id, workflow_execution_id FROM agent_executions")
            assert cur.fetchall() == [('x1', None)]
        # updated_at on reference tables: one value on every copy (coordinator and workers)
        for table, key in (('users', 'u1'), ('organizations', 'o1')):
            with conn, conn.cursor() as cur:
                cur.execute("UPDATE %s SET name = 'Renamed' WHERE id = %%s" % table, (key,))
            with conn, conn.cursor() as cur:
                cur.execute("SELECT nodeport, result FROM run_command_on_all_nodes("
                            "$$SELECT updated_at::text FROM %s WHERE id = '%s'$$) "
                            "JOIN pg_dist_node USING (nodeid)" % (table, key))
                copies = dict(cur.fetchall())
            assert len(copies) == 3 and len(set(copies.values())) == 1, (table, copies)
        # the OWNER check runs on the shard (a worker): the last OWNER cannot leave
        with conn.cursor() as cur:
            with pytest.raises(psycopg2.errors.CheckViolation, match='without an OWNER'):
                cur.execute("DELETE FROM organization_members WHERE organization_id = 'o1'")
        conn.rollback()

    # rollback and reset on Citus: everything goes, and comes back distributed
    with opened(citus_db_url) as database:
        reverted = lifecycle.rollback(database, all=True)
        assert reverted[-1] == '0001_initial'
        assert citus.state(database) == {}
        assert database.execute_sql(
            "SELECT count(*) FROM pg_proc WHERE proname LIKE 'hub_citus%%'").fetchone() == (0,)
        lifecycle.migrate_database(database)
        lifecycle.reset(database)
        assert set(citus.state(database)) == set(TENANT + REFERENCE)
        assert schema.check(database) == []


def test_memberships_distributed_by_an_earlier_hub_become_a_reference_table(citus_db_url,
                                                                           monkeypatch):
    from hub import lifecycle

    with opened(citus_db_url) as database:
        # Placed as the hub before this one placed it: organization_members distributed.
        monkeypatch.setattr(citus, 'REPLICATED', ())
        lifecycle.migrate_database(database)
        assert citus.state(database)['organization_members'] == 'distributed'
        monkeypatch.undo()
        assert ('organization_members: a distributed table on Citus, hub makes it a reference '
                'table; run `hub db distribute`') in schema.check(database)
        lines = citus.distribute(database)
        assert 'table organization_members: reference table (a copy on every node)' in lines
        assert ('table organization_members: trigger organization_members_consent calls '
                'hub_citus_membership_consent(), hub_membership_consent() with the distributed '
                "transaction's timestamp for now() (one value on every copy)") in lines
        assert set(citus.state(database)) == set(TENANT + REFERENCE)
        assert citus.state(database)['organization_members'] == 'reference'
        assert schema.check(database) == []  # its single-node keys are back
        assert citus.plan(database) == []
    keys = dict(rows(citus_db_url, """
        SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
        WHERE conrelid = 'public.organization_members'::regclass AND contype IN ('p', 'u')"""))
    assert keys['organization_members_pkey'] == 'PRIMARY KEY (id)'


def test_a_generated_migration_adding_a_tenant_table_distributes_it_with_its_siblings(
        citus_db_url, tmp_path):
    import json

    from tests.project import Project
    from tests.test_autogen import DRIVER, HANDLED, change

    project = Project(tmp_path)
    assert project.hub(citus_db_url, 'db', 'migrate').returncode == 0
    secured = project.hub(citus_db_url, 'rls', 'install')  # its policies follow the new table
    assert secured.returncode == 0, secured.stderr
    edits = dict((case[0], case[1]) for case in HANDLED)['new_tenant_table_with_composite_key']
    change(project, citus_db_url, edits)
    result = project.script(citus_db_url, DRIVER, 'workflow_tags')
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out['warnings'] == []
    assert out['check_up'] == [] and out['check_again'] == [], out
    assert out['reverted'] and out['check_down'] != []
    placed = rows(citus_db_url, """
        SELECT logicalrelid::text, colocationid, partmethod FROM pg_dist_partition
        WHERE logicalrelid IN ('public.workflow_tags'::regclass, 'public.workflows'::regclass)""")
    assert len(placed) == 2 and len({(c, m) for _, c, m in placed}) == 1, placed
    keys = dict(rows(citus_db_url, """
        SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
        WHERE conrelid = 'public.workflow_tags'::regclass AND contype IN ('p', 'f')"""))
    assert keys['workflow_tags_pkey'] == 'PRIMARY KEY (organization_id, id)'
    assert keys['workflow_tags_organization_id_workflow_id_fkey'].startswith(
        'FOREIGN KEY (organization_id, workflow_id) REFERENCES workflows(organization_id, id)')
    # later DDL on distributed tables: a column and an index, through `hub db migrate`
    project.migrations.joinpath('0099_priority.py').write_text(
        'UP = """ALTER TABLE public.workflow_tags ADD COLUMN priority integer;\n'
        'CREATE INDEX workflow_tags_priority ON public.workflow_tags (priority);\n'
        'ALTER TABLE public.workflows ADD COLUMN priority integer;"""\n'
        'DOWN = """ALTER TABLE public.workflows DROP COLUMN priority;\n'
        'ALTER TABLE public.workflow_tags DROP COLUMN priority;"""\n\n\n'
        'def up(migrator, db):\n    db.execute_sql(UP)\n\n\n'
        'def down(migrator, db):\n    db.execute_sql(DOWN)\n')
    migrated = project.hub(citus_db_url, 'db', 'migrate')
    assert migrated.returncode == 0, migrated.stderr
    reverted = project.hub(citus_db_url, 'db', 'rollback')
    assert reverted.returncode == 0, reverted.stderr
    for args in (('db', 'check'), ('rls', 'status')):
        done = project.hub(citus_db_url, *args)
        assert done.returncode == 0, (args, done.stdout, done.stderr)


def test_prisma_on_citus_keys_tenant_models_by_organization_and_id_and_diffs_empty(
        citus_hub_url, tmp_path):
    from hub import prisma

    with opened(citus_hub_url) as database:
        text = prisma.schema(database)
    models = dict(re.findall(r'\nmodel (\w+) \{\n(.*?)\n\}', text, re.S))
    assert '@@id([organizationId, id])' in models['Workflow']
    assert not re.search(r'^  id .*@id\b', models['Workflow'], re.M)
    assert re.search(r'^  id .*@id\b', models['Organization'], re.M)  # a reference table
    assert ('@@unique([organizationId, teamId, agentId], map: '
            '"team_members_team_id_agent_id_key")') in models['TeamMember']


def test_prisma_validates_the_citus_schema_and_its_diff_is_empty(citus_hub_url, tmp_path,
                                                                npm_dir):
    from hub import prisma
    from tests.test_prisma import diff, generate

    with opened(citus_hub_url) as database:
        validated = generate(npm_dir, database)
        assert 'is valid' in validated.stdout
        target = tmp_path / 'schema.prisma'
        target.write_text(prisma.schema(database))
    result = diff(npm_dir, citus_hub_url, target)
    assert (result.returncode, result.stdout.strip()) == (0, '-- This is an empty migration.'), \
        result.stdout + result.stderr


def test_distribute_refuses_a_database_without_citus_in_one_line(db_url):
    result = _hub(db_url, 'db', 'distribute')
    assert result.returncode == 2 and result.stdout == ''
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and 'has no citus extension' in lines[0], result.stderr
    assert 'CREATE EXTENSION citus' in lines[0] and 'Traceback' not in result.stderr
    with opened(db_url) as database:  # and nothing of Citus was made on the single node
        assert citus.plan(database) == []
        assert database.execute_sql(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conname = 'workflows_pkey'").fetchone() == ('PRIMARY KEY (id)',)


def test_a_reference_tables_trigger_reads_one_clock_on_every_copy_or_is_refused():
    """What distribute makes of a trigger function of a reference table (no cluster needed):
    the transaction's clock becomes the distributed transaction's stamp, in a copy of its own;
    a value that differs per copy (random(), clock_timestamp()) is refused with one line."""
    from hub.errors import MigrationError

    function = ('CREATE OR REPLACE FUNCTION public.hub_stamp()\n RETURNS trigger\n LANGUAGE '
                'plpgsql\nAS $function$\nBEGIN\n    NEW.seen_at := %s;\n    RETURN NEW;\nEND\n'
                '$function$\n')
    copy = citus._stamped(function % 'pg_catalog.now()', 'hub_stamp', 'notes')
    assert copy == function.replace('public.hub_stamp()', 'public.hub_citus_stamp()') % (
        citus.STAMP)
    assert citus._stamped(function % 'CURRENT_TIMESTAMP', 'hub_stamp', 'notes') == copy
    assert citus._stamped(function % "'2025-01-31'", 'hub_stamp', 'notes') is None
    for call in ('clock_timestamp()', 'pg_catalog.random()', 'gen_random_uuid()'):
        with pytest.raises(MigrationError) as refused:
            citus._stamped(function % call, 'hub_stamp', 'notes')
        assert str(refused.value).startswith(
            'trigger function hub_stamp() of reference table notes calls %s(), which gives each '
            "of the table's copies" % call.split('(')[0].rpartition('.')[2])
