"""SECURITY DEFINER code cannot be borrowed, and an organization keeps an accepted OWNER under
every isolation level.

The attack (issue 19, Critical): anon, through PostgREST's login role, attaches a hub trigger
function to a temp table of its own whose column has a pg_temp type with an implicit cast to
text. The function's first comparison calls the cast, so anon's code runs as the function's
owner: on Supabase `postgres` (BYPASSRLS, CREATEROLE), on plain PostgreSQL a superuser. Before
migration 0007 this read every tenant's integrations and Supabase's password hashes.
"""
import contextlib
import json
import threading

import psycopg2
import pytest

from hub import rls
from hub.ids import new_id
from tests.commands import hub
from tests.conftest import Api

DENIED = '42501'
TRIGGER_FUNCTIONS = ('hub_keep_an_owner', 'hub_membership_consent', 'hub_touch_updated_at')

#: The attack, as one transaction; its last statement shows what the planted code saw.
ATTACK = r"""
CREATE TYPE pg_temp.mood AS ENUM ('OWNER', 'x');
CREATE FUNCTION pg_temp.loot(pg_temp.mood) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.set_config('hub.loot', current_user || ' read '
        || (SELECT count(*) FROM public.integrations) || ' integrations and '
        || (SELECT count(*) FROM auth.users WHERE encrypted_password IS NOT NULL)
        || ' password hashes', false);
    RETURN 'x';
END $$;
CREATE CAST (pg_temp.mood AS text) WITH FUNCTION pg_temp.loot(pg_temp.mood) AS IMPLICIT;
CREATE TEMP TABLE bait (id text, organization_id text, user_id text, role pg_temp.mood,
                       accepted_at timestamptz, updated_at timestamptz);
CREATE TRIGGER bait AFTER UPDATE OR DELETE ON pg_temp.bait
    FOR EACH ROW EXECUTE FUNCTION public.%s();
INSERT INTO pg_temp.bait VALUES ('b', 'o', 'u', 'x', now(), now());
DELETE FROM pg_temp.bait;
SELECT pg_catalog.current_setting('hub.loot', true);
"""


@pytest.fixture
def seeded(supabase_db_url, secret):
    """A Supabase-shaped database after migrate, rls install and a seed of 2 organizations."""
    for args in (('db', 'migrate'), ('rls', 'install'),
                 ('seed', '--orgs', '2', '--scale', 'tiny', '--as-of', '2025-01-31', '-q')):
        result = hub(supabase_db_url, *args)
        assert result.returncode == 0, (args, result.stderr)
    return supabase_db_url


def query(url, sql, params=None):
    with contextlib.closing(psycopg2.connect(url)) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


@pytest.mark.parametrize('function', TRIGGER_FUNCTIONS)
@pytest.mark.parametrize('role', ['anon', 'authenticated', 'service_role'])
def test_no_api_role_can_attach_a_hub_trigger_function_to_its_own_table(seeded, function, role):
    """Succeeded before 0007 for every role: on hub_keep_an_owner the planted cast ran as
    `postgres` and returned 'postgres read 4 integrations and 7 password hashes' (every
    tenant's integrations, every auth.users hash). Now CREATE TRIGGER is refused: no API role
    may execute a trigger function (firing needs no EXECUTE)."""
    api = Api(seeded, 'authenticator')
    with pytest.raises(psycopg2.Error) as info:
        api.run(ATTACK % function, role=role)
    assert info.value.pgcode == DENIED, info.value
    assert 'permission denied for function public.%s' % function in str(info.value)


def test_a_trigger_function_refuses_any_table_but_its_own(db_url):
    """Even a role that may execute it (the migration owner, a superuser on plain PostgreSQL)
    cannot make it read another table's row: the table is checked before NEW or OLD is
    touched, so the cast never runs."""
    for function in TRIGGER_FUNCTIONS:
        with contextlib.closing(psycopg2.connect(db_url)) as conn:
            with pytest.raises(psycopg2.Error) as info:
                with conn, conn.cursor() as cur:
                    cur.execute(ATTACK.replace('auth.users', 'public.users')
                                .replace('encrypted_password', 'email') % function)
            assert info.value.pgcode == '09000', (function, info.value)
            assert 'is a trigger of' in info.value.diag.message_primary, info.value


