"""Read the live schema from PostgreSQL's catalogs: compare it with the models, document it.

    >>> import hub.db, hub.schema
    >>> database = hub.db.open_database(hub.db.resolve_url())
    >>> hub.schema.check(database)           # [] when the database matches hub.models
    []
    >>> markdown = hub.schema.docs(database)  # what `hub db docs` writes to docs/schema.md

`check` compares tables, columns, types, nullability, enum types and their labels, indexes,
foreign keys (with their ON DELETE action) and, once `hub rls install` has run, the policies:
the pieces that diff tools built on an ORM's own metadata tend to miss.
"""
from peewee import CharField, DecimalField, ForeignKeyField
from playhouse.postgres_ext import ArrayField

from hub import models
from hub.errors import MigrationError
from hub.migrate import HISTORY_TABLE

SCHEMA = 'public'
_ACTIONS = {'a': 'NO ACTION', 'r': 'RESTRICT', 'c': 'CASCADE', 'n': 'SET NULL', 'd': 'SET DEFAULT'}


# -- what the live database has ---------------------------------------------------------------

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


# -- what the models say ----------------------------------------------------------------------

# peewee's field_type -> the name PostgreSQL's format_type() prints.
_TYPES = {'TEXT': 'text', 'INT': 'integer', 'DOUBLE': 'double precision', 'BOOL': 'boolean',
          'JSON': 'jsonb', 'TIMESTAMPTZ': 'timestamp with time zone', 'JSONB[]': 'jsonb[]'}


def expected_type(field):
    """The PostgreSQL type (as format_type() prints it) that a model field stands for."""
    if isinstance(field, ForeignKeyField):
        return expected_type(field.rel_field)
    if isinstance(field, models.PgEnumField):
        return field.field_type
    if isinstance(field, ArrayField):  # its field_type is the element's
        return _TYPES[field.field_type] + '[]'
    if isinstance(field, CharField):
        return 'character varying(%d)' % field.max_length
    if isinstance(field, DecimalField):
        return 'numeric(%d,%d)' % (field.max_digits, field.decimal_places)
    try:
        return _TYPES[field.field_type]
    except KeyError:
        raise TypeError('no PostgreSQL type known for %r' % field) from None


def _columns(model, names):
    return tuple(model._meta.fields[n].column_name if n in model._meta.fields else n for n in names)


def expected_indexes(model):
    """{(columns, unique)} for the primary key, unique and indexed fields, and Meta.indexes."""
    meta = model._meta
    found = {((meta.primary_key.column_name,), True)}
    for field in meta.sorted_fields:
        if field.unique:
            found.add(((field.column_name,), True))
        elif field.index and not field.primary_key:
            found.add(((field.column_name,), False))
    for names, unique in meta.indexes:
        found.add((_columns(model, names), unique))
    return found


def expected_foreign_keys(model):
    """{(columns, referenced table, referenced columns, on delete)}"""
    found = set()
    for field in model._meta.refs:
        ref = field.rel_model._meta.table_name
        if getattr(field, 'tenant_scoped', False):
            found.add((('organization_id', field.column_name), ref,
                       ('organization_id', field.rel_field.column_name), field.on_delete))
        else:
            found.add(((field.column_name,), ref, (field.rel_field.column_name,),
                       field.on_delete or 'NO ACTION'))
    return found


# -- the comparison ---------------------------------------------------------------------------

def check(db):
    """Differences between hub.models and the live database, one readable line each."""
    diffs = []
    tables = set(live_tables(db))
    by_table = {m._meta.table_name: m for m in models.MODELS}
    for name in sorted(tables - set(by_table)):
        diffs.append('table %s is in the database but not in the models' % name)
    for table, model in by_table.items():
        if table not in tables:
            diffs.append('table %s is missing from the database' % table)
            continue
        diffs.extend(_check_columns(db, table, model))
        diffs.extend(_check_set(table, 'index', expected_indexes(model),
                                {(cols, unique) for _, cols, unique, _ in live_indexes(db, table)},
                                _show_index))
        diffs.extend(_check_set(table, 'foreign key', expected_foreign_keys(model),
                                {fk[1:5] for fk in live_foreign_keys(db, table)}, _show_fk))
    diffs.extend(_check_enums(db))
    diffs.extend(_check_policies(db, tables))
    return diffs


def _check_columns(db, table, model):
    live = {name: (ctype, not_null) for name, ctype, not_null, _ in live_columns(db, table)}
    want = {f.column_name: (expected_type(f), not f.null or f.primary_key)
            for f in model._meta.sorted_fields}
    for column in want:
        if column not in live:
            yield '%s.%s: column is missing from the database (models: %s)' % (
                table, column, want[column][0])
            continue
        (ltype, lnn), (wtype, wnn) = live[column], want[column]
        if ltype != wtype:
            yield '%s.%s: type is %s in the database, %s in the models' % (table, column, ltype, wtype)
        if lnn != wnn:
            yield '%s.%s: %s in the database, %s in the models' % (
                table, column, _null(lnn), _null(wnn))
    for column in live:
        if column not in want:
            yield '%s.%s: column is in the database (%s) but not in the models' % (
                table, column, live[column][0])


def _null(not_null):
    return 'NOT NULL' if not_null else 'nullable'


def _check_set(table, kind, want, live, show):
    for item in sorted(want - live, key=str):
        yield '%s: %s %s is missing from the database' % (table, kind, show(item))
    for item in sorted(live - want, key=str):
        yield '%s: %s %s is in the database but not in the models' % (table, kind, show(item))


def _show_index(item):
    cols, unique = item
    return '(%s)%s' % (', '.join(cols), ' UNIQUE' if unique else '')


