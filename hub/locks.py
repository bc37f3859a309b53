"""Hub's locks, and the one way it takes them: a table lock for the current transaction,
waited for a bounded time.

    >>> import hub.connection, hub.locks
    >>> database = hub.connection.open_database(hub.connection.resolve_url())
    >>> with database.atomic():
    ...     hub.locks.hold(database, hub.locks.SEED)   # released at commit or rollback

Each lock is an empty table, `hub_internal.<key>`, locked IN EXCLUSIVE MODE (which conflicts
with itself, not with the ACCESS SHARE of a reader). The schema and the tables are the owner's
alone (no privilege for PUBLIC or the API roles, row-level security on without a policy), so
no API role can take or queue for them (LOCK TABLE needs a privilege on the table, and without
USAGE on the schema the name does not even resolve). Advisory locks, which hub
used before, are open to every role (pg_advisory_lock is PUBLIC's, and pg_locks shows every
key held), so anon could hold hub's keys through PostgREST and stall `hub seed`, `hub secrets
rotate` and `hub db migrate` forever (docs/rls.md, "Hub's locks").

Never a session lock: behind a transaction pooler (pgbouncer, Supavisor) the session is not
ours, and a session lock would stay on the pooled server connection after we are gone. A wait
lasts at most HUB_LOCK_TIMEOUT seconds (default 300), then LockConflict names the holder (pid,
role, since when). A low module of its own, so the seeder, migrations and `hub secrets rotate`
share locks without importing each other.
"""
import os

from hub.errors import ConfigError, LockConflict

SCHEMA = 'hub_internal'
#: Held by every migration's transaction (and reset's): concurrent migrate runs queue up.
MIGRATE = 'migrate'
#: Held by the seeder's setup and batch transactions and by `hub secrets rotate`: a rotation
#: waits for a running seed, and seeds queue up batch by batch.
SEED = 'seed'
KEYS = (MIGRATE, SEED)
#: How long a wait for a lock may last, in seconds, unless $HUB_LOCK_TIMEOUT says otherwise.
DEFAULT_TIMEOUT = 300
TIMEOUT_VARIABLE = 'HUB_LOCK_TIMEOUT'

API_ROLES = ('anon', 'authenticated', 'service_role')

# The owner's: PUBLIC (and so every API role) gets nothing on the schema or the table, whatever
# default privileges the database has (Supabase grants ALL on new objects to the API roles).
_CREATE = """
CREATE SCHEMA IF NOT EXISTS %(schema)s;
COMMENT ON SCHEMA %(schema)s IS 'hub''s own machinery (its locks); no API role may reach it';
REVOKE ALL ON SCHEMA %(schema)s FROM PUBLIC;
CREATE TABLE IF NOT EXISTS %(table)s ();
REVOKE ALL ON TABLE %(table)s FROM PUBLIC;
ALTER TABLE %(table)s ENABLE ROW LEVEL SECURITY;
"""


def timeout_seconds():
    """The bound on a wait, from $HUB_LOCK_TIMEOUT (seconds, > 0); ConfigError if unreadable."""
    value = os.environ.get(TIMEOUT_VARIABLE, '').strip()
    if not value:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1
    if not seconds > 0:
        raise ConfigError('%s=%r is not a number of seconds; set it to how long hub may wait for '
                          'its locks, e.g. %s=%d' % (TIMEOUT_VARIABLE, value, TIMEOUT_VARIABLE,
                                                     DEFAULT_TIMEOUT))
    return seconds


def hold(db, key, timeout=None):
    """Lock `key` (MIGRATE or SEED) until the current transaction ends.

    Waits at most `timeout` seconds (default: timeout_seconds()), then raises LockConflict
    naming the session that holds it. The caller's own lock_timeout is restored afterwards, so
    the rest of its transaction waits as it would have.
    """
    from peewee import DatabaseError

    from hub.errors import pg_error

    if key not in KEYS:
        raise ValueError('unknown lock %r; use one of %s' % (key, ', '.join(KEYS)))
    seconds = timeout_seconds() if timeout is None else timeout
    before = db.execute_sql("SELECT current_setting('lock_timeout')").fetchone()[0]
    db.execute_sql("SELECT set_config('lock_timeout', %s, true)", ('%dms' % (seconds * 1000),))
    try:
        with db.atomic():  # a savepoint: a timeout leaves the caller's transaction usable
            _ensure(db, key)
            db.execute_sql('LOCK TABLE %s IN EXCLUSIVE MODE' % table(key))
    except DatabaseError as exc:
        if getattr(pg_error(exc), 'pgcode', None) != '55P03':
            raise
        raise LockConflict("waited %s s for hub's %s lock, held by %s; it is released when that "
                           "transaction ends: run again then, or end that session "
                           "(SELECT pg_terminate_backend(<pid>)); %s sets the wait"
                           % (_seconds(seconds), key, holder(db, key), TIMEOUT_VARIABLE)) from None
    finally:
        db.execute_sql("SELECT set_config('lock_timeout', %s, true)", (before,))


def table(key):
    """The table whose lock is hub's lock `key`."""
    return '%s.%s' % (SCHEMA, key)


def _seconds(value):
    return ('%g' % value)


def _ensure(db, key):
    """`key`'s table (and the schema), made on first use (in the caller's transaction, so a
    rolled-back first migration leaves nothing behind). Two first uses at once: the second
    waits for the first (bounded like any wait) and then finds its work done."""
    from peewee import DatabaseError

    name = table(key)
    if db.execute_sql("SELECT to_regclass(%s) IS NULL", (name,)).fetchone()[0]:
        try:
            with db.atomic():
                db.execute_sql(_CREATE % {'schema': SCHEMA, 'table': name})
                for role in API_ROLES:
                    if db.execute_sql('SELECT 1 FROM pg_roles WHERE rolname = %s',
                                      (role,)).fetchone():
                        db.execute_sql('REVOKE ALL ON SCHEMA %s FROM %s; REVOKE ALL ON TABLE %s '
                                       'FROM %s' % (SCHEMA, role, name, role))
        except DatabaseError as exc:
            from hub.errors import pg_error

            # 23505/42P06/42P07: a concurrent first use created them; theirs will do.
            if getattr(pg_error(exc), 'pgcode', None) not in ('23505', '42P06', '42P07'):
                raise


def holder(db, key):
    """'pid 123 (role postgres, application hub, transaction since 2025-01-31 12:00:00 UTC)':
    the session whose transaction holds `key`, as far as pg_stat_activity shows it."""
    row = db.execute_sql("""
        SELECT a.pid, a.usename, nullif(a.application_name, ''),
               to_char(a.xact_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
        FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'relation' AND l.relation = pg_catalog.to_regclass(%s)
          AND l.granted AND l.mode = 'ExclusiveLock' AND l.pid <> pg_catalog.pg_backend_pid()
        LIMIT 1""", (table(key),)).fetchone()
    if row is None:
        return 'a session that has finished since (run again)'
    pid, role, application, since = row
    details = ['role %s' % role]
    if application:
        details.append('application %s' % application)
    details.append('transaction since %s UTC' % since if since else 'since an unknown time')
    return 'pid %d (%s)' % (pid, ', '.join(details))
