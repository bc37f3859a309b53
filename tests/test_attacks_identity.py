"""Identity that a tenant cannot assert for themselves (issue 19, item 6).

A tenant's `users.email` decides who `hub import --link-users` invites, and its unique index
answers "is this address registered?". Every attack runs as PostgREST does (a login role that is
neither owner nor superuser, `SET LOCAL ROLE authenticated` and transaction-local claims), on the
Supabase-shaped cluster ($HUB_SUPABASE_URL, where GoTrue's `auth.users` exists) and on the
server under test.
"""
import json

from hub import rls
from hub.ids import new_id
from tests.commands import hub
from tests.conftest import Api
from tests.test_supabase import execute, query

DENIED = '42501'
AS_OF = '2025-01-31'


def seeded_supabase(supabase_databases, *seed_args):
    url = supabase_databases.url(supabase_databases.create(template='supabase_template',
                                                           prefix='hub_supa'))
    result = hub(url, 'seed', '--orgs', '1', '--scale', 'tiny', '--as-of', AS_OF, '-q',
                 *seed_args)
    assert result.returncode == 0, result.stderr
    return url


def owner_of(url):
    [(org_id, user_id, email)] = query(url, """
        SELECT m.organization_id, u.id, u.email FROM organization_members m
        JOIN users u ON u.id = m.user_id WHERE m.role = 'OWNER' ORDER BY 1, 2 LIMIT 1""")
    return org_id, user_id, email


def test_a_tenant_cannot_take_anothers_address_nor_learn_that_it_exists(supabase_databases,
                                                                         secret):
    url = seeded_supabase(supabase_databases)
    _, victim, victim_email = owner_of(url)
    squatter = query(url, 'SELECT id FROM users WHERE id <> %s ORDER BY id LIMIT 1', (victim,))[0][0]
    api = Api(url, 'authenticator')
    squat = 'UPDATE users SET email = %s WHERE id = %s'
    # The address of a registered user, and one nobody has: the same answer (no oracle).
    assert api.error(squat, (victim_email, squatter), user=squatter) == DENIED
    assert api.error(squat, ('nobody-%s@example.com' % new_id(), squatter),
                     user=squatter) == DENIED
    # A newcomer's own row carries the address of their token, not one they choose.
    newcomer = new_id()
    claims = {'sub': newcomer, 'role': 'authenticated', 'email': 'me-%s@example.com' % newcomer}
    for sql in ('INSERT INTO users (id, email) VALUES (%s, %s)',
                'INSERT INTO users (id, email) VALUES (%s, %s) ON CONFLICT DO NOTHING'):
        for email in (victim_email, 'nobody-%s@example.com' % new_id()):
            assert api.error(sql, (newcomer, email), claims=claims) == DENIED, (sql, email)
    assert api.run('INSERT INTO users (id, email) VALUES (%s, %s) RETURNING email',
                   (newcomer, claims['email']), claims=claims) == [(claims['email'],)]
    assert query(url, 'SELECT email FROM users WHERE id = %s', (victim,)) == [(victim_email,)]


def test_link_users_invites_only_an_identity_auth_confirmed(supabase_databases, secret,
                                                            tmp_path):
    """The squat of an address (written before tenants lost the right to, or by anything that
    is not GoTrue) must not hand the victim's OWNER invitation to the squatter."""
    source = seeded_supabase(supabase_databases)
    org_id, _, victim_email = owner_of(source)
    snapshot = tmp_path / 'org.json'
    assert hub(source, 'export', '--org', org_id, '-o', str(snapshot)).returncode == 0
    target = seeded_supabase(supabase_databases, '--seed', '7')
    [(squatter,)] = query(target, 'SELECT id FROM users ORDER BY id LIMIT 1')
    api = Api(target, 'authenticator')
    if api.error('UPDATE users SET email = %s WHERE id = %s', (victim_email, squatter),
                 user=squatter) is not None:
        # Tenants cannot squat any more: a row written as it was before (public.users holds
        # the address, auth.users does not) stands for the squat.
        execute(target, 'UPDATE users SET email = %s WHERE id = %s', (victim_email, squatter))
    before = query(target, 'SELECT count(*) FROM organizations')
    result = hub(target, 'import', str(snapshot), '--as-new', '--link-users')
    # The squatter accepts whatever they were invited to, then reads.
    api.run('UPDATE organization_members SET accepted_at = now() WHERE user_id = %s '
            'AND accepted_at IS NULL', (squatter,), user=squatter)
    seen = api.run('SELECT count(*) FROM workflows w JOIN organizations o '
                   'ON o.id = w.organization_id WHERE o.slug LIKE %s', (query(
                       source, 'SELECT slug FROM organizations')[0][0] + '%',), user=squatter)
    assert seen == [(0,)]
    assert result.returncode == 1, result.stdout
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert victim_email in result.stderr and 'confirmed' in result.stderr, result.stderr
    assert query(target, 'SELECT count(*) FROM organizations') == before


def test_link_users_links_a_confirmed_supabase_user(supabase_databases, secret, tmp_path):
    source = seeded_supabase(supabase_databases)
    org_id, _, email = owner_of(source)
    snapshot = tmp_path / 'org.json'
    assert hub(source, 'export', '--org', org_id, '-o', str(snapshot)).returncode == 0
    # The same seed: the same (confirmed) Auth users exist in the target.
    target = seeded_supabase(supabase_databases)
    result = hub(target, 'import', str(snapshot), '--as-new', '--link-users', '--owner', email)
    assert result.returncode == 0, result.stderr
    new_org = result.stdout.strip()
    assert query(target, """SELECT m.role FROM organization_members m
                            JOIN users u ON u.id = m.user_id
                            WHERE m.organization_id = %s AND u.email = %s""",
                 (new_org, email)) == [('OWNER',)]


def test_tenants_insert_their_own_row_with_their_tokens_address(database, db_url, api_for):
    rls.install(database)
    api = api_for(db_url)
    me = new_id()
    claims = {'sub': me, 'role': 'authenticated', 'email': 'me-%s@example.com' % me}
    taken = 'taken-%s@example.com' % me
    database.execute_sql('INSERT INTO users (id, email) VALUES (%s, %s)', (new_id(), taken))
    assert api.error('INSERT INTO users (id, email) VALUES (%s, %s)', (me, taken),
                     claims=claims) == DENIED
    # No e-mail claim (a gateway that sends none): no row, rather than any address.
    assert api.error('INSERT INTO users (id, email) VALUES (%s, %s)', (me, claims['email']),
                     user=me) == DENIED
    assert api.run('INSERT INTO users (id, email, name) VALUES (%s, %s, %s) RETURNING id',
                   (me, claims['email'], 'Me'), claims=claims) == [(me,)]
    assert api.run("UPDATE users SET name = 'Renamed' WHERE id = %s", (me,), user=me) == 1
    assert api.error('UPDATE users SET email = %s WHERE id = %s', ('new-%s@example.com' % me, me),
                     user=me) == DENIED
    assert json.dumps(api.run('SELECT email FROM users WHERE id = %s', (me,), user=me)) \
        == json.dumps([[claims['email']]])
