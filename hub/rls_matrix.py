"""The isolation matrix: every table x command x caller, with the exact outcome PostgreSQL gives.

    >>> import hub.connection, hub.rls_matrix
    >>> database = hub.connection.open_database(hub.connection.resolve_url())
    >>> report = hub.rls_matrix.verify(database)  # rolled back
    >>> text = hub.rls_matrix.format_report(report)   # the table `hub rls verify` prints
    >>> [case.label for case in report['leaks']]
    []

Inside one transaction (rolled back at the end, so a live database keeps nothing) it creates two
organizations, A and B, with rows in every table, and users who are OWNER, ADMIN or MEMBER of A,
OWNER or MEMBER of B, a member of both, and one of neither. Each case runs in its own savepoint
as one caller (role + JWT claims, exactly as PostgREST sets them) and compares what PostgreSQL
did (a row count, or an SQLSTATE such as 42501) with what the policies promise. A case that
gets more than promised is a leak. The tables come from the catalog, their cases from the models:
a tenant or child table (hub.rls.kind) gets its fixture rows (required columns filled by type,
references at its organization's rows) and the shared tenant cases without an entry here; only
the special tables have cases of their own. A table without a model is reported as a failure,
so a table added without policies cannot pass.

The same run also checks what goes around the matrix's question ("can A reach B's rows through
the tables?"), each as cases of its own:

- privileges (kind 'privilege'): per table x API role (and PUBLIC), exactly what the policies are
  written for; an extra one (TRUNCATE, REFERENCES, TRIGGER, UPDATE of an identity column, anything
  on the migration history) is a leak and is counted in report['extra_privileges'];
- hardening (kind 'audit'): TRUNCATE attempted by anon, a member and service_role; the migration
  history read, changed and emptied by each API role; every identity column and every curation
  column written by a tenant; a stale session-level claim; row-level security on every table
  in public; each helper's owner, settings and body; the temporary-domain hijack attempted
  against each SECURITY DEFINER helper in a fresh session; shipped template ids held by a tenant.

`hub rls verify` and tests/test_rls_matrix.py both run this module. It sits above hub.rls (it
reads the declarations it checks from there); hub.rls never imports it.
"""
import collections
import contextlib
import json
import secrets

from peewee import (BooleanField, CharField, DateTimeField, DecimalField, FloatField,
                    ForeignKeyField, IntegerField, JSONField, TextField)
from playhouse.postgres_ext import ArrayField, BinaryJSONField, DateTimeTZField

from hub import models, rls
from hub.errors import RlsError
from hub.ids import new_id
from hub.models import JsonbArrayField, PgEnumField

DENIED = '42501'   # insufficient_privilege: no grant, or a row rejected by WITH CHECK
FOREIGN_KEY = '23503'
OWNERLESS = '23514'  # check_violation: the organization would be left without an OWNER

#: Who runs a case: (role, claims) where claims names fixture users; the grid's columns.
ACTORS = collections.OrderedDict([
    ('member', 'MEMBER of A'),
    ('admin', 'ADMIN of A'),
    ('owner', 'OWNER of A'),
    ('outsider', 'OWNER of B'),
    ('multi', 'MEMBER of A and B'),
    ('anon', 'anon'),
    ('nobody', 'authenticated, no claims'),
    ('service', 'service_role'),
])

_ACTOR_USER = {'member': 'a_member', 'admin': 'a_admin', 'owner': 'a_owner',
               'outsider': 'b_owner', 'multi': 'multi', 'loner': 'loner',
               'newcomer': 'newcomer', 'b_member': 'b_member', 'invitee': 'invitee'}

#: Under `hub rls install --mode active` a caller's request names one organization: each actor
#: sends the organization_id claim of its home organization unless a case says otherwise (a case's
#: claims {'organization_id': None} send none). The loner and `nobody` have no home.
HOME = {'member': 'A', 'admin': 'A', 'owner': 'A', 'multi': 'A', 'invitee': 'A',
        'legacy': 'A', 'stale': 'A', 'outsider': 'B', 'b_member': 'B'}

Case = collections.namedtuple('Case', 'table command actor label expected actual ok leak kind')


class Fixture:
    """Logical names ('A', 'workflows_a', 'a_member', ...) mapped to this run's fresh ids, and
    how many rows of each table each organization got."""

    def __init__(self):
        self.ids = {}
        self.tag = secrets.token_hex(4)
        self.counts = collections.Counter()  # (table, 'A' or 'B') -> rows

    def put(self, db, table, values):
        _insert(db, table, values)
        org = values['id'] if table == 'organizations' else values.get('organization_id')
        for name in ('A', 'B'):
            if org is not None and org == self.ids.get(name):
                self.counts[table, name] += 1

    def email(self, user):
        """The address of fixture user `user`."""
        return '%s-%s@matrix.test' % (user, self.tag)

    def __getitem__(self, name):
        if name not in self.ids:
            self.ids[name] = new_id()
        return self.ids[name]


def _insert(db, table, values):
    columns = list(values)
    db.execute_sql('INSERT INTO public.%s (%s) VALUES (%s)' % (
        table, ', '.join(columns), ', '.join(['%s'] * len(columns))), [values[c] for c in columns])


# -- the tables, as the models declare them ------------------------------------------------------

def _model(table):
    return models.model_for(table)


def derived_tables():
    """The tenant and child tables (rls.kind), parents first: their cases come from the model."""
    return tuple(m._meta.table_name for m in models.dependency_order()
                 if rls.kind(m) in (rls.TENANT, rls.CHILD))


def created_by_tables():
    """Tables whose rows carry created_by, which an INSERT must set to the caller."""
    return tuple(t for t in rls.policy_tables() if 'created_by' in _model(t)._meta.columns)


def row_key(table, org='A'):
    """The fixture's name for organization `org`'s row of `table`."""
    return SPECIAL_ROWS[table][0] if table in SPECIAL_ROWS and org == 'A' else \
        '%s_%s' % (table, org.lower())


def _spare_key(table, org):
    return '%s_%s_spare' % (table, org.lower())


#: Rows of the special tables the matrix reads, changes and deletes (of organization A), and an
#: assignment that changes a column a tenant may change. The tenant and child tables' come from
#: their models (_assignment).
SPECIAL_ROWS = {'organizations': ('A', "name = 'Changed'"),
                'users': ('a_owner', "name = 'Changed'"),
                'organization_members': ('m_a_member', "role = 'ADMIN'"),
                'workflow_templates': ('tpl_a_private', "name = 'Changed'")}
#: What a row of a tenant or child table points at in the special tables, per organization.
_SPECIAL_TARGET = {'organizations': lambda f, org, user: f[org],
                   'users': lambda f, org, user: f[user],
                   'workflow_templates': lambda f, org, user: f['tpl_%s_private' % org.lower()]}
#: JSON columns whose CHECK wants an array: the React Flow graph of workflows and templates.
_ARRAY_COLUMNS = ('nodes', 'edges')


def _fixed_columns(table):
    return rls.IDENTITY_COLUMNS + rls.IMMUTABLE_COLUMNS.get(table, ()) \
        + rls.CURATION_COLUMNS.get(table, ())


