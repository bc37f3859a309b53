"""Organization snapshots: one tenant, every row under it, as one JSON document and back.

    >>> import hub
    >>> from hub import snapshot
    >>> db = hub.connect()
    >>> doc = snapshot.export_organization(db, org_id)
    >>> text = snapshot.dumps(doc)                     # what `hub export --org ID` writes
    >>> snapshot.import_organization(db, snapshot.loads(text), as_new=True)
    ('c5x...', {'organizations': 1, 'users': 0, ...})   # a copy under fresh ids, beside the original

PostgreSQL converts both ways (`row_to_json` out, `json_populate_recordset` in), so every type
(timestamptz, numeric, enums, text[], jsonb[]) round-trips exactly: export -> import into an empty
database -> export gives the identical document. Integration credentials stay encrypted as they
are. System templates the organization's workflows use travel along and are added only where
missing.
"""
import json

from hub.errors import ConfigError, HubError
from hub.ids import new_id

FORMAT = 'neuroflow-hub/organization'
VERSION = 1
BATCH = 5000

# Tables in the document, parents first; each with the WHERE that selects the organization's rows.
_ORG = 'organization_id = %s'
TABLES = (
    ('organizations', 'id = %s'),
    ('users', 'id IN (SELECT user_id FROM organization_members WHERE organization_id = %s)'),
    ('organization_members', _ORG),
    ('workflow_templates', _ORG),
    ('workflows', _ORG),
    ('ai_agents', _ORG),
    ('agent_teams', _ORG),
    ('team_members', _ORG),
    ('workflow_executions', _ORG),
    ('agent_executions', _ORG),
    ('team_executions', _ORG),
    ('integrations', _ORG),
)
SYSTEM_TEMPLATES = ('workflow_templates', """organization_id IS NULL AND id IN (
    SELECT template_id FROM workflows WHERE organization_id = %s)""")

# Which id space each reference column points into, for --as-new.
_REFERENCES = {
    'organization_id': 'organizations', 'user_id': 'users', 'created_by': 'users',
    'template_id': 'workflow_templates', 'workflow_id': 'workflows', 'agent_id': 'ai_agents',
    'team_id': 'agent_teams', 'workflow_execution_id': 'workflow_executions',
}


class SnapshotError(HubError):
    """A snapshot document that cannot be loaded; nothing was written."""


def _select(db, table, where, org_id):
    cursor = db.execute_sql('SELECT row_to_json(t) FROM %s t WHERE %s ORDER BY id' % (table, where),
                            (org_id,))
    return [row for (row,) in cursor]


def export_organization(db, org_id):
    """The organization `org_id` with its users, memberships and every row under it."""
    if not _select(db, 'organizations', 'id = %s', org_id):
        raise ConfigError('organization %r does not exist; list them with '
                          '`psql "$(hub db url)" -c "SELECT id, slug FROM organizations"`' % org_id)
    tables = {table: _select(db, table, where, org_id) for table, where in TABLES}
    return {'format': FORMAT, 'version': VERSION, 'organization_id': org_id,
            'system_templates': _select(db, *SYSTEM_TEMPLATES, org_id), 'tables': tables}


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
    body = ['  %s: %s' % (json.dumps(table), rows(doc['tables'][table])) for table, _ in TABLES]
    parts.append(',\n'.join(body))
    parts.append('  }')
    parts.append('}')
    return '\n'.join(parts) + '\n'


