"""Row-level security on a Citus cluster (issue 21): the policy shape Citus accepts, the claims
sent to the workers by PostgREST's db-pre-request function, reference-table copies that never
diverge, `hub rls verify` and `hub shell --as` there.

Every request runs as PostgREST runs it: a LOGIN role that is neither owner nor superuser, `SET
LOCAL ROLE`, the claims with set_config() for the transaction, then (where configured) its
db-pre-request function, hub_request.pre_request(). The same rows are written on a single node
and on Citus, and what each caller sees is compared, table by table.

Skipped without $HUB_CITUS_URL (tools/citus_cluster.sh); CI sets HUB_REQUIRE_CITUS=1.
"""
import contextlib
import json
import os
import subprocess
import sys
import uuid

import psycopg2
import pytest

from hub import connection, lifecycle, rls, rls_matrix
from tools.throwaway import Databases, admin_connection, with_user

#: The users of rls_matrix.build_fixture, each a caller here.
USERS = ('a_owner', 'a_admin', 'a_member', 'b_owner', 'b_member', 'multi', 'loner', 'invitee')


def _distribute(db):
    """What `hub db migrate` leaves on Citus, whichever way it gets there (hub.citus)."""
    from hub import citus

    distribute = getattr(citus, 'distribute', None)
    if distribute is not None:
        distribute(db)


def _seed(db):
    """Two copies of the matrix fixture (organizations A and B, eight users each), committed;
    on Citus the writes go over one connection per node, as the seeder's do."""
    fixtures = []
    for _ in range(2):
        with db.atomic():
            rls._sequential(db, rls.on_citus(db))
            fixtures.append(rls_matrix.build_fixture(db))
    return fixtures


@pytest.fixture(scope='module')
def citus_url(citus_databases):
    """A Citus database migrated (and distributed), row-level security installed, seeded."""
    name = citus_databases.create()
    url = citus_databases.url(name)
    db = connection.bind(connection.open_database(url))
    try:
        lifecycle.migrate_database(db)
        _distribute(db)
        rls.install(db)
        db.fixtures = _seed(db)
    finally:
        db.close()
    yield url, db.fixtures
    citus_databases.drop(name)


@pytest.fixture(scope='module')
def single_url(server_url):
    """The same on a single node, for the comparison."""
    dbs = Databases(server_url, prefix='hub_citus_twin')
    name = dbs.create()
    url = dbs.url(name)
    db = connection.bind(connection.open_database(url))
    try:
        lifecycle.migrate_database(db)
        rls.install(db)
        fixtures = _seed(db)
    finally:
        db.close()
    yield url, fixtures
    dbs.drop_all()


@pytest.fixture(scope='module')
def gateway(citus_url, server_url):
    """Name of a LOGIN NOINHERIT role granted the API roles (PostgREST's authenticator) on the
    Citus cluster (propagated to its workers) and on the single node; dropped at the end."""
    name = 'hub_test_gateway_%s' % uuid.uuid4().hex[:8]
    urls = (citus_url[0], server_url)
    for url in urls:
        with contextlib.closing(admin_connection(url)) as conn, conn.cursor() as cur:
            cur.execute('CREATE ROLE %s LOGIN NOINHERIT' % name)
            cur.execute('GRANT %s TO %s' % (', '.join(rls.ROLES), name))
    yield name
    for url in urls:
        with contextlib.closing(admin_connection(url)) as conn, conn.cursor() as cur:
            cur.execute('DROP ROLE IF EXISTS %s' % name)


@pytest.fixture(autouse=True)
def worker_logins(citus_url):
    """The API roles' LOGIN on the workers, as install left it. Citus copies every role's
    attributes from the coordinator to the workers when a node is activated, and a test cluster
    activates its workers for every new database (tools/throwaway.py), other sessions' included:
    what `hub rls install` repairs (docs/rls.md, "The workers' logins")."""
    db = connection.bind(connection.open_database(citus_url[0]))
    try:
        rls.install_worker_logins(db)
    finally:
        db.close()


@contextlib.contextmanager
def request(url, login, claims, role='authenticated', pre_request=True):
    """One PostgREST request's transaction as `login`: SET LOCAL ROLE, the claims with
    set_config, then the db-pre-request function (unless pre_request=False). Committed when the
    block succeeds, as PostgREST commits a request that did."""
    with contextlib.closing(psycopg2.connect(with_user(url, login))) as conn:
        with conn, conn.cursor() as cur:
            cur.execute('SET LOCAL ROLE %s' % role)
            cur.execute("SELECT set_config('request.jwt.claims', %s, true)",
                        (json.dumps(claims) if claims is not None else '',))
            if pre_request:
                cur.execute('SELECT %s' % rls.PRE_REQUEST)
            yield cur


