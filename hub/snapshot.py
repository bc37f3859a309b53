"""Organization snapshots: one tenant, every row under it, as one JSON document and back.

    >>> import hub
    >>> from hub import snapshot
    >>> db = hub.connect()
    >>> slugs = [o['slug'] for o in snapshot.list_organizations(db)]   # what `hub orgs` prints
    >>> slug = slugs[0]                                          # e.g. 'acme'
    >>> doc = snapshot.export_organization(db, slug)             # an id or a slug
    >>> snapshot.write(snapshot.dumps(doc), 'acme.json')         # mode 0600: e-mails, ciphertext
    >>> doc = snapshot.read('acme.json')                         # parsed, its shape checked
    >>> owner = doc['tables']['users'][0]['email']               # who owns the copy
    >>> snapshot.import_organization(db, doc, as_new=True, link_users=True, owner=owner)  # a copy
    ('c...', {'organizations': 1, 'users': 0, ...})

PostgreSQL converts both ways (`row_to_json` out, `json_populate_recordset` in), so every type
(timestamptz, numeric, enums, text[], jsonb[]) round-trips exactly: export -> import into an
empty database -> export gives the identical organization. Integration credentials stay
encrypted as they are. Columns are read from the catalog, tables (parents first) and references
from hub.models, never listed here: a column a migration adds, or a table a new model declares,
travels without a change to this module (a snapshot made before that table existed holds none).

A snapshot is untrusted input (someone sent you a file). `import_organization` checks all of it
before it writes anything, then writes in one transaction:

- it writes only the organization it creates (its own id, or a fresh one with `as_new`): every
  row's organization_id is that organization, and every reference resolves inside the snapshot,
  to a shipped marketplace template, or to a public template already in the database (a
  reference to any other template, e.g. one made private since the export, becomes NULL and
  `notify` says so);
- `system_templates` entries only name templates: one missing here is added if, and only if, it
  is a shipped marketplace template (`hub.marketplace`), with the shipped content and no usage
  or rating; an existing template is never rewritten;
- users already in the database (same e-mail) are refused unless `link_users` is given, which
  invites them to the new organization (a pending membership they accept themselves; a file
  cannot consent for them) without touching their profile; memberships of snapshots made
  before invitations existed (no accepted_at) are accepted as of their created_at;
- the organization keeps an accepted OWNER: `owner` names the user (here or in the snapshot)
  who becomes it; without `owner`, a snapshot whose OWNERs would all be invitations (linked
  users) or absent is refused;
- every row is checked as a tenant's write would be: known columns, required ones present,
  JSON types matching the column types, enum labels, workflow graphs (`hub.graph`), then the
  database's CHECKs and foreign keys; an organization's public templates arrive unfeatured,
  unrated and unused (curation is the platform's);
- input limits: MAX_BYTES per document, MAX_SEPARATORS values per document (counted before
  parsing), MAX_ROWS rows per table, MAX_STRING characters per string, MAX_ELEMENTS elements
  per array (members per object) and MAX_DEPTH nesting inside a field, MAX_NODES / MAX_EDGES
  per graph.

The first problem is a SnapshotError: '<file>: <JSON path>: <problem>', e.g.
`acme.json: tables.workflows[3].nodes[1].type: unknown node type 'evil'; use one of ...`.
"""
import json
import math
import os
import re
import stat
import sys

from hub import citus, graph
from hub.errors import ConfigError, SnapshotError
from hub.ids import new_id

FORMAT = 'neuroflow-hub/organization'
VERSION = 1
BATCH = 5000

#: Limits on untrusted input (docs/snapshots.md). The largest seeded organization (`--scale
#: large`) is a 48 MB document with strings under 10 kB and JSON nested under 10 levels.
MAX_BYTES = 256 * 1024 * 1024
MAX_STRING = 1024 * 1024
MAX_DEPTH = 64
MAX_NODES, MAX_EDGES = 1000, 5000
#: Elements of one array, or members of one object, inside a row's field (the largest seeded is
#: a graph of a few dozen nodes), and rows of one table (the large scale's biggest table holds
#: about 100,000).
MAX_ELEMENTS = 100000
MAX_ROWS = 1000000
#: Commas and colons in the whole text (every value but the first of an array or object follows
#: one; those inside strings count too, so this is an upper bound): what the parser may build.
#: A 48 MB seeded organization holds about 5 million.
MAX_SEPARATORS = 16 * 1024 * 1024

# The WHERE that selects the organization's rows of a table: the organization itself, the users
# who are its members (a user belongs to no one organization), and any table with organization_id.
_ORG = 'organization_id = %s'
_SCOPES = {'organizations': 'id = %s',
           'users': 'id IN (SELECT user_id FROM organization_members WHERE organization_id = %s)'}


def tables():
    """((table, WHERE), ...) of every model with a share of an organization, parents first
    (hub.models.dependency_order): a table a new model declares travels without an edit here."""
    from hub import models

    out = []
    for model in models.dependency_order():
        table = model._meta.table_name
        if table in _SCOPES:
            out.append((table, _SCOPES[table]))
        elif 'organization_id' in model._meta.columns:
            out.append((table, _ORG))
    return tuple(out)


