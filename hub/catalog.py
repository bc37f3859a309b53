"""Readers of PostgreSQL's catalogs: what the live database has, as plain tuples and lists.

    >>> import hub.db, hub.catalog
    >>> database = hub.db.open_database(hub.db.resolve_url())
    >>> tables = hub.catalog.live_tables(database)     # ['agent_executions', ...]; [] when empty
    >>> name, ctype, not_null, default = hub.catalog.live_columns(database, 'workflows')[0]

The lowest layer above hub.db: hub.schema (check, docs), hub.rls, hub.rls_matrix and hub.prisma
read the catalog through it, so none of them needs another's half (peewee's introspection layer
plays the same part).
"""

#: The migration runner's bookkeeping table; never one of the models' tables.
HISTORY_TABLE = 'hub_migrations'
SCHEMA = 'public'
_ACTIONS = {'a': 'NO ACTION', 'r': 'RESTRICT', 'c': 'CASCADE', 'n': 'SET NULL', 'd': 'SET DEFAULT'}


def _rows(db, sql, params=()):
    return db.execute_sql(sql, params).fetchall()


def live_tables(db):
    return [r[0] for r in _rows(db, """
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND c.relname <> %s
        ORDER BY c.relname""", (SCHEMA, HISTORY_TABLE))]


def live_columns(db, table):
    """[(name, type, not_null, default)] in column order."""
    return _rows(db, """
        SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid)
        FROM pg_attribute a
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum""", ('%s.%s' % (SCHEMA, table),))


def live_enums(db):
    """{type name: [labels in order]}"""
    return {name: list(labels) for name, labels in _rows(db, """
        SELECT t.typname, array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
        FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
        JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = %s GROUP BY t.typname ORDER BY t.typname""", (SCHEMA,))}


def live_indexes(db, table):
    """[(name, (columns...), unique, definition)]"""
    rows = _rows(db, """
        SELECT i.relname,
               array(SELECT a.attname::text FROM unnest(x.indkey::int2[]) WITH ORDINALITY k(num, ord)
                     JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.num
                     ORDER BY k.ord),
               x.indisunique, pg_get_indexdef(x.indexrelid)
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        WHERE x.indrelid = %s::regclass ORDER BY i.relname""", ('%s.%s' % (SCHEMA, table),))
    return [(name, tuple(cols), unique, definition) for name, cols, unique, definition in rows]


def live_foreign_keys(db, table):
    """[(name, (columns...), referenced table, (referenced columns...), on delete, definition)]"""
    rows = _rows(db, """
        SELECT c.conname,
               array(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(num, ord)
                     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.num
                     ORDER BY k.ord),
               r.relname,
               array(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(num, ord)
                     JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.num
                     ORDER BY k.ord),
               c.confdeltype,
               array(SELECT a.attname::text FROM unnest(c.confdelsetcols) WITH ORDINALITY k(num, ord)
                     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.num
                     ORDER BY k.ord),
               pg_get_constraintdef(c.oid)
        FROM pg_constraint c JOIN pg_class r ON r.oid = c.confrelid
        WHERE c.contype = 'f' AND c.conrelid = %s::regclass ORDER BY c.conname""",
                 ('%s.%s' % (SCHEMA, table),))
    result = []
    for name, cols, ref, ref_cols, action, set_cols, definition in rows:
        on_delete = _ACTIONS[action]
        if set_cols:  # PostgreSQL 15+: ON DELETE SET NULL (only, these, columns)
            on_delete += ' (%s)' % ', '.join(set_cols)
        result.append((name, tuple(cols), ref, tuple(ref_cols), on_delete, definition))
    return result


def live_checks(db, table):
    return _rows(db, """
        SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
        WHERE contype = 'c' AND conrelid = %s::regclass ORDER BY conname""",
                 ('%s.%s' % (SCHEMA, table),))


def live_triggers(db, table):
    return _rows(db, """
        SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger
        WHERE NOT tgisinternal AND tgrelid = %s::regclass ORDER BY tgname""",
                 ('%s.%s' % (SCHEMA, table),))


def live_rls(db, table):
    """(row level security enabled, forced)"""
    return _rows(db, 'SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = %s::regclass',
                 ('%s.%s' % (SCHEMA, table),))[0]


def live_policies(db, table):
    """[(name, command, roles, using, with check)]"""
    return [(name, cmd, ', '.join(roles), qual, check) for name, cmd, roles, qual, check in _rows(db, """
        SELECT policyname::text, cmd, roles::text[], qual, with_check FROM pg_policies
        WHERE schemaname = %s AND tablename = %s ORDER BY policyname""", (SCHEMA, table))]