def _assignment(table):
    """A SET a tenant may make on `table`: a text column renamed, else a column set to itself."""
    fields = [f for f in _model(table)._meta.sorted_fields
              if f.column_name not in _fixed_columns(table) and not isinstance(f, ForeignKeyField)]
    for field in fields:
        if isinstance(field, (CharField, TextField)):
            return "%s = 'Changed'" % field.column_name
    for field in fields:
        if isinstance(field, (IntegerField, FloatField, DecimalField)):
            return '%s = 7' % field.column_name
    return '%s = %s' % ((fields[0].column_name,) * 2)


def row(table):
    """(fixture key of A's row, assignment) for the generic read/change/delete cases."""
    if table in SPECIAL_ROWS:
        return SPECIAL_ROWS[table]
    return row_key(table, 'A'), _assignment(table)


def parent(table):
    """(column, parent table) of `table`'s first required tenant-scoped reference, or None:
    the cross-tenant attack points it at the other organization's parent."""
    for field in _model(table)._meta.sorted_fields:
        if getattr(field, 'tenant_scoped', False) and not field.null:
            return field.column_name, field.rel_model._meta.table_name
    return None


def _spare_fields(model):
    """References a new row must not share with the fixture's row: the last one of a unique
    index made of references only (team_members (team, agent): a new member is another agent)."""
    out = set()
    for fields, unique in model._meta.indexes:
        refs = [model._meta.fields[n] for n in fields if n in model._meta.fields]
        if unique and len(refs) == len(fields) > 1 \
                and all(isinstance(r, ForeignKeyField) for r in refs):
            out.add(refs[-1].name)
    return out


def spare_tables():
    """Tables whose fixture holds a second row per organization, for new rows to point at."""
    return {_model(t)._meta.fields[name].rel_model._meta.table_name
            for t in derived_tables() for name in _spare_fields(_model(t))}


def _sample(field):
    """A value PostgreSQL accepts for a required column the matrix does not care about."""
    if isinstance(field, PgEnumField):
        return list(field.enum_class)[0].value
    if isinstance(field, (JSONField, BinaryJSONField)):
        return '[]' if field.column_name in _ARRAY_COLUMNS else '{}'
    if isinstance(field, (ArrayField, JsonbArrayField)):
        return '{}'
    if isinstance(field, BooleanField):
        return False
    if isinstance(field, (IntegerField, FloatField, DecimalField)):
        return 0
    if isinstance(field, (DateTimeField, DateTimeTZField)):
        return '2025-01-01T00:00:00Z'
    return 'Matrix'


def _derived_row(f, table, org, user, fixture):
    """A new row of a tenant or child table, from its model: required columns filled by type,
    references pointed at organization `org`'s rows (the fixture's own rows also fill the
    optional references, and leave the spares alone)."""
    model = _model(table)
    spares = set() if fixture else _spare_fields(model)
    values = {}
    for field in model._meta.sorted_fields:
        column = field.column_name
        if column == 'id':
            continue
        if isinstance(field, ForeignKeyField):
            if field.null and not fixture:
                continue
            target = field.rel_model._meta.table_name
            if target in _SPECIAL_TARGET:
                values[column] = _SPECIAL_TARGET[target](f, org, user)
            elif field.name in spares:
                values[column] = f[_spare_key(target, org)]
            else:
                values[column] = f[row_key(target, org)]
        elif not field.null and field.default is None:
            values[column] = _sample(field)
    return values


def new_row(f, table, org, user, **overrides):
    """Column values of a new `table` row in organization `org` ('A' or 'B'), made by `user`."""
    unique = new_id()
    special = {
        'organizations': lambda: {'name': 'Matrix', 'slug': 'matrix-%s' % unique},
        'users': lambda: {'email': '%s@matrix.test' % unique},
        'organization_members': lambda: {'organization_id': f[org], 'user_id': f[user],
                                         'role': 'MEMBER'},
        'workflow_templates': lambda: {'organization_id': f[org], 'created_by': f[user],
                                       'name': 'Template', 'description': 'd',
                                       'category': 'SALES', 'nodes': '[]', 'edges': '[]'},
    }
    values = {'id': unique}
    values.update(special[table]() if table in special
                  else _derived_row(f, table, org, user, fixture=False))
    values.update(overrides)
    return values


def build_fixture(db):
    """Two organizations with a row in every table, and the users of every case."""
    f = Fixture()
    for org in ('A', 'B'):
        f.put(db, 'organizations', {'id': f[org], 'name': 'Org %s' % org,
                                    'slug': 'matrix-%s-%s' % (org.lower(), f.tag)})
    for user in ('a_owner', 'a_admin', 'a_member', 'b_owner', 'b_member', 'multi', 'loner',
                 'invitee'):
        f.put(db, 'users', {'id': f[user], 'email': f.email(user)})
    # Every membership accepted, but the invitee's: invited to A as ADMIN, not accepted yet.
    for key, org, user, role in (('m_a_owner', 'A', 'a_owner', 'OWNER'),
                                 ('m_a_admin', 'A', 'a_admin', 'ADMIN'),
                                 ('m_a_member', 'A', 'a_member', 'MEMBER'),
                                 ('m_b_owner', 'B', 'b_owner', 'OWNER'),
                                 ('m_b_member', 'B', 'b_member', 'MEMBER'),
                                 ('m_multi_a', 'A', 'multi', 'MEMBER'),
                                 ('m_multi_b', 'B', 'multi', 'MEMBER'),
                                 ('m_a_invitee', 'A', 'invitee', 'ADMIN')):
        accepted = None if user == 'invitee' else '2025-01-01T00:00:00Z'
        f.put(db, 'organization_members', {'id': f[key], 'organization_id': f[org],
                                           'user_id': f[user], 'role': role,
                                           'accepted_at': accepted})
    spares = spare_tables()
    for org, owner in (('A', 'a_owner'), ('B', 'b_owner')):
        x = org.lower()
        for key, public in (('tpl_%s_private' % x, False), ('tpl_%s_public' % x, True)):
            f.put(db, 'workflow_templates', new_row(f, 'workflow_templates', org, owner,
                                                    id=f[key], is_public=public))
        # Every tenant and child table, parents first; its references at this organization's
        # rows (and a spare row where new rows must point elsewhere).
        for table in derived_tables():
            keys = [row_key(table, org)] + ([_spare_key(table, org)] if table in spares else [])
            for key in keys:
                values = _derived_row(f, table, org, owner, fixture=True)
                f.put(db, table, dict(values, id=f[key]))
    for key, public in (('tpl_system', True), ('tpl_system_hidden', False)):
        f.put(db, 'workflow_templates', new_row(f, 'workflow_templates', 'A', 'a_owner',
                                                id=f[key], is_public=public,
                                                organization_id=None, created_by=None))
    return f


# -- the cases ---------------------------------------------------------------------------------

class Spec:
    """One statement to run as one caller, and what PostgreSQL must answer."""

    def __init__(self, table, command, actor, label, sql, params, expected, kind='matrix',
                 claims=None):
        self.table, self.command, self.actor, self.label = table, command, actor, label
        self.sql, self.params, self.expected, self.kind = sql, params, expected, kind
        self.claims = claims  # extra claims (organization_id) or a replacement user


def _rows(n):
    return ('rows', n)


def _error(code):
    return ('error', code)


