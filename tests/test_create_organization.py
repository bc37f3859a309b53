"""Memberships the platform can use (migration 0008): a trusted writer's plain insert makes an
accepted member, a tenant's insert for someone else is an invitation, and
`public.create_organization(name, slug)` makes the signed-in caller an organization's OWNER.

Tenants are tested as PostgREST calls them (`api_for`: a login role that is neither owner nor
superuser, SET LOCAL ROLE + JWT claims per transaction), on the server under test and on the
Supabase-shaped cluster.
"""
import contextlib

import psycopg2
import pytest

from hub import rls
from hub.ids import new_id
from tests.commands import hub
from tests.conftest import Api

DENIED = '42501'


@pytest.fixture
def secured(database, db_url, api_for):
    rls.install(database)
    return database, api_for(db_url)


def add_user(database, name):
    user = new_id()
    database.execute_sql('INSERT INTO users (id, email, name) VALUES (%s, %s, %s)',
                         (user, '%s@%s.example' % (name, user), name))
    return user


def can_work_in(api, user, org):
    """(organizations the user sees, whether they may create a workflow in `org`)."""
    seen = [r[0] for r in api.run('SELECT id FROM organizations', user=user)]
    error = api.error("INSERT INTO workflows (name, nodes, edges, organization_id, created_by) "
                      "VALUES ('first', '[]', '[]', %s, %s)", (org, user), user=user)
    return seen, error


@pytest.mark.parametrize('writer', ['owner', 'service_role'])
def test_a_trusted_writers_plain_insert_makes_an_accepted_owner(secured, writer):
    """The platform's own "create organization": organization, then its OWNER's membership,
    without accepted_at. Before 0008 it made an invitation: the owner saw 0 organizations and
    creating a workflow failed with 42501."""
    database, api = secured
    user, org = add_user(database, 'ada'), new_id()
    insert_org = "INSERT INTO organizations (id, name, slug) VALUES (%s, 'Acme', %s)"
    insert_owner = ("INSERT INTO organization_members (organization_id, user_id, role) "
                    "VALUES (%s, %s, 'OWNER')")
    if writer == 'owner':
        database.execute_sql(insert_org, (org, 'acme-' + org))
        database.execute_sql(insert_owner, (org, user))
    else:
        api.run(insert_org, (org, 'acme-' + org), role='service_role')
        api.run(insert_owner, (org, user), role='service_role')
    assert can_work_in(api, user, org) == ([org], None)
    assert database.execute_sql('SELECT accepted_at IS NOT NULL FROM organization_members '
                                'WHERE user_id = %s', (user,)).fetchone() == (True,)


def test_a_tenants_insert_for_someone_else_is_an_invitation_whatever_it_says(secured):
    database, api = secured
    owner, stranger, org = add_user(database, 'ada'), add_user(database, 'zed'), new_id()
    database.execute_sql("INSERT INTO organizations (id, name, slug) VALUES (%s, 'A', %s)",
                         (org, 'a-' + org))
    database.execute_sql("INSERT INTO organization_members (organization_id, user_id, role) "
                         "VALUES (%s, %s, 'OWNER')", (org, owner))
    for accepted in ('', ', now()', ", '2020-01-01'"):
        database.execute_sql('DELETE FROM organization_members WHERE user_id = %s', (stranger,))
        columns = 'organization_id, user_id, role' + (', accepted_at' if accepted else '')
        api.run("INSERT INTO organization_members (%s) VALUES (%%s, %%s, 'MEMBER'%s)"
                % (columns, accepted), (org, stranger), user=owner)
        assert database.execute_sql('SELECT accepted_at FROM organization_members '
                                    'WHERE user_id = %s', (stranger,)).fetchone() == (None,)
        assert can_work_in(api, stranger, org) == ([], DENIED)


def test_create_organization_makes_the_caller_its_accepted_owner(secured):
    database, api = secured
    user = add_user(database, 'ada')
    [(org,)] = api.run("SELECT public.create_organization('Acme', %s)", ('acme-' + user,),
                       user=user)
    assert database.execute_sql(
        'SELECT o.name, o.slug, m.user_id, m.role::text, m.accepted_at IS NOT NULL '
        'FROM organizations o JOIN organization_members m ON m.organization_id = o.id '
        'WHERE o.id = %s', (org,)).fetchall() == [('Acme', 'acme-' + user, user, 'OWNER', True)]
    assert can_work_in(api, user, org) == ([org], None)
    # A second one: the caller is OWNER of both.
    [(other,)] = api.run("SELECT public.create_organization('Beta', %s)", ('beta-' + user,),
                         user=user)
    assert sorted(can_work_in(api, user, other)[0]) == sorted([org, other])


