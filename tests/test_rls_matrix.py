"""The isolation matrix (hub.rls_matrix, shared with `hub rls verify`) and a property test."""
import collections

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub import connection
from hub import models, rls, rls_matrix, schema
from hub.ids import new_id


@pytest.fixture(scope='module')
def secured_url(databases, migrated_template):
    """One migrated database with the policies, shared by this module's read-only tests."""
    name = databases.create(template=migrated_template)
    database = connection.open_database(databases.url(name))
    try:
        rls.install(database)
    finally:
        database.close()
    yield databases.url(name)
    databases.drop(name)


@pytest.fixture
def secured(secured_url):
    database = connection.bind(connection.open_database(secured_url))
    yield database
    database.close()


def test_the_matrix_holds_on_every_table(secured):
    report = rls_matrix.verify(secured)
    failures = ['%s %s as %s (%s): expected %s, got %s' % (
        c.table, c.command, c.actor, c.label, c.expected, c.actual) for c in report['failures']]
    assert failures == []
    assert report['leaks'] == []
    cases = report['cases']
    print('isolation matrix: %d cases' % len(cases))
    # Every catalog table x every command x every caller has its case.
    grid = collections.Counter((c.table, c.command) for c in cases if c.kind == 'matrix')
    assert set(report['tables']) == set(schema.live_tables(secured)) \
        == set(rls.policy_tables())
    for table in report['tables']:
        for command in rls.COMMANDS:
            assert grid[table, command] >= len(rls_matrix.ACTORS), (table, command)
    attacks = {c.label for c in cases if c.kind == 'attack'}
    for label in ('edit tpl_b_public', 'delete tpl_system', 'move a row of A to B',
                  "insert into A pointing at B's parent", 'add oneself to another organization',
                  "read A's integration credentials"):
        assert label in attacks
    # Nothing stays behind: the fixture lived in a rolled-back transaction.
    assert secured.execute_sql('SELECT count(*) FROM organizations').fetchone() == (0,)


def verify_after(database, statement):
    """hub rls verify after `statement`, all in a transaction that is rolled back."""
    with database.atomic() as txn:
        database.execute_sql(statement)
        report = rls_matrix.verify(database)
        txn.rollback()
    return report


def test_a_leaky_policy_is_caught(secured):
    report = verify_after(secured, 'CREATE POLICY wide_open ON integrations FOR SELECT '
                                   'TO authenticated USING (true)')
    leaks = {(c.table, c.command, c.actor) for c in report['leaks']}
    assert ('integrations', 'SELECT', 'outsider') in leaks
    assert ('integrations', 'SELECT', 'nobody') in leaks
    assert {c.table for c in report['leaks']} == {'integrations'}
    assert 'LEAK' in rls_matrix.format_report(report)


def test_a_too_strict_policy_is_a_failure_not_a_leak(secured):
    report = verify_after(secured, 'DROP POLICY hub_update ON ai_agents')
    assert report['leaks'] == []
    assert {(c.table, c.command) for c in report['failures']} == {('ai_agents', 'UPDATE')}


def test_anon_with_supabase_style_grants_still_sees_nothing(secured):
    # Granted after install (as Supabase's defaults would): every extra privilege is reported,
    # and RLS still shows anon nothing: zero rows, INSERT refused, the history table empty.
    report = verify_after(secured, 'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES '
                                   'IN SCHEMA public TO anon')
    assert {(c.table, c.actor) for c in report['extra_privileges']} == {
        (t, 'anon') for t in rls.policy_tables() + ('hub_migrations',)}
    others = [c for c in report['failures'] if c.kind != 'privilege']
    assert {(c.table, c.label, c.actual) for c in others} == {
        ('hub_migrations', '%s the migration history' % cmd.lower(), ('rows', 0))
        for cmd in ('SELECT', 'UPDATE', 'DELETE')}
    anon = {(c.command, c.actual) for c in report['cases']
            if c.actor == 'anon' and c.kind == 'matrix'}
    assert anon == {('SELECT', ('rows', 0)), ('UPDATE', ('rows', 0)), ('DELETE', ('rows', 0)),
                    ('INSERT', ('error', rls_matrix.DENIED))}


def test_a_new_table_without_cases_fails_the_matrix(secured):
    report = verify_after(secured, 'CREATE TABLE public.audit_log (id text PRIMARY KEY)')
    assert {c.table for c in report['failures']} == {'audit_log'}
    assert {c.label for c in report['failures']} == {
        'no isolation cases for this table: declare its model in hub.models (a tenant or child '
        'table gets its policies and cases from it)', 'row-level security on audit_log'}


def test_verify_needs_the_policies(database):
    with pytest.raises(rls.RlsError, match='hub rls install'):
        rls_matrix.verify(database)


# -- the property: random tenants, random rows, nothing leaks ---------------------------------

# Every tenant table, and a child one (its rows need a workflow, made in _populate).
TENANT_TABLES = tuple(m._meta.table_name for m in models.MODELS
                      if rls.kind(m) == rls.TENANT) + ('workflow_executions',)