def _show_fk(item):
    cols, ref, ref_cols, on_delete = item
    return '(%s) -> %s (%s) ON DELETE %s' % (', '.join(cols), ref, ', '.join(ref_cols), on_delete)


def _check_enums(db):
    live = live_enums(db)
    for name, enum_class in models.ENUMS.items():
        labels = [m.value for m in enum_class]
        if name not in live:
            yield 'enum %s is missing from the database' % name
        elif live[name] != labels:
            yield 'enum %s: labels are %s in the database, %s in the models' % (
                name, ', '.join(live[name]), ', '.join(labels))
    for name in sorted(set(live) - set(models.ENUMS)):
        yield 'enum %s is in the database but not in the models' % name


def _check_policies(db, tables):
    """Policies are compared once RLS is installed; `hub rls status` covers a partial install."""
    from hub import rls

    if not rls.installed(db):
        return
    want = rls.expected_policies()
    live = {(t, p[0], p[1]) for t in tables for p in live_policies(db, t)}
    for table, name, cmd in sorted(want - live):
        yield '%s: policy %s (%s) is missing from the database' % (table, name, cmd)
    for table, name, cmd in sorted(live - want):
        yield '%s: policy %s (%s) is in the database but not in hub.rls' % (table, name, cmd)


# -- documentation ----------------------------------------------------------------------------

def docs(db):
    """Markdown for the live schema: enums, tables, keys, indexes, checks, policies, ER diagram.

    A database without our tables (not migrated) raises MigrationError: an empty document
    would overwrite a real one without a word.
    """
    tables = _ordered_tables(live_tables(db))
    if not tables:
        raise MigrationError('nothing to document: database "%s" has no NeuroFlow Hub tables; '
                             'run `hub db migrate` first' % db.database)
    out = ['# NeuroFlow Hub schema', '',
           'Generated by `hub db docs` from a freshly migrated database%s; do not edit by hand.'
           % (' with `hub rls install` applied' if _has_policies(db, tables) else ''),
           'A test fails when this file is stale: regenerate it with `hub db docs -o docs/schema.md`.',
           '', '## Entity relationships', '', '```mermaid', 'erDiagram']
    out.extend(_mermaid(db, tables))
    out += ['```', '', '## Enums', '', '| type | labels |', '|---|---|']
    for name, labels in live_enums(db).items():
        out.append('| `%s` | %s |' % (name, ', '.join('`%s`' % l for l in labels)))
    for table in tables:
        out.extend(_table_docs(db, table))
    return '\n'.join(out) + '\n'


def _ordered_tables(tables):
    known = [m._meta.table_name for m in models.MODELS if m._meta.table_name in tables]
    return known + sorted(set(tables) - set(known))


def _has_policies(db, tables):
    return any(live_policies(db, t) for t in tables)


def _mermaid(db, tables):
    lines = []
    for table in tables:
        lines.append('    %s {' % table)
        keys = {c for fk in live_foreign_keys(db, table) for c in fk[1]}
        for name, ctype, _, _ in live_columns(db, table):
            mark = ' PK' if name == 'id' else (' FK' if name in keys else '')
            lines.append('        %s %s%s' % (_mermaid_type(ctype), name, mark))
        lines.append('    }')
    for table in tables:
        nullable = {name for name, _, not_null, _ in live_columns(db, table) if not not_null}
        for _, cols, ref, _, _, _ in live_foreign_keys(db, table):
            optional = any(c in nullable for c in cols)
            lines.append('    %s %s--o{ %s : "%s"' % (ref, '|o' if optional else '||', table,
                                                     ', '.join(cols)))
    return lines


def _mermaid_type(ctype):
    # Mermaid attribute types allow no spaces, brackets or parentheses.
    short = {'character varying': 'varchar', 'timestamp with time zone': 'timestamptz',
             'double precision': 'float8'}
    base = ctype.split('(')[0]
    base = short.get(base, base)
    return base.replace('[]', '_array')


def _table_docs(db, table):
    out = ['', '## %s' % table, '', '| column | type | null | default |', '|---|---|---|---|']
    for name, ctype, not_null, default in live_columns(db, table):
        out.append('| `%s` | %s | %s | %s |' % (name, ctype, '' if not_null else 'yes',
                                                '`%s`' % default if default else ''))
    fks = live_foreign_keys(db, table)
    if fks:
        out += ['', 'Foreign keys:', '']
        out += ['- `%s`' % definition for *_, definition in fks]
    out += ['', 'Indexes:', '']
    out += ['- `%s`' % definition.replace(' USING btree', '').replace('%s.' % SCHEMA, '')
            for *_, definition in live_indexes(db, table)]
    checks = live_checks(db, table)
    if checks:
        out += ['', 'Checks:', '']
        out += ['- `%s`' % definition for _, definition in checks]
    triggers = live_triggers(db, table)
    if triggers:
        out += ['', 'Triggers:', '']
        out += ['- `%s`' % definition.replace('%s.' % SCHEMA, '') for _, definition in triggers]
    enabled, forced = live_rls(db, table)
    policies = live_policies(db, table)
    if enabled or policies:
        out += ['', 'Row-level security: %s%s.' % ('enabled' if enabled else 'disabled',
                                                   ', forced' if forced else '')]
        if policies:
            out += ['', '| policy | command | roles | using | with check |', '|---|---|---|---|---|']
            for name, cmd, roles, qual, check in policies:
                out.append('| `%s` | %s | %s | %s | %s |' % (
                    name, cmd, roles, _code(qual), _code(check)))
    return out


def _code(expr):
    if not expr:
        return ''
    return '`%s`' % ' '.join(expr.split()).replace('|', '\\|')