def table_names():
    return tuple(table for table, _ in tables())


SYSTEM_TEMPLATES = ('workflow_templates', """organization_id IS NULL AND id IN (
    SELECT template_id FROM workflows WHERE organization_id = %s)""")
_GRAPH_TABLES = ('workflows', 'workflow_templates')
_TOP_KEYS = ('format', 'version', 'organization_id', 'system_templates', 'tables')

__all__ = ['SnapshotError', 'export_organization', 'find_organization', 'list_organizations',
           'dumps', 'write', 'loads', 'read', 'import_organization']


# -- organizations -------------------------------------------------------------------------------

def find_organization(db, org):
    """The id of the organization whose id, else whose slug, is `org`; ConfigError otherwise.

    Ids win: they are generated and immutable, while a tenant's ADMIN may rename its slug.
    """
    for column in ('id', 'slug'):
        row = db.execute_sql('SELECT id FROM organizations WHERE %s = %%s' % column,
                             (org,)).fetchone()
        if row:
            return row[0]
    raise ConfigError('organization %r does not exist (no id or slug matches); list them with '
                      '`hub orgs`' % org)


def list_organizations(db):
    """Every organization as {id, slug, name, members, workflows, created_at}, by slug."""
    # Counts grouped by organization_id and joined, not a sub-select per organization: Citus
    # refuses a sub-select that correlates a reference table with a distributed one.
    cursor = db.execute_sql("""
        SELECT o.id, o.slug, o.name, coalesce(m.n, 0), coalesce(w.n, 0), o.created_at
        FROM organizations o
        LEFT JOIN (SELECT organization_id, count(*) AS n FROM organization_members
                   GROUP BY organization_id) m ON m.organization_id = o.id
        LEFT JOIN (SELECT organization_id, count(*) AS n FROM workflows
                   GROUP BY organization_id) w ON w.organization_id = o.id
        ORDER BY o.slug, o.id""")
    keys = ('id', 'slug', 'name', 'members', 'workflows', 'created_at')
    return [dict(zip(keys, row)) for row in cursor]


# -- export --------------------------------------------------------------------------------------

def _select(db, table, where, org_id):
    cursor = db.execute_sql('SELECT row_to_json(t) FROM %s t WHERE %s ORDER BY id' % (table, where),
                            (org_id,))
    return [row for (row,) in cursor]


def export_organization(db, org):
    """The organization `org` (an id or a slug) with its users, memberships and every row under it."""
    org_id = find_organization(db, org)
    rows = {table: _select(db, table, where, org_id) for table, where in tables()}
    # System templates are the platform's rows, not the organization's: the snapshot only
    # names the ones its workflows use (the name is for people; an import reads the id).
    system = [{'id': i, 'name': n} for i, n in db.execute_sql(
        'SELECT id, name FROM %s WHERE %s ORDER BY id' % SYSTEM_TEMPLATES, (org_id,))]
    return {'format': FORMAT, 'version': VERSION, 'organization_id': org_id,
            'system_templates': system, 'tables': rows}


def dumps(doc):
    """JSON text with one row per line: diffable, and identical for identical content."""
    def rows(items):
        if not items:
            return '[]'
        return '[\n' + ',\n'.join('    ' + json.dumps(r, ensure_ascii=False) for r in items) + '\n  ]'

    parts = ['{',
             '  "format": %s,' % json.dumps(doc['format']),
             '  "version": %d,' % doc['version'],
             '  "organization_id": %s,' % json.dumps(doc['organization_id']),
             '  "system_templates": %s,' % rows(doc['system_templates']),
             '  "tables": {']
    body = ['  %s: %s' % (json.dumps(table), rows(doc['tables'].get(table, [])))
            for table in table_names()]
    parts.append(',\n'.join(body))
    parts.append('  }')
    parts.append('}')
    return '\n'.join(parts) + '\n'


def write(text, path):
    """Write `text` to the file `path`, readable by its owner only: it holds e-mails and ciphertext.

    A new file is created with mode 0600; an existing regular file is truncated and set to
    0600 before anything is written to it. Devices and pipes (/dev/stdout) are written as they are.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, 'w', encoding='utf-8') as fh:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                os.fchmod(fd, 0o600)
            fh.write(text)
    except OSError as exc:
        raise ConfigError('cannot write %s: %s; choose a writable file for -o'
                          % (path, exc.strerror or exc)) from None


# -- reading: the document's shape, without a database -------------------------------------------

class _Bad(ValueError):
    """Raised inside the JSON parser's hooks; becomes a SnapshotError naming the file."""


def _reject_constant(name):
    raise _Bad('%s is not JSON; use null or a number' % name)


def _object(pairs):
    result = dict(pairs)
    if len(result) != len(pairs):
        seen = set()
        key = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise _Bad('key %s appears twice in one object; keep one' % json.dumps(key))
    return result


def read(path, name=None):
    """Parse the snapshot file `path` ('-' for standard input) and check its shape."""
    name = name or ('<stdin>' if path == '-' else path)
    try:
        if path == '-':
            data = sys.stdin.buffer.read(MAX_BYTES + 1)
        else:
            with open(path, 'rb') as fh:
                size = os.fstat(fh.fileno()).st_size
                if size > MAX_BYTES:
                    _too_big(name, size)
                data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise SnapshotError('%s: cannot read: %s' % (name, exc.strerror or exc)) from None
    return loads(data, name=name)


