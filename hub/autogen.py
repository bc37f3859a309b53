"""Migrations written from the models: what `hub db generate NAME` puts in a new file.

    >>> import hub.connection, hub.autogen
    >>> database = hub.connection.open_database(hub.connection.resolve_url())
    >>> plan = hub.autogen.plan(database)     # hub.schema.differences, rendered as SQL
    >>> plan.empty                            # True when the database matches hub.models
    True
    >>> hub.autogen.generate(database, 'add_priority')   # (file written, warnings): nothing differs
    (None, [])

The differences are the ones `hub db check` finds (hub.schema.differences): nothing is compared
twice. Each becomes frozen SQL for `UP` and its reverse for `DOWN`, so the file never imports
hub.models: new enum types and labels, new tables (composite tenant foreign keys, CHECKs,
database defaults, indexes, the updated_at trigger), added and dropped columns, widened types,
nullability, indexes and foreign keys with their ON DELETE action. What cannot be written
without guessing (a rename, a label removed or reordered, a type narrowed or converted, a
table or enum the models no longer have) becomes a `-- TODO` in the file and a warning; the
policies of row-level security are `hub rls install`'s, not a migration's.
"""
import datetime
import enum
import json
import re

from playhouse.migrate import make_index_name

from hub import ids, migrate, models, sqltext
from hub.errors import MigrationError
from hub.schema import differences, expected_indexes, expected_type

SCHEMA = 'public'

#: An identifier as SQL: plain when it can be, double-quoted otherwise.
quote = sqltext.identifier


def _table(name):
    return '%s.%s' % (SCHEMA, quote(name))


def _cols(columns):
    return ', '.join(quote(c) for c in columns)


def literal(value):
    """A Python value as an SQL literal: an enum member as its label, a dict or list as JSON
    text (a default of a jsonb column), anything else as hub.sqltext writes it."""
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, (dict, list)):
        value = json.dumps(value, separators=(',', ':'))
    return sqltext.literal(value)


def database_default(field):
    """(SQL of the column default a field's `default` stands for, or None; whether the field
    has a default that cannot be one: computed in Python by a function hub does not know)."""
    default = field.default
    if default is None:
        return None, False
    if callable(default):
        known = {ids.new_id: 'public.hub_new_id()', models._now: 'now()',
                 datetime.datetime.now: 'now()', list: "'{}'", dict: "'{}'"}
        return known.get(default), default not in known
    return literal(default), False


def _constraints(db, constraints):
    """CHECK (...) and other SQL constraint nodes of peewee, as SQL."""
    out = []
    for node in constraints or ():
        sql, params = db.get_sql_context().sql(node).query()
        if params:
            raise MigrationError('a constraint with parameters cannot be frozen: %s' % sql)
        out.append(sql)
    return out


def _fk_clause(field):
    ref = field.rel_model._meta.table_name
    if getattr(field, 'tenant_scoped', False):
        cols, ref_cols = ('organization_id', field.column_name), ('organization_id',
                                                                  field.rel_field.column_name)
    else:
        cols, ref_cols = (field.column_name,), (field.rel_field.column_name,)
    action = field.on_delete or 'NO ACTION'
    return cols, 'REFERENCES %s (%s)%s' % (_table(ref), _cols(ref_cols),
                                            '' if action == 'NO ACTION' else ' ON DELETE ' + action)


def _fk_constraint_name(table, cols):
    return _short('%s_%s_fkey' % (table, '_'.join(cols)))


def _index_name(table, cols):
    return make_index_name(table, list(cols))


def _short(name):
    return name if len(name) <= 63 else make_index_name(name, [])[:63]


class Plan:
    """What `generate` writes: SQL steps (up, down) in order, the statements committed first
    (enum labels), a summary line per change, and TODOs for what was not written."""

    def __init__(self):
        self.steps = []          # [(up sql, down sql)] in the order up runs them
        self.commit_first = []   # ALTER TYPE ... ADD VALUE statements
        self.concurrently = []   # index builds and drops on existing tables, after UP commits
        self.kept_labels = []    # what down cannot take back
        self.summary = []
        self.todos = []
        self.policies = False    # whether `hub rls install` has work after the migration

    @property
    def empty(self):
        return not (self.steps or self.commit_first or self.todos or self.concurrently)

    def add(self, up, down, summary=None):
        self.steps.append((up, down))
        if summary:
            self.summary.append(summary)

    def online(self, sql, down, summary):
        """An index change on a table that has rows: CONCURRENTLY, after UP commits (see
        hub.migrate.CONCURRENTLY_BLOCK); its undo is a plain step of DOWN, run first."""
        self.concurrently.append(sql)
        self.steps.append((None, down))
        self.summary.append(summary)

    def todo(self, text):
        self.todos.append(text)

    def up_sql(self):
        parts = ['-- TODO: %s' % t for t in self.todos] + [up for up, _ in self.steps if up]
        return '\n\n'.join(parts) + '\n' if parts else ''

    def down_sql(self):
        parts = [down for _, down in reversed(self.steps) if down]
        if self.kept_labels:
            parts.append('-- Enum labels stay (PostgreSQL cannot drop one): %s.'
                         % ', '.join(self.kept_labels))
        return '\n\n'.join(parts) + '\n' if parts else ''