world = st.fixed_dictionaries({
    'orgs': st.integers(1, 4),
    'users': st.integers(1, 5),
    # (user, org) -> role or None; drawn as a list and trimmed to the sizes above. 'invited':
    # a MEMBER invitation not accepted, which must show nothing but itself to the invitee.
    'roles': st.lists(st.sampled_from([None, None, 'OWNER', 'ADMIN', 'MEMBER', 'invited']),
                      min_size=20, max_size=20),
    'rows': st.lists(st.tuples(st.sampled_from(TENANT_TABLES), st.integers(0, 3)), max_size=12),
    'templates': st.lists(st.tuples(st.one_of(st.none(), st.integers(0, 3)), st.booleans()),
                          max_size=5),
    'viewer': st.integers(0, 4),
    'claim': st.one_of(st.none(), st.integers(0, 3)),
})


def _insert(database, table, **values):
    values.setdefault('id', new_id())
    rls_matrix._insert(database, table, values)
    return values['id']


def _populate(database, w):
    orgs = [_insert(database, 'organizations', name='O', slug='p-%s' % new_id())
            for _ in range(w['orgs'])]
    users = [_insert(database, 'users', email='%s@p.test' % new_id()) for _ in range(w['users'])]
    member_of = collections.defaultdict(dict)
    memberships = {}  # id -> (org, user)
    for i, user in enumerate(users):
        for j, org in enumerate(orgs):
            role = w['roles'][i * 4 + j]
            if role:
                invited = role == 'invited'
                if not invited:
                    member_of[user][org] = role
                memberships[_insert(database, 'organization_members', organization_id=org,
                                    user_id=user, role='MEMBER' if invited else role,
                                    accepted_at=None if invited else '2025-01-01')] = (org, user)
    owner = _insert(database, 'users', email='%s@p.test' % new_id())
    rows = collections.defaultdict(dict)  # table -> id -> org
    workflows = {}
    for table, k in w['rows']:
        org = orgs[k % len(orgs)]
        if table == 'workflow_executions':
            if org not in workflows:
                workflows[org] = _insert(database, 'workflows', name='W', nodes='[]', edges='[]',
                                         organization_id=org, created_by=owner)
                rows['workflows'][workflows[org]] = org
            values = dict(organization_id=org, workflow_id=workflows[org])
        else:
            values = rls_matrix.new_row(_Fixed(org, owner), table, 'A', 'owner')
            values.pop('id')
        rows[table][_insert(database, table, **values)] = org
    templates = {}
    for k, public in w['templates']:
        org = None if k is None else orgs[k % len(orgs)]
        templates[_insert(database, 'workflow_templates', name='T', description='d',
                          category='SALES', nodes='[]', edges='[]', is_public=public,
                          organization_id=org)] = (org, public)
    return orgs, users, member_of, memberships, rows, templates


class _Fixed:
    """Stands in for a Fixture: every name maps to the same organization or user."""

    def __init__(self, org, user):
        self.org, self.user = org, user

    def __getitem__(self, name):
        return self.org if name in ('A', 'B') else self.user


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(w=world)
def test_random_tenants_never_see_or_change_each_others_rows(secured, w):
    with secured.atomic() as txn:
        orgs, users, member_of, memberships, rows, templates = _populate(secured, w)
        viewer = users[w['viewer'] % len(users)]
        claim = None if w['claim'] is None else orgs[w['claim'] % len(orgs)]
        mine = set(member_of[viewer])
        if claim is not None:
            mine &= {claim}
        co_members = {u for u in users if set(member_of[u]) & mine} | {viewer}
        expected = {t: {i for i, org in ids.items() if org in mine} for t, ids in rows.items()}
        expected['organizations'] = set(orgs) & mine
        expected['users'] = co_members
        expected['organization_members'] = {i for i, (org, user) in memberships.items()
                                            if org in mine or user == viewer}
        expected['workflow_templates'] = {i for i, (org, public) in templates.items()
                                          if public or org in mine}
        ours = dict(rows, organizations=orgs, users=users + [], organization_members=memberships,
                    workflow_templates=templates)
        with rls.as_user(secured, viewer, organization_id=claim):
            for table, ids in ours.items():
                if not ids:
                    continue
                seen = {r[0] for r in secured.execute_sql(
                    'SELECT id FROM %s WHERE id = ANY (%%s)' % table, (list(ids),))}
                assert seen == expected.get(table, set()), table
            # Blind writes (no WHERE, so no SELECT policy narrows them) reach exactly the rows
            # of the viewer's organizations; the database holds only this example's rows.
            writable = dict(expected, workflow_templates={
                i for i, (org, _) in templates.items() if org in mine})
            for table in list(rows) + (['workflow_templates'] if templates else []):
                for sql in ('UPDATE %s SET %s' % (table, rls_matrix.row(table)[1]),
                            'DELETE FROM %s' % table):
                    with secured.atomic() as write:
                        assert secured.execute_sql(sql).rowcount == len(writable[table]), sql
                        write.rollback()
        txn.rollback()
