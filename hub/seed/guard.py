"""The seeder refuses a database that holds users it did not create, unless told otherwise.

    >>> from hub.seed import guard
    >>> guard.foreign_users(database)            # (users rows, auth.users accounts) not hub's
    (0, 0)
    >>> guard.refuse_foreign_users(database)     # ConfigError naming the count and the flag

Seeded accounts sign in with a documented constant password (hub.seed.auth.DEV_PASSWORD), so
adding them to a database with real users opens it to anyone who read the docs. A user is the
seeder's when nobody could own its mailbox or the seeder marked it:

- a `users` row whose address is at a domain reserved for examples and tests (RFC 2606 and
  6761: example.com, example.net, example.org and their subdomains, and the top-level domains
  .example, .test, .invalid, .localhost). Every seeded and scenario user has one; a real person
  never does;
- an `auth.users` row marked `raw_app_meta_data.hub_seed` (hub.seed.auth.MARK): GoTrue never
  writes that key, only service_role may.

Anything else is a real user as far as the seeder can tell. `hub seed --allow-existing-users`
(`allow_existing_users=True`) seeds anyway; `hub seed --sql FILE --auth-users` writes a check
(guard_sql) at the top of the file, so loading it into such a database stops before any row.
"""
from hub.errors import ConfigError

FLAG = '--allow-existing-users'
#: The domain of an address (after its last @) is one of these, or a subdomain of one.
RESERVED_DOMAIN = r'(^|\.)(example\.(com|net|org)|example|test|invalid|localhost)$'
_PUBLIC = ("SELECT count(*) FROM public.users WHERE lower(substring(email from '@([^@]*)$')) "
           "IS NULL OR lower(substring(email from '@([^@]*)$')) !~ '%s'" % RESERVED_DOMAIN)
_AUTH = ("SELECT count(*) FROM auth.users WHERE NOT coalesce(raw_app_meta_data ? 'hub_seed', "
         "false)")


def foreign_users(db):
    """(users rows, auth.users accounts) the seeder did not create; 0 for a missing table."""
    counts = []
    for table, sql in (('public.users', _PUBLIC), ('auth.users', _AUTH)):
        exists = db.execute_sql('SELECT to_regclass(%s) IS NOT NULL', (table,)).fetchone()[0]
        counts.append(db.execute_sql(sql).fetchone()[0] if exists else 0)
    return tuple(counts)


def describe(users, accounts):
    parts = []
    if users:
        parts.append('%d user%s with a real-looking e-mail' % (users, '' if users == 1 else 's'))
    if accounts:
        parts.append('%d Supabase Auth account%s' % (accounts, '' if accounts == 1 else 's'))
    return ' and '.join(parts)


def refuse_foreign_users(db):
    """ConfigError when the database holds users the seeder did not create."""
    users, accounts = foreign_users(db)
    if users or accounts:
        raise ConfigError('this database holds %s that hub seed did not create; seeded accounts '
                          'sign in with a published password, so hub seed refuses to add them '
                          'here; pass %s if this really is a development database'
                          % (describe(users, accounts), FLAG))


def guard_sql():
    """A DO block that stops a seed file on a database holding users hub did not create."""
    return """DO $hub_do$
DECLARE
    users pg_catalog.int8 := (%s);
    accounts pg_catalog.int8 := 0;
BEGIN
    IF pg_catalog.to_regclass('auth.users') IS NOT NULL THEN
        EXECUTE $hub_q$%s$hub_q$ INTO accounts;
    END IF;
    IF users > 0 OR accounts > 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'object_in_use',
            MESSAGE = pg_catalog.format('this database holds %%s users and %%s Supabase Auth '
                'accounts that hub seed did not create; the seeded accounts sign in with a '
                'published password', users, accounts),
            HINT = 'write the file with `hub seed --sql FILE --auth-users %s` if this really '
                   'is a development database';
    END IF;
END $hub_do$;
""" % (_PUBLIC, _AUTH, FLAG)