def plan(db):
    """The Plan that brings `db` to hub.models (empty when they match)."""
    result = Plan()
    diffs = differences(db, policies=False)
    by_kind = {}
    for d in diffs:
        by_kind.setdefault(d.kind, []).append(d)
    _enums(result, by_kind)
    skipped = _renames(result, by_kind)
    existing = _existing_tables(db, result, by_kind, skipped)
    _new_tables(db, result, by_kind)
    existing(result)  # foreign keys of existing tables, once new tables exist
    for d in by_kind.get('extra_table', ()):
        result.todo('table %s is in the database but not in the models: if it was renamed, '
                    'write ALTER TABLE %s RENAME TO <new name> (and drop the new table above); '
                    'to drop it, write DROP TABLE %s (its rows are lost)'
                    % (d.table, _table(d.table), _table(d.table)))
    result.policies = bool(by_kind.get('missing_table')) or any(
        d.kind.endswith('_policy') for d in differences(db))
    return result


def _enums(result, by_kind):
    for d in by_kind.get('missing_enum', ()):
        result.add('CREATE TYPE %s AS ENUM (%s);' % (_table(d.item), ', '.join(map(literal, d.want))),
                   'DROP TYPE %s;' % _table(d.item), 'enum %s: created' % d.item)
    for d in by_kind.get('enum_labels', ()):
        want, live = d.want, d.live
        if [label for label in want if label in live] != live:
            gone = [label for label in live if label not in want]
            what = ('labels %s removed' % ', '.join(gone) if gone
                    else 'labels reordered (%s)' % ', '.join(want))
            result.todo('enum %s: %s; PostgreSQL cannot drop or move a label: recreate the type '
                        '(CREATE TYPE, ALTER TABLE ... ALTER COLUMN ... TYPE ... USING, DROP '
                        'TYPE) after updating the rows that use it' % (d.item, what))
            continue
        present = list(live)
        for i, label in enumerate(want):
            if label in present:
                continue
            before = [l for l in want[:i] if l in present]
            where = (' AFTER %s' % literal(before[-1]) if before
                     else ' BEFORE %s' % literal(next(l for l in want if l in present)))
            result.commit_first.append('ALTER TYPE %s ADD VALUE IF NOT EXISTS %s%s;' % (
                _table(d.item), literal(label), where))
            present.insert(present.index(before[-1]) + 1 if before else 0, label)
            result.kept_labels.append('%s.%s' % (d.item, label))
            result.summary.append('enum %s: label %s added' % (d.item, label))
    for d in by_kind.get('extra_enum', ()):
        result.todo('enum %s is in the database but not in the models: if it was renamed, write '
                    'ALTER TYPE %s RENAME TO <new name>; to drop it, write DROP TYPE %s once no '
                    'column uses it' % (d.item, _table(d.item), _table(d.item)))


def _renames(result, by_kind):
    """Columns that may have been renamed (a table both lost and gained a column of the same
    type): neither is written; a TODO says both ways. Returns {(table, column)} skipped."""
    skipped = set()
    gained = {}
    for d in by_kind.get('missing_column', ()):
        gained.setdefault((d.table, expected_type(d.want)), []).append(d.item)
    for d in by_kind.get('extra_column', ()):
        candidates = gained.get((d.table, d.live[0]))
        if not candidates:
            continue
        for new in candidates:
            skipped.update({(d.table, d.item), (d.table, new)})
        result.todo('%s.%s is gone and %s is new, of the same type (%s): if it is a rename, '
                    'write ALTER TABLE %s RENAME COLUMN %s TO %s; otherwise add the new column '
                    'and drop the old one (its data is lost); nothing was written for either'
                    % (d.table, d.item, ', '.join(candidates), d.live[0], _table(d.table),
                       quote(d.item), quote(candidates[0])))
    return skipped


