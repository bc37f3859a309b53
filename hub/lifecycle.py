"""What takes a database through its life as a whole: ready it for use, reset it, tear it down.

    >>> import hub.connection, hub.lifecycle
    >>> database = hub.connection.open_database(hub.connection.resolve_url())
    >>> hub.lifecycle.prepare(database)        # (migrations applied, RLS installed now)
    ([], False)
    >>> applied = hub.lifecycle.reset(database)  # drop everything of ours, migrate from scratch

It sits above hub.migrate and hub.rls, which do not know about each other: migrations revert
tables, and this module removes row-level security first whenever every table goes (its
helpers and the auth stand-in would outlive the tables otherwise). The seeder and the command
line (`hub seed`, `hub db reset`, `hub db rollback`) share these functions.
"""
from hub import citus, locks, migrate, rls
from hub.errors import SchemaDrift


def secure(db):
    """What ends every migration (applied or reverted), in its transaction, before its history
    row: on a Citus database the distribution of what it created (hub.citus.distribute: tenant
    tables distributed, the others reference tables; nothing elsewhere), then the
    row-level-security sync (hub.rls.sync)."""
    citus.distribute(db)
    rls.sync(db)


#: First in every migration's transaction (hub.migrate's runner calls it): on Citus, the
#: settings its DDL needs (hub.citus.SETTINGS), and the distribution as what to try when Citus
#: refuses a statement (a key from a table just created to a distributed one); nothing
#: elsewhere.
secure.before = citus.prepare


def remove_rls(db):
    """Uninstall row-level security; a lock conflict becomes a LockConflict that says so."""
    with migrate.conflicts('remove row-level security'):
        return rls.uninstall(db)


def migrate_database(db, target=None, directory=migrate.MIGRATIONS_DIR, bounds=None,
                     notify=None):
    """hub.migrate.migrate with every migration ending, in its own transaction, in `secure`
    (on Citus the distribution, then the row-level-security sync): what `hub db migrate` runs. A table a migration
    creates is never committed reachable beyond its model: its policies and grants where
    `hub rls install` has run, deny-all where it has not (docs/migrations.md). `bounds` and
    `notify` as hub.migrate.migrate (lock_timeout, retries)."""
    return migrate.migrate(db, target, directory, secure=secure, bounds=bounds, notify=notify)


def pending_sql(db, target=None, directory=migrate.MIGRATIONS_DIR, bounds=None):
    """hub.migrate.pending_sql with the sync after each migration: the file secures what it
    creates, as `migrate_database` does; it starts with `bounds` (hub.migrate.Bounds)."""
    return migrate.pending_sql(db, target, directory, secure_sql=rls.sync_sql(), bounds=bounds)


def pending_transactions(db, target=None, directory=migrate.MIGRATIONS_DIR):
    """hub.migrate.pending_transactions with the sync after each migration (`hub db migrate
    --sql`): one written file per transaction, each securing what it creates."""
    return migrate.pending_transactions(db, target, directory, secure_sql=rls.sync_sql())


def reset(db, directory=migrate.MIGRATIONS_DIR):
    """Drop everything of ours (policies included) and migrate again from scratch, each
    migration ending in the sync (so every table is deny-all until `hub rls install`).

    One transaction: a failure leaves the database as it was. Returns the migrations applied.
    """
    return migrate.reset(db, directory, teardown=remove_rls, secure=secure)


def rollback(db, target=None, all=False, directory=migrate.MIGRATIONS_DIR):
    """hub.migrate.rollback; each revert ends in the sync, and reverting every applied
    migration also removes what `hub rls install` added (policies, the helper schema, the auth
    stand-in)."""
    return migrate.rollback(db, target, all, directory, teardown=remove_rls, secure=secure)


def plan_rollback(db, target=None, all=False, directory=migrate.MIGRATIONS_DIR):
    """The RollbackPlan of `rollback(db, target, all)`, nothing changed (hub.migrate)."""
    return migrate.plan_rollback(db, target, all, directory, teardown=remove_rls,
                                 secure=secure)


def prepare(db, notify=None, mode=None):
    """Make `db` ready for use: apply pending migrations, install row-level security when
    missing (in `mode`, hub.rls.MODES; None: the default). Returns (migrations applied, whether
    RLS was installed now).

    `hub seed` and `hub db reset` call it, so a reset database is the one a seed starts from.
    Refuses (DatabaseNewer) a database that holds a migration this code does not have.
    """
    notify = notify or (lambda message: None)
    migrate.ensure_known(db)
    migrated = migrate_database(db) if migrate.pending(db) else []
    if migrated:
        notify('applied migrations: %s' % ', '.join(migrated))
    with db.atomic():  # under the seed lock: concurrent seeds install it once
        locks.hold(db, locks.SEED)
        installed = not rls.installed(db)
        if installed:
            rls.install(db, mode=mode)
    if installed and citus.enabled(db):
        rls.install_worker_logins(db)  # after the commit: it waits for the roles install made
    if installed:
        notify('installed the row-level-security policies')
    return migrated, installed


