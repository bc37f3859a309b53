"""Seeded users as Supabase Auth users, on databases that have Supabase's `auth` schema.

On a database with Supabase's auth schema (not plain PostgreSQL, so these examples are
skipped by tests/test_doctests.py; `hub seed` in tests/test_supabase.py makes these calls):

    >>> from hub.seed import auth
    >>> auth.available(database)                  # doctest: +SKIP
    True
    >>> hashed = auth.password_hash(database, 42) # doctest: +SKIP
    >>> org_ids = [org_id for (org_id,) in database.execute_sql('SELECT id FROM organizations')]
    >>> auth.add_users(database, org_ids, hashed, 42)   # doctest: +SKIP
    24

`password_hash` is the bcrypt of DEV_PASSWORD with the salt fixed by the seed; `add_users` adds
the Auth rows of those organizations' members and returns how many.

Each seeded user gets an `auth.users` row with the same id (a uuid, stored as text in
`users.id`) and e-mail, confirmed, with the password DEV_PASSWORD, and the `auth.identities` row
GoTrue's e-mail sign-in reads. Rows are marked (`raw_app_meta_data.hub_seed`) so `hub seed
--reset` removes exactly these. The bcrypt hash comes from pgcrypto's `crypt()` (Supabase
installs it in `extensions`) with a salt derived from the seed, so two runs write identical rows.
On plain PostgreSQL (no `auth.users`) nothing here runs.

Curated scenarios (`hub seed --scenario`) ship cuid user ids; `scenario_user_id` gives each a
uuid derived from it alone, so every load of a scenario names its users alike.
"""
import hashlib
import uuid

from hub.errors import HubError

#: The password of every seeded user on a Supabase database: a development password, public.
DEV_PASSWORD = 'neuroflow-dev-password'
#: GoTrue's cost; any cost signs in, this one matches users GoTrue creates itself.
BCRYPT_COST = 10
MARK = 'hub_seed'
# GoTrue's single-tenant instance id.
INSTANCE_ID = '00000000-0000-0000-0000-000000000000'
# Fixed forever: scenario users' Auth ids derive from it (changing it renames them).
SCENARIO_NAMESPACE = uuid.UUID('6d1c7f4e-2b0a-5e53-9c1e-0f6a8b3d5a21')
_BCRYPT64 = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'


def available(db):
    """True when the database has Supabase Auth's tables."""
    cursor = db.execute_sql("SELECT to_regclass('auth.users') IS NOT NULL "
                            "AND to_regclass('auth.identities') IS NOT NULL")
    return cursor.fetchone()[0]


def scenario_user_id(snapshot_id):
    """The uuid (as text) a scenario's user `snapshot_id` gets on a database with auth.users."""
    return str(uuid.uuid5(SCENARIO_NAMESPACE, snapshot_id))


def salt(seed):
    """A bcrypt salt ('$2a$10$' + 22 characters) that depends on the seed alone."""
    digest = hashlib.blake2b(b'hub-seed-auth:%d' % seed, digest_size=22).digest()
    chars = [_BCRYPT64[b % 64] for b in digest[:21]]
    # The 22nd character carries only 2 bits of the 128-bit salt: bcrypt reads its top bits.
    chars.append('.Oeu'[digest[21] % 4])
    return '$2a$%02d$%s' % (BCRYPT_COST, ''.join(chars))


def _crypt_function(db):
    cursor = db.execute_sql(
        "SELECT quote_ident(n.nspname) || '.crypt' FROM pg_proc p "
        "JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE p.proname = 'crypt' AND p.proargtypes = '25 25'::oidvector "
        "ORDER BY n.nspname = 'extensions' DESC, n.nspname LIMIT 1")
    row = cursor.fetchone()
    if row is None:
        raise HubError('this database has auth.users but not pgcrypto, which seeded users\' '
                       'bcrypt passwords need; run CREATE EXTENSION pgcrypto WITH SCHEMA '
                       'extensions (Supabase has it) and seed again')
    return row[0]


def password_hash(db, seed):
    """bcrypt of DEV_PASSWORD with the seed's salt, computed by the database's pgcrypto."""
    cursor = db.execute_sql('SELECT %s(%%s, %%s)' % _crypt_function(db),
                            (DEV_PASSWORD, salt(seed)))
    return cursor.fetchone()[0]


_MEMBERS = ('SELECT DISTINCT u.id, u.email, u.name, u.created_at FROM public.users u '
            'JOIN public.organization_members m ON m.user_id = u.id '
            'WHERE m.organization_id = ANY(%s)')


_USERS = """WITH seeded AS (%s)
        INSERT INTO auth.users (instance_id, id, aud, role, email, encrypted_password,
            email_confirmed_at, confirmation_token, recovery_token, email_change_token_new,
            email_change, raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
        SELECT %%s::uuid, s.id::uuid, 'authenticated', 'authenticated', s.email, %%s,
            s.created_at, '', '', '', '',
            jsonb_build_object('provider', 'email', 'providers', jsonb_build_array('email'),
                               %%s, %%s::numeric),
            jsonb_build_object('name', s.name), s.created_at, s.created_at
        FROM seeded s
        ON CONFLICT (id) DO NOTHING""" % _MEMBERS
_IDENTITIES = """INSERT INTO auth.identities (id, provider_id, user_id, identity_data, provider,
                created_at, updated_at)
            SELECT md5('hub-identity:' || u.id::text)::uuid, u.id::text, u.id,
                jsonb_build_object('sub', u.id::text, 'email', u.email,
                                   'email_verified', true, 'phone_verified', false),
                'email', u.created_at, u.created_at
            FROM auth.users u WHERE %s
            ON CONFLICT DO NOTHING"""


def add_users(db, org_ids, hashed, seed):
    """auth.users + auth.identities rows for the members of `org_ids`; returns users added."""
    cursor = db.execute_sql(_USERS + '\n        RETURNING id',
                            (list(org_ids), INSTANCE_ID, hashed, MARK, seed))
    added = [row[0] for row in cursor.fetchall()]
    if added:
        db.execute_sql(_IDENTITIES % 'u.id = ANY(%s::uuid[])', ([str(i) for i in added],))
    return len(added)


def add_users_sql(org_ids, seed):
    """The statements that add what `add_users` adds for `org_ids` to an empty auth schema, as
    SQL text for a seed file: the bcrypt hash is computed by the loading database's pgcrypto
    (`extensions.crypt`, where Supabase installs it) with the seed's salt, so it is the same."""
    from hub.sqltext import Raw, interpolate, literal

    ids = Raw('ARRAY[%s]::text[]' % ', '.join(literal(i) for i in org_ids))
    hashed = Raw('extensions.crypt(%s, %s)' % (literal(DEV_PASSWORD), literal(salt(seed))))
    seeded = ('u.raw_app_meta_data ? %s AND u.id IN (SELECT m.user_id::uuid FROM '
              'public.organization_members m WHERE m.organization_id = ANY(%s))'
              % (literal(MARK), ids))
    return [interpolate(_USERS, (ids, INSTANCE_ID, hashed, MARK, seed)), _IDENTITIES % seeded]


def remove_users(db):
    """Delete the auth rows the seeder added (marked); returns how many users."""
    db.execute_sql("DELETE FROM auth.identities WHERE user_id IN "
                   "(SELECT id FROM auth.users WHERE raw_app_meta_data ? %s)", (MARK,))
    cursor = db.execute_sql('DELETE FROM auth.users WHERE raw_app_meta_data ? %s', (MARK,))
    return cursor.rowcount