def test_trigger_functions_belong_to_no_api_role_and_the_owner_guard_is_powerless(seeded):
    rows = query(seeded, """
        SELECT p.proname, p.proowner::regrole::text, p.prosecdef,
               has_function_privilege('anon', p.oid, 'EXECUTE'),
               has_function_privilege('authenticated', p.oid, 'EXECUTE'),
               has_function_privilege('service_role', p.oid, 'EXECUTE'),
               EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner)))
                       a WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')
        FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
          AND p.proname = ANY (%s) ORDER BY 1""", (list(TRIGGER_FUNCTIONS),))
    assert [r[0] for r in rows] == sorted(TRIGGER_FUNCTIONS)
    for name, owner, definer, *executes in rows:
        assert executes == [False, False, False, False], name
        assert definer == (name == 'hub_keep_an_owner'), name
        assert owner == (rls.GUARD_ROLE if definer else 'postgres'), name
    [(login, superuser, bypass, createrole)] = query(
        seeded, 'SELECT rolcanlogin, rolsuper, rolbypassrls, rolcreaterole FROM pg_roles '
                'WHERE rolname = %s', (rls.GUARD_ROLE,))
    assert (login, superuser, bypass, createrole) == (False, False, False, False)


# -- two OWNERs removing each other ------------------------------------------------------------

OWNERLESS = '23514'
LOSERS = {OWNERLESS, '40001', '40P01'}


@pytest.fixture
def two_owners(database, db_url, api_for):
    """Organization A with two accepted OWNERs, ada and bob (RLS installed)."""
    rls.install(database)
    ids = {k: new_id() for k in ('A', 'ada', 'bob', 'm_ada', 'm_bob')}
    database.execute_sql("INSERT INTO organizations (id, name, slug) VALUES (%s, 'A', %s)",
                         (ids['A'], 'a-%s' % ids['A']))
    for user in ('ada', 'bob'):
        database.execute_sql('INSERT INTO users (id, email, name) VALUES (%s, %s, %s)',
                             (ids[user], '%s@%s.example' % (user, ids[user]), user))
        database.execute_sql("INSERT INTO organization_members (id, organization_id, user_id, "
                             "role, accepted_at) VALUES (%s, %s, %s, 'OWNER', now())",
                             (ids['m_' + user], ids['A'], ids[user]))
    return ids, api_for(db_url)


def _tenant(api, user, isolation):
    conn = api.connect()
    conn.set_session(isolation_level=isolation)
    cur = conn.cursor()
    cur.execute('SET LOCAL ROLE authenticated')
    cur.execute("SELECT set_config('request.jwt.claims', %s, true)",
                (json.dumps({'sub': user, 'role': 'authenticated'}),))
    cur.execute('SELECT count(*) FROM organization_members')  # the snapshot, taken now
    return conn, cur


@pytest.mark.parametrize('isolation', ['READ COMMITTED', 'REPEATABLE READ', 'SERIALIZABLE'])
def test_two_owners_removing_each_other_leave_one(two_owners, database, isolation):
    """Under REPEATABLE READ this left organization A with no OWNER before 0007: the second
    transaction's check read its snapshot, taken before the first removal committed, and still
    saw the first OWNER. Now the check locks the remaining OWNERs (FOR KEY SHARE): the second
    removal fails, whatever the isolation level."""
    ids, api = two_owners
    first, first_cur = _tenant(api, ids['ada'], isolation)
    second, second_cur = _tenant(api, ids['bob'], isolation)
    outcome = {}
    try:
        first_cur.execute('DELETE FROM organization_members WHERE id = %s', (ids['m_bob'],))
        first.commit()
        try:
            second_cur.execute('DELETE FROM organization_members WHERE id = %s', (ids['m_ada'],))
            outcome['second'] = 'deleted %d' % second_cur.rowcount
            second.commit()
        except psycopg2.Error as exc:
            outcome['second'] = exc.pgcode
    finally:
        first.close()
        second.close()
    # Under READ COMMITTED bob's DELETE sees that he is no OWNER any more: it deletes nothing.
    assert outcome['second'] in LOSERS | {'deleted 0'}, outcome
    assert database.execute_sql(
        "SELECT count(*) FROM organization_members WHERE organization_id = %s AND role = 'OWNER' "
        'AND accepted_at IS NOT NULL', (ids['A'],)).fetchone() == (1,)