def loads(text, name='snapshot'):
    """Parse and check a snapshot document; errors name `name` and what is wrong."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SnapshotError('%s: not JSON (%s at line %d, column %d)'
                            % (name, exc.msg, exc.lineno, exc.colno)) from None
    if not isinstance(doc, dict) or doc.get('format') != FORMAT:
        raise SnapshotError('%s: not an organization snapshot (expected "format": "%s"); '
                            'make one with `hub export --org ID`' % (name, FORMAT))
    if doc.get('version') != VERSION:
        raise SnapshotError('%s: snapshot version %r is not supported (this hub reads %d)'
                            % (name, doc.get('version'), VERSION))
    tables = doc.get('tables')
    if not isinstance(tables, dict) or any(not isinstance(tables.get(t), list) for t, _ in TABLES):
        missing = [t for t, _ in TABLES if not isinstance((tables or {}).get(t), list)]
        raise SnapshotError('%s: tables.%s: expected a list of rows' % (name, missing[0]))
    org_id = doc.get('organization_id')
    if [r.get('id') for r in tables['organizations']] != [org_id]:
        raise SnapshotError('%s: tables.organizations must hold exactly organization %r'
                            % (name, org_id))
    for table, where in TABLES:
        if where != _ORG:
            continue
        for i, row in enumerate(tables[table]):
            if row.get('organization_id') != org_id:
                raise SnapshotError('%s: tables.%s[%d].organization_id is %r, not the snapshot\'s '
                                    'organization %r' % (name, table, i, row.get('organization_id'),
                                                         org_id))
    return doc


def import_organization(db, doc, as_new=False):
    """Load a snapshot in one transaction; returns (organization id, rows inserted per table).

    With `as_new`, every row gets a fresh id (references follow), the slug gets a free suffix and
    members are matched to existing users by email, so the copy can sit beside the original.
    """
    tables = doc['tables']
    org_id = doc['organization_id']
    with db.atomic():
        if as_new:
            # Renumber copies: the caller's document stays as it was.
            tables = {t: [dict(r) for r in tables[t]] for t, _ in TABLES}
            org_id = _renumber(db, tables)
        elif db.execute_sql('SELECT 1 FROM organizations WHERE id = %s', (org_id,)).fetchone():
            raise SnapshotError('organization %r already exists in this database; '
                                'use --as-new to load a copy beside it' % org_id)
        counts = {}
        _insert(db, 'workflow_templates', doc['system_templates'], skip_existing=True)
        for table, _ in TABLES:
            counts[table] = _insert(db, table, tables[table], skip_existing=(table == 'users'))
    return org_id, counts


def _insert(db, table, rows, skip_existing=False):
    conflict = ' ON CONFLICT (id) DO NOTHING' if skip_existing else ''
    inserted = 0
    for start in range(0, len(rows), BATCH):
        chunk = json.dumps(rows[start:start + BATCH])
        cursor = db.execute_sql(
            'INSERT INTO %s SELECT * FROM json_populate_recordset(NULL::%s, %%s)%s'
            % (table, table, conflict), (chunk,))
        inserted += cursor.rowcount
    return inserted


def _renumber(db, tables):
    """Give every row a fresh id in place; returns the new organization id."""
    mapping = {name: {} for name in _REFERENCES.values()}
    existing = dict(db.execute_sql(
        'SELECT email, id FROM users WHERE email = ANY(%s)',
        ([u['email'] for u in tables['users']],)).fetchall())
    for user in tables['users']:
        mapping['users'][user['id']] = existing.get(user['email']) or new_id()
    tables['users'] = [u for u in tables['users'] if u['email'] not in existing]
    for table, _ in TABLES:
        if table != 'users':
            for row in tables[table]:
                mapping.setdefault(table, {})[row['id']] = new_id()
    for table, _ in TABLES:
        for row in tables[table]:
            row['id'] = mapping[table][row['id']]
            for column, target in _REFERENCES.items():
                # System templates keep their ids: only the organization's own rows move.
                if row.get(column) is not None and row[column] in mapping[target]:
                    row[column] = mapping[target][row[column]]
    organization = tables['organizations'][0]
    organization['slug'] = _free_slug(db, organization['slug'])
    return organization['id']


def _free_slug(db, slug):
    taken = {s for (s,) in db.execute_sql('SELECT slug FROM organizations WHERE slug LIKE %s',
                                          (slug[:90] + '%',))}
    if slug not in taken:
        return slug
    base = slug[:90] + '-copy'
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = '%s-%d' % (base, n), n + 1
    return candidate