class Matrix:
    """Builds the case list for the tables present in the database."""

    def __init__(self, f, anon_privileges, mode=rls.DEFAULT_MODE):
        self.f = f
        self.mode = mode
        self.anon = anon_privileges  # {(table, privilege): bool}
        self.specs = []

    def add(self, *args, **kwargs):
        self.specs.append(Spec(*args, **kwargs))

    # statements
    def select(self, table, key):
        return 'SELECT count(*) FROM public.%s WHERE id = %%s' % table, [self.f[key]]

    def update(self, table, key, assignment):
        return 'UPDATE public.%s SET %s WHERE id = %%s' % (table, assignment), [self.f[key]]

    def delete(self, table, key):
        return 'DELETE FROM public.%s WHERE id = %%s' % table, [self.f[key]]

    def insert(self, table, values):
        columns = list(values)
        return ('INSERT INTO public.%s (%s) VALUES (%s)' % (
            table, ', '.join(columns), ', '.join(['%s'] * len(columns))),
            [values[c] for c in columns])

    def anon_expected(self, table, command):
        """anon has no policy: zero rows where it holds the grants, 42501 where it does not."""
        needs = {'SELECT': ('SELECT',), 'INSERT': ('INSERT',), 'UPDATE': ('UPDATE', 'SELECT'),
                 'DELETE': ('DELETE', 'SELECT')}[command]
        if command == 'INSERT' or not all(self.anon.get((table, p)) for p in needs):
            return _error(DENIED)
        return _rows(0)

    def common(self, table, key, assignment, allowed):
        """SELECT/UPDATE/DELETE of one A row by every actor; `allowed` maps actor -> (cmd -> n)."""
        for command in ('SELECT', 'UPDATE', 'DELETE'):
            for actor in ACTORS:
                if actor == 'anon':
                    expected = self.anon_expected(table, command)
                elif actor == 'service':
                    expected = _rows(1)
                else:
                    expected = _rows(allowed.get(actor, {}).get(command, 0))
                sql = {'SELECT': lambda: self.select(table, key),
                       'UPDATE': lambda: self.update(table, key, assignment),
                       'DELETE': lambda: self.delete(table, key)}[command]()
                self.add(table, command, actor, '%s %s row of A' % (command.lower(), table),
                         sql[0], sql[1], expected)

    def inserts(self, table, by_actor):
        """INSERT of a new A row by every actor; `by_actor` maps actor -> expected."""
        for actor in ACTORS:
            user = _ACTOR_USER.get(actor, 'a_owner')
            expected = by_actor.get(actor, _error(DENIED))
            if actor == 'service':
                expected = _rows(1)
            values = new_row(self.f, table, 'A', user)
            self.add(table, 'INSERT', actor, 'insert %s row into A' % table,
                     *self.insert(table, values), expected)

    def attack(self, table, command, actor, label, sql, params, expected, claims=None):
        self.add(table, command, actor, label, sql, params, expected, kind='attack',
                 claims=claims)

    # per kind of table
    def tenant_or_child(self, table):
        key, assignment = row(table)
        full = {'SELECT': 1, 'UPDATE': 1, 'DELETE': 1}
        self.common(table, key, assignment,
                    {a: full for a in ('member', 'admin', 'owner', 'multi')})
        self.inserts(table, {a: _rows(1) for a in ('member', 'admin', 'owner', 'multi')})
        f = self.f
        # Moving a row to an organization the caller is not in.
        self.attack(table, 'UPDATE', 'member', 'move a row of A to B',
                    *self.update(table, key, "organization_id = '%s'" % f['B']), _error(DENIED))
        # Reading B's row while acting in A only (the organization_id claim narrows).
        self.attack(table, 'SELECT', 'multi', 'organization_id claim = B hides A',
                    *self.select(table, key), _rows(0), claims={'organization_id': f['B']})
        self.attack(table, 'SELECT', 'multi', 'organization_id claim = A shows A',
                    *self.select(table, key), _rows(1), claims={'organization_id': f['A']})
        self.attack(table, 'SELECT', 'outsider', 'claim names an organization one is not in',
                    *self.select(table, key), _rows(0), claims={'organization_id': f['A']})
        self.attack(table, 'SELECT', 'invitee', 'claim names the organization one is invited to',
                    *self.select(table, key), _rows(0), claims={'organization_id': f['A']})
        # Without the claim: every organization of the caller (members), none (active).
        self.attack(table, 'SELECT', 'member', 'no organization_id claim',
                    *self.select(table, key), _rows(1 if self.mode == 'members' else 0),
                    claims={'organization_id': None})
        self.attack(table, 'UPDATE', 'member', 'no organization_id claim',
                    *self.update(table, key, assignment), _rows(1 if self.mode == 'members' else 0),
                    claims={'organization_id': None})
        if table in created_by_tables():
            values = new_row(f, table, 'A', 'a_member', created_by=f['a_owner'])
            self.attack(table, 'INSERT', 'member', 'insert with created_by of someone else',
                        *self.insert(table, values), _error(DENIED))
        if parent(table):
            column, target = parent(table)
            values = new_row(f, table, 'A', 'a_member', **{column: f[row_key(target, 'B')]})
            self.attack(table, 'INSERT', 'member', "insert into A pointing at B's parent",
                        *self.insert(table, values), _error(FOREIGN_KEY))
            values = new_row(f, table, 'B', 'b_owner', **{column: f[row_key(target, 'A')]})
            self.attack(table, 'INSERT', 'outsider', "insert into B pointing at A's parent",
                        *self.insert(table, values), _error(FOREIGN_KEY))
            values = new_row(f, table, 'B', 'b_owner')
            self.attack(table, 'INSERT', 'member', 'insert into B (not a member)',
                        *self.insert(table, values), _error(DENIED))

    def workflow_templates(self):
        table = 'workflow_templates'
        f = self.f
        full = {'SELECT': 1, 'UPDATE': 1, 'DELETE': 1}
        self.common(table, 'tpl_a_private', "name = 'Changed'",
                    {a: full for a in ('member', 'admin', 'owner', 'multi')})
        self.inserts(table, {a: _rows(1) for a in ('member', 'admin', 'owner', 'multi')})
        for key, n in (('tpl_a_public', 1), ('tpl_b_public', 1), ('tpl_b_private', 0),
                       ('tpl_system', 1), ('tpl_system_hidden', 0)):
            self.attack(table, 'SELECT', 'member', 'read %s' % key, *self.select(table, key),
                        _rows(n))
        self.attack(table, 'SELECT', 'outsider', "read A's public template",
                    *self.select(table, 'tpl_a_public'), _rows(1))
        for key in ('tpl_b_public', 'tpl_system'):
            self.attack(table, 'UPDATE', 'member', 'edit %s' % key,
                        *self.update(table, key, "name = 'Mine now'"), _rows(0))
            self.attack(table, 'DELETE', 'member', 'delete %s' % key,
                        *self.delete(table, key), _rows(0))
        self.attack(table, 'UPDATE', 'outsider', "edit A's public template",
                    *self.update(table, 'tpl_a_public', "name = 'Mine now'"), _rows(0))
        self.attack(table, 'UPDATE', 'service', 'service_role edits a system template',
                    *self.update(table, 'tpl_system', 'usage_count = 1'), _rows(1))
        values = new_row(f, table, 'A', 'a_member', organization_id=None)
        self.attack(table, 'INSERT', 'member', 'insert a system template (organization NULL)',
                    *self.insert(table, values), _error(DENIED))
        self.attack(table, 'UPDATE', 'member', 'turn a template of A into a system template',
                    *self.update(table, 'tpl_a_private', 'organization_id = NULL'),
                    _error(DENIED))
        self.attack(table, 'UPDATE', 'member', 'move a template of A to B',
                    *self.update(table, 'tpl_a_public', "organization_id = '%s'" % f['B']),
                    _error(DENIED))
        # A workflow may use only a template its organization can see.
        for key, expected in (('tpl_a_private', _rows(1)), ('tpl_b_public', _rows(1)),
                              ('tpl_system', _rows(1)), ('tpl_b_private', _error(DENIED)),
                              ('tpl_system_hidden', _error(DENIED))):
            values = new_row(f, 'workflows', 'A', 'a_member', template_id=f[key])
            self.attack('workflows', 'INSERT', 'member', 'workflow of A uses %s' % key,
                        *self.insert('workflows', values), expected)
        self.attack('workflows', 'UPDATE', 'member', "point a workflow at B's private template",
                    *self.update('workflows', row_key('workflows'),
                                 "template_id = '%s'" % f['tpl_b_private']),
                    _error(DENIED))

    def organizations(self):
        table = 'organizations'
        read = {'SELECT': 1}
        self.common(table, 'A', "name = 'Changed'", {
            'member': read, 'multi': read, 'admin': {'SELECT': 1, 'UPDATE': 1},
            'owner': {'SELECT': 1, 'UPDATE': 1, 'DELETE': 1}})
        self.inserts(table, {})
        self.attack(table, 'SELECT', 'outsider', "list every organization's name",
                    'SELECT count(*) FROM public.organizations WHERE id IN (%s, %s)',
                    [self.f['A'], self.f['B']], _rows(1))

    def users(self):
        table = 'users'
        f = self.f
        # Row: a_member. Co-members read it; only a_member changes it; no tenant deletes users.
        # (Not a_owner's: deleting A's only OWNER fails even for service_role.)
        self.common(table, 'a_member', "name = 'Changed'", {
            'member': {'SELECT': 1, 'UPDATE': 1}, 'admin': {'SELECT': 1}, 'multi': {'SELECT': 1},
            'owner': {'SELECT': 1}})
        self.attack(table, 'DELETE', 'service', "delete the only OWNER's user",
                    *self.delete(table, 'a_owner'), _error(OWNERLESS))
        self.inserts(table, {})  # a row for another id: even a_owner may not
        # ... with the address of their token (the gateway's `email` claim), never another.
        mine = new_row(f, table, 'A', 'a_owner', id=f['newcomer'])
        self.attack(table, 'INSERT', 'newcomer', "a new user inserts their own row with another "
                    "user's address", *self.insert(table, dict(mine, email=f.email('a_owner'))),
                    _error(DENIED), claims={'email': mine['email']})
        self.attack(table, 'INSERT', 'newcomer', 'a new user inserts their own row with an '
                    "address not their token's", *self.insert(table, mine), _error(DENIED),
                    claims={'email': 'other-' + mine['email']})
        self.attack(table, 'INSERT', 'newcomer', 'a new user inserts their own row',
                    *self.insert(table, mine), _rows(1), claims={'email': mine['email']})
        self.attack(table, 'SELECT', 'loner', 'a user in no organization reads themselves',
                    *self.select(table, 'loner'), _rows(1))
        self.attack(table, 'SELECT', 'loner', 'a user in no organization reads another',
                    *self.select(table, 'a_member'), _rows(0))
        self.attack(table, 'UPDATE', 'outsider', "rename a user of A",
                    *self.update(table, 'a_member', "name = 'x'"), _rows(0))
        self.attack(table, 'UPDATE', 'member', 'change own id to another user',
                    *self.update(table, 'a_member', "id = '%s'" % new_id()), _error(DENIED))
        # An invitation discloses no profile, either way, until it is accepted.
        for actor in ('owner', 'admin', 'member'):
            self.attack(table, 'SELECT', actor, "read the pending invitee's profile",
                        *self.select(table, 'invitee'), _rows(0))
        self.attack(table, 'SELECT', 'invitee', "a pending invitee reads the OWNER's profile",
                    *self.select(table, 'a_owner'), _rows(0))
        self.attack(table, 'SELECT', 'invitee', 'a pending invitee reads themselves',
                    *self.select(table, 'invitee'), _rows(1))

    def organization_members(self):
        table = 'organization_members'
        f = self.f
        manage = {'SELECT': 1, 'UPDATE': 1, 'DELETE': 1}
        # A member reads and leaves (DELETE) their own membership; they cannot change it.
        self.common(table, 'm_a_member', "role = 'ADMIN'", {
            'member': {'SELECT': 1, 'DELETE': 1}, 'multi': {'SELECT': 1}, 'admin': manage,
            'owner': manage})
        # New membership of A for the loner, added by each actor.
        for actor in ACTORS:
            values = new_row(f, table, 'A', 'loner')
            expected = _rows(1) if actor in ('admin', 'owner', 'service') else _error(DENIED)
            self.add(table, 'INSERT', actor, 'add a member to A', *self.insert(table, values),
                     expected)
        self.attack(table, 'INSERT', 'outsider', 'add oneself to another organization',
                    *self.insert(table, new_row(f, table, 'A', 'b_owner', role='OWNER')),
                    _error(DENIED))
        self.attack(table, 'INSERT', 'loner', 'add oneself to an organization',
                    *self.insert(table, new_row(f, table, 'A', 'loner')), _error(DENIED))
        self.attack(table, 'INSERT', 'admin', 'ADMIN adds an OWNER',
                    *self.insert(table, new_row(f, table, 'A', 'loner', role='OWNER')),
                    _error(DENIED))
        self.attack(table, 'INSERT', 'owner', 'OWNER adds an OWNER',
                    *self.insert(table, new_row(f, table, 'A', 'loner', role='OWNER')), _rows(1))
        self.attack(table, 'INSERT', 'owner', "OWNER of A adds someone to B",
                    *self.insert(table, new_row(f, table, 'B', 'loner')), _error(DENIED))
        self.attack(table, 'UPDATE', 'admin', 'ADMIN promotes themselves to OWNER',
                    *self.update(table, 'm_a_admin', "role = 'OWNER'"), _error(DENIED))
        self.attack(table, 'UPDATE', 'member', 'MEMBER promotes themselves',
                    *self.update(table, 'm_a_member', "role = 'OWNER'"), _rows(0))
        self.attack(table, 'UPDATE', 'admin', "ADMIN demotes the OWNER",
                    *self.update(table, 'm_a_owner', "role = 'MEMBER'"), _rows(0))
        self.attack(table, 'DELETE', 'admin', 'ADMIN removes the OWNER',
                    *self.delete(table, 'm_a_owner'), _rows(0))
        self.attack(table, 'UPDATE', 'owner', 'OWNER of A moves a membership to B',
                    *self.update(table, 'm_a_member', "organization_id = '%s'" % f['B']),
                    _error(DENIED))
        self.attack(table, 'SELECT', 'outsider', "list A's members",
                    'SELECT count(*) FROM public.organization_members WHERE organization_id = %s',
                    [f['A']], _rows(0))
        self.invitations()
        self.always_an_owner()

    def invitations(self):
        """A membership is an invitation until the invited user accepts it."""
        table = 'organization_members'
        f = self.f
        for actor in ('admin', 'owner'):
            # Made an invitation (trigger organization_members_invite), whatever accepted_at
            # says: the count of accepted memberships it makes must be 0.
            values = new_row(f, table, 'A', 'loner', accepted_at='2025-01-01T00:00:00Z')
            sql, params = self.insert(table, values)
            self.attack(table, 'SELECT', actor, 'add an accepted membership for someone else',
                        'WITH made AS (%s RETURNING accepted_at) SELECT count(*) FROM made '
                        'WHERE accepted_at IS NOT NULL' % sql, params, _rows(0))
            self.attack(table, 'UPDATE', actor, 'accept the invitation for the invitee',
                        *self.update(table, 'm_a_invitee', 'accepted_at = now()'),
                        _error(DENIED))
        self.attack(table, 'UPDATE', 'owner', 'hand a membership to another user',
                    *self.update(table, 'm_a_member', "user_id = '%s'" % f['loner']),
                    _error(DENIED))
        self.attack(table, 'UPDATE', 'owner', 'turn an accepted membership back into an invitation',
                    *self.update(table, 'm_a_member', 'accepted_at = NULL'), _error(DENIED))
        self.attack(table, 'SELECT', 'invitee', 'a pending invitee reads their invitation',
                    *self.select(table, 'm_a_invitee'), _rows(1))
        self.attack(table, 'SELECT', 'invitee', "a pending invitee lists A's members",
                    'SELECT count(*) FROM public.organization_members WHERE organization_id = %s',
                    [f['A']], _rows(1))
        for other, key in (('organizations', 'A'), ('workflows', row_key('workflows')),
                           ('integrations', row_key('integrations'))):
            self.attack(other, 'SELECT', 'invitee', "a pending invitee reads A's %s" % other,
                        *self.select(other, key), _rows(0))
        self.attack(table, 'INSERT', 'invitee', 'a pending ADMIN invites someone',
                    *self.insert(table, new_row(f, table, 'A', 'loner')), _error(DENIED))
        self.attack(table, 'UPDATE', 'invitee', 'the invitee accepts',
                    *self.update(table, 'm_a_invitee', 'accepted_at = now()'), _rows(1))
        self.attack(table, 'UPDATE', 'invitee', 'the invitee accepts as OWNER',
                    *self.update(table, 'm_a_invitee', "accepted_at = now(), role = 'OWNER'"),
                    _error(DENIED))
        self.attack(table, 'UPDATE', 'invitee', 'the invitee promotes themselves',
                    *self.update(table, 'm_a_invitee', "role = 'OWNER'"), _error(DENIED))
        self.attack(table, 'UPDATE', 'invitee', 'the invitee accepts into B',
                    *self.update(table, 'm_a_invitee',
                                 "accepted_at = now(), organization_id = '%s'" % f['B']),
                    _error(DENIED))
        self.attack(table, 'DELETE', 'invitee', 'the invitee declines',
                    *self.delete(table, 'm_a_invitee'), _rows(1))
        self.attack(table, 'UPDATE', 'member', 'a MEMBER un-accepts to re-accept as another role',
                    *self.update(table, 'm_a_member', 'accepted_at = NULL'), _rows(0))

    def always_an_owner(self):
        table = 'organization_members'
        self.attack(table, 'DELETE', 'owner', 'the only OWNER leaves',
                    *self.delete(table, 'm_a_owner'), _error(OWNERLESS))
        self.attack(table, 'UPDATE', 'owner', 'the only OWNER steps down',
                    *self.update(table, 'm_a_owner', "role = 'ADMIN'"), _error(OWNERLESS))
        self.attack(table, 'DELETE', 'service', 'service_role removes the only OWNER',
                    *self.delete(table, 'm_a_owner'), _error(OWNERLESS))
        self.attack('organizations', 'DELETE', 'owner', 'the OWNER deletes the organization',
                    *self.delete('organizations', 'A'), _rows(1))
        # Blind DELETEs that spare the OWNER: each reaches exactly what its policy allows.
        self.attack(table, 'DELETE', 'admin', 'blind DELETE of the whole table',
                    'DELETE FROM public.organization_members', [], _rows(4))
        self.attack(table, 'DELETE', 'multi', 'blind DELETE of the whole table',
                    'DELETE FROM public.organization_members', [], _rows(2))

    def integrations_extra(self):
        f = self.f
        self.attack('integrations', 'SELECT', 'outsider', "read A's integration credentials",
                    'SELECT count(credentials) FROM public.integrations WHERE organization_id = %s',
                    [f['A']], _rows(0))
        self.attack('integrations', 'SELECT', 'legacy', 'legacy request.jwt.claim.sub only',
                    *self.select('integrations', row_key('integrations')), _rows(1))
        # organization_id is immutable for tenants, even between two of one's organizations.
        self.attack('integrations', 'UPDATE', 'multi', 'member of A and B moves a row to B',
                    *self.update('integrations', row_key('integrations'),
                                 "organization_id = '%s'" % f['B']),
                    _error(DENIED))
        # A session-level request.jwt.claim.sub (B's OWNER) left on the connection must not
        # override the transaction's JSON claims (a_member).
        self.attack('integrations', 'SELECT', 'stale', 'stale session claim.sub of B hides B',
                    *self.select('integrations', row_key('integrations', 'B')), _rows(0))
        self.attack('integrations', 'SELECT', 'stale', 'stale session claim.sub of B, A shows',
                    *self.select('integrations', row_key('integrations')), _rows(1))

    # -- hardening: what goes around the matrix ------------------------------------------------

    def audit(self, table, command, actor, label, sql, params, expected):
        self.add(table, command, actor, label, sql, params, expected, kind='audit')

    def hardening(self, tables, history):
        f = self.f
        for table in [t for t in tables if t in rls.policy_tables()] \
                + ([history] if history else []):
            for actor in ('anon', 'member', 'service'):
                self.audit(table, 'TRUNCATE', actor, 'truncate %s' % table,
                           'TRUNCATE public.%s' % table, [], _error(DENIED))
        if history:
            for actor in ('anon', 'member', 'service'):
                for command, sql in (('SELECT', 'SELECT count(*) FROM public.%s'),
                                     ('UPDATE', "UPDATE public.%s SET name = name"),
                                     ('DELETE', 'DELETE FROM public.%s')):
                    self.audit(history, command, actor, '%s the migration history'
                               % command.lower(), sql % history, [], _error(DENIED))
        for table in [t for t in tables if t in rls.policy_tables()]:
            actor = writer(table)
            key = row(table)[0]
            immutable = rls.IDENTITY_COLUMNS + rls.IMMUTABLE_COLUMNS.get(table, ())
            for column in [c for c in rls.model_columns(table) if c in immutable]:
                self.audit(table, 'UPDATE', actor, 'update %s.%s' % (table, column),
                           *self.update(table, key, '%s = %s' % (column, column)),
                           _error(DENIED))
            for column in rls.CURATION_COLUMNS.get(table, ()):
                self.audit(table, 'UPDATE', actor, 'update %s.%s' % (table, column),
                           *self.update(table, key, '%s = %s' % (column, column)),
                           _error(DENIED))
                values = new_row(f, table, 'A', 'a_member', **{column: CURATED[column]})
                self.audit(table, 'INSERT', actor, 'insert %s with %s' % (table, column),
                           *self.insert(table, values), _error(DENIED))