def _touches(cols, table, skipped):
    return any((table, c) in skipped for c in cols)


def _existing_tables(db, result, by_kind, skipped):
    """Changes to tables the database has; returns what adds their foreign keys (run last)."""
    for d in by_kind.get('extra_foreign_key', ()):
        name, definition = d.live
        result.add('ALTER TABLE %s DROP CONSTRAINT %s;' % (_table(d.table), quote(name)),
                   'ALTER TABLE %s ADD CONSTRAINT %s %s;' % (_table(d.table), quote(name),
                                                            definition),
                   '%s: foreign key %s dropped' % (d.table, name))
    for d in by_kind.get('extra_index', ()):
        name, definition = d.live
        constraint = _constraint_of(db, d.table, name)
        if constraint:
            result.add('ALTER TABLE %s DROP CONSTRAINT %s;' % (_table(d.table), quote(name)),
                       'ALTER TABLE %s ADD CONSTRAINT %s %s;' % (_table(d.table), quote(name),
                                                                constraint),
                       '%s: %s dropped' % (d.table, constraint))
        else:
            result.online('DROP INDEX CONCURRENTLY %s;' % _table(name), '%s;' % definition,
                          '%s: index %s dropped (concurrently)' % (d.table, name))
    for d in by_kind.get('extra_column', ()):
        if (d.table, d.item) in skipped:
            continue
        ctype, not_null, default = d.live
        down = 'ALTER TABLE %s ADD COLUMN %s %s%s%s;' % (
            _table(d.table), quote(d.item), ctype, ' DEFAULT %s' % default if default else '',
            ' NOT NULL' if not_null and default else '')
        if not_null and not default:
            down = ('-- %s.%s was NOT NULL without a default: it comes back nullable, its values '
                    'are gone\n%s' % (d.table, d.item, down))
        result.add('-- drops the column and its values\nALTER TABLE %s DROP COLUMN %s;'
                   % (_table(d.table), quote(d.item)), down,
                   '%s.%s: column dropped' % (d.table, d.item))
    for d in by_kind.get('missing_column', ()):
        if (d.table, d.item) in skipped:
            continue
        definition, warning = _column(db, d.want, existing=True)
        up = 'ALTER TABLE %s ADD COLUMN %s;' % (_table(d.table), definition)
        if warning:
            result.todo(warning)
            up = '-- TODO: %s\n%s' % (warning, up)
        result.add(up, 'ALTER TABLE %s DROP COLUMN %s;' % (_table(d.table), quote(d.item)),
                   '%s.%s: column added (%s)' % (d.table, d.item, definition.split(' ', 1)[1]))
    for d in by_kind.get('column_type', ()):
        _retype(result, d)
    for d in by_kind.get('nullability', ()):
        _nullability(result, d)
    for d in by_kind.get('missing_index', ()):
        cols, unique = d.item
        if _touches(cols, d.table, skipped):
            result.todo('%s: index (%s) not written: it uses a column left to you above'
                        % (d.table, ', '.join(cols)))
            continue
        name = _index_name(d.table, cols)
        result.online('CREATE %sINDEX CONCURRENTLY %s ON %s (%s);' % (
                          'UNIQUE ' if unique else '', quote(name), _table(d.table), _cols(cols)),
                      'DROP INDEX %s;' % _table(name),
                      '%s: %sindex (%s) created (concurrently)' % (
                          d.table, 'unique ' if unique else '', ', '.join(cols)))

    def foreign_keys(result):
        for d in by_kind.get('missing_foreign_key', ()):
            cols, ref, ref_cols, on_delete = d.item
            if _touches(cols, d.table, skipped):
                result.todo('%s: foreign key (%s) not written: it uses a column left to you above'
                            % (d.table, ', '.join(cols)))
                continue
            name = _fk_constraint_name(d.table, cols)
            result.add('ALTER TABLE %s ADD CONSTRAINT %s FOREIGN KEY (%s) REFERENCES %s (%s)%s;' % (
                _table(d.table), quote(name), _cols(cols), _table(ref), _cols(ref_cols),
                '' if on_delete in (None, 'NO ACTION') else ' ON DELETE %s' % on_delete),
                'ALTER TABLE %s DROP CONSTRAINT %s;' % (_table(d.table), quote(name)),
                '%s: foreign key (%s) -> %s created' % (d.table, ', '.join(cols), ref))
    return foreign_keys


