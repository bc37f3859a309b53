"""Online paths for shipped migrations that lock busy tables: the same end state, reached
without holding a table's lock through an index build.

    >>> import hub.online
    >>> [statement.split(' ON ')[0] for statement in hub.online.PATHS['0006_started_at_indexes'].before][:1]
    ['CREATE INDEX CONCURRENTLY IF NOT EXISTS workflow_executions_started_at_brin']

Migrations are frozen (their files are checksummed once applied), so 0006, which rebuilt the
execution tables' indexes under ACCESS EXCLUSIVE, keeps its file. `hub db migrate` applies it
through the path below instead, when the execution tables have rows: the new indexes are built CONCURRENTLY under temporary names
first (no reader or writer waits), then one short transaction, bounded by lock_timeout, drops
the old ones and renames the new ones to 0006's names, ends with the sync and writes 0006's
history row. The catalog afterwards is 0006's, index for index (tests/test_online_migrations.py
compares them). `hub db sql`, `hub db reset` (empty tables) and `hub db migrate --sql` still
run the file's own SQL. Run one `hub db migrate` at a time through it: a concurrent one
may fail on the index builds (one line; run it again).
"""


class Path:
    """`before`: CREATE INDEX CONCURRENTLY IF NOT EXISTS statements (run as a CONCURRENTLY
    section, before the transaction); `up`: the SQL of the migration's transaction, in place
    of the file's up(); taken only when one of `tables` has rows (`wanted`): on empty tables
    the file's own SQL locks nothing for long, and runs in one transaction, which concurrent
    `hub db migrate` runs (tests/test_migrations.py) can share without racing index builds."""

    def __init__(self, tables, before, up):
        self.tables, self.before, self.up = tables, before, up

    def wanted(self, db):
        return db.execute_sql('SELECT %s' % ' OR '.join(
            'EXISTS (SELECT 1 FROM public.%s)' % table for table in self.tables)).fetchone()[0]


_TABLES = ('workflow_executions', 'agent_executions', 'team_executions')

PATHS = {
    '0006_started_at_indexes': Path(
        _TABLES,
        before=['CREATE INDEX CONCURRENTLY IF NOT EXISTS %s_started_at_brin ON public.%s USING '
                'brin (started_at)' % (table, table) for table in _TABLES] + [
                'CREATE INDEX CONCURRENTLY IF NOT EXISTS workflow_executions_workflow_id_started_at '
                'ON public.workflow_executions (workflow_id, started_at)'],
        up=''.join('DROP INDEX public.%s_started_at;\nALTER INDEX public.%s_started_at_brin '
                   'RENAME TO %s_started_at;\n' % (table, table, table) for table in _TABLES)
        + 'DROP INDEX public.workflow_executions_workflow_id;\n'),
}