# A blind UPDATE that demoted every OWNER would fail on the OWNER rule and show nothing.
BLIND_ASSIGNMENT = {'organization_members': "role = 'OWNER'"}


def blind_writes(matrix, table):
    """UPDATE/DELETE without WHERE: no column is read, so no SELECT policy hides a write policy
    that is too wide. B's OWNER must reach B's rows and nothing else; a caller with no claims
    nothing at all."""
    assignment = BLIND_ASSIGNMENT.get(table, row(table)[1])
    # B's rows in the fixture: what B's OWNER may change blindly.
    b_rows = matrix.f.counts[table, 'B']
    outsider = {'UPDATE': b_rows, 'DELETE': b_rows}
    if table == 'users':
        outsider = {'UPDATE': 1, 'DELETE': 0}  # themselves; nobody deletes users
    if table == 'organization_members':
        # All of B's memberships, its only OWNER's included: refused whole (always an OWNER).
        # Blind DELETEs that spare the OWNER are among organization_members' own attacks.
        outsider['DELETE'] = _error(OWNERLESS)
    for command, sql in (('UPDATE', 'UPDATE public.%s SET %s' % (table, assignment)),
                         ('DELETE', 'DELETE FROM public.%s' % table)):
        expected = outsider[command]
        matrix.attack(table, command, 'outsider', 'blind %s of the whole table' % command,
                      sql, [], expected if isinstance(expected, tuple) else _rows(expected))
        matrix.attack(table, command, 'nobody', 'blind %s of the whole table' % command,
                      sql, [], _rows(0))


