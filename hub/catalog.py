"""Readers of PostgreSQL's catalogs: what the live database has, as plain tuples and lists.

    >>> import hub.connection, hub.catalog
    >>> database = hub.connection.open_database(hub.connection.resolve_url())
    >>> tables = hub.catalog.live_tables(database)     # ['agent_executions', ...]; [] when empty
    >>> name, ctype, not_null, default = hub.catalog.live_columns(database, 'workflows')[0]

The lowest layer above hub.connection: hub.schema (check, docs), hub.rls, hub.rls_matrix and
hub.prisma read the catalog through it, so none of them needs another's half (peewee's
introspection layer plays the same part).
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


def live_column_comments(db, table):
    """{column: its COMMENT} for the commented columns of `table`."""
    return dict(_rows(db, """
        SELECT a.attname, col_description(a.attrelid, a.attnum) FROM pg_attribute a
        WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
          AND col_description(a.attrelid, a.attnum) IS NOT NULL""", ('%s.%s' % (SCHEMA, table),)))


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


# -- what hub.rls installs and checks: policies, functions, roles, privileges -------------------

#: Everything a table grant can hold, and what a column grant can.
TABLE_PRIVILEGES = ('SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER')
COLUMN_PRIVILEGES = ('SELECT', 'INSERT', 'UPDATE', 'REFERENCES')
#: Every role, present and future (grantee 0 in an ACL).
PUBLIC = 'PUBLIC'
#: The roles a PostgREST/Supabase request runs as (hub.rls.ROLES).
API_ROLES = ('anon', 'authenticated', 'service_role')


def _one(db, sql, params=()):
    row = db.execute_sql(sql, params).fetchone()
    return row[0] if row else None


def live_table_exists(db, table):
    return _one(db, 'SELECT to_regclass(%s)', ('%s.%s' % (SCHEMA, table),)) is not None


def live_column_exists(db, table, column):
    """Whether `table` exists and has `column` (False for a missing table: no error)."""
    return bool(_one(db, """
        SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(%s)
                       AND attname = %s AND NOT attisdropped)""",
                     ('%s.%s' % (SCHEMA, table), column)))


def live_column_map(db):
    """{table: [column names in column order]} for every table in schema public, in one query."""
    return {table: list(columns) for table, columns in _rows(db, """
        SELECT c.relname, array_agg(a.attname::text ORDER BY a.attnum)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE n.nspname = %s AND c.relkind IN ('r', 'p') GROUP BY c.relname""", (SCHEMA,))}


def live_column_names(db, table):
    """The names of `table`'s columns, in column order."""
    return [r[0] for r in _rows(db, """
        SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0
        AND NOT attisdropped ORDER BY attnum""", ('%s.%s' % (SCHEMA, table),))]


def live_policy_map(db):
    """{(table, name): (cmd, roles, using, with check, comment, permissive)} for every policy in
    schema public (live_policies gives one table's, as hub db check compares them)."""
    rows = _rows(db, """
        SELECT c.relname, p.polname,
               CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                             WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
               ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE r::regrole::text END
                     FROM unnest(p.polroles) r),
               pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid),
               obj_description(p.oid, 'pg_policy'), p.polpermissive
        FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %s""", (SCHEMA,))
    return {(t, name): rest for t, name, *rest in rows}


def live_function(db, schema, name):
    """(security definer, config, source, comment) of schema.name(), or None."""
    return db.execute_sql("""
        SELECT p.prosecdef, p.proconfig, p.prosrc, obj_description(p.oid, 'pg_proc')
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = %s AND p.proname = %s AND p.pronargs = 0""", (schema, name)).fetchone()


def live_function_owners(db, schema):
    """{function name: owner role name} for the functions without arguments in `schema`."""
    return dict(_rows(db, """
        SELECT p.proname, pg_get_userbyid(p.proowner) FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = %s AND p.pronargs = 0""", (schema,)))


def live_schema_comment(db, schema):
    return _one(db, """SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace
                       WHERE nspname = %s""", (schema,))