def _too_big(name, size):
    raise SnapshotError('%s: %d bytes, over the limit of %d MiB for a snapshot; split the '
                        'organization or raise hub.snapshot.MAX_BYTES'
                        % (name, size, MAX_BYTES // (1024 * 1024)))


def loads(data, name='snapshot'):
    """Parse (bytes or str) and check a snapshot's shape; errors name `name` and the JSON path."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = bytes(data)
        if len(data) > MAX_BYTES:
            _too_big(name, len(data))
        try:
            data = data.decode('utf-8')
        except UnicodeDecodeError as exc:
            raise SnapshotError('%s: not UTF-8 text (byte %d); a snapshot is UTF-8 JSON as '
                                '`hub export` writes it' % (name, exc.start)) from None
    elif len(data) > MAX_BYTES:
        _too_big(name, len(data))
    # Counted before parsing: a parsed value costs 30 to 100 bytes of memory, so 80 MB of
    # "0," would be gigabytes before any per-array limit could look at it.
    separators = data.count(',') + data.count(':')
    if separators > MAX_SEPARATORS:
        raise SnapshotError('%s: %d commas and colons, over the limit of %d values for a snapshot '
                            '(hub.snapshot.MAX_SEPARATORS); a snapshot is one organization as '
                            '`hub export` writes it' % (name, separators, MAX_SEPARATORS))
    try:
        doc = json.loads(data, parse_constant=_reject_constant, object_pairs_hook=_object)
    except json.JSONDecodeError as exc:
        raise SnapshotError('%s: not JSON (%s at line %d, column %d)'
                            % (name, exc.msg, exc.lineno, exc.colno)) from None
    except RecursionError:
        raise SnapshotError('%s: JSON nested too deeply to read; a snapshot field nests at most '
                            '%d levels' % (name, MAX_DEPTH)) from None
    except ValueError as exc:  # _Bad, or an integer literal longer than Python reads
        raise SnapshotError('%s: not JSON (%s)' % (name, exc)) from None
    check_document(doc, name)
    return doc


def _kind(value):
    if value is None:
        return 'null'
    if isinstance(value, bool):
        return 'true' if value else 'false'
    for label, kind in (('a string', str), ('an object', dict), ('an array', list),
                        ('a number', (int, float))):
        if isinstance(value, kind):
            return label
    return type(value).__name__


def check_document(doc, name='snapshot'):
    """The snapshot's shape: keys, tables, rows as objects with ids, one organization.

    Needs no database; `import_organization` checks the rest (columns, types, references).
    """
    def fail(where, problem):
        raise SnapshotError('%s: %s: %s' % (name, where, problem))

    if not isinstance(doc, dict) or doc.get('format') != FORMAT:
        raise SnapshotError('%s: not an organization snapshot (expected "format": "%s"); '
                            'make one with `hub export --org ID`' % (name, FORMAT))
    if doc.get('version') != VERSION:
        raise SnapshotError('%s: snapshot version %r is not supported (this hub reads %d)'
                            % (name, doc.get('version'), VERSION))
    for key in doc:
        if key not in _TOP_KEYS:
            fail(key, 'unknown key; a snapshot has %s' % ', '.join(_TOP_KEYS))
    tables = doc.get('tables')
    names = table_names()
    if not isinstance(tables, dict):
        fail('tables', 'expected an object of tables, got %s' % _kind(tables))
    for table in tables:
        if table not in names:
            fail('tables.%s' % table, 'unknown table; a snapshot holds %s' % ', '.join(names))
    # A table the snapshot lacks was not there when it was made (a later model's): no rows.
    required = ('organizations', 'users', 'organization_members')
    for table in names:
        if table in tables or table in required:
            if not isinstance(tables.get(table), list):
                fail('tables.%s' % table, 'expected a list of rows')
    org_id = doc.get('organization_id')
    if not isinstance(org_id, str) or not org_id:
        fail('organization_id', 'expected the organization\'s id (a string), got %s'
             % _kind(org_id))
    system = doc.get('system_templates', [])
    if not isinstance(system, list):
        fail('system_templates', 'expected a list of templates, got %s' % _kind(system))
    for where, rows in [('system_templates', system)] + [
            ('tables.%s' % t, tables.get(t, [])) for t in names]:
        if len(rows) > MAX_ROWS:
            fail(where, '%d rows, over the limit of %d rows per table (hub.snapshot.MAX_ROWS)'
                 % (len(rows), MAX_ROWS))
        seen = set()
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                fail('%s[%d]' % (where, i), 'expected an object (one row), got %s' % _kind(row))
            row_id = row.get('id')
            if not isinstance(row_id, str) or not row_id:
                fail('%s[%d].id' % (where, i), 'expected a non-empty string, got %s'
                     % _kind(row_id))
            if row_id in seen:
                fail('%s[%d].id' % (where, i), '%r appears twice' % row_id)
            seen.add(row_id)
    if [r['id'] for r in tables['organizations']] != [org_id]:
        fail('tables.organizations', 'must hold exactly organization %r' % org_id)
    for table in names:
        if table in _SCOPES:
            continue
        for i, row in enumerate(tables.get(table, [])):
            if row.get('organization_id') != org_id:
                fail('tables.%s[%d].organization_id' % (table, i),
                     '%r is not the snapshot\'s organization %r; a snapshot holds one '
                     'organization' % (row.get('organization_id'), org_id))
    return doc


# Characters PostgreSQL's text and jsonb cannot hold: NUL, and halves of surrogate pairs.
_UNSTORABLE = re.compile('[\x00\ud800-\udfff]')


def _value_problem(value):
    """None, or (relative JSON path, problem) for the first value no column could store."""
    kind = type(value)
    if kind is str:  # most values: no stack needed
        if len(value) <= MAX_STRING and not _UNSTORABLE.search(value):
            return None
    elif kind is not dict and kind is not list and kind is not float:
        return None
    # Iterative (a crafted document must not exhaust Python's stack), and one iterator per
    # level rather than every child pushed at once: the stack stays as deep as the value, never
    # as wide (20 million elements once took 3.5 GB here).
    problem = _scalar_problem(value)
    if problem or (kind is not dict and kind is not list):
        return ('', problem) if problem else None
    problem = _size_problem(value)
    if problem:
        return '', problem
    stack = [(_children(value), None)]
    while stack:
        children, parent = stack[-1]
        step = next(children, None)
        if step is None:
            stack.pop()
            continue
        key, child, in_object = step
        if in_object and (len(key) > MAX_STRING or _UNSTORABLE.search(key)):
            return _path(parent, key), 'a key PostgreSQL cannot store'
        kind = type(child)
        here = (parent, key)
        if kind is dict or kind is list:
            if len(stack) >= MAX_DEPTH:
                return '', 'nested deeper than %d levels' % MAX_DEPTH  # the field, not 64 steps
            problem = _size_problem(child)
            if problem:
                return _path(here), problem
            stack.append((_children(child), here))
        else:
            problem = _scalar_problem(child)
            if problem:
                return _path(here), problem
    return None


def _children(item):
    if type(item) is dict:
        return ((key, child, True) for key, child in item.items())
    return ((index, child, False) for index, child in enumerate(item))


def _size_problem(item):
    if len(item) > MAX_ELEMENTS:
        shape, parts = ('array', 'elements') if type(item) is list else ('object', 'members')
        return ('an %s of %d %s, over the limit of %d (hub.snapshot.MAX_ELEMENTS)'
                % (shape, len(item), parts, MAX_ELEMENTS))
    return None


def _scalar_problem(item):
    kind = type(item)
    if kind is str:
        if len(item) > MAX_STRING:
            return 'a string of %d characters, over the limit of %d' % (len(item), MAX_STRING)
        if _UNSTORABLE.search(item):
            return ('contains %s, which PostgreSQL cannot store'
                    % ('a NUL character' if '\x00' in item else 'half a surrogate pair'))
    elif kind is float and not math.isfinite(item):
        return 'a number too large for JSON (%s)' % item
    return None


def _path(parent, last=None):
    parts = [] if last is None else [last]
    while parent is not None:
        parent, key = parent
        parts.append(key)
    return ''.join('[%d]' % p if isinstance(p, int) else '.%s' % p for p in reversed(parts))


# -- import --------------------------------------------------------------------------------------

class _Column:
    __slots__ = ('name', 'kind', 'element', 'required', 'nullable', 'generated', 'limit', 'labels')


_TEXT = {'text', 'varchar', 'bpchar', 'name', 'uuid', 'citext'}
_INTS = {'int2': 2 ** 15, 'int4': 2 ** 31, 'int8': 2 ** 63}
_NUMBERS = {'float4', 'float8', 'numeric'}
_TIMESTAMP = re.compile(r'^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}(:\d{2}){0,2})$')


def _catalog(db, tables):
    """{table: {column: _Column}} from pg_catalog, for the tables visible on the search path."""
    labels = dict(db.execute_sql("""
        SELECT t.oid, array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
        FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid GROUP BY t.oid""").fetchall())
    cursor = db.execute_sql("""
        SELECT c.relname, a.attname, t.typname, t.typtype, t.oid, e.typname, e.typtype, e.oid,
               a.attnotnull, a.atthasdef, a.attgenerated <> '', a.atttypmod
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_type t ON t.oid = a.atttypid
        LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A'
        WHERE c.relname = ANY(%s) AND pg_table_is_visible(c.oid) AND c.relkind IN ('r', 'p')
          AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY c.relname, a.attnum""", (list(tables),))
    result = {table: {} for table in tables}
    for (table, name, typname, typtype, oid, element, element_type, element_oid, notnull,
         has_default, generated, typmod) in cursor:
        column = _Column()
        column.name, column.generated = name, generated
        column.nullable = not notnull
        column.required = notnull and not has_default and not generated
        column.kind = _kind_of(typname, typtype)
        column.labels = labels.get(oid)
        column.element = None
        if element is not None:
            column.kind = 'array'
            column.element = _kind_of(element, element_type)
            column.labels = labels.get(element_oid)
        column.limit = typmod - 4 if typname in ('varchar', 'bpchar') and typmod > 4 else None
        result[table][name] = column
    return result


def _kind_of(typname, typtype):
    if typtype == 'e':
        return 'enum'
    if typname in _TEXT:
        return 'text'
    if typname in _INTS:
        return typname
    if typname in _NUMBERS:
        return 'number'
    for kind, names in (('bool', ('bool',)), ('timestamp', ('timestamptz',)),
                        ('json', ('json', 'jsonb'))):
        if typname in names:
            return kind
    return 'other'  # the database checks it


def _type_problem(kind, value, column):
    if kind == 'text':
        if not isinstance(value, str):
            return 'expected a string, got %s' % _kind(value)
        if column.limit and len(value) > column.limit:
            return 'too long: %d characters, at most %d' % (len(value), column.limit)
    elif kind in _INTS:
        if type(value) is not int:
            return 'expected an integer, got %s' % _kind(value)
        if not -_INTS[kind] <= value < _INTS[kind]:
            return '%d is out of range for this column' % value
    elif kind == 'number':
        if type(value) not in (int, float):
            return 'expected a number, got %s' % _kind(value)
    elif kind == 'bool':
        if type(value) is not bool:
            return 'expected true or false, got %s' % _kind(value)
    elif kind == 'timestamp':
        if not isinstance(value, str) or not _TIMESTAMP.match(value):
            return ('expected a timestamp with its offset, as 2026-01-31T09:30:00+00:00; got %s'
                    % (json.dumps(value) if isinstance(value, str) else _kind(value)))
    elif kind == 'enum':
        if value not in (column.labels or ()):
            return 'expected one of %s; got %s' % (', '.join(column.labels or ()),
                                                   json.dumps(value))
    return None


def _row_problem(row, columns, partial=False):
    """None, or (column path, problem) for a row that does not fit the table's columns."""
    for key in row:
        if key not in columns:
            return key, 'unknown column; the table has %s' % ', '.join(columns)
    for name, column in columns.items():
        if name not in row:
            if column.required and not partial:
                return name, 'missing; this column is required'
            continue
        value = row[name]
        if value is None:
            if not column.nullable:
                return name, 'must not be null'
            continue
        if column.kind == 'array':
            if not isinstance(value, list):
                return name, 'expected an array, got %s' % _kind(value)
            for i, item in enumerate(value):
                problem = item is not None and _type_problem(column.element, item, column)
                if problem:
                    return '%s[%d]' % (name, i), problem
            continue
        problem = _type_problem(column.kind, value, column)
        if problem:
            return name, problem
    return None


def _references(tables):
    """{table: {column: referenced table}} for every reference the models declare (the
    organization_id half of a composite tenant key is the tenant column, checked on its own)."""
    from hub import models

    result = {table: {} for table in tables}
    for table in tables:
        for field in models.model_for(table)._meta.refs:
            result[table][field.column_name] = field.rel_model._meta.table_name
    return result


def _shipped_ids():
    from hub import marketplace
    from hub.ids import stable_id

    folder = marketplace.fixtures_dir()
    return {stable_id('template', f.name[:-len('.json')]) for f in folder.iterdir()
            if f.name.endswith('.json')}


class _Import:
    """One import: checks the document against this database, then writes it."""

    def __init__(self, db, doc, name, as_new, link_users, user_id=None, owner=None,
                 notify=None):
        self.db, self.name, self.as_new, self.link_users = db, name, as_new, link_users
        self.owner = owner
        self.notify = notify or (lambda message: None)
        self.org_id = doc['organization_id']
        # Copies: the caller's document stays as it was.
        self.names = table_names()
        self.tables = {t: [dict(r) for r in doc['tables'].get(t, [])] for t in self.names}
        self.system = [dict(r) for r in doc.get('system_templates', [])]
        self.columns = _catalog(db, self.names)
        self.references = _references(self.names)
        if user_id is not None:
            # Before any check: the users are checked and written under their new ids.
            _remap(self.tables, {'users': {u['id']: user_id(u['id'])
                                           for u in self.tables['users']}}, self.references)
        self.ids = {t: {r['id'] for r in rows} for t, rows in self.tables.items()}
        self.linked = {}           # snapshot user id -> existing user id
        self.add_templates = []    # shipped template ids to add

    def fail(self, where, problem):
        raise SnapshotError('%s: %s: %s' % (self.name, where, problem))

    def one(self, sql, params):
        return self.db.execute_sql(sql, params).fetchone()

    def check(self):
        self.check_rows()
        self.check_organization()
        self.check_users()
        self.check_references()
        self.check_taken_ids()

    def check_rows(self):
        for table in self.names:
            columns = self.columns[table]
            for i, row in enumerate(self.tables[table]):
                where = 'tables.%s[%d]' % (table, i)
                self.check_values(where, row)
                problem = _row_problem(row, columns)
                if problem:
                    self.fail('%s.%s' % (where, problem[0]), problem[1])
                if table in _GRAPH_TABLES and 'nodes' in row and 'edges' in row:
                    self.check_graph(where, row['nodes'], row['edges'])
        for i, entry in enumerate(self.system):
            where = 'system_templates[%d]' % i
            self.check_values(where, entry)
            problem = _row_problem(entry, self.columns['workflow_templates'], partial=True)
            if problem:
                self.fail('%s.%s' % (where, problem[0]), problem[1])
            for column in ('organization_id', 'created_by'):
                if entry.get(column) is not None:
                    self.fail('%s.%s' % (where, column), 'a system template belongs to nobody; '
                              'got %r (an organization\'s templates go in tables.'
                              'workflow_templates)' % entry[column])

    def check_values(self, where, row):
        for key, value in row.items():
            problem = _value_problem(value)
            if problem:
                self.fail('%s.%s%s' % (where, key, problem[0]), problem[1])

    def check_graph(self, where, nodes, edges):
        if isinstance(nodes, list) and len(nodes) > MAX_NODES:
            self.fail(where + '.nodes', '%d nodes, over the limit of %d' % (len(nodes), MAX_NODES))
        if isinstance(edges, list) and len(edges) > MAX_EDGES:
            self.fail(where + '.edges', '%d edges, over the limit of %d' % (len(edges), MAX_EDGES))
        for node in nodes if isinstance(nodes, list) else ():
            if isinstance(node, dict) and node.get('type') == 'output':
                node['type'] = 'end'  # the name of an end node in snapshots made before 'end'
        # The structure a graph needs to run; how its owner laid it out is theirs.
        problems = graph.validate(nodes, edges, layout=False)
        if problems:
            path, _, problem = problems[0].partition(': ')
            self.fail('%s.%s' % (where, path), problem)

    def check_organization(self):
        organization = self.tables['organizations'][0]
        if self.as_new:
            return
        if self.one('SELECT 1 FROM organizations WHERE id = %s', (self.org_id,)):
            raise SnapshotError('%s: organization %r already exists in this database; use '
                                '--as-new to load a copy beside it' % (self.name, self.org_id))
        if self.one('SELECT 1 FROM organizations WHERE slug = %s', (organization.get('slug'),)):
            self.fail('tables.organizations[0].slug', 'slug %r is taken in this database; use '
                      '--as-new (the copy gets a free slug)' % organization.get('slug'))

    def check_users(self):
        users = self.tables['users']
        members = {m.get('user_id') for m in self.tables['organization_members']}
        emails = {}
        for i, user in enumerate(users):
            if user['id'] not in members:
                self.fail('tables.users[%d]' % i, 'user %r has no membership in the '
                          'organization; a snapshot carries its members only' % user['id'])
            if user.get('email') in emails:
                self.fail('tables.users[%d].email' % i, '%r appears twice' % user['email'])
            emails[user.get('email')] = i
        by_email = dict(self.db.execute_sql('SELECT email, id FROM users WHERE email = ANY(%s)',
                                            (list(emails),)).fetchall())
        trusted = trusted_users(self.db, list(by_email.values()))
        taken = {row[0] for row in self.db.execute_sql(
            'SELECT id FROM users WHERE id = ANY(%s)', ([u['id'] for u in users],))}
        for i, user in enumerate(users):
            existing = by_email.get(user.get('email'))
            if existing is not None:
                if not self.link_users:
                    self.fail('tables.users[%d].email' % i, '%r is already a user of this '
                              'database; pass --link-users to invite that user to the imported '
                              'organization (their profile stays as it is), or remove '
                              'them from the snapshot' % user['email'])
                if existing not in trusted:
                    self.fail('tables.users[%d].email' % i, '%r belongs to a user of this '
                              'database whose address auth.users has not confirmed (same id, '
                              'same e-mail, email_confirmed_at set), so it may have been '
                              'claimed by someone else; confirm that account in Supabase Auth, '
                              'or remove the user from the snapshot' % user['email'])
                self.linked[user['id']] = existing
            elif user['id'] in taken and not self.as_new:
                self.fail('tables.users[%d].id' % i, '%r is the id of another user of this '
                          'database; use --as-new to give the snapshot\'s users fresh ids'
                          % user['id'])

    def check_references(self):
        pending = []  # template references to resolve against the database
        for table in self.names:
            for column, target in self.references[table].items():
                for i, row in enumerate(self.tables[table]):
                    value = row.get(column)
                    if value is None or target not in self.ids:
                        continue
                    where = 'tables.%s[%d].%s' % (table, i, column)
                    if target == 'organizations':
                        if value != self.org_id:
                            self.fail(where, '%r is not the snapshot\'s organization %r'
                                      % (value, self.org_id))
                    elif target == 'workflow_templates' and value not in self.ids[target]:
                        pending.append((where, value, row, column))
                    elif value not in self.ids[target]:
                        self.fail(where, '%r is no row of tables.%s; a snapshot\'s references '
                                  'stay inside it' % (value, target))
        self.check_templates(pending)

    def check_templates(self, pending):
        system = {entry['id']: i for i, entry in enumerate(self.system)}
        wanted = list(system) + [value for _, value, _, _ in pending]
        existing = {row[0]: row[1:] for row in self.db.execute_sql(
            'SELECT id, organization_id, is_public FROM workflow_templates WHERE id = ANY(%s)',
            (wanted,))}
        shipped = None
        for template_id, i in system.items():
            where = 'system_templates[%d].id' % i
            if template_id in existing:
                organization_id, public = existing[template_id]
                if organization_id is not None or not public:
                    self.fail(where, '%r is %s in this database, not a public system template'
                              % (template_id, 'a template of an organization'
                                 if organization_id is not None else 'a private template'))
                continue  # present: never rewritten
            shipped = _shipped_ids() if shipped is None else shipped
            if template_id not in shipped:
                self.fail(where, '%r is not a template of the shipped marketplace; an import '
                          'adds shipped templates only (see `hub templates list`)' % template_id)
            self.add_templates.append(template_id)
        for where, value, row, column in pending:
            if value in system or (value in existing and existing[value][1]):
                continue
            # A template made private (or deleted) since the export: the workflow keeps working
            # without it, as it does in the database it came from; a tenant may not point a row
            # at a template it cannot see, nor may a file.
            row[column] = None
            self.notify('%s: %s: template %r is not a public template of this database (private '
                        'to another organization, or gone); imported as NULL'
                        % (self.name, where, value))

    def check_taken_ids(self):
        if self.as_new:
            return
        for table in self.names:
            if table in ('organizations', 'users'):
                continue
            rows = self.tables[table]
            row = self.one('SELECT id FROM %s WHERE id = ANY(%%s) LIMIT 1' % table,
                           ([r['id'] for r in rows],)) if rows else None
            if row:
                index = next(i for i, r in enumerate(rows) if r['id'] == row[0])
                self.fail('tables.%s[%d].id' % (table, index), '%r already exists in this '
                          'database; use --as-new to load a copy under fresh ids' % row[0])

    # -- writing ---------------------------------------------------------------------------

    def prepare(self):
        """Map ids (fresh ones with as_new, linked users), then drop what is not the tenant's."""
        mapping = {table: {} for table in self.names}
        mapping['users'].update(self.linked)
        if self.as_new:
            for table in self.names:
                for row in self.tables[table]:
                    mapping[table].setdefault(row['id'], new_id())
        _remap(self.tables, mapping, self.references)
        linked = set(self.linked.values())
        self.tables['users'] = [u for u in self.tables['users'] if u['id'] not in linked]
        for membership in self.tables['organization_members']:
            if membership['user_id'] in linked:
                # A file cannot give an existing user's consent: they join as invitees and
                # accept (or decline) themselves.
                membership['accepted_at'] = None
            elif 'accepted_at' not in membership:
                # Snapshots from before invitations existed hold members only.
                membership['accepted_at'] = membership.get('created_at')
        for template in self.tables['workflow_templates']:
            # Curation is the platform's: featuring, ratings and usage do not travel.
            template['is_featured'] = False
            if template.get('is_public'):
                template['usage_count'] = 0
                template['rating'] = None
        organization = self.tables['organizations'][0]
        if self.as_new:
            organization['slug'] = _free_slug(self.db, organization['slug'])
        return organization['id']

    def settle_owner(self):
        """Every organization keeps an accepted OWNER: `owner` (an id or e-mail of a user of
        this database or of the snapshot) becomes it; without one, a snapshot that would leave
        none is refused (its OWNERs may be existing users, only invited by link_users)."""
        members = self.tables['organization_members']
        if self.owner is None:
            if any(m.get('role') == 'OWNER' and m.get('accepted_at') is not None
                   for m in members):
                return
            linked = set(self.linked.values())
            invited = sorted(m['user_id'] for m in members
                             if m.get('role') == 'OWNER' and m['user_id'] in linked)
            self.fail('tables.organization_members', 'the organization would have no accepted '
                      'OWNER%s; pass --owner USER (an id or e-mail of a user of this database) '
                      'to make that user its OWNER' % (
                          ' (its OWNER %s is a user of this database, only invited by '
                          '--link-users)' % ', '.join(invited) if invited else ''))
        user = self.owner_id()
        mine = [m for m in members if m['user_id'] == user]
        if mine:
            mine[0]['role'] = 'OWNER'
            mine[0].pop('accepted_at', None)  # the database's default: accepted now
        else:
            members.append({'id': new_id(), 'organization_id': self.tables['organizations'][0]['id'],
                            'user_id': user, 'role': 'OWNER'})

    def owner_id(self):
        row = self.one('SELECT id FROM users WHERE id = %s OR email = %s', (self.owner, self.owner))
        if row is not None:
            return row[0]
        for user in self.tables['users']:
            if self.owner in (user['id'], user.get('email')):
                return user['id']
        raise ConfigError('unknown --owner %r: no user of this database or of %s has that id or '
                          'e-mail; name an existing user (hub shell: User.select())'
                          % (self.owner, self.name))

    def write(self):
        if self.add_templates:
            from hub import marketplace

            rows = [r for r in marketplace.read_fixtures() if r['id'] in self.add_templates]
            self.insert('workflow_templates', rows, 'system_templates')
        counts = {}
        for table in self.names:
            counts[table] = self.insert(table, self.tables[table], 'tables.%s' % table)
        return counts

    def insert(self, table, rows, where):
        """INSERT the rows, grouped by the columns they name (absent ones take their default)."""
        from peewee import DataError, IntegrityError

        columns = self.columns[table]
        groups = {}
        for index, row in enumerate(rows):
            keys = tuple(k for k in row if not columns[k].generated)
            groups.setdefault(keys, []).append(index)
        inserted = 0
        for keys, indices in groups.items():
            names = ', '.join('"%s"' % k for k in keys)
            sql = ('INSERT INTO %s (%s) SELECT %s FROM json_populate_recordset(NULL::%s, %%s)'
                   % (table, names, names, table))
            for start in range(0, len(indices), BATCH):
                chunk = indices[start:start + BATCH]
                try:
                    with self.db.atomic():
                        inserted += self.db.execute_sql(
                            sql, (json.dumps([rows[i] for i in chunk]),)).rowcount
                except (IntegrityError, DataError):
                    self.locate(sql, rows, chunk, where)
                    raise
        return inserted

    def locate(self, sql, rows, chunk, where):
        """Insert the failed chunk row by row to name the row the database refused."""
        from peewee import DataError, IntegrityError

        from hub.errors import pg_error

        with self.db.atomic() as outer:
            for index in chunk:
                try:
                    with self.db.atomic():
                        self.db.execute_sql(sql, (json.dumps([rows[index]]),))
                except (IntegrityError, DataError) as exc:
                    message = str(pg_error(exc)).strip().splitlines()[0]
                    outer.rollback()
                    self.fail('%s[%d]' % (where, index), 'refused by the database: %s' % message)
            outer.rollback()


def trusted_users(db, ids):
    """The users of `ids` whose e-mail the database can vouch for: `link_users` invites only them.

    Where Supabase Auth keeps the accounts (auth.users exists), a users row is trusted when its id
    is its auth.users id and GoTrue confirmed the same address (email_confirmed_at): a row any
    other writer gave an address proves nothing about who reads that mailbox. Elsewhere every
    users row is trusted: only trusted writers (the owner, service_role, the platform's server)
    set an address, a tenant's own INSERT carries the one of its token (the `email` claim the
    gateway signed), and no tenant may change it (docs/rls.md, "Identity").
    """
    if not db.execute_sql("SELECT to_regclass('auth.users') IS NOT NULL").fetchone()[0]:
        return set(ids)
    return {i for (i,) in db.execute_sql("""
        SELECT u.id FROM public.users u JOIN auth.users a ON a.id::text = u.id
        WHERE u.id = ANY(%s) AND a.email_confirmed_at IS NOT NULL
          AND lower(a.email) = lower(u.email)""", (list(ids),))}


def _remap(tables, mapping, references):
    """Rename ids in `tables` (in place): each row's id per `mapping[table]` ({old: new}), and
    every reference to a renamed row, found by the foreign keys (`references`, _references).
    Ids missing from a mapping stay (templates outside the snapshot keep theirs)."""
    for table, rows in tables.items():
        own = mapping.get(table, {})
        followed = [(c, mapping[t]) for c, t in references[table].items() if t in mapping]
        for row in rows:
            row['id'] = own.get(row['id'], row['id'])
            for column, ids in followed:
                value = row.get(column)
                if value is not None:
                    row[column] = ids.get(value, value)


def import_organization(db, doc, as_new=False, link_users=False, name='snapshot', user_id=None,
                        owner=None, notify=None):
    """Check a snapshot against this database, then load it in one transaction.

    Returns (organization id, rows inserted per table). With `as_new`, every row gets a fresh
    id (references follow) and the slug a free suffix, so a copy can sit beside the original.
    Users whose e-mail exists here are refused unless `link_users`, which makes them members of
    the imported organization instead (their profile is left as it is). Raises SnapshotError,
    naming `name` and the JSON path of the first problem, with nothing written; DatabaseNewer
    for a database migrated by a newer hub. `user_id(snapshot user id) -> id` renames the
    snapshot's users before anything is checked, every reference following (`hub seed
    --scenario` gives scenario users uuids on a database with Supabase Auth). `owner` (an id or
    e-mail of a user of this database, or of the snapshot) becomes the organization's accepted
    OWNER; without it, a snapshot that would leave the organization with no accepted OWNER
    (its OWNERs linked, hence only invited) is refused. ConfigError names an unknown `owner`.
    A reference to a template this database does not show publicly (made private since the
    export, or deleted) is imported as NULL, and `notify(line)` (if given) is told so.
    """
    from hub.migrate import ensure_known

    check_document(doc, name)
    ensure_known(db)
    with db.atomic():
        if citus.enabled(db):
            # The id checks read every tenant table across its shards before organizations and
            # users (reference tables) are written (hub.citus.one_connection_per_worker).
            citus.one_connection_per_worker(db)
        job = _Import(db, doc, name, as_new, link_users, user_id, owner, notify)
        job.check()
        org_id = job.prepare()
        job.settle_owner()
        counts = job.write()
    return org_id, counts


def _free_slug(db, slug):
    taken = {s for (s,) in db.execute_sql('SELECT slug FROM organizations WHERE slug LIKE %s',
                                          (slug[:90].replace('\\', '\\\\').replace('%', '\\%')
                                           .replace('_', '\\_') + '%',))}
    if slug not in taken:
        return slug
    base = slug[:90] + '-copy'
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = '%s-%d' % (base, n), n + 1
    return candidate