# Who may update the row() of each special table (so only a column privilege can refuse the
# update); a member may update any row of a tenant or child table.
SPECIAL_WRITER = {'workflow_templates': 'member', 'organizations': 'owner', 'users': 'owner',
                  'organization_members': 'owner'}


def writer(table):
    return SPECIAL_WRITER.get(table, 'member')


# Forged curation values.
CURATED = {'is_featured': True, 'rating': 5, 'usage_count': 1000000}

#: The special tables' own case builders (Matrix methods); tenant and child tables share one.
SPECIAL_BUILDERS = {'workflow_templates': 'workflow_templates', 'organizations': 'organizations',
                    'users': 'users', 'organization_members': 'organization_members'}


def builder(table):
    """The Matrix method that builds `table`'s cases, from its kind; None for a table without."""
    model = _model(table)
    shape = rls.kind(model) if model is not None else None
    if shape in (rls.TENANT, rls.CHILD):
        return 'tenant_or_child'
    return SPECIAL_BUILDERS.get(table) if shape == rls.SPECIAL_KIND else None


def build_cases(db, f, tables, mode=rls.DEFAULT_MODE):
    anon = {(t, p): bool(db.execute_sql('SELECT has_table_privilege(%s, %s, %s)',
                                        ('anon', 'public.%s' % t, p)).fetchone()[0])
            for t in tables for p in ('SELECT', 'INSERT', 'UPDATE', 'DELETE')}
    matrix = Matrix(f, anon, mode)
    for table in tables:
        method = builder(table)
        if method == 'tenant_or_child':
            matrix.tenant_or_child(table)
        elif method:
            getattr(matrix, method)()
        if method:
            blind_writes(matrix, table)
    if 'integrations' in tables:
        matrix.integrations_extra()
    history = _history(db)
    matrix.hardening(tables, history)
    return matrix.specs