def _constraint_of(db, table, index):
    """The definition of the UNIQUE or PRIMARY KEY constraint that owns an index, if one does."""
    row = db.execute_sql("""
        SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c
        WHERE c.conrelid = %s::regclass AND c.conname = %s AND c.contype IN ('u', 'p')""",
                         ('%s.%s' % (SCHEMA, table), index)).fetchone()
    return row[0] if row else None


#: Type changes that keep every value: (from, to) as format_type() prints them.
def _widens(live, want):
    varchar = re.compile(r'character varying\((\d+)\)')
    numeric = re.compile(r'numeric\((\d+),(\d+)\)')
    a, b = varchar.fullmatch(live), varchar.fullmatch(want)
    if a and (want == 'text' or b and int(b.group(1)) >= int(a.group(1))):
        return True
    a, b = numeric.fullmatch(live), numeric.fullmatch(want)
    if a and b:
        (p1, s1), (p2, s2) = map(int, a.groups()), map(int, b.groups())
        return s2 >= s1 and p2 - s2 >= p1 - s1
    return (live, want) in {('integer', 'bigint'), ('smallint', 'integer'), ('smallint', 'bigint'),
                            ('real', 'double precision'), ('json', 'jsonb')}


def _retype(result, d):
    ltype, want = d.live[0], expected_type(d.want)
    table, column = _table(d.table), quote(d.item)
    if not _widens(ltype, want):
        result.todo('%s.%s: type %s -> %s may not keep every value (narrowing or conversion): '
                    'write ALTER TABLE %s ALTER COLUMN %s TYPE %s USING <expression>, after '
                    'checking the rows' % (d.table, d.item, ltype, want, table, column, want))
        return
    result.add('ALTER TABLE %s ALTER COLUMN %s TYPE %s;' % (table, column, want),
               '-- fails if a value no longer fits %s\nALTER TABLE %s ALTER COLUMN %s TYPE %s;'
               % (ltype, table, column, ltype),
               '%s.%s: type %s -> %s' % (d.table, d.item, ltype, want))


def _nullability(result, d):
    table, column = _table(d.table), quote(d.item)
    if d.live[1]:  # NOT NULL in the database, nullable in the models
        result.add('ALTER TABLE %s ALTER COLUMN %s DROP NOT NULL;' % (table, column),
                   '-- fails while a row holds NULL in %s\nALTER TABLE %s ALTER COLUMN %s SET '
                   'NOT NULL;' % (d.item, table, column), '%s.%s: nullable' % (d.table, d.item))
        return
    default, _ = database_default(d.want)
    fill = ('UPDATE %s SET %s = %s WHERE %s IS NULL;\n' % (table, column, default, column)
            if default else '-- fails while a row holds NULL in %s: fill them first\n' % d.item)
    result.add('%sALTER TABLE %s ALTER COLUMN %s SET NOT NULL;' % (fill, table, column),
               'ALTER TABLE %s ALTER COLUMN %s DROP NOT NULL;' % (table, column),
               '%s.%s: NOT NULL' % (d.table, d.item))


def _column(db, field, existing=False):
    """('name type [NOT NULL] [DEFAULT ...] [CHECK ...]', warning or None) for a field."""
    parts = [quote(field.column_name), expected_type(field)]
    default, unknown = database_default(field)
    if field.primary_key:
        parts.append('PRIMARY KEY')
    elif not field.null:
        parts.append('NOT NULL')
    if default:
        parts.append('DEFAULT %s' % default)
    parts.extend(_constraints(db, field.constraints))
    warning = None
    if existing and not field.null and not default:
        warning = ('%s.%s is NOT NULL without a database default%s: adding it fails while the '
                   'table has rows; give the field a constant default, or add it nullable, fill '
                   'it in batches (BACKFILL in the migration), then SET NOT NULL in a later one'
                   % (
                       field.model._meta.table_name, field.column_name,
                       ' (its default is computed in Python)' if unknown else ''))
    return ' '.join(parts), warning


