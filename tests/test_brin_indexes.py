"""Migration 0006: the standalone started_at indexes of the execution tables are BRIN, and one
workflow's executions have a (workflow_id, started_at) index instead of workflow_id alone.

Why (a b-tree on started_at alone let a tenant's unfiltered "latest 50" walk past every other
tenant's rows): hub/migrations/0006_started_at_indexes.py, docs/rls.md, benchmarks/bench_fleet.py.
"""
from hub import migrate

NAMES = ['%s_executions_started_at' % t for t in ('workflow', 'agent', 'team')]


def _indexes(database):
    """{name: (method, definition)} of the execution tables' started_at and workflow_id indexes."""
    rows = database.execute_sql("""
        SELECT c.relname, a.amname, pg_get_indexdef(c.oid) FROM pg_class c
        JOIN pg_am a ON a.oid = c.relam
        WHERE c.relname = ANY (%s)""", (NAMES + ['workflow_executions_workflow_id',
                                                 'workflow_executions_workflow_id_started_at'],))
    return {name: (method, definition) for name, method, definition in rows.fetchall()}


def test_0006_up_and_down(database):
    now = _indexes(database)
    assert {n: now[n][0] for n in NAMES} == {n: 'brin' for n in NAMES}
    assert now['workflow_executions_workflow_id_started_at'][1].endswith(
        'USING btree (workflow_id, started_at)')
    assert 'workflow_executions_workflow_id' not in now
    # Back through 0006 (later migrations go first).
    assert migrate.rollback(database, '0006')[-1] == '0006_started_at_indexes'
    before = _indexes(database)
    assert {n: before[n][0] for n in NAMES} == {n: 'btree' for n in NAMES}
    assert before['workflow_executions_workflow_id'][1].endswith('USING btree (workflow_id)')
    assert 'workflow_executions_workflow_id_started_at' not in before
    migrate.migrate(database)
    assert _indexes(database) == now