def test_status_and_verify_name_a_trigger_function_given_back_and_install_takes_it(seeded):
    """A GRANT made after 0007 (by hand, or a function re-created under Supabase's default
    privileges) shows in `hub rls status` and `hub rls verify`; `hub rls install` revokes it."""
    with contextlib.closing(psycopg2.connect(seeded)) as conn, conn, conn.cursor() as cur:
        cur.execute('GRANT EXECUTE ON FUNCTION public.hub_keep_an_owner() TO anon')
    result = hub(seeded, 'rls', 'status')
    assert result.returncode == 1
    assert ('function public.hub_keep_an_owner() is a trigger function that anon may execute'
            in result.stdout), result.stdout
    result = hub(seeded, 'rls', 'verify')
    assert result.returncode == 1 and 'public.hub_keep_an_owner()' in result.stdout
    result = hub(seeded, 'rls', 'install')
    assert result.returncode == 0, result.stderr
    assert 'revoked EXECUTE on trigger function(s) public.hub_keep_an_owner()' in result.stdout
    assert hub(seeded, 'rls', 'status').returncode == 0
    assert query(seeded, "SELECT has_function_privilege('anon', 'public.hub_keep_an_owner()', "
                         "'EXECUTE')") == [(False,)]


def test_status_names_a_guard_function_owned_by_another_role(database):
    database.execute_sql('ALTER FUNCTION public.hub_keep_an_owner() OWNER TO CURRENT_USER')
    assert any(m.startswith('function public.hub_keep_an_owner() should be SECURITY DEFINER '
                            'owned by %s' % rls.GUARD_ROLE) for m in rls.status(database)['missing'])


def test_0007_goes_down_and_up_again_as_supabases_non_superuser_owner(seeded):
    for args in (('db', 'rollback', '0007', '--yes'), ('db', 'migrate'), ('db', 'check'),
                 ('rls', 'status')):
        result = hub(seeded, *args)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    [(owner,)] = query(seeded, "SELECT pg_get_userbyid(proowner) FROM pg_proc "
                               "WHERE oid = 'public.hub_keep_an_owner()'::regprocedure")
    assert owner == rls.GUARD_ROLE


@pytest.mark.parametrize('isolation', ['READ COMMITTED', 'REPEATABLE READ', 'SERIALIZABLE'])
def test_two_deferred_removals_committing_at_once_leave_one(two_owners, database, isolation,
                                                        timers):
    """Both removals are made before either check runs (the constraint deferred to COMMIT),
    then both transactions commit at once. Before 0007, under REPEATABLE READ, both committed
    and organization A had no OWNER."""
    ids, api = two_owners
    pairs = [_tenant(api, ids['ada'], isolation), _tenant(api, ids['bob'], isolation)]
    outcome = {}
    try:
        for (conn, cur), victim in zip(pairs, ('m_bob', 'm_ada')):
            cur.execute('SET CONSTRAINTS organization_members_keep_an_owner DEFERRED')
            cur.execute('DELETE FROM organization_members WHERE id = %s', (ids[victim],))
            assert cur.rowcount == 1

        def commit(index):
            try:
                pairs[index][0].commit()
                outcome[index] = 'committed'
            except psycopg2.Error as exc:
                outcome[index] = exc.pgcode

        threads = [threading.Thread(target=commit, args=(i,)) for i in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        for conn, _ in pairs:
            conn.close()
    assert len(outcome) == 2 and set(outcome.values()) <= LOSERS | {'committed'}, outcome
    committed = sum(v == 'committed' for v in outcome.values())
    assert committed <= 1, outcome
    assert database.execute_sql(
        "SELECT count(*) FROM organization_members WHERE organization_id = %s AND role = 'OWNER' "
        'AND accepted_at IS NOT NULL', (ids['A'],)).fetchone() == (2 - committed,)
