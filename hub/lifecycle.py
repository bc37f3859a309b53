"""What takes a database through its life as a whole: ready it for use, reset it, tear it down.

    >>> import hub.db, hub.lifecycle
    >>> database = hub.db.open_database(hub.db.resolve_url())
    >>> hub.lifecycle.prepare(database)        # (migrations applied, RLS installed now)
    ([], False)
    >>> applied = hub.lifecycle.reset(database)  # drop everything of ours, migrate from scratch

It sits above hub.migrate and hub.rls, which do not know about each other: migrations revert
tables, and this module removes row-level security first whenever every table goes (its
helpers and the auth stand-in would outlive the tables otherwise). The seeder and the command
line (`hub seed`, `hub db reset`, `hub db rollback`) share these functions.
"""
from hub import locks, migrate, rls
from hub.errors import SchemaDrift


def remove_rls(db):
    """Uninstall row-level security; a lock conflict becomes a LockConflict that says so."""
    with migrate.conflicts('remove row-level security'):
        return rls.uninstall(db)


def reset(db, directory=migrate.MIGRATIONS_DIR):
    """Drop everything of ours (policies included) and migrate again from scratch.

    One transaction: a failure leaves the database as it was. Returns the migrations applied.
    """
    return migrate.reset(db, directory, teardown=remove_rls)


def rollback(db, target=None, all=False, directory=migrate.MIGRATIONS_DIR):
    """hub.migrate.rollback; reverting every applied migration also removes what `hub rls
    install` added (policies, the helper schema, the auth stand-in)."""
    return migrate.rollback(db, target, all, directory, teardown=remove_rls)


def plan_rollback(db, target=None, all=False, directory=migrate.MIGRATIONS_DIR):
    """The RollbackPlan of `rollback(db, target, all)`, nothing changed (hub.migrate)."""
    return migrate.plan_rollback(db, target, all, directory, teardown=remove_rls)


def prepare(db, notify=None, mode=None):
    """Make `db` ready for use: apply pending migrations, install row-level security when
    missing (in `mode`, hub.rls.MODES; None: the default). Returns (migrations applied, whether
    RLS was installed now).

    `hub seed` and `hub db reset` call it, so a reset database is the one a seed starts from.
    Refuses (DatabaseNewer) a database that holds a migration this code does not have.
    """
    notify = notify or (lambda message: None)
    migrate.ensure_known(db)
    migrated = migrate.migrate(db) if migrate.pending(db) else []
    if migrated:
        notify('applied migrations: %s' % ', '.join(migrated))
    with db.atomic():  # under the seed lock: concurrent seeds install it once
        locks.hold(db, locks.SEED)
        installed = not rls.installed(db)
        if installed:
            rls.install(db, mode=mode)
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