def _history(db):
    from hub.catalog import HISTORY_TABLE, live_table_exists

    return HISTORY_TABLE if live_table_exists(db, HISTORY_TABLE) else None


# -- running -----------------------------------------------------------------------------------

def _act(db, f, spec, mode=rls.DEFAULT_MODE, pre_request=True):
    """SAVEPOINT, then become the case's caller, the way PostgREST does: the role and the claims
    with set_config, then its db-pre-request function (hub.rls.PRE_REQUEST), which on Citus
    sends the claims to the workers and on a single node changes nothing."""
    _become(db, f, spec, mode)
    if pre_request:
        db.cursor().execute(rls.SEND_CLAIMS_SQL)


def _become(db, f, spec, mode):
    actor = spec.actor
    home = f[HOME[actor]] if mode == 'active' and actor in HOME else None
    db.execute_sql('SAVEPOINT hub_rls_case')
    if actor == 'anon':
        role, claims = 'anon', {'role': 'anon'}
    elif actor == 'service':
        role, claims = 'service_role', {'role': 'service_role'}
    elif actor == 'nobody':
        role, claims = 'authenticated', None
    elif actor == 'legacy':
        db.execute_sql("SET LOCAL ROLE authenticated; SELECT set_config("
                       "'request.jwt.claim.sub', %s, true), set_config('request.jwt.claims', "
                       "'', true), set_config('request.jwt.claim.organization_id', %s, true)",
                       (f['a_member'], home or ''))
        return
    elif actor == 'stale':
        # is_local false: a session-level setting, as a pooled connection could carry it (the
        # savepoint's rollback still takes it back).
        db.execute_sql("SET LOCAL ROLE authenticated; SELECT set_config("
                       "'request.jwt.claim.sub', %s, false), set_config('request.jwt.claims', "
                       "%s, true)", (f['b_owner'], json.dumps(dict(
                           {'sub': f['a_member'], 'role': 'authenticated'},
                           **({rls.ORG_CLAIM: home} if home else {})))))
        return
    else:
        role = 'authenticated'
        claims = {'sub': f[_ACTOR_USER[actor]], 'role': 'authenticated'}
        if home:
            claims[rls.ORG_CLAIM] = home
        claims.update(spec.claims or {})
        claims = {k: v for k, v in claims.items() if v is not None}
    db.execute_sql("SET LOCAL ROLE %s; SELECT set_config('request.jwt.claim.sub', '', true), "
                   "set_config('request.jwt.claims', %%s, true)" % role,
                   (json.dumps(claims) if claims else '',))


def _outcome(db, spec):
    from peewee import DatabaseError

    granted = False
    if spec.command == 'TRUNCATE':
        # A granted TRUNCATE would wait for every other session's lock on a live table.
        db.execute_sql("SET LOCAL lock_timeout = '1s'")
        # Whether the caller holds the privilege: PostgreSQL checks it first, but Citus may stop
        # a TRUNCATE of a distributed table with an error of its own before it gets there.
        granted = bool(db.execute_sql("SELECT has_table_privilege(%s, 'TRUNCATE')",
                                      (spec.sql.split()[-1],)).fetchone()[0])
    try:
        cursor = db.execute_sql(spec.sql, spec.params)
        if spec.command == 'SELECT':
            return _rows(cursor.fetchone()[0])
        if spec.command == 'TRUNCATE':
            return _rows(1)
        return _rows(cursor.rowcount)
    except DatabaseError as exc:
        code = sqlstate(exc)
        if spec.command == 'TRUNCATE' and code != DENIED:
            # Not refused for want of the privilege (a foreign key, the lock or Citus stopped
            # it): granted if the caller holds the privilege, else refused all the same.
            return _rows(1) if granted else _error(DENIED)
        return _error(code)


def sqlstate(exc):
    """The SQLSTATE of a peewee error (it wraps the driver's exception as its first argument)."""
    for candidate in (exc.args[0] if exc.args else None, exc.__cause__, exc.__context__, exc):
        code = getattr(candidate, 'pgcode', None)
        if code:
            return code
    return type(exc).__name__


def _is_leak(expected, actual):
    """More than promised: more rows seen or changed than the policies allow (an error, or
    zero rows where an error was due, reveals and changes nothing)."""
    allowed = expected[1] if expected[0] == 'rows' else 0
    return actual[0] == 'rows' and actual[1] > allowed