def adopt(db, target=None, directory=migrate.MIGRATIONS_DIR):
    """Record the pending migrations (up to `target`) as applied without running them, for a
    database whose schema already matches hub.models (built by hand, restored from a dump, or
    migrated by another tool). Returns the names recorded.

    Refuses (SchemaDrift, nothing recorded) when `hub db check` finds a difference: recording
    migrations that were never run over a schema that differs would hide the difference.
    """
    from hub import schema

    with db.atomic():  # under the migration lock: no migration runs between check and record
        locks.hold(db, locks.MIGRATE)
        drift = schema.check(db)
        if drift:
            raise SchemaDrift(
                'refusing to record migrations as applied: the database differs from hub.models '
                'in %d way%s (%s%s); run `hub db check` to see them, and `hub db migrate` without '
                '--fake to build the schema' % (len(drift), '' if len(drift) == 1 else 's',
                                                 drift[0], ', ...' if len(drift) > 1 else ''))
        return migrate.fake(db, target, directory)


#: Refuses to run on a database that already has our history: the file builds from nothing.
_EMPTY_ONLY = """DO $hub_do$ BEGIN
    IF pg_catalog.to_regclass('public.%(history)s') IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'duplicate_table',
            MESSAGE = 'this database already has hub''s migration history (%(history)s)',
            HINT = 'the file builds the schema from an empty database; upgrade an existing one '
                   'with `hub db migrate` (or apply `hub db migrate --sql`)';
    END IF;
END $hub_do$"""


def schema_transactions(directory=migrate.MIGRATIONS_DIR, mode=rls.DEFAULT_MODE):
    """The whole schema as hub.migrate.Transactions, without a database: every migration's `up`
    (recorded in the history as `hub db migrate` records it), then what `hub rls install` runs
    on a database just migrated. One transaction unless a migration adds enum labels
    (COMMIT_FIRST): then a transaction ends after them, and ends with the row-level-security
    sync, so no file commits a table open. `hub db sql` writes one file per transaction;
    `psql -v ON_ERROR_STOP=1 -1 -f` applies each, in order, to an empty database, plain
    PostgreSQL or Supabase; no psql meta-command, no COPY, no BEGIN/COMMIT (the Supabase CLI
    runs each migration file in a transaction of its own). `mode` is the row-level security
    mode, as `rls.install(mode=...)`."""
    from hub.catalog import HISTORY_TABLE

    names = migrate.all_names(directory)
    steps = [migrate.Step('refuse a database that already has the schema',
                          [_EMPTY_ONLY % {'history': HISTORY_TABLE}], names[0]),
             migrate.Step('the migration history (%s)' % HISTORY_TABLE, migrate.history_sql(),
                          names[0])]
    # In one transaction (the Supabase CLI's, or psql -1) the sync that ends install_sql
    # secures every table at once, so the migrations need not each end with it as `migrate
    # --sql` does; a transaction that ends earlier ends with the sync itself.
    steps += migrate.migration_steps(names, directory)
    steps.append(migrate.Step('row-level security: what `hub rls install` runs',
                              rls.install_sql(mode), names[-1]))
    sync = migrate.Step('the row-level-security sync: nothing this file creates is committed '
                        'open', [rls.sync_sql()], None)
    return migrate.transactions(steps, closing=sync)


def schema_header(plan, i, bounds=None):
    """The opening lines of file `i` of `plan` (schema_transactions), as `hub db sql` writes it:
    ending with the bounds `hub db migrate` runs under (`bounds`, hub.migrate.Bounds)."""
    names = [s.heading.split()[1] for s in plan[i].steps if s.heading.startswith('migration ')]
    part = '' if len(plan) == 1 else ' (file %d of %d)' % (i + 1, len(plan))
    return ('-- NeuroFlow Hub schema, written by `hub db sql`%s: migrations %s%s.\n'
            '-- Apply to an empty database, each file in order: psql -v ON_ERROR_STOP=1 -1 -f '
            'FILE,\n-- or keep them in supabase/migrations/. Regenerate them; do not edit them.'
            '\n\nSET standard_conforming_strings = on;\n%s\n'
            % (part, ', '.join(dict.fromkeys(n.rstrip(':') for n in names)) or 'none',
               ', then row-level security' if i == len(plan) - 1 else '',
               migrate.bounds_header(bounds)))


def schema_sql(directory=migrate.MIGRATIONS_DIR, mode=rls.DEFAULT_MODE, bounds=None):
    """The whole schema as one SQL script (schema_transactions, when it is one transaction;
    MigrationError otherwise, naming the migration that needs a second file)."""
    plan = schema_transactions(directory, mode)
    why = migrate.needs_files(plan)
    if why:
        from hub.errors import MigrationError
        raise MigrationError('the schema cannot be one file: %s; write it to a folder with '
                             '`hub db sql -o DIR`' % why)
    return migrate.file_text(plan[0], schema_header(plan, 0, bounds))