def test_create_organization_refuses_what_it_cannot_do_in_one_line(secured):
    database, api = secured
    user = add_user(database, 'ada')
    call = "SELECT public.create_organization('Acme', %s)"
    for role in ('anon', 'service_role'):
        assert api.error(call, ('x-' + user,), role=role) == DENIED, role

    def refused(claims, slug):
        with pytest.raises(psycopg2.Error) as info:
            api.run(call, (slug,), claims=claims)
        return info.value.pgcode, info.value.diag.message_primary

    assert refused({'role': 'authenticated'}, 'nobody') == (
        DENIED, 'create_organization needs a signed-in caller: the JWT claims name no sub')
    ghost = new_id()
    assert refused({'role': 'authenticated', 'sub': ghost}, 'ghost') == (
        '23503', 'create_organization: user %s has no row in public.users' % ghost)
    api.run(call, ('taken-' + user,), user=user)
    assert refused({'role': 'authenticated', 'sub': user}, 'taken-' + user)[0] == '23505'
    # Nothing half-made: one organization, one membership, the first call's.
    assert database.execute_sql('SELECT count(*) FROM organizations').fetchone() == (1,)
    assert database.execute_sql('SELECT count(*) FROM organization_members').fetchone() == (1,)


def test_create_organization_is_a_documented_rpc_owned_by_a_powerless_role(secured):
    database, _ = secured
    [(definer, owner, config, anon, authenticated, service, public)] = database.execute_sql("""
        SELECT p.prosecdef, pg_get_userbyid(p.proowner), p.proconfig,
               has_function_privilege('anon', p.oid, 'EXECUTE'),
               has_function_privilege('authenticated', p.oid, 'EXECUTE'),
               has_function_privilege('service_role', p.oid, 'EXECUTE'),
               EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner)))
                       a WHERE a.grantee = 0)
        FROM pg_proc p WHERE p.oid = 'public.create_organization(text, text)'::regprocedure
        """).fetchall()
    assert (definer, owner, config) == (True, rls.RPC_OWNERS[next(iter(rls.RPCS))],
                                        ['search_path=pg_catalog, pg_temp'])
    assert (anon, authenticated, service, public) == (False, True, False, False)
    assert rls.RPCS['public.create_organization(text, text)'][0] == ('authenticated',)
    assert database.execute_sql(
        'SELECT rolcanlogin, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles '
        'WHERE rolname = %s', (owner,)).fetchone() == (False, False, False, False, False)
    # EXECUTE given to another role shows in status; install takes it back.
    database.execute_sql('GRANT EXECUTE ON FUNCTION public.create_organization(text, text) '
                         'TO anon')
    assert any(m.startswith('function public.create_organization(text, text) may be executed '
                            'by anon, authenticated') for m in rls.status(database)['missing'])
    assert rls.install(database) == [
        'granted EXECUTE on public.create_organization(text, text) to authenticated only']
    assert rls.status(database)['complete']


def test_on_supabase_the_rpc_works_through_authenticator(supabase_db_url, secret):
    """As supabase-js calls it (`supabase.rpc('create_organization', { name, slug })`: PostgREST
    runs it as `authenticated` with the caller's claims)."""
    for args in (('db', 'migrate'), ('rls', 'install')):
        result = hub(supabase_db_url, *args)
        assert result.returncode == 0, (args, result.stderr)
    user = new_id()
    with contextlib.closing(psycopg2.connect(supabase_db_url)) as conn, conn, conn.cursor() as cur:
        cur.execute("INSERT INTO users (id, email) VALUES (%s, %s)", (user, user + '@x.example'))
    api = Api(supabase_db_url, 'authenticator')
    [(org,)] = api.run('SELECT public.create_organization(name => %s, slug => %s)',
                       ('Acme', 'acme'), user=user)
    assert can_work_in(api, user, org) == ([org], None)
    assert api.error("SELECT public.create_organization('x', 'y')", role='anon') == DENIED
    result = hub(supabase_db_url, 'rls', 'status')
    assert result.returncode == 0, result.stdout
