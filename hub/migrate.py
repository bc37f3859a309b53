"""Apply, list and revert the numbered migrations in hub/migrations/.

    >>> import hub.db, hub.migrate
    >>> database = hub.db.open_database(hub.db.resolve_url())
    >>> hub.migrate.migrate(database)           # names applied now; [] when up to date
    ['0001_initial']
    >>> [(m.name, bool(m.applied)) for m in hub.migrate.status(database)]
    [('0001_initial', True)]

Built on `playhouse.migrations.Runner`: one transaction per migration, a history table
(`hub_migrations`). Each migration's transaction takes a transaction-scoped advisory lock and
reads the history again under it, so concurrent `hub db migrate` runs queue up and each migration
is applied exactly once; the lock ends with the transaction, so a transaction pooler (pgbouncer,
Supavisor) can never leave it behind on a pooled connection.
"""
import contextlib
import re
from pathlib import Path

from peewee import DatabaseError
from playhouse.migrations import MigrationError as RunnerError
from playhouse.migrations import Runner

from hub.errors import ConfigError, MigrationError

MIGRATIONS_DIR = Path(__file__).with_name('migrations')
HISTORY_TABLE = 'hub_migrations'
# Any fixed 64-bit number works; this one spells "hubmigr" so it is recognisable in pg_locks.
LOCK_KEY = 0x6875626d696772


def runner(db, directory=MIGRATIONS_DIR):
    return Runner(db, str(directory), table_name=HISTORY_TABLE)


@contextlib.contextmanager
def _locked(db):
    """A transaction holding the migration lock; it is released at commit or rollback.

    Never a session lock: behind a transaction pooler the session is not ours, and a session
    lock would stay on the pooled server connection after we are gone.
    """
    with db.atomic():
        db.execute_sql('SELECT pg_advisory_xact_lock(%s)', (LOCK_KEY,))
        yield


def status(db, directory=MIGRATIONS_DIR):
    """Every migration known to the files or the history: (idx, name, path, applied)."""
    return runner(db, directory).status()


def pending(db, directory=MIGRATIONS_DIR):
    """Names of the migrations not applied yet."""
    return [m.name for m in status(db, directory) if m.applied is None]


def _resolve_target(rows, target):
    """Accept '0001_initial', '0001' or '1' for the same migration."""
    if target is None:
        return None
    names = [m.name for m in rows]
    if target in names:
        return target
    if re.fullmatch(r'\d+', target):
        found = [m.name for m in rows if m.idx == int(target)]
        if found:
            return found[0]
    known = ', '.join(names) or 'none'
    raise ConfigError('unknown migration %r; known migrations: %s' % (target, known))


def migrate(db, target=None, directory=MIGRATIONS_DIR):
    """Apply pending migrations (up to and including `target`); returns the names applied."""
    run = runner(db, directory)
    rows = [m for m in run.status() if m.path is not None]
    target = _resolve_target(rows, target)
    plan = []
    for m in rows:
        if m.applied is None:
            plan.append(m.name)
        if m.name == target:
            break

    def up(name):
        # Under the lock the history is read again: another run may have applied it meanwhile.
        # Runner.up(name) applies what is still pending up to `name` (normally just `name`).
        with _locked(db):
            return run.up(name)
    return _apply(up, plan)


def rollback(db, target=None, all=False, directory=MIGRATIONS_DIR):
    """Revert the latest migration, or back through `target`, or `all`; returns the names."""
    run = runner(db, directory)
    applied = [m for m in run.status() if m.applied]
    if not applied:
        raise MigrationError('nothing to roll back: no migration is applied; '
                             'run `hub db migrate` first')
    if all:
        target = applied[0].name
    elif target is None:
        target = applied[-1].name
    else:
        target = _resolve_target(applied, target)
    plan = [m.name for m in reversed(applied) if m.idx >= _idx(applied, target)]

    def down(name):
        with _locked(db):
            if name not in {m.name for m in run.status() if m.applied}:
                return []  # another run reverted it meanwhile
            return run.down(name)
    return _apply(down, plan)


def reset(db, directory=MIGRATIONS_DIR):
    """Drop everything of ours (policies included) and migrate again from scratch.

    One transaction: a failure leaves the database as it was.
    """
    from hub import rls

    run = runner(db, directory)
    with _locked(db):
        rls.uninstall(db)
        applied = [m.name for m in reversed(run.status()) if m.applied]
        _apply(run.down, applied)
        db.execute_sql('DROP TABLE IF EXISTS %s' % HISTORY_TABLE)
        return _apply(run.up, [m.name for m in run.status()])


def _idx(rows, name):
    return next(m.idx for m in rows if m.name == name)


def _apply(step, names):
    """Run `step` one migration at a time, so errors can name it; returns the names it did.

    `step(name)` returns the names it applied or reverted (Runner.up/down do).
    """
    done = []
    for name in names:
        try:
            done.extend(step(name))
        except RunnerError as exc:
            raise MigrationError('%s: %s' % (name, str(exc).rstrip('.'))) from None
        except DatabaseError as exc:
            cause = exc.__cause__ or exc
            first = str(cause).strip().splitlines()[0]
            raise MigrationError('migration %s failed and was rolled back: %s; fix the migration '
                                 'and run it again' % (name, first)) from None
    return done