def _new_tables(db, result, by_kind):
    for d in by_kind.get('missing_table', ()):
        model = d.want
        meta = model._meta
        lines, constraints = [], []
        for field in meta.sorted_fields:
            definition, _ = _column(db, field)
            if field in meta.refs and not getattr(field, 'tenant_scoped', False):
                definition += ' ' + _fk_clause(field)[1]
            lines.append(definition)
        # A key over (organization_id, x) to another tenant table comes after the table, in a
        # statement of its own: on Citus the new table must be distributed before it may
        # reference a distributed one (hub db migrate does so when Citus refuses it).
        tenant_keys = []
        for field in meta.refs:
            if getattr(field, 'tenant_scoped', False):
                cols, clause = _fk_clause(field)
                tenant_keys.append('ALTER TABLE %s ADD CONSTRAINT %s\n    FOREIGN KEY (%s) %s;' % (
                    _table(meta.table_name), quote(_fk_constraint_name(meta.table_name, cols)),
                    _cols(cols), clause))
        constraints.extend(_constraints(db, meta.constraints))
        body = ',\n'.join('    ' + line for line in lines + constraints)
        up = ['CREATE TABLE %s (\n%s\n);' % (_table(meta.table_name), body)]
        pk = ((meta.primary_key.column_name,), True)
        for cols, unique in sorted(expected_indexes(model) - {pk}):
            up.append('CREATE %sINDEX %s ON %s (%s);' % (
                'UNIQUE ' if unique else '', quote(_index_name(meta.table_name, cols)),
                _table(meta.table_name), _cols(cols)))
        up.extend(tenant_keys)
        if 'updated_at' in meta.fields:
            up.append('CREATE TRIGGER %s BEFORE UPDATE ON %s\n    FOR EACH ROW EXECUTE FUNCTION '
                      'public.hub_touch_updated_at();' % (quote(_short(meta.table_name +
                                                                       '_updated_at')),
                                                          _table(meta.table_name)))
        result.add('\n'.join(up), 'DROP TABLE %s;' % _table(meta.table_name),
                   'table %s: created' % meta.table_name)


def render(plan_, name):
    """The migration file's source for `plan_`."""
    body = ['Written by `hub db generate %s` from hub.models; read it before `hub db migrate`.'
            % name, '']
    body += ['- %s' % line for line in plan_.summary]
    if plan_.todos:
        body += ['', 'TODO: `hub db generate` did not write these, to avoid a guess; write them '
                 'by hand (the -- TODO lines in UP), then delete the guard in up():', '']
        body += ['- %s' % t for t in plan_.todos]
    if plan_.policies:
        body += ['', 'Row-level security: `hub db migrate` ends this migration, in its '
                 'transaction, with the sync of hub.rls: a new table gets its policies and '
                 'grants where `hub rls install` has run, and is deny-all where it has not.']
    escape = lambda sql: sql.replace('%', '%%')  # noqa: E731  (run with parameters)
    return migrate.render(name, '\n'.join(_wrap(line) for line in body) + '\n',
                          escape(plan_.up_sql()), escape(plan_.down_sql()),
                          escape('\n'.join(plan_.commit_first) + '\n' if plan_.commit_first else ''),
                          todo=bool(plan_.todos),
                          concurrently=escape('\n'.join(plan_.concurrently) + '\n'
                                              if plan_.concurrently else ''))


def _wrap(line, width=96):
    """A docstring line folded at `width`, list items indented under their text."""
    out, indent = [], '  ' if line.startswith('- ') else ''
    while len(line) > width:
        cuts = [i for i in range(len(indent) + 1, width)
                if line[i] == ' ' and line.count('`', 0, i) % 2 == 0]  # never inside `code`
        if not cuts:
            break
        cut = cuts[-1]
        out.append(line[:cut])
        line = indent + line[cut + 1:]
    out.append(line)
    return '\n'.join(out)


def generate(db, name, directory=migrate.MIGRATIONS_DIR):
    """Write the migration that brings `db` to hub.models as `directory`/NNNN_<name>.py.

    Returns (path, warnings): path is None when nothing differs (no file is written); each
    warning is a TODO written into the file. Refuses (MigrationError) a database with pending
    migrations: the new one must start where the others end.
    """
    migrate.check_name(name, directory)
    rows = migrate.status(db, directory)
    migrate.ensure_known(db, directory, rows)
    pending = [m.name for m in rows if m.applied is None]
    if pending:
        raise MigrationError('%d migration%s pending (%s): run `hub db migrate` first, so the new '
                             'migration starts where they end' % (
                                 len(pending), ' is' if len(pending) == 1 else 's are',
                                 ', '.join(pending)))
    found = plan(db)
    if found.empty:
        return None, []
    path = migrate.new(name, directory, render(found, name))
    return path, ['%s: TODO: %s' % (path.name, t) for t in found.todos]