def verify(db, tables=None):
    """Run the isolation matrix against this database in a transaction that is rolled back.

    Returns {'cases': [Case], 'leaks': [Case], 'failures': [Case], 'tables': [names],
    'extra_privileges': [Case]}; a leak is a case where a caller could read or change what they
    must not.
    """
    from hub.catalog import live_tables

    if not rls.installed(db):
        raise RlsError('row-level security is not installed in this database; run '
                       '`hub rls install` first')
    missing = [t for t in rls.policy_tables() if t not in live_tables(db)]
    if missing:
        raise RlsError('table(s) %s missing; run `hub db migrate` first' % ', '.join(missing))
    tables = list(tables or live_tables(db))
    mode = rls.installed_mode(db) or rls.DEFAULT_MODE
    pre_request = bool(db.execute_sql('SELECT to_regprocedure(%s) IS NOT NULL',
                                      (rls.PRE_REQUEST,)).fetchone()[0])
    if rls.on_citus(db):
        cases = _verify_citus(db, tables, mode, pre_request)
    else:
        cases = []
        with db.atomic() as txn:
            f = build_fixture(db)
            for spec in build_cases(db, f, tables, mode):
                cases.append(_case(db, f, spec, mode, pre_request))
            cases += _untested(tables) + catalog_cases(db)
            txn.rollback()
    cases += hijack_cases(db)
    return {'mode': mode, 'cases': cases, 'leaks': [c for c in cases if c.leak],
            'failures': [c for c in cases if not c.ok], 'tables': tables,
            'extra_privileges': [c for c in cases if c.kind == 'privilege' and c.leak]}


# -- hardening read from the catalog -------------------------------------------------------------

AS_NEEDED = ('privileges', 'as the policies need')
PINNED = ('helper', 'as hub.rls defines it')


def _case(db, f, spec, mode, pre_request):
    """Run one case in a savepoint as its caller: its Case."""
    try:
        _act(db, f, spec, mode, pre_request)
    except Exception as exc:
        cause = str(getattr(exc, '__cause__', None) or exc).strip().splitlines()[0]
        raise RlsError('cannot act as the %s caller (%s); connect as a superuser or '
                       'grant anon, authenticated, service_role to this user'
                       % (spec.actor, cause)) from None
    actual = _outcome(db, spec)
    db.execute_sql('ROLLBACK TO SAVEPOINT hub_rls_case; RELEASE SAVEPOINT hub_rls_case')
    return Case(spec.table, spec.command, spec.actor, spec.label, spec.expected, actual,
                actual == spec.expected, _is_leak(spec.expected, actual), spec.kind)


def _untested(tables):
    return [Case(table, '-', '-', 'no isolation cases for this table: declare its model in '
                 'hub.models (a tenant or child table gets its policies and cases from it)',
                 ('cases', 1), ('cases', 0), False, False, 'matrix')
            for table in tables if builder(table) is None]


def _verify_citus(db, tables, mode, pre_request):
    """The same cases on a Citus coordinator. Citus refuses a transaction that writes shards as
    one role and reads them as another, so the fixture cannot be written as the owner in the
    cases' transaction: it is committed on its own (rows under fresh ids and fixture names, no
    caller can see them but its own users, who exist only for this run), each case runs in a
    transaction of its own, rolled back, and the fixture is deleted at the end, whatever
    happened."""
    with db.atomic():
        rls._sequential(db, True)
        f = build_fixture(db)
    try:
        cases = []
        for spec in build_cases(db, f, tables, mode):
            with db.atomic() as txn:
                case = _case(db, f, spec, mode, pre_request)
                txn.rollback()
            if _moves_a_row(spec) and case.actual == _error(CITUS_REFUSED) \
                    and spec.expected == _error(DENIED):
                # Citus refuses to change a row's distribution column (0A000) before it asks
                # the policies: refused, as by the single node's 42501.
                case = case._replace(expected=case.actual, ok=True)
            cases.append(case)
        with db.atomic() as txn:
            cases += _untested(tables) + catalog_cases(db)
            txn.rollback()
    finally:
        remove_fixture(db, f)
    return cases


CITUS_REFUSED = '0A000'  # feature_not_supported


def _moves_a_row(spec):
    """Whether the case's UPDATE changes organization_id (the distribution column) of a
    distributed table (every table with policies but organizations, users, workflow_templates)."""
    head = spec.sql.split(' WHERE ')[0]
    return spec.command == 'UPDATE' and ' SET ' in head \
        and spec.table not in ('organizations', 'users', 'workflow_templates') \
        and 'organization_id = ' in head.split(' SET ', 1)[1]


def remove_fixture(db, f):
    """Delete a committed fixture (_verify_citus): its organizations (every tenant row goes with
    them, by the foreign keys' ON DELETE CASCADE), its system templates and its users."""
    with db.atomic():
        rls._sequential(db, True)
        orgs = [f.ids[k] for k in ('A', 'B') if k in f.ids]
        # The organizations first: the OWNER guard lets the last OWNER go only with them, and
        # their tenant rows go with them (ON DELETE CASCADE); any left are deleted after.
        db.execute_sql('DELETE FROM public.organizations WHERE id = ANY (%s)', (orgs,))
        for table in reversed([t for t in rls.policy_tables()
                               if t not in ('organizations', 'users', 'workflow_templates')]):
            db.execute_sql('DELETE FROM public.%s WHERE organization_id = ANY (%%s)' % table,
                           (orgs,))
        db.execute_sql('DELETE FROM public.workflow_templates WHERE organization_id = ANY (%s) '
                       'OR id = ANY (%s)', (orgs, [f.ids[k] for k in ('tpl_system',
                                                                      'tpl_system_hidden')
                                                   if k in f.ids]))
        db.execute_sql('DELETE FROM public.users WHERE email LIKE %s',
                       ('%%-%s@matrix.test' % f.tag,))


def _audit(table, command, actor, label, expected, actual, leak, kind='audit'):
    return Case(table, command, actor, label, expected, actual, actual == expected, leak, kind)


def catalog_cases(db):
    """Privileges, RLS on every table, helpers, the trigger function, squatted shipped ids."""
    cases = []
    drift = rls.privilege_drift(db)
    tables = [t for t in rls.policy_tables() + ((_history(db),) if _history(db) else ())]
    for table in tables:
        for role in rls.ROLES + (rls.PUBLIC,):
            extra, missing = drift.get((table, role), ([], []))
            actual = AS_NEEDED
            if extra or missing:
                actual = ('privileges', '; '.join(
                    (['extra ' + ', '.join(extra)] if extra else [])
                    + (['missing ' + ', '.join(missing)] if missing else [])))
            cases.append(_audit(table, 'GRANT', role, 'privileges of %s on %s' % (role, table),
                                AS_NEEDED, actual, bool(extra), kind='privilege'))
    for table, enabled in db.execute_sql("""
            SELECT c.relname, c.relrowsecurity FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
            ORDER BY c.relname""").fetchall():
        cases.append(_audit(table, '-', '-', 'row-level security on %s' % table, ('rls', 'on'),
                            ('rls', 'on' if enabled else 'off'), not enabled))
    report = rls.status(db)
    for name in rls.HELPERS:
        signature = '%s.%s()' % (rls.HELPER_SCHEMA, name)
        problems = [m for m in report['missing'] if signature in m]
        # Hijackable: not pinned, or owned by a superuser (what a hijack would run as).
        risky = [m for m in problems if 'search_path' in m or 'owned by' in m]
        cases.append(_audit('-', '-', '-', 'helper %s' % signature, PINNED,
                            ('helper', '; '.join(problems)) if problems else PINNED,
                            bool(risky)))
    # A trigger function an API role may execute can be attached to a table of the caller's
    # own, whose column types are the caller's: its comparisons then run the caller's casts.
    for label, needle in [('function %s' % f, f) for f in rls.TRIGGER_FUNCTIONS] + [
            ('function %s' % f, f) for f in rls.RPCS] + [
            ('role %s' % rls.DEFINER_ROLE, 'role %s' % rls.DEFINER_ROLE),
            ('role %s' % rls.GUARD_ROLE, 'role %s' % rls.GUARD_ROLE)] + [
            ('role %s' % r, 'role %s' % r) for r in sorted(set(rls.RPC_OWNERS.values()))]:
        problems = [m for m in report['missing'] if needle in m]
        cases.append(_audit('-', '-', '-', label, PINNED,
                            ('helper', '; '.join(problems)) if problems else PINNED,
                            bool(problems)))
    cases += audit_cases(db)
    squatted = db.execute_sql(
        'SELECT count(*) FROM public.workflow_templates WHERE id = ANY (%s) '
        'AND organization_id IS NOT NULL', (_shipped_ids(),)).fetchone()[0]
    cases.append(_audit('workflow_templates', '-', '-', 'shipped template ids held by a tenant',
                        _rows(0), _rows(squatted), squatted > 0))
    return cases