def _callers(fixtures):
    """(label, claims, role) of every caller: each fixture user (and the member of both with
    either organization_id claim), a signed-in request without claims, anon."""
    out = []
    for n, f in enumerate(fixtures):
        for user in USERS:
            out.append(('%d %s' % (n, user), {'sub': f[user], 'role': 'authenticated'},
                        'authenticated'))
        for org in ('A', 'B'):
            out.append(('%d multi in %s' % (n, org), {'sub': f['multi'], 'role': 'authenticated',
                                                    rls.ORG_CLAIM: f[org]}, 'authenticated'))
    out += [('nobody', None, 'authenticated'), ('anon', {'role': 'anon'}, 'anon')]
    return out


def _visibility(url, login, fixtures):
    """{(caller, table): rows it sees} through PostgREST's claim path."""
    seen = {}
    for label, claims, role in _callers(fixtures):
        with request(url, login, claims, role) as cur:
            for table in rls.policy_tables():
                if role == 'anon':  # anon holds no privilege at all: 42501 on both
                    continue
                cur.execute('SELECT count(*) FROM public.%s' % table)
                seen[label, table] = cur.fetchone()[0]
    return seen


def _copies(url, table, where):
    """{node: md5 of the matching rows} of every placement of reference table `table`."""
    with contextlib.closing(admin_connection(url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT nodename || ':' || nodeport, success, result "
                    'FROM run_command_on_placements(%s, %s)',
                    (table, "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')) "
                            'FROM %%s t WHERE %s' % where.replace('%', '%%')))
        rows = cur.fetchall()
    assert all(ok for _, ok, _ in rows), rows
    return {node: result for node, _, result in rows}


# -- the policy shape -----------------------------------------------------------------------------

def test_install_takes_the_shape_citus_accepts_and_status_calls_it_complete(citus_url):
    url, _ = citus_url
    db = connection.bind(connection.open_database(url))
    try:
        assert rls.on_citus(db)
        assert rls.install(db) == []  # installed once: the Citus shape is not drift
        report = rls.status(db)
        assert report['complete'], report['missing']
        policies = db.execute_sql(
            "SELECT count(*), count(*) FILTER (WHERE coalesce(qual, '') || coalesce(with_check, "
            "'') ILIKE '%%select%%') FROM pg_policies WHERE schemaname = 'public' "
            "AND policyname LIKE 'hub\\_%%' AND roles = '{authenticated}'").fetchone()
        assert policies == (48, 0)
        # Each helper allows the nested distributed query a shard's policy makes.
        for name in rls.HELPERS:
            config = db.execute_sql('SELECT proconfig FROM pg_proc WHERE oid = %s::regprocedure',
                                    ('%s.%s()' % (rls.HELPER_SCHEMA, name),)).fetchone()[0]
            assert config == rls.helper_config(citus=True)
        # Every API and definer role can log in on the workers (the coordinator keeps them off).
        assert all(not lacking for lacking in rls.worker_logins(db).values())
        assert not db.execute_sql('SELECT bool_or(rolcanlogin) FROM pg_roles WHERE rolname = '
                                  'ANY (%s)', (list(rls.WORKER_LOGIN_ROLES),)).fetchone()[0]
    finally:
        db.close()


def test_status_still_catches_drift_on_citus(citus_url):
    """The single node's shape on Citus is drift (and a policy a person edited is too)."""
    url, _ = citus_url
    db = connection.bind(connection.open_database(url))
    try:
        with db.atomic() as txn:
            rls._sequential(db, True)
            db.execute_sql('DROP POLICY hub_select ON public.integrations')
            db.execute_sql('CREATE POLICY hub_select ON public.integrations FOR SELECT '
                           'TO authenticated USING (true)')
            db.execute_sql('ALTER FUNCTION hub_private.org_ids() '
                           'RESET citus.allow_nested_distributed_execution')
            missing = ' '.join(rls.status(db)['missing'] + [
                m for t in rls.status(db)['tables'] for m in t['missing']])
            txn.rollback()
        assert 'policy hub_select differs from hub.rls' in missing
        assert 'helper hub_private.org_ids() does not SET' in missing
    finally:
        db.close()


# -- PostgREST's claim path -------------------------------------------------------------------------

def _install(url, mode):
    db = connection.bind(connection.open_database(url))
    try:
        rls.install(db, mode=mode)
    finally:
        db.close()


def test_a_request_through_the_pre_request_function_sees_what_it_sees_on_a_single_node(
        citus_url, single_url, gateway):
    citus = _visibility(citus_url[0], gateway, citus_url[1])
    single = _visibility(single_url[0], gateway, single_url[1])
    assert len(citus) == len(single) == 12 * (2 * (len(USERS) + 2) + 1)  # 252 counts
    assert citus == single
    # Not a comparison of zeros: members see their organizations' rows.
    assert citus['0 multi', 'workflows'] == 2 and citus['0 a_member', 'workflows'] == 1
    assert citus['0 multi in B', 'workflows'] == 1 and citus['nobody', 'workflows'] == 0
    # The same in install mode active (one organization per request, by the claim).
    try:
        for url in (citus_url[0], single_url[0]):
            _install(url, 'active')
        active = _visibility(citus_url[0], gateway, citus_url[1])
        assert active == _visibility(single_url[0], gateway, single_url[1])
        assert active['0 multi', 'workflows'] == 0 and active['0 multi in B', 'workflows'] == 1
    finally:
        for url in (citus_url[0], single_url[0]):
            _install(url, 'members')


def test_claims_set_with_set_config_alone_fail_closed_on_citus(citus_url, gateway):
    """Without the pre-request function the claims never reach the workers: a request fails,
    whole, instead of seeing nothing on some nodes and everything on others."""
    url, fixtures = citus_url
    f = fixtures[0]
    claims = {'sub': f['a_owner'], 'role': 'authenticated'}
    with pytest.raises(psycopg2.Error) as raised:
        with request(url, gateway, claims, pre_request=False) as cur:
            cur.execute('SELECT count(*) FROM public.users')
    assert raised.value.pgcode == '42501'
    assert 'Citus does not send to the workers' in str(raised.value)


# -- reference tables: one value on every copy ---------------------------------------------------

WRITES = [
    # (reference table, who, statement, row filter for the copies)
    ('users', 'a_owner', "UPDATE public.users SET name = 'Renamed' WHERE id = %(a_owner)s",
     "id = '%(a_owner)s'"),
    ('organizations', 'a_owner',
     "UPDATE public.organizations SET name = 'Renamed' WHERE id = %(A)s", "id = '%(A)s'"),
    ('workflow_templates', 'a_member',
     "UPDATE public.workflow_templates SET name = 'Renamed' WHERE id = %(tpl_a_private)s",
     "id = '%(tpl_a_private)s'"),
    # The memberships are a reference table too (every policy reads them on every shard): an
    # ADMIN's invitation (created_at by default, accepted_at cleared by a trigger), an OWNER's
    # role change and an invitee's acceptance (a trigger sets accepted_at to the transaction's
    # clock) are the same on every copy.
    ('organization_members', 'a_admin',
     "INSERT INTO public.organization_members (id, organization_id, user_id, role) "
     "VALUES ('invite-' || %(A)s, %(A)s, %(loner)s, 'MEMBER')", "id = 'invite-%(A)s'"),
    ('organization_members', 'a_owner',
     "UPDATE public.organization_members SET role = 'ADMIN' WHERE id = %(m_a_member)s",
     "id = '%(m_a_member)s'"),
    ('organization_members', 'invitee',
     "UPDATE public.organization_members SET accepted_at = now() WHERE id = %(m_a_invitee)s",
     "id = '%(m_a_invitee)s'"),
]


@pytest.mark.parametrize('table, who, statement, where', WRITES,
                         ids=['%s-%s' % w[:2] for w in WRITES])
def test_tenant_writes_to_reference_tables_keep_every_copy_equal(citus_url, gateway, table,
                                                                  who, statement, where):
    url, fixtures = citus_url
    f = fixtures[1]
    ids = {k: f[k] for k in ('a_owner', 'A', 'loner', 'tpl_a_private', 'm_a_member',
                             'm_a_invitee')}
    claims = {'sub': f[who], 'role': 'authenticated'}
    rows = "%s" % (where % ids)
    before = _copies(url, table, rows)
    assert len(set(before.values())) == 1 and len(before) == 3
    # The attack: the claims PostgREST sets, without its pre-request function. The copy on the
    # coordinator saw the claims and the workers' did not: before the guard, the coordinator's
    # copy alone changed (UPDATE 1), and the copies differed for good.
    with pytest.raises(psycopg2.Error) as raised:
        with request(url, gateway, claims, pre_request=False) as cur:
            cur.execute(statement, ids)
    assert raised.value.pgcode == '42501'
    assert _copies(url, table, rows) == before
    # Through the pre-request function: written, on every copy alike.
    with request(url, gateway, claims) as cur:
        cur.execute(statement, ids)
        assert cur.rowcount == 1
    after = _copies(url, table, rows)
    assert len(set(after.values())) == 1 and after != before
    if table == 'organization_members':  # an invitation stays one; an acceptance is stamped
        with contextlib.closing(admin_connection(url)) as conn, conn.cursor() as cur:
            cur.execute('SELECT accepted_at IS NULL FROM public.organization_members WHERE %s'
                        % rows.replace('%', '%%'))
            assert cur.fetchall() == [(who == 'a_admin',)]


def test_a_tenants_new_template_is_on_every_copy(citus_url, gateway):
    url, fixtures = citus_url
    f = fixtures[1]
    values = rls_matrix.new_row(f, 'workflow_templates', 'A', 'a_member')
    columns = list(values)
    with request(url, gateway, {'sub': f['a_member'], 'role': 'authenticated'}) as cur:
        cur.execute('INSERT INTO public.workflow_templates (%s) VALUES (%s)' % (
            ', '.join(columns), ', '.join(['%s'] * len(columns))), [values[c] for c in columns])
        # A tenant never sets the marketplace's curation, on Citus either (42501).
        cur.execute('SAVEPOINT s')
        with pytest.raises(psycopg2.Error) as raised:
            cur.execute('INSERT INTO public.workflow_templates (%s, is_featured) VALUES (%s, true)'
                        % (', '.join(columns), ', '.join(['%s'] * len(columns))),
                        [values[c] if c != 'id' else values[c] + 'x' for c in columns])
        assert raised.value.pgcode == '42501'
        cur.execute('ROLLBACK TO SAVEPOINT s')
    copies = _copies(url, 'workflow_templates', "id = '%s'" % values['id'])
    assert len(set(copies.values())) == 1 and len(copies) == 3
    assert set(copies.values()) != {'d41d8cd98f00b204e9800998ecf8427e'}  # md5 of nothing


# -- hub's own callers: verify, the library, hub shell --as -------------------------------------------

def test_verify_runs_every_case_on_citus_without_a_leak_or_a_failure(citus_url):
    url, _ = citus_url
    db = connection.bind(connection.open_database(url))
    try:
        before = db.execute_sql('SELECT count(*) FROM public.organizations').fetchone()[0]
        report = rls_matrix.verify(db)
        assert [c.label for c in report['leaks']] == []
        assert ['%s %s %s: %s' % (c.table, c.actor, c.label, c.actual)
                for c in report['failures']] == []
        assert len(report['cases']) > 700
        # TRUNCATE is refused to every API role, and counted as refused (never a false leak).
        truncates = [c for c in report['cases'] if c.command == 'TRUNCATE']
        assert truncates and all(c.actual == ('error', '42501') for c in truncates)
        # Its committed fixture is gone again.
        assert db.execute_sql('SELECT count(*) FROM public.organizations').fetchone()[0] == before
    finally:
        db.close()


def test_as_user_reaches_the_workers(citus_url):
    url, fixtures = citus_url
    f = fixtures[0]
    db = connection.bind(connection.open_database(url))
    try:
        with rls.as_user(db, f['multi']):
            assert db.execute_sql('SELECT count(*) FROM public.workflows').fetchone()[0] == 2
        with rls.as_user(db, f['multi'], organization_id=f['B']):
            assert db.execute_sql('SELECT count(*) FROM public.workflows').fetchone()[0] == 1
    finally:
        db.close()


def test_hub_shell_as_a_user_sees_the_tenants_rows_on_citus(citus_url):
    url, fixtures = citus_url
    f = fixtures[0]
    code = ('print(Workflow.select().count(), Organization.select().count())\n'
            'print(sorted({w.organization_id for w in Workflow.select()}))\n')
    result = subprocess.run([sys.executable, '-m', 'hub', 'shell', '--as', f['a_member']],
                            input=code, env=dict(os.environ, DATABASE_URL=url),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout == '1 1\n%r\n' % [f['A']]


def test_without_the_claims_check_a_tenant_write_changes_one_copy_only(citus_url, gateway):
    """The control of the reference-table tests: the same helpers without their check (as
    install made them before it), and the attack works again. Last in the module: it repairs the
    copy it splits, and reinstalls."""
    url, fixtures = citus_url
    f = fixtures[0]
    rows = "id = '%s'" % f['b_member']
    db = connection.bind(connection.open_database(url))
    try:
        with db.atomic():
            rls._sequential(db, True)
            for name in rls.HELPERS:
                db.execute_sql(rls.helper_sql(name, citus=True).replace(
                    rls.helper_body(name, citus=True), rls.helper_body(name)))
        with request(url, gateway, {'sub': f['b_member'], 'role': 'authenticated'},
                     pre_request=False) as cur:
            cur.execute("UPDATE public.users SET name = 'Split' WHERE id = %s", (f['b_member'],))
            assert cur.rowcount == 1  # PostgreSQL says it did
        copies = _copies(url, 'users', rows)
        assert len(set(copies.values())) == 2  # the coordinator's copy alone changed
    finally:
        with db.atomic():
            rls._sequential(db, True)
            db.execute_sql("UPDATE public.users SET name = 'Split' WHERE id = %s", (f['b_member'],))
        rls.install(db)
        db.close()
    assert len(set(_copies(url, 'users', rows).values())) == 1
