"""Migrations: apply, revert, reapply to the same schema, fail cleanly, run concurrently."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from hub import connection
from hub import migrate, schema
from hub.errors import ConfigError, MigrationError

#: Every migration file, in order: what a fresh database gets.
ALL = [p.stem for p in sorted(migrate.MIGRATIONS_DIR.glob('[0-9][0-9][0-9][0-9]_*.py'))]


def catalog_dump(database):
    """Everything of ours the catalogs know: tables, columns, defaults, keys, indexes,
    checks, triggers, enums (hub.schema.docs) plus our functions and the history table."""
    functions = database.execute_sql("""
        SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' ORDER BY 1""").fetchall()
    return schema.docs(database), functions


def our_objects(database):
    return database.execute_sql("""
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relname !~ '^hub_migrations'
        UNION ALL
        SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = 'public' AND t.typtype = 'e'
        UNION ALL
        SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public'""").fetchall()


def test_migrate_applies_everything_once(empty_database):
    assert migrate.pending(empty_database) == ALL
    assert migrate.migrate(empty_database) == ALL
    assert migrate.migrate(empty_database) == []
    assert migrate.pending(empty_database) == []
    assert schema.check(empty_database) == []


def test_up_down_up_gives_the_same_schema(empty_database):
    migrate.migrate(empty_database)
    first = catalog_dump(empty_database)
    assert migrate.rollback(empty_database, all=True) == ALL[::-1]
    assert our_objects(empty_database) == []  # down leaves nothing of ours behind
    migrate.migrate(empty_database)
    assert catalog_dump(empty_database) == first


def test_targets_by_name_or_number(empty_database):
    assert migrate.migrate(empty_database, '1') == ['0001_initial']
    assert migrate.rollback(empty_database, '0001_initial') == ['0001_initial']
    assert migrate.migrate(empty_database, '0001') == ['0001_initial']


def test_unknown_target_is_a_usage_error(empty_database):
    with pytest.raises(ConfigError, match="unknown migration '0042_nope'"):
        migrate.migrate(empty_database, '0042_nope')
    assert migrate.pending(empty_database) == ALL


def test_rollback_with_nothing_applied(empty_database):
    with pytest.raises(MigrationError, match='nothing to roll back'):
        migrate.rollback(empty_database)


def test_reset_rebuilds_from_scratch(database):
    database.execute_sql("INSERT INTO organizations (id, name, slug) VALUES ('o1', 'Acme', 'acme')")
    database.execute_sql('ALTER TABLE workflows DROP COLUMN tags')
    assert migrate.reset(database) == ALL
    assert schema.check(database) == []
    assert database.execute_sql('SELECT count(*) FROM organizations').fetchone()[0] == 0


def test_a_failing_migration_leaves_nothing_behind(empty_database, tmp_path):
    for name in ALL:
        shutil.copy(migrate.MIGRATIONS_DIR / ('%s.py' % name), tmp_path)
    broken = '%04d_broken' % (int(ALL[-1][:4]) + 1)
    (tmp_path / ('%s.py' % broken)).write_text(
        'def up(migrator, db):\n'
        '    db.execute_sql("CREATE TABLE half_done (id int)")\n'
        '    db.execute_sql("ALTER TABLE workflows ADD COLUMN x no_such_type")\n')
    with pytest.raises(MigrationError, match='%s failed and was rolled back: .*no_such_type' % broken):
        migrate.migrate(empty_database, directory=tmp_path)
    # The real ones committed each on its own; the broken one left no table and no history row.
    assert migrate.pending(empty_database, directory=tmp_path) == [broken]
    assert empty_database.execute_sql("SELECT to_regclass('half_done')").fetchone()[0] is None
    assert schema.check(empty_database) == []


def test_concurrent_migrate_runs_apply_each_migration_once(empty_db_url):
    env = dict(os.environ, DATABASE_URL=empty_db_url)
    procs = [subprocess.Popen([sys.executable, '-m', 'hub', 'db', 'migrate'], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    assert [code for code, _, _ in results] == [0, 0, 0, 0], results
    applied = [line for _, out, _ in results for line in out.splitlines()]
    assert sorted(applied) == ['applied %s' % name for name in ALL]
    database = connection.open_database(empty_db_url)
    try:
        rows = database.execute_sql('SELECT name FROM hub_migrations ORDER BY name').fetchall()
        assert rows == [(name,) for name in ALL]
        assert schema.check(database) == []
    finally:
        database.close()


def test_0005_renames_stored_output_nodes_to_end_and_back(empty_database):
    from tests.rows import make_tenant

    migrate.migrate(empty_database, '0004')
    ids = make_tenant(empty_database, 'acme')
    old = [{'id': 't', 'type': 'trigger', 'data': {'label': 'Start'}},
           {'id': 'o', 'type': 'output', 'data': {'label': 'Done', 'type': 'output'}}]
    empty_database.execute_sql('UPDATE workflows SET nodes = %s WHERE id = %s',
                               (json.dumps(old), ids['workflow']))

    def stored():
        return empty_database.execute_sql('SELECT nodes FROM workflows WHERE id = %s',
                                          (ids['workflow'],)).fetchone()[0]
    migrate.migrate(empty_database, '0005')
    new = stored()
    assert [n['type'] for n in new] == ['trigger', 'end']
    assert new[1]['data'] == {'label': 'Done', 'type': 'output'}   # only the node's own type
    migrate.rollback(empty_database, '0005')
    assert stored() == old