CLEAN = ('audit', 'clean')


def audit_cases(db):
    """The catalog audit (hub.audit): one failing case per violation, named by its object, or
    one passing case when there is none. Every violation is an exposure, so a leak."""
    from hub import audit

    # Cases of their own above already cover RLS on every table in public and the privileges
    # on hub's tables: a violation repeating one of them would be counted twice.
    found = [v for v in rls.violations(db) if v.fix != audit.INSTALL_FIX and not (
        v.object.startswith('public.') and v.problem.startswith(audit.RLS_OFF))]
    if not found:
        return [_audit('-', '-', '-', 'catalog audit: no violations', CLEAN, CLEAN, False)]
    return [_audit(v.object, '-', '-', str(v), CLEAN, ('audit', 'violation'), True)
            for v in found]


def _shipped_ids():
    from hub import marketplace
    from hub.ids import stable_id

    return [stable_id('template', p.name[:-len('.json')])
            for p in marketplace.fixtures_dir().iterdir() if p.name.endswith('.json')]


# -- the temporary-domain hijack, in a fresh session ---------------------------------------------

HIJACK = """
CREATE FUNCTION pg_temp.hub_audit_evil(value pg_catalog.text) RETURNS boolean LANGUAGE plpgsql
AS $$ BEGIN
    PERFORM pg_catalog.set_config('hub_audit.ran_as', current_user, true);
    RETURN true;
END $$;
CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (pg_temp.hub_audit_evil(VALUE));
CREATE DOMAIN pg_temp.jsonb AS pg_catalog.jsonb
    CHECK (pg_temp.hub_audit_evil(VALUE::pg_catalog.text));
"""


def hijack_cases(db):
    """As `authenticated`, shadow text and jsonb with temporary domains whose CHECK records who
    runs it, then call each SECURITY DEFINER helper. A fresh session, because PL/pgSQL compiles
    a function once per session: one this connection already ran would not look its types up
    again. Everything is rolled back."""
    import psycopg2

    cases = []
    for name, (_, definer, _, _) in rls.HELPERS.items():
        if not definer:
            continue
        signature = '%s.%s()' % (rls.HELPER_SCHEMA, name)
        expected = ('ran as', 'nobody')
        try:
            with contextlib.closing(psycopg2.connect(dbname=db.database,
                                                     **db.connect_params)) as conn:
                with conn.cursor() as cur:
                    cur.execute('SET LOCAL ROLE authenticated')
                    cur.execute("SELECT set_config('request.jwt.claims', %s, true)",
                                (json.dumps({'sub': 'hub-audit', 'role': 'authenticated'}),))
                    cur.execute(HIJACK)
                    cur.execute('SELECT %s' % signature)
                    cur.execute("SELECT current_setting('hub_audit.ran_as', true)")
                    ran_as = cur.fetchone()[0] or None
                conn.rollback()
            actual = ('ran as', ran_as or 'nobody')
        except psycopg2.Error as exc:
            # No TEMP privilege (the attack cannot start) is as good as a pinned helper.
            actual = expected if exc.pgcode == DENIED else _error(exc.pgcode)
        cases.append(_audit('-', 'EXECUTE', 'member', 'temp domain hijack of %s' % signature,
                            expected, actual, actual[0] == 'ran as' and actual != expected))
    return cases


# -- printing ----------------------------------------------------------------------------------

def _show(outcome):
    kind, value = outcome
    if kind in ('rows', 'error'):
        return str(value)
    if kind == 'cases':
        return '-'
    return '%s %s' % (kind, value) if kind == 'ran as' else str(value)


def format_report(report):
    """The grid (table x command x caller: rows affected or SQLSTATE), then the attack cases."""
    cases = report['cases']
    columns = list(ACTORS)
    width = 9
    lines = ['rows seen or changed, or the SQLSTATE (42501 denied, 23503 foreign key, 23514 no '
             'OWNER left); '
             '! marks a case that differs from the policy (LEAK when it got more)', '',
             '%-22s %-7s %s' % ('table', 'command', ' '.join(a.rjust(width) for a in columns))]
    grid = collections.OrderedDict()
    for c in cases:
        if c.kind == 'matrix':
            grid.setdefault((c.table, c.command), {})[c.actor] = c
    for (table, command), by_actor in grid.items():
        cells = []
        for actor in columns:
            c = by_actor.get(actor)
            cell = '' if c is None else _show(c.actual) + ('' if c.ok else '!')
            cells.append(cell.rjust(width))
        lines.append('%-22s %-7s %s' % (table, command, ' '.join(cells)))
    lines += ['', 'callers: ' + '; '.join('%s = %s' % kv for kv in ACTORS.items())]
    if report.get('mode') == 'active':
        lines.append('mode active: each caller sends the organization_id claim of its first '
                     'organization (A; B for OWNER of B) unless a case says otherwise')
    for kind, title in (('attack', 'attacks and special cases:'),
                        ('audit', 'hardening (around the matrix):'),
                        ('privilege', 'privileges of the API roles:')):
        lines += ['', title]
        for c in cases:
            if c.kind != kind:
                continue
            mark = 'LEAK' if c.leak else ('ok' if c.ok else 'FAIL')
            lines.append('  %-4s %-20s %-8s %-9s %-52s %s%s' % (
                mark, c.table, c.command, c.actor, c.label, _show(c.actual),
                '' if c.ok else ' (expected %s)' % _show(c.expected)))
    bad = [c for c in cases if not c.ok]
    lines += ['', '%d cases on %d tables: %d leak(s), %d other failure(s), %d extra privilege(s)'
              % (len(cases), len(report['tables']), len(report['leaks']),
                 len(bad) - len(report['leaks']), len(report.get('extra_privileges', ())))]
    for c in bad:
        lines.append('  %s %s %s as %s (%s): expected %s, got %s' % (
            'LEAK' if c.leak else 'FAIL', c.table, c.command, c.actor, c.label,
            _show(c.expected), _show(c.actual)))
    return '\n'.join(lines)