def live_schema_exists(db, schema):
    return bool(_one(db, 'SELECT count(*) FROM pg_namespace WHERE nspname = %s', (schema,)))


def live_role(db, name):
    """(exists, bypassrls)"""
    row = db.execute_sql('SELECT rolbypassrls FROM pg_roles WHERE rolname = %s', (name,)).fetchone()
    return (row is not None, bool(row and row[0]))


def live_role_attributes(db, name):
    """(login, superuser, bypassrls) of role `name`, or None if it is missing."""
    return db.execute_sql('SELECT rolcanlogin, rolsuper, rolbypassrls FROM pg_roles '
                          'WHERE rolname = %s', (name,)).fetchone()


def live_has_table_privilege(db, role, table, privilege):
    return bool(_one(db, 'SELECT has_table_privilege(%s, %s, %s)',
                     (role, '%s.%s' % (SCHEMA, table), privilege)))


def live_privileges(db, tables, roles):
    """{(table, role, privilege, column or None)} that `roles` (those that exist) and PUBLIC
    effectively hold on `tables`: through PUBLIC and role membership too. A column entry only
    where the table grant is absent."""
    roles = [r for r in roles if live_role(db, r)[0]]
    have = {tuple(r) for r in _rows(db, """
        WITH t AS (SELECT c.oid, c.relname FROM pg_class c
                   WHERE c.oid IN (SELECT to_regclass('public.' || quote_ident(x))
                                   FROM unnest(%s::text[]) x)),
             r AS (SELECT unnest(%s::text[]) AS rolname)
        SELECT t.relname, r.rolname, p, NULL::text FROM t, r, unnest(%s::text[]) p
        WHERE has_table_privilege(r.rolname, t.oid, p)
        UNION ALL
        SELECT t.relname, r.rolname, p, a.attname::text FROM t, r, unnest(%s::text[]) p,
               pg_attribute a
        WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
          AND has_column_privilege(r.rolname, t.oid, a.attnum, p)
          AND NOT has_table_privilege(r.rolname, t.oid, p)""",
        (list(tables), roles, list(TABLE_PRIVILEGES), list(COLUMN_PRIVILEGES)))} if roles else set()
    # PUBLIC is every role, present and future: read its ACL entries directly (grantee 0).
    have |= {(t, PUBLIC, p, c) for t, p, c in _rows(db, """
        SELECT c.relname, a.privilege_type, NULL::text
        FROM pg_class c, aclexplode(c.relacl) a
        WHERE c.oid IN (SELECT to_regclass('public.' || quote_ident(x)) FROM unnest(%s::text[]) x)
          AND a.grantee = 0
        UNION ALL
        SELECT c.relname, a.privilege_type, att.attname::text
        FROM pg_class c JOIN pg_attribute att ON att.attrelid = c.oid, aclexplode(att.attacl) a
        WHERE c.oid IN (SELECT to_regclass('public.' || quote_ident(x)) FROM unnest(%s::text[]) x)
          AND a.grantee = 0""", (list(tables), list(tables)))}
    return have


def live_sequences_reachable(db, table, roles):
    """Sequences owned by `table` that one of `roles` (those that exist) or PUBLIC may use."""
    roles = [r for r in roles if live_role(db, r)[0]]
    return [r[0] for r in _rows(db, """
        SELECT s.oid::regclass::text FROM pg_depend d JOIN pg_class s ON s.oid = d.objid
        WHERE d.classid = 'pg_class'::regclass AND d.refobjid = %s::regclass
          AND s.relkind = 'S' AND (EXISTS (SELECT 1 FROM unnest(%s::text[]) r
                 WHERE has_sequence_privilege(r, s.oid, 'USAGE, SELECT, UPDATE'))
              OR EXISTS (SELECT 1 FROM aclexplode(s.relacl) a WHERE a.grantee = 0))""",
        ('%s.%s' % (SCHEMA, table), roles))]
