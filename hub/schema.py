"""Read the live schema from PostgreSQL's catalogs: compare it with the models, document it.

    >>> import hub.connection, hub.schema
    >>> database = hub.connection.open_database(hub.connection.resolve_url())
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
from hub.catalog import (SCHEMA, live_checks, live_columns, live_enums,  # noqa: F401  (hub.schema.live_*)
                         live_foreign_keys, live_indexes, live_policies, live_rls, live_tables,
                         live_triggers)
from hub.errors import MigrationError


# -- what the models say ----------------------------------------------------------------------

# peewee's field_type -> the name PostgreSQL's format_type() prints.
_TYPES = {'TEXT': 'text', 'INT': 'integer', 'DOUBLE': 'double precision', 'BOOL': 'boolean',
          'JSON': 'jsonb', 'TIMESTAMPTZ': 'timestamp with time zone', 'JSONB[]': 'jsonb[]',
          'BIGINT': 'bigint', 'SMALLINT': 'smallint', 'FLOAT': 'real', 'DATE': 'date',
          'UUID': 'uuid', 'BLOB': 'bytea', 'DATETIME': 'timestamp without time zone'}


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


#: {(columns, unique)} of a model: hub.models.declared_indexes.
expected_indexes = models.declared_indexes


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

class Difference:
    """One difference between hub.models and the database: what `check` prints (`message`) and
    what hub.autogen renders as SQL. `kind` names it ('missing_column', 'column_type', ...);
    `table` and `item` say where (a column name, an index or foreign key tuple, an enum);
    `want` is the models' side (a field, a model, labels) and `live` the database's."""

    __slots__ = ('kind', 'table', 'item', 'want', 'live', 'message')

    def __init__(self, kind, table, item, want, live, message):
        self.kind, self.table, self.item = kind, table, item
        self.want, self.live, self.message = want, live, message

    def __repr__(self):
        return 'Difference(%r)' % self.message


def check(db):
    """Differences between hub.models and the live database, one readable line each."""
    return [d.message for d in differences(db)]


def differences(db, policies=True):
    """Every Difference between hub.models and the live database, in the order `check` prints
    them; `policies=False` leaves out the row-level-security policies."""
    from hub import citus

    diffs = []
    tables = set(live_tables(db))
    by_table = {m._meta.table_name: m for m in models.MODELS}
    # On Citus the keys are as hub.citus.distribute leaves them, not drift (docs/citus.md).
    kinds = citus.tables(db) if citus.enabled(db) else None
    for name in sorted(tables - set(by_table)):
        diffs.append(Difference('extra_table', name, None, None, name,
                                'table %s is in the database but not in the models' % name))
    for table, model in by_table.items():
        if table not in tables:
            diffs.append(Difference('missing_table', table, None, model, None,
                                    'table %s is missing from the database' % table))
            continue
        diffs.extend(_check_columns(db, table, model))
        indexes = {(cols, unique): (name, definition)
                   for name, cols, unique, definition in live_indexes(db, table)}
        want_indexes, want_fks = expected_indexes(model), expected_foreign_keys(model)
        if kinds is not None:
            want_indexes = citus.expected_indexes(want_indexes, kinds.get(table))
            want_fks = citus.expected_foreign_keys(want_fks, table, kinds)
        diffs.extend(_check_set(table, 'index', want_indexes, indexes, _show_index))
        fks = {fk[1:5]: (fk[0], fk[5]) for fk in live_foreign_keys(db, table)}
        diffs.extend(_check_set(table, 'foreign key', want_fks, fks, _show_fk))
    if kinds is not None:
        diffs.extend(Difference('citus_placement', table, None, None, None, message)
                     for table, message in citus.differences(db, models.MODELS))
    diffs.extend(_check_enums(db))
    if policies:
        diffs.extend(_check_policies(db, tables))
        diffs.extend(_check_security(db))
    return diffs


def _check_columns(db, table, model):
    live = {name: (ctype, not_null, default) for name, ctype, not_null, default
            in live_columns(db, table)}
    fields = {f.column_name: f for f in model._meta.sorted_fields}
    want = {column: (expected_type(f), not f.null or f.primary_key) for column, f in fields.items()}
    for column in want:
        if column not in live:
            yield Difference('missing_column', table, column, fields[column], None,
                             '%s.%s: column is missing from the database (models: %s)' % (
                                 table, column, want[column][0]))
            continue
        (ltype, lnn, _), (wtype, wnn) = live[column], want[column]
        if ltype != wtype:
            yield Difference('column_type', table, column, fields[column], live[column],
                             '%s.%s: type is %s in the database, %s in the models'
                             % (table, column, ltype, wtype))
        if lnn != wnn:
            yield Difference('nullability', table, column, fields[column], live[column],
                             '%s.%s: %s in the database, %s in the models' % (
                                 table, column, _null(lnn), _null(wnn)))
    for column in live:
        if column not in want:
            yield Difference('extra_column', table, column, None, live[column],
                             '%s.%s: column is in the database (%s) but not in the models' % (
                                 table, column, live[column][0]))


def _null(not_null):
    return 'NOT NULL' if not_null else 'nullable'


def _check_set(table, kind, want, live, show):
    """`live` maps each item to what the database says of it (its name, its definition)."""
    name = kind.replace(' ', '_')
    for item in sorted(want - set(live), key=str):
        yield Difference('missing_' + name, table, item, item, None,
                         '%s: %s %s is missing from the database' % (table, kind, show(item)))
    for item in sorted(set(live) - want, key=str):
        yield Difference('extra_' + name, table, item, None, live[item],
                         '%s: %s %s is in the database but not in the models'
                         % (table, kind, show(item)))


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
            yield Difference('missing_enum', None, name, labels, None,
                             'enum %s is missing from the database' % name)
        elif live[name] != labels:
            yield Difference('enum_labels', None, name, labels, live[name],
                             'enum %s: labels are %s in the database, %s in the models' % (
                                 name, ', '.join(live[name]), ', '.join(labels)))
    for name in sorted(set(live) - set(models.ENUMS)):
        yield Difference('extra_enum', None, name, None, live[name],
                         'enum %s is in the database but not in the models' % name)


def _check_policies(db, tables):
    """Policies are compared once RLS is installed; `hub rls status` covers a partial install."""
    from hub import rls

    if not rls.installed(db):
        return
    # The OWNER guard's policies come with migration 0007, installed or not.
    want = rls.expected_policies() | rls.guard_policies()
    live = {(t, p[0], p[1]) for t in tables for p in live_policies(db, t)}
    for table, name, cmd in sorted(want - live):
        yield Difference('missing_policy', table, (name, cmd), True, None,
                         '%s: policy %s (%s) is missing from the database' % (table, name, cmd))
    for table, name, cmd in sorted(live - want):
        yield Difference('extra_policy', table, (name, cmd), None, True,
                         '%s: policy %s (%s) is in the database but not in hub.rls'
                         % (table, name, cmd))


def _check_security(db):
    """Once RLS is installed, each violation of the catalog audit (hub.audit) is a difference:
    what the models allow the API roles is part of what the database must match."""
    from hub import rls

    if not rls.installed(db):
        return
    for violation in rls.violations(db):
        yield Difference('security', None, violation.object, None, violation, str(violation))


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
