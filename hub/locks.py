"""The advisory lock keys of hub, and the one way it takes them: for the current transaction.

    >>> import hub.connection, hub.locks
    >>> database = hub.connection.open_database(hub.connection.resolve_url())
    >>> with database.atomic():
    ...     hub.locks.hold(database, hub.locks.SEED)   # released at commit or rollback

Never a session lock: behind a transaction pooler (pgbouncer, Supavisor) the session is not
ours, and a session lock would stay on the pooled server connection after we are gone. A low
module of its own, so the seeder, migrations and `hub secrets rotate` share keys without
importing each other.
"""

# Any fixed 64-bit numbers work; these spell "hubmigr" and "hubseed!" so they are recognisable
# in pg_locks.
#: Held by every migration's transaction (and reset's): concurrent migrate runs queue up.
MIGRATE = 0x6875626d696772
#: Held by the seeder's setup and batch transactions and by `hub secrets rotate`: a rotation
#: waits for a running seed, and seeds queue up batch by batch.
SEED = 0x6875627365656421


def hold(db, key):
    """Wait for the transaction-scoped advisory lock `key`; it ends with the transaction."""
    db.execute_sql('SELECT pg_advisory_xact_lock(%s)', (key,))
