"""Migration 0006: the standalone started_at indexes of the execution tables are BRIN.

Why (a b-tree on started_at alone let a tenant's unfiltered "latest 50" walk past every other
tenant's rows): hub/migrations/0006_brin_started_at.py, docs/rls.md, benchmarks/bench_fleet.py.
"""
from hub import migrate


def test_the_started_at_indexes_are_brin_and_down_restores_the_b_trees(database):
    def methods():
        return dict(database.execute_sql("""
            SELECT c.relname, a.amname FROM pg_class c JOIN pg_am a ON a.oid = c.relam
            WHERE c.relname = ANY (%s)""", (names,)).fetchall())

    names = ['%s_executions_started_at' % t for t in ('workflow', 'agent', 'team')]
    assert methods() == {n: 'brin' for n in names}
    assert migrate.rollback(database) == ['0006_brin_started_at']
    assert methods() == {n: 'btree' for n in names}
    migrate.migrate(database)
    assert methods() == {n: 'brin' for n in names}
