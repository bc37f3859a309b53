"""Apply, list and revert the numbered migrations in hub/migrations/.

    >>> import hub.connection, hub.lifecycle, hub.migrate
    >>> database = hub.connection.open_database(hub.connection.resolve_url())
    >>> hub.lifecycle.migrate_database(database)  # names applied now; [] when up to date
    []
    >>> [(m.name, bool(m.applied)) for m in hub.migrate.status(database)][:1]
    [('0001_initial', True)]

This module is the runner and knows nothing of row-level security: `migrate(db)` alone leaves
a table a migration creates as its DDL left it. Apply migrations through
`hub.lifecycle.migrate_database` (what `hub db migrate` and `hub seed` run), which ends every
migration, in its own transaction, with the sync of hub.rls (docs/migrations.md).

Built on `playhouse.migrations.Runner`: one transaction per migration, a history table
(`hub_migrations`). Each migration's transaction takes hub's transaction-scoped migrate lock and
reads the history again under it, so concurrent `hub db migrate` runs queue up and each migration
is applied exactly once; the lock ends with the transaction, so a transaction pooler (pgbouncer,
Supavisor) can never leave it behind on a pooled connection.

A database that holds a migration this code does not have (applied by a newer hub) is refused
by every function here that writes, and by `ensure_known` for other writers:

    >>> hub.migrate.ensure_known(database)      # DatabaseNewer when the database is ahead

Each applied migration's file is recorded with its checksum (sha256 of its bytes, column
`checksum` of the history, added by `migrate` on a history written by an older hub), so
`edited` names a file changed after it was applied; `fake` records migrations as applied
without running them (hub.lifecycle.adopt checks the schema first):

    >>> hub.migrate.edited(database)             # [] unless an applied file was changed
    []
"""
import contextlib
import hashlib
import os
import random
import re
import threading
import time
from pathlib import Path
from typing import NamedTuple

from peewee import DatabaseError
from playhouse.migrations import Migration, Runner
from playhouse.migrations import MigrationError as RunnerError

from hub import locks
from hub import online as online_paths
from hub.catalog import HISTORY_TABLE, live_column_exists, live_table_exists
from hub.errors import ConfigError, DatabaseNewer, LockConflict, MigrationError, contention

MIGRATIONS_DIR = Path(__file__).with_name('migrations')
LOCK_KEY = locks.MIGRATE


class OneByOne:
    """`db` for a migration's up() and down(): each text given to execute_sql is sent one
    statement per query (hub.sqltext.statements), on every database. Citus refuses several
    statements in one query string during DDL (Citus issue 6608), and a migration written as
    one text (0001's UP) is the common case. The cursor of the last statement is returned;
    everything else is `db`'s."""

    def __init__(self, db, retry=None):
        self._db = db
        self._retry = retry

    def __getattr__(self, name):
        return getattr(self._db, name)

    def execute_sql(self, sql, params=None, *args, **kwargs):
        from hub.sqltext import split_params, statements

        pieces = statements(sql)
        if len(pieces) < 2:
            return self._one(sql, params, *args, **kwargs)
        cursor = None
        for piece, values in split_params(pieces, params):
            cursor = self._one(piece, values, *args, **kwargs)
        return cursor

    def _one(self, sql, params, *args, **kwargs):
        """With `retry(db)`: a statement the database refuses is run again once if retry
        changed something (it returns a true value; on Citus: distributed the tables created
        so far, so a key to a distributed table may follow), else its error stands. Each
        statement is then a savepoint of its own."""
        if self._retry is None:
            return self._db.execute_sql(sql, params, *args, **kwargs)
        try:
            with self._db.atomic():
                return self._db.execute_sql(sql, params, *args, **kwargs)
        except DatabaseError:
            if not self._retry(self._db):
                raise
        return self._db.execute_sql(sql, params, *args, **kwargs)


class _Runner(Runner):
    """playhouse's Runner, with every migration (up, and down on rollback) ending in
    `secure(db)` when one is given: in the migration's own transaction, before its history
    row. hub.lifecycle passes hub.rls.sync, so no committed instant has a table a migration
    created or changed reachable beyond its model (Supabase grants the API roles ALL on every
    new table); this module knows nothing of row-level security. A `secure` with an attribute
    `before` has it called first, in the same transaction (hub.lifecycle: Citus's settings for
    DDL); what it returns is OneByOne's `retry`. up() and down() get the database as OneByOne:
    one statement per query."""

    secure = None
    #: {name: SQL} run in place of that migration's up() (hub.online: the same end state).
    replace = {}

    def _run(self, name, module, direction, fake=False):
        if fake:
            return super()._run(name, module, direction, fake)
        with self.migrator.migration_context(getattr(module, 'atomic', True)):
            before = getattr(self.secure, 'before', None)
            retry = before(self.database) if before is not None else None
            db = OneByOne(self.database, retry)
            if direction == 'up' and name in self.replace:
                db.execute_sql(self.replace[name])
            else:
                getattr(module, direction)(self.migrator, db)
            if self.secure is not None:
                self.secure(self.database)
            if direction == 'up':
                self.History.create(name=name)
            else:
                self.History.delete().where(self.History.name == name).execute()


def runner(db, directory=MIGRATIONS_DIR, secure=None):
    """The Runner of `directory` on `db`; `secure(db)` ends every migration it applies or
    reverts (see _Runner)."""
    run = _Runner(db, str(directory), table_name=HISTORY_TABLE)
    run.secure = secure
    return run


@contextlib.contextmanager
def _locked(db):
    """A transaction holding the migration lock; it is released at commit or rollback.

    Never a session lock: behind a transaction pooler the session is not ours, and a session
    lock would stay on the pooled server connection after we are gone.
    """
    with db.atomic():
        locks.hold(db, LOCK_KEY)
        yield


# -- bounded waits: lock_timeout and statement_timeout for each migration, retries -------------

#: Environment variables that set the bounds `hub db migrate` runs each migration under
#: (its --lock-timeout, --statement-timeout and --retries win over them).
LOCK_TIMEOUT_VARIABLE = 'HUB_MIGRATE_LOCK_TIMEOUT'
STATEMENT_TIMEOUT_VARIABLE = 'HUB_MIGRATE_STATEMENT_TIMEOUT'
RETRIES_VARIABLE = 'HUB_MIGRATE_RETRIES'
#: Short: while a migration waits for its lock every later reader of the table queues behind
#: it, so this is the longest stall a busy table may see from a migration.
DEFAULT_LOCK_TIMEOUT = '2s'
#: A bound on any one statement of a migration's transaction (a runaway backfill or rewrite).
DEFAULT_STATEMENT_TIMEOUT = '10min'
DEFAULT_RETRIES = 5

_DURATION = re.compile(r'(\d+(?:\.\d+)?)\s*(ms|s|min|h)?')
_UNIT_MS = {'ms': 1, 's': 1000, 'min': 60000, 'h': 3600000, None: 1}


def duration_ms(value, what):
    """Milliseconds of a PostgreSQL duration ('2s', '500ms', '10min', '1h'; a bare number is
    ms, 0 is no limit); ConfigError naming `what` (the option or variable) otherwise."""
    match = _DURATION.fullmatch(str(value).strip())
    if match is None:
        raise ConfigError('%s %r is not a duration; give a number with a unit, e.g. 2s, 500ms '
                          'or 10min (0 for no limit)' % (what, value))
    return int(float(match.group(1)) * _UNIT_MS[match.group(2)])


class Bounds:
    """The bounds on each migration: `lock_timeout` and `statement_timeout` (ms, SET LOCAL in
    its transaction, so a transaction pooler keeps no trace of them), and how many times a
    migration that hit lock_timeout is retried (with backoff) before it fails, naming the
    session that held the lock. Unset values come from the environment, then the defaults."""

    def __init__(self, lock_timeout=None, statement_timeout=None, retries=None, backoff=0.5):
        env = os.environ.get
        self.lock_timeout = duration_ms(
            lock_timeout if lock_timeout is not None
            else env(LOCK_TIMEOUT_VARIABLE, '').strip() or DEFAULT_LOCK_TIMEOUT,
            '--lock-timeout' if lock_timeout is not None else LOCK_TIMEOUT_VARIABLE)
        self.statement_timeout = duration_ms(
            statement_timeout if statement_timeout is not None
            else env(STATEMENT_TIMEOUT_VARIABLE, '').strip() or DEFAULT_STATEMENT_TIMEOUT,
            '--statement-timeout' if statement_timeout is not None
            else STATEMENT_TIMEOUT_VARIABLE)
        what = '--retries' if retries is not None else RETRIES_VARIABLE
        retries = retries if retries is not None else env(RETRIES_VARIABLE, '').strip() or \
            DEFAULT_RETRIES
        try:
            self.retries = int(retries)
        except ValueError:
            self.retries = -1
        if self.retries < 0:
            raise ConfigError('%s %r is not a number of retries; give 0 or more, e.g. %d'
                              % (what, retries, DEFAULT_RETRIES))
        self.backoff = backoff

    def settings(self):
        """[(name, value)] of the settings, as PostgreSQL takes them."""
        return [('lock_timeout', '%dms' % self.lock_timeout),
                ('statement_timeout', '%dms' % self.statement_timeout)]

    def set_local(self, db):
        """Bound the rest of the current transaction."""
        for name, value in self.settings():
            db.execute_sql("SELECT pg_catalog.set_config(%s, %s, true)", (name, value))

    def header_sql(self):
        """What an emitted SQL file starts with: the same bounds, for psql or the Supabase CLI
        (plain SET: a file is one client's session, and SET LOCAL would not outlast the first
        statement outside psql -1)."""
        return ["SET %s = '%s'" % setting for setting in self.settings()]

    def pause(self, attempt):
        """Seconds to wait before retry `attempt` (1, 2, ...): doubling, with jitter, so two
        migrate runs retrying do not keep colliding."""
        return self.backoff * (2 ** (attempt - 1)) * (0.75 + random.random() / 2)


def _seconds(ms):
    return '%gs' % (ms / 1000.0) if ms % 1000 == 0 or ms >= 1000 else '%dms' % ms


def _other_connection(db):
    """A fresh autocommit psycopg2 connection to `db`'s database (for the blocker watch)."""
    import psycopg2

    conn = psycopg2.connect(dbname=db.database, **db.connect_params)
    conn.autocommit = True
    return conn


#: The session(s) blocking backend %s, the longest-open first: who, since when, doing what.
BLOCKER_SQL = """
SELECT a.pid, a.usename, nullif(a.application_name, ''),
       to_char(a.xact_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),
       extract(epoch FROM clock_timestamp() - a.xact_start), a.state,
       left(regexp_replace(coalesce(a.query, ''), '\\s+', ' ', 'g'), 200)
FROM pg_catalog.pg_stat_activity a
WHERE a.pid = ANY (pg_catalog.pg_blocking_pids(%s))
ORDER BY a.xact_start NULLS LAST LIMIT 1"""


def describe_blocker(row):
    """'pid 123 (role postgres, application psql, transaction since 2025-01-31 12:00:00 UTC,
    open 4.2 s, idle in transaction, query: SELECT ...)' from a BLOCKER_SQL row: hub.locks'
    description of a holder, with how long it has held its locks (at most since its
    transaction began) and what it runs."""
    pid, role, application, since, seconds, state, query = row
    return locks.describe(pid, role, application, since,
                          'open %.1f s' % seconds if since else None, state,
                          'query: %s' % (query or 'unknown'))


class _BlockerWatch:
    """While a migration's transaction runs, a second connection asks every `interval` seconds
    which session blocks it (pg_blocking_pids), keeping the last answer: once lock_timeout has
    cancelled the wait, the blocker can no longer be read from the waiter. It connects only
    once the transaction has run for `delay` seconds (half the lock timeout), so a migration
    that is not kept waiting never opens a second connection (nor takes a pooler's slot)."""

    def __init__(self, db, interval, delay):
        self.db, self.interval, self.delay = db, interval, delay
        self.pid = None
        self.blocker = None
        self._stop = threading.Event()
        self._thread = None

    def watch(self, pid):
        self.pid = pid
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        if self._stop.wait(self.delay):
            return
        try:
            conn = _other_connection(self.db)
        except Exception:
            return  # no second connection (a saturated pooler): the error will say less
        try:
            with conn.cursor() as cur:
                while True:
                    cur.execute(BLOCKER_SQL, (self.pid,))
                    row = cur.fetchone()
                    if row is not None:
                        self.blocker = describe_blocker(row)
                    if self._stop.wait(self.interval):
                        break
        except Exception:
            pass
        finally:
            conn.close()

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            # Its last answer is wanted, but never at the price of hanging: it is a daemon.
            self._thread.join(timeout=max(1.0, 2 * self.interval))


def _lock_timed_out(exc):
    """Whether `exc` is a lock wait ended by lock_timeout, or a deadlock (whose victim is
    rolled back and, as PostgreSQL's documentation advises, retried)."""
    from hub.errors import pg_error

    return getattr(pg_error(exc), 'pgcode', None) in ('55P03', '40P01')


def bounded(db, bounds, doing, step, notify=None):
    """Run `step(watch)` (one transaction that calls `watch(db)` once it holds the migration
    lock) again while it fails on lock_timeout, at most `bounds.retries` more times with
    backoff; then raise LockConflict naming the session that held the lock."""
    notify = notify or (lambda message: None)
    attempt = 0
    while True:
        watcher = _BlockerWatch(db, max(0.02, min(0.25, bounds.lock_timeout / 4000.0)),
                                bounds.lock_timeout / 2000.0)

        def watch(db):
            bounds.set_local(db)
            if bounds.lock_timeout:
                watcher.watch(db.execute_sql('SELECT pg_catalog.pg_backend_pid()').fetchone()[0])
        try:
            return step(watch)
        except DatabaseError as exc:
            if not _lock_timed_out(exc):
                raise
        finally:
            watcher.stop()
        blocker = watcher.blocker or 'a session that has finished since'
        attempt += 1
        if attempt > bounds.retries:
            raise LockConflict(
                'could not %s: waited %s for a lock %d time%s (lock_timeout; --lock-timeout or %s '
                'sets it); it is held by %s; nothing of it was applied; run again once that '
                'transaction ends, or end it (SELECT pg_terminate_backend(<pid>))'
                % (doing, _seconds(bounds.lock_timeout), attempt, '' if attempt == 1 else 's',
                   LOCK_TIMEOUT_VARIABLE, blocker)) from None
        pause = bounds.pause(attempt)
        notify('%s: lock_timeout (%s) reached, held by %s; retry %d of %d in %.1f s'
               % (doing, _seconds(bounds.lock_timeout), blocker, attempt, bounds.retries, pause))
        time.sleep(pause)


def checksum(path):
    """The sha256 (hex) of a migration file's bytes: what the history records when it is applied."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


#: Gives a history written by an older hub (Runner's name and applied only) its checksums.
ADD_CHECKSUM_SQL = 'ALTER TABLE public.%s ADD COLUMN IF NOT EXISTS checksum text' % HISTORY_TABLE


def _has_checksums(db):
    """Whether the history table exists with its `checksum` column (an older hub's has none)."""
    return live_column_exists(db, HISTORY_TABLE, 'checksum')


def _record_checksums(db, directory):
    """Store the checksum of every applied migration that has none yet (under the lock).

    The column is added here, idempotently, so a history written by an older hub (Runner's
    name and applied only) gains it on its first `hub db migrate`: its applied migrations are
    then recorded as their files are now, which is the most that can be known of them.
    """
    if not live_table_exists(db, HISTORY_TABLE):
        return
    if not _has_checksums(db):
        db.execute_sql(ADD_CHECKSUM_SQL)
    missing = [r[0] for r in db.execute_sql(
        'SELECT name FROM public.%s WHERE checksum IS NULL' % HISTORY_TABLE).fetchall()]
    files = {m.name: m.path for m in _Files(directory).migrations()}
    for name in missing:
        if name in files:
            db.execute_sql('UPDATE public.%s SET checksum = %%s WHERE name = %%s' % HISTORY_TABLE,
                           (checksum(files[name]), name))


def edited(db, directory=MIGRATIONS_DIR):
    """[(name, path)] of applied migrations whose file differs from the one applied."""
    if not _has_checksums(db):
        return []
    recorded = dict(db.execute_sql('SELECT name, checksum FROM public.%s WHERE checksum IS NOT NULL'
                                   % HISTORY_TABLE).fetchall())
    return [(m.name, m.path) for m in _Files(directory).migrations()
            if m.name in recorded and checksum(m.path) != recorded[m.name]]


def edited_message(name, path):
    """The one line that says an applied migration's file was changed, and what to do."""
    relative = os.path.relpath(path)
    path = path if relative.startswith('..') else relative
    return ('%s was edited after it was applied (its checksum differs from the one recorded); '
            'restore it (git checkout -- %s) and put the change in a new migration '
            '(`hub db new NAME` or `hub db generate NAME`)' % (Path(path).name, path))


def status(db, directory=MIGRATIONS_DIR):
    """Every migration known to the files or the history: (idx, name, path, applied)."""
    return runner(db, directory).status()


def pending(db, directory=MIGRATIONS_DIR):
    """Names of the migrations not applied yet."""
    return [m.name for m in status(db, directory) if m.applied is None]


def unknown(rows):
    """Names of the applied migrations in `rows` (from `status`) that have no file here."""
    return [m.name for m in rows if m.applied and m.path is None]


def newer_message(names):
    """The one line that says the database is ahead of this code, naming its migrations."""
    verb, it = ('is', 'it') if len(names) == 1 else ('are', 'them')
    return ('the database is newer than this code: %s %s applied but this version of hub does '
            'not have %s; upgrade hub (or use the checkout that applied %s) before writing to '
            'this database' % (', '.join(names), verb, it, it))


def ensure_known(db, directory=MIGRATIONS_DIR, rows=None):
    """Raise DatabaseNewer when `db` holds a migration this code does not know.

    Call it before writing: this code's models, policies and migrations describe the schema
    of its own files, and writing into (or reverting) a newer one can break it. Every
    function here that writes calls it, as do hub.lifecycle, hub.seed.seed_database, the
    library's other writers (rls.install and uninstall, marketplace.sync,
    snapshot.import_organization, crypto.rotate) and the CLI's writing commands. `rows`
    reuses a `status()` result.
    """
    if rows is None and _checked.get(id(db)) == directory:
        return  # inside known(db): checked once for the whole unit of work
    names = unknown(status(db, directory) if rows is None else rows)
    if names:
        raise DatabaseNewer(newer_message(names))


class _Checked(threading.local):
    def get(self, key):
        return self.__dict__.get(key)


# {id(db): directory} of the databases inside known() in this thread.
_checked = _Checked()


@contextlib.contextmanager
def known(db, directory=MIGRATIONS_DIR):
    """Check `db` once (ensure_known) for a unit of work: writers called inside skip theirs.

    The CLI wraps each writing command in it, so a command checks once, before any question
    or write, however many library writers it calls. Outside it every writer checks again:
    a long-lived connection is not trusted to stay ahead of a newer hub migrating meanwhile.
    Per thread; nested uses check nothing more.
    """
    key = id(db)
    if _checked.get(key) == directory:
        yield
        return
    ensure_known(db, directory)
    _checked.__dict__[key] = directory
    try:
        yield
    finally:
        _checked.__dict__.pop(key, None)


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


def migrate(db, target=None, directory=MIGRATIONS_DIR, secure=None, bounds=None, notify=None):
    """Apply pending migrations (up to and including `target`); returns the names applied.

    `secure(db)` ends each migration, in its transaction, before its history row:
    hub.lifecycle.migrate_database passes the row-level-security sync (hub.rls.sync), and is
    what to call; without it a table a migration creates is left as the database's default privileges
    make it (on Supabase: open to the API roles).

    A migration's CONCURRENTLY section (index builds and drops) runs after its transaction,
    outside any (run_concurrently); one left unfinished by a failure is finished first.

    Each migration's transaction runs under `bounds` (Bounds(): lock_timeout, statement_timeout,
    from the environment or the defaults); one that hits lock_timeout is rolled back and
    retried with backoff, `notify(line)` told of each retry, then LockConflict names the
    session holding the lock.
    """
    bounds = bounds or Bounds()
    run = runner(db, directory, secure)
    rows = run.status()
    plan = _pending_through(db, rows, target)
    files = {m.name: m for m in rows if m.path is not None}
    _finish_latest(db, rows, notify)

    def up(name):
        # Under the lock the history is read again: another run may have applied it meanwhile.
        # Runner.up(name) applies what is still pending up to `name` (normally just `name`).
        first = commit_first(files[name])
        if first:
            def labels(watch):
                with _locked(db):
                    watch(db)
                    if name not in {m.name for m in run.status() if m.applied}:
                        OneByOne(db).execute_sql(first)
            bounded(db, bounds, 'apply %s' % name, labels, notify)
        path = online_paths.PATHS.get(name)
        before = []
        if (path is not None and name not in {m.name for m in run.status() if m.applied}
                and path.wanted(db)):
            before = [Online(name, sql) for sql in path.before]
            # built CONCURRENTLY first; the transaction swaps them in
            run_concurrently(db, name, before, notify, applied=False)
            run.replace = {name: path.up}

        def step(watch):
            with _locked(db):
                watch(db)
                done = run.up(name)
                _record_checksums(db, directory)
                return done
        done = bounded(db, bounds, 'apply %s' % name, step, notify)
        if name in done:
            _after_commit(db, files[name], notify, bounds)
        else:  # another run applied it meanwhile: what we built for it is not needed
            for statement in before:
                db.execute_sql('DROP INDEX CONCURRENTLY IF EXISTS %s' % statement.index)
        return done
    done = _apply(up, plan)
    if not done and files:
        with conflicts('record the migrations\' checksums'), _locked(db):
            _record_checksums(db, directory)
    return done


def _pending_through(db, rows, target):
    """Names of the pending migrations in `rows` (status()), up to and including `target`;
    DatabaseNewer when the database holds one this code does not have."""
    ensure_known(db, rows=rows)
    rows = [m for m in rows if m.path is not None]
    target = _resolve_target(rows, target)
    plan = []
    for m in rows:
        if m.applied is None:
            plan.append(m.name)
        if m.name == target:
            break
    return plan


def commit_first(migration):
    """The migration's COMMIT_FIRST SQL ('' when it has none): statements `migrate` commits in
    a transaction of their own before up() runs. hub.autogen puts `ALTER TYPE ... ADD VALUE`
    there, since PostgreSQL lets no transaction use an enum label that it added itself."""
    sql = getattr(migration.load(), 'COMMIT_FIRST', None) or ''
    return sql if has_statements(sql) else ''


# -- the non-transactional section: CONCURRENTLY = r"""...""" -----------------------------------

_NAME_RE = r'(?:"[^"]+"|[A-Za-z_][\w$]*)'
_CREATE_INDEX = re.compile(
    r'CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(?:IF\s+NOT\s+EXISTS\s+)?(?P<name>%s)\s+'
    r'ON\s+(?:ONLY\s+)?(?:(?P<schema>%s)\.)?%s\b' % (_NAME_RE, _NAME_RE, _NAME_RE), re.I)
_DROP_INDEX = re.compile(r'DROP\s+INDEX\s+CONCURRENTLY\s+(?:IF\s+EXISTS\s+)?'
                         r'(?P<index>(?:%s\.)?%s)\s*$' % (_NAME_RE, _NAME_RE), re.I)


def _statements(sql):
    """The statements of `sql`, split at a semicolon that ends a line, -- comment lines dropped."""
    lines = [line for line in sql.splitlines() if not line.strip().startswith('--')]
    return [part.strip() for part in re.split(r';[ \t]*(?:\n|$)', '\n'.join(lines))
            if part.strip()]


class Online:
    """One statement of a migration's CONCURRENTLY section: `kind` 'create' or 'drop', the
    schema-qualified `index`, the `sql` as written, and `plain`, the same without CONCURRENTLY
    (for a transaction on tables that are empty anyway: `hub db sql`, `reset`)."""

    def __init__(self, migration, sql):
        created, dropped = _CREATE_INDEX.match(sql), _DROP_INDEX.match(sql)
        if created:
            self.kind = 'create'
            self.index = '%s.%s' % (created.group('schema') or 'public', created.group('name'))
        elif dropped:
            self.kind = 'drop'
            index = dropped.group('index')
            self.index = index if '.' in index.replace('"', '') else 'public.' + index
        else:
            raise MigrationError(
                '%s: its CONCURRENTLY section may hold only CREATE [UNIQUE] INDEX CONCURRENTLY and '
                'DROP INDEX CONCURRENTLY statements, not %r; move that statement to UP'
                % (migration, sql.split('\n')[0][:60]))
        self.sql = sql
        self.plain = re.sub(r'\bINDEX\s+CONCURRENTLY\b', 'INDEX', sql, count=1, flags=re.I)


def concurrently(migration):
    """[Online] of a migration's CONCURRENTLY section: statements `migrate` runs one by one,
    each outside any transaction, after up()'s transaction has committed ([] when none)."""
    sql = getattr(migration.load(), 'CONCURRENTLY', None) or ''
    return [Online(migration.name, statement) for statement in _statements(sql)]


def _index_state(db, index):
    """None when `index` does not exist, else whether it is valid (a failed or cancelled
    CREATE INDEX CONCURRENTLY leaves it INVALID: it slows every write and serves no read)."""
    row = db.execute_sql('SELECT i.indisvalid FROM pg_catalog.pg_index i '
                         'WHERE i.indexrelid = pg_catalog.to_regclass(%s)', (index,)).fetchone()
    return None if row is None else row[0]


def _wait_for_builds(db, index):
    """Wait while another session builds `index` (a concurrent `hub db migrate`): its INVALID
    index is work in progress, not a leftover to drop."""
    while db.execute_sql('SELECT count(*) FROM pg_catalog.pg_stat_progress_create_index p '
                         'WHERE p.index_relid = pg_catalog.to_regclass(%s) '
                         'AND p.pid <> pg_catalog.pg_backend_pid()', (index,)).fetchone()[0]:
        time.sleep(0.2)


def _drop_invalid(db, index):
    if _index_state(db, index) is False:
        db.execute_sql('DROP INDEX CONCURRENTLY IF EXISTS %s' % index)


def run_concurrently(db, name, statements, notify=None, applied=True):
    """Run migration `name`'s CONCURRENTLY statements, each on its own outside a transaction
    (so index builds block no reader or writer), skipping what is already in effect (an index
    that exists and is valid; a dropped index gone): a rerun resumes. An INVALID index of the
    same name, left by a failed or cancelled build, is dropped before the build and after a
    failure, so none is ever left behind. Returns the statements it ran."""
    from hub.errors import pg_error

    def done(statement):
        state = _index_state(db, statement.index)
        return state is True if statement.kind == 'create' else state is None

    ran = []
    for statement in statements:
        _wait_for_builds(db, statement.index)  # another `hub db migrate` running this section
        if done(statement):
            continue
        if statement.kind == 'create':
            _drop_invalid(db, statement.index)
        error = None
        for attempt in range(1, 6):
            try:
                db.execute_sql(statement.sql)
                error = None
                break
            except DatabaseError as exc:
                error = exc
                # A deadlock with a concurrent `hub db migrate` (its transaction waiting for
                # the table this build holds): the other side goes on, this one tries again.
                if getattr(pg_error(exc), 'pgcode', None) != '40P01':
                    break
                _wait_for_builds(db, statement.index)
                _drop_invalid(db, statement.index)
                time.sleep(0.2 * attempt)
        _wait_for_builds(db, statement.index)
        if not done(statement):
            if statement.kind == 'create':
                _drop_invalid(db, statement.index)
            first = (str(pg_error(error)).strip().splitlines()[0] if error is not None
                     else 'the index was not built')
            raise MigrationError(
                'migration %s %s, but its CONCURRENTLY statement on %s failed: %s; no invalid '
                'index was left behind; fix the cause (for a unique index: the duplicate rows) and '
                'run `hub db migrate` again, which finishes it first'
                % (name, 'is applied' if applied else 'is not applied yet', statement.index,
                   first))
        if error is None:
            ran.append(statement)
            if notify:
                notify('%s: %s' % (name, statement.sql.split('\n')[0]))
    return ran


def backfill(db, table, set_sql, where_sql, batch=1000, bounds=None, notify=None):
    """UPDATE `table` SET `set_sql` WHERE `where_sql`, `batch` rows at a time, each batch its own
    short transaction (under `bounds`' lock_timeout and statement_timeout); returns the rows
    updated. `where_sql` must be false for a row once it is updated (`accepted_at IS NULL`):
    that is how it stops, and how a rerun resumes. Rows another session has locked are skipped
    in this batch (SKIP LOCKED) and taken by a later one.

        hub.migrate.backfill(db, 'public.organization_members', 'accepted_at = created_at',
                             'accepted_at IS NULL', batch=5000)

    A migration lists its backfills in BACKFILL = [(table, set_sql, where_sql)]: `hub db
    migrate` runs them after UP commits, so no row waits behind UP's lock for the whole
    update, and before the CONCURRENTLY section."""
    bounds = bounds or Bounds()
    total, batches = 0, 0
    sql = ('UPDATE %s SET %s WHERE ctid = ANY (ARRAY (SELECT ctid FROM %s WHERE %s LIMIT %d '
           'FOR UPDATE SKIP LOCKED))' % (table, set_sql, table, where_sql, int(batch)))
    while True:
        with db.atomic():
            bounds.set_local(db)
            count = db.execute_sql(sql).rowcount
        if not count:
            break
        total, batches = total + count, batches + 1
    if notify and batches:
        notify('%s: %d rows updated in %d batch%s of at most %d' % (
            table, total, batches, '' if batches == 1 else 'es', batch))
    return total


def _backfills(migration):
    """The migration's BACKFILL list: [(table, set_sql, where_sql)] or [(..., batch)]."""
    return list(getattr(migration.load(), 'BACKFILL', None) or [])


def _after_commit(db, migration, notify=None, bounds=None, applied=True):
    """What runs after a migration's transaction: its backfills, then its CONCURRENTLY section."""
    for entry in _backfills(migration):
        backfill(db, *entry, bounds=bounds, notify=notify)
    return run_concurrently(db, migration.name, concurrently(migration), notify, applied)


def _finish_latest(db, rows, notify=None):
    """Finish the CONCURRENTLY section of the latest applied migration, if a failure or an
    interruption left it unfinished: `migrate` moves past a migration only once its section
    is done, so no earlier one can be unfinished."""
    applied = [m for m in rows if m.applied and m.path is not None]
    if applied:
        return _after_commit(db, applied[-1], notify)
    return []


def fake(db, target=None, directory=MIGRATIONS_DIR):
    """Record pending migrations (up to and including `target`) as applied, with their
    checksums, without running them; returns the names. For a database whose schema already
    matches: hub.lifecycle.adopt checks that first, and is what to call."""
    run = runner(db, directory)
    rows = run.status()
    ensure_known(db, rows=rows)
    target = _resolve_target([m for m in rows if m.path is not None], target)
    with conflicts('record migrations as applied'), _locked(db):
        done = run.fake(target)
        _record_checksums(db, directory)
    return done


def rollback(db, target=None, all=False, directory=MIGRATIONS_DIR, teardown=None, secure=None):
    """Revert the latest migration, or back through `target`, or `all`; returns the names.

    When every applied migration goes, `teardown(db)` runs first, under the migration lock:
    hub.lifecycle.rollback passes what removes row-level security, which this module does
    not know about, and `secure` (as `migrate`), run at the end of each revert.
    """
    run = runner(db, directory, secure)
    return _revert(db, run, _rollback_plan(db, run, target, all), teardown)


class RollbackPlan:
    """What `rollback` would do: `names` in order, and `dropped` {table: rows} it would lose."""

    def __init__(self, names, dropped):
        self.names, self.dropped = names, dropped

    @property
    def rows(self):
        return sum(self.dropped.values())


def plan_rollback(db, target=None, all=False, directory=MIGRATIONS_DIR, teardown=None,
                  secure=None):
    """The RollbackPlan of `rollback(db, target, all, teardown=teardown, secure=secure)`, found
    by reverting in a transaction that is rolled back: exact for any migration, and nothing
    changes."""
    run = runner(db, directory, secure)
    with _locked(db):
        names = _rollback_plan(db, run, target, all)
        before = _tables(db)
        with db.atomic() as dry_run:
            _revert(db, run, names, teardown)
            gone = [table for table in before if table not in set(_tables(db))]
            dry_run.rollback()
        dropped = {table: db.execute_sql('SELECT count(*) FROM %s' % table).fetchone()[0]
                   for table in gone}
    return RollbackPlan(names, dropped)


def _rollback_plan(db, run, target, all):
    rows = run.status()
    ensure_known(db, rows=rows)
    applied = [m for m in rows if m.applied]
    if not applied:
        raise MigrationError('nothing to roll back: no migration is applied; '
                             'run `hub db migrate` first')
    if all:
        target = applied[0].name
    elif target is None:
        target = applied[-1].name
    else:
        target = _resolve_target(applied, target)
    return [m.name for m in reversed(applied) if m.idx >= _idx(applied, target)]


def _revert(db, run, names, teardown=None):
    """Revert `names` (newest first); `teardown(db)` first when they are all that is applied."""
    applied = [m.name for m in run.status() if m.applied]
    if teardown is not None and set(names) >= set(applied):
        with conflicts('take the migration lock'), _locked(db):
            teardown(db)

    def down(name):
        with _locked(db):
            if name not in {m.name for m in run.status() if m.applied}:
                return []  # another run reverted it meanwhile
            return run.down(name)
    return _apply(down, names)


def _tables(db):
    """Every table of the database (schema-qualified where needed), in creation order."""
    return [r[0] for r in db.execute_sql("""
        SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND n.nspname !~ '^pg_' ORDER BY c.oid""").fetchall()]


def reset(db, directory=MIGRATIONS_DIR, teardown=None, secure=None):
    """Revert every migration, `teardown(db)` first, and migrate again from scratch.

    One transaction: a failure leaves the database as it was. hub.lifecycle.reset passes
    what removes row-level security as `teardown`, and the sync as `secure` (see `migrate`).
    The exception: from the first migration with COMMIT_FIRST statements (enum labels) or a
    CONCURRENTLY section on, the rest is applied as `migrate` does, a transaction each, since
    those statements must be committed before what uses them, or run outside a transaction.
    """
    run = runner(db, directory, secure)
    with _locked(db):
        ensure_known(db, directory)
        if teardown is not None:
            teardown(db)
        applied = [m.name for m in reversed(run.status()) if m.applied]
        _apply(run.down, applied)
        db.execute_sql('DROP TABLE IF EXISTS %s' % HISTORY_TABLE)
        plan = [m for m in run.status() if m.path is not None]
        split = next((i for i, m in enumerate(plan)
                      if commit_first(m) or concurrently(m) or _backfills(m)), len(plan))
        done = _apply(run.up, [m.name for m in plan[:split]])
        _record_checksums(db, directory)
    if split < len(plan):
        done += migrate(db, directory=directory, secure=secure)
    return done


# -- writing new migrations (`hub db new`, and hub.autogen for `hub db generate`) --------------

#: A migration file in the project's style: frozen SQL in UP and DOWN, run by up() and down().
TEMPLATE = '''\
"""%(title)s.
%(body)s
Frozen SQL, like 0001: what this migration builds must not change with the code around it, so
it never imports hub.models. Schema-qualify names (public.workflows) and write %%%% for a
literal %%: the SQL is run with parameters. Once it is applied anywhere, do not edit this file
(`hub db status` reports it); write a new migration instead.
"""
%(commit_first)s
UP = r"""
%(up)s"""
%(concurrently)s
DOWN = r"""
%(down)s"""


def up(migrator, db):
%(run_up)s


def down(migrator, db):
%(run_down)s
'''

#: Enum labels come first, committed in a transaction of their own (see `migrate`).
COMMIT_FIRST_BLOCK = '''
# ALTER TYPE ... ADD VALUE: PostgreSQL lets no transaction use an enum label that it added
# itself, so `hub db migrate` runs these statements first and commits them, then runs up().
# down() cannot take a label back (PostgreSQL has no ALTER TYPE ... DROP VALUE): it stays,
# unused, and IF NOT EXISTS lets up() run again after a rollback.
COMMIT_FIRST = r"""
%s"""
'''

#: Index builds and drops on tables that have rows, run after up() commits (see `migrate`).
CONCURRENTLY_BLOCK = '''
# Outside any transaction, after UP has committed, one statement at a time: an index built or
# dropped CONCURRENTLY blocks no reader or writer of its table (a plain CREATE INDEX blocks
# every write for the whole build). Only CREATE [UNIQUE] INDEX CONCURRENTLY and DROP INDEX
# CONCURRENTLY; `hub db migrate` skips what is already done, drops an INVALID leftover of a
# failed build, and finishes this section on its next run if it failed. DOWN undoes it.
CONCURRENTLY = r"""
%s"""
'''

NEW_UP = """\
-- Write the change here; while this file holds only comments, applying it fails. E.g.:
-- ALTER TABLE public.workflows ADD COLUMN priority integer NOT NULL DEFAULT 0;
"""

NEW_DOWN = """\
-- Undo what UP does, in reverse order. E.g.:
-- ALTER TABLE public.workflows DROP COLUMN priority;
"""

_NAME = re.compile(r'[a-z][a-z0-9_]{0,59}')


def has_statements(sql):
    """Whether `sql` holds anything besides blank lines and -- comments."""
    return any(line.strip() and not line.strip().startswith('--') for line in sql.splitlines())


#: The first line of up() in a file with TODOs: applying it fails, naming it, until they are done.
TODO_GUARD = """\
    # Delete these two lines once the TODOs of this file are written.
    from playhouse.migrations import MigrationError
    raise MigrationError('its TODOs are not written yet: write them, then delete the guard in up()')
"""


def render(name, body='', up_sql=NEW_UP, down_sql=NEW_DOWN, commit_first='', todo=False,
           concurrently=''):
    """The source of a migration file (TEMPLATE). A side without statements does nothing,
    except in the file `hub db new` writes: its comments make `migrate` fail until filled in.
    With `todo`, up() refuses to run until its guard is deleted (TODO_GUARD). `concurrently`:
    the CONCURRENTLY section (CONCURRENTLY_BLOCK), run outside a transaction after UP."""
    def run(sql, const, nothing):
        if has_statements(sql) or sql in (NEW_UP, NEW_DOWN):
            return '    db.execute_sql(%s)' % const
        return '    pass  # %s' % nothing
    guard = TODO_GUARD if todo else ''
    return TEMPLATE % {
        'title': name.replace('_', ' ').capitalize(), 'body': '\n' + body if body else '',
        'commit_first': COMMIT_FIRST_BLOCK % commit_first if commit_first else '',
        'up': up_sql, 'down': down_sql,
        'concurrently': CONCURRENTLY_BLOCK % concurrently if concurrently else '',
        'run_up': guard + run(up_sql, 'UP', 'nothing to do'),
        'run_down': run(down_sql, 'DOWN', 'nothing to undo')}


def check_name(name, directory=MIGRATIONS_DIR):
    """Refuse (ConfigError) a name that is not snake_case, or that a migration has already."""
    if not _NAME.fullmatch(name or ''):
        raise ConfigError('invalid migration name %r: use lowercase letters, digits and '
                          'underscores, starting with a letter, at most 60 characters '
                          '(e.g. add_workflow_priority)' % name)
    taken = [m.name for m in _Files(directory).migrations() if m.name.split('_', 1)[-1] == name]
    if taken:
        raise ConfigError('a migration named %r exists already (%s.py); choose another name'
                          % (name, taken[0]))


class _Files:
    """What playhouse.migrations.Runner.create needs, without a database: its folder."""

    def __init__(self, directory):
        self.directory = str(directory)

    def migrations(self):
        return Migration.load_directory(self.directory)


def new(name, directory=MIGRATIONS_DIR, source=None):
    """Write the next numbered migration file, NNNN_<name>.py, and return its path.

    `source` is the file's text (hub.autogen renders one for `hub db generate`); by default
    the template of `hub db new`, whose UP and DOWN are comments to replace. The number and
    the file name are playhouse.migrations.Runner.create's: one more than the highest there.
    """
    check_name(name, directory)
    return Path(Runner.create(_Files(directory), name, source or render(name)))


def _idx(rows, name):
    return next(m.idx for m in rows if m.name == name)


@contextlib.contextmanager
def conflicts(doing):
    """Lock conflicts inside become a LockConflict that says so (they are not bugs): 'could
    not <doing>: another session holds locks ...'."""
    try:
        yield
    except DatabaseError as exc:
        what = contention(exc)
        if what is None:
            raise
        raise LockConflict('could not %s: another session holds locks on the same tables (%s); '
                           'nothing was changed; run it again when the other command (a '
                           '`hub seed`, an import, an open transaction) has finished'
                           % (doing, what)) from None


def _apply(step, names):
    """Run `step` one migration at a time, so errors can name it; returns the names it did.

    `step(name)` (named up or down) returns the names it applied or reverted, as Runner.up and
    Runner.down do.
    """
    verb = 'apply' if step.__name__ == 'up' else 'revert'
    done = []
    for name in names:
        try:
            with conflicts('%s %s' % (verb, name)):
                done.extend(step(name))
        except RunnerError as exc:
            raise MigrationError('%s: %s' % (name, str(exc).rstrip('.'))) from None
        except DatabaseError as exc:
            cause = exc.__cause__ or exc
            first = str(cause).strip().splitlines()[0]
            raise MigrationError('migration %s failed and was rolled back: %s; fix the migration '
                                 'and run it again' % (name, first)) from None
    return done


# -- the migrations as SQL, without running them (`hub db sql`, `hub db migrate --sql`) ----------

class _Unanswered:
    """The cursor a recorded statement returns: a migration that reads an answer cannot be
    written out ahead of time, and is told so instead of getting a made-up one."""

    def __init__(self, name):
        self.name = name

    def _refuse(self, *args, **kwargs):
        raise MigrationError('migration %s reads the database while it runs, so its SQL cannot be '
                             'written without one; apply it with `hub db migrate`' % self.name)

    fetchone = fetchall = fetchmany = __iter__ = _refuse
    rowcount = -1
    description = None

    def close(self):
        pass


def _recorder():
    from peewee import PostgresqlDatabase

    class Recorder(PostgresqlDatabase):
        """A database that never connects: it keeps every statement it is given, in order."""

        def __init__(self):
            super().__init__(None)
            self.statements = []
            self.running = None

        def execute_sql(self, sql, params=None, *args, **kwargs):
            from hub.sqltext import interpolate

            self.statements.append(interpolate(sql, params).strip())
            return _Unanswered(self.running)

    return Recorder()


def history_sql():
    """The statements that create the history table (as Runner does: only where missing)."""
    recorder = _recorder()
    runner(recorder).History.create_table(safe=True)
    table, *rest = recorder.statements
    # The table is playhouse's, as `hub db migrate` creates it (SERIAL id, timestamp without
    # zone, the local time of the server): the same shape on every path, so the linter
    # (.squawk.toml) is told to pass over it, and only it.
    return (['-- squawk-ignore prefer-identity, prefer-timestamp-tz\n' + table] + rest
            + [ADD_CHECKSUM_SQL])


def record_sql(name, path=None):
    """The history row `migrate` writes once migration `name` (file `path`) has run."""
    from hub.sqltext import text

    if path is None:
        return 'INSERT INTO %s (name, applied) VALUES (%s, LOCALTIMESTAMP)' % (HISTORY_TABLE,
                                                                             text(name))
    return ('INSERT INTO %s (name, applied, checksum) VALUES (%s, LOCALTIMESTAMP, %s)'
            % (HISTORY_TABLE, text(name), text(checksum(path))))


def migration_sql(names, directory=MIGRATIONS_DIR, secure_sql=None):
    """[(name, [statements])]: what `up` of each migration executes, captured without a
    database (the migrations are frozen SQL), then `secure_sql` (the text `migrate`'s `secure`
    runs: hub.lifecycle passes hub.rls.sync_sql()) and its history row. Its COMMIT_FIRST
    statements come first; `migration_steps` keeps them apart, as they must be committed.
    A CONCURRENTLY section's statements follow up's without CONCURRENTLY, in the transaction
    (a schema built from nothing has no rows to wait for)."""
    return [(name, first + rest)
            for name, first, rest, _ in _captured(names, directory, secure_sql)]


def _captured(names, directory, secure_sql, online=False):
    """[(name, [COMMIT_FIRST statements], [up's statements, its backfills, secure_sql, history
    row], [Online])]: with `online`, the CONCURRENTLY section apart (to run outside any
    transaction, after the history row, as `migrate` does); without, in up's statements,
    without CONCURRENTLY."""
    files = {m.name: m for m in runner(_recorder(), directory).migrations()}
    out = []
    for name in names:
        if name not in files:
            raise ConfigError('unknown migration %r; known migrations: %s'
                              % (name, ', '.join(files) or 'none'))
        module = files[name].load()
        recorder = _recorder()
        recorder.running = name
        first = commit_first(files[name])
        module.up(runner(recorder, directory).migrator, recorder)
        # A file cannot loop: its backfills are one UPDATE each, in the migration's transaction.
        recorder.statements.extend('UPDATE %s SET %s WHERE %s' % tuple(entry[:3])
                                   for entry in _backfills(files[name]))
        section = concurrently(files[name])
        if not online:
            recorder.statements.extend(statement.plain for statement in section)
            section = []
        out.append((name, [first.strip()] if first else [], recorder.statements
                    + ([secure_sql] if secure_sql else []) + [record_sql(name, files[name].path)],
                    section))
    return out


class Step(NamedTuple):
    """A piece of the SQL written out: a heading, its statements, and whether they must be
    committed before anything after them runs (COMMIT_FIRST: an enum label a later statement
    may use). `name` names the file a transaction ending with it goes to."""
    heading: str
    statements: list
    name: str
    commit: bool = False
    #: A statement no transaction may hold (CREATE INDEX CONCURRENTLY): a file of its own.
    alone: bool = False


class Transaction(NamedTuple):
    """What one written file holds and one transaction runs: `name` (the file's, after its
    timestamp) and its steps."""
    name: str
    steps: list


def migration_steps(names, directory=MIGRATIONS_DIR, secure_sql=None, online=False):
    """The Steps of the migrations `names`: each migration's COMMIT_FIRST statements (a step
    to commit) and then its up() with `secure_sql` and its history row; with `online`, each
    statement of its CONCURRENTLY section after it, alone (a file of its own)."""
    steps = []
    for name, first, rest, section in _captured(names, directory, secure_sql, online):
        if first:
            steps.append(Step('migration %s: COMMIT_FIRST (committed before it is used)' % name,
                              first, '%s_labels' % name, commit=True))
        steps.append(Step('migration %s' % name, rest, name))
        for i, statement in enumerate(section, 1):
            steps.append(Step('outside any transaction (psql without -1): %s\'s CONCURRENTLY '
                              'section, statement %d' % (name, i), [statement.sql],
                              '%s_concurrently_%d' % (name, i), alone=True))
    return steps


def transactions(steps, closing=None):
    """`steps` cut into Transactions: a transaction ends after each step to commit (PostgreSQL
    lets no transaction use an enum label it added itself), so the one that uses it runs after
    a COMMIT. `closing`, a Step, goes before the step to commit that ends each transaction but
    the last (hub db sql: the row-level-security sync, so nothing a file creates is committed
    open). A transaction is named after its last named step."""
    out, current = [], []
    for step in steps:
        if step.alone:
            if current:
                out.append(current)
            out.append([step])
            current = []
            continue
        current.append(step)
        if step.commit:
            out.append(current)
            current = []
    if current or not out:
        out.append(current)
    done = []
    for i, group in enumerate(out):
        if closing is not None and i < len(out) - 1:
            group = group[:-1] + [closing, group[-1]]
        done.append(Transaction(next((s.name for s in reversed(group) if s.name), 'empty'), group))
    return done


def file_text(transaction, header=''):
    """The SQL text of one written file: `header`, then each step as a comment line and its
    statements. No BEGIN/COMMIT: psql -1 and the Supabase CLI run each file in a transaction."""
    return header + script([(step.heading, step.statements) for step in transaction.steps])


def stamps(folder, count, now=None):
    """`count` timestamps (YYYYMMDDHHMMSS, UTC, one second apart) for files in `folder`: the
    first is now, or one second after the newest `<timestamp>_*.sql` there, whichever is later,
    so the Supabase CLI (which orders its migrations by that prefix and refuses one older than
    the last applied) and psql's glob take them after what the folder holds, in order."""
    import datetime

    form = '%Y%m%d%H%M%S'
    start = (now or datetime.datetime.now(datetime.timezone.utc)).replace(microsecond=0,
                                                                           tzinfo=None)
    for path in Path(folder).glob('*.sql'):
        prefix = path.name.partition('_')[0]
        try:
            start = max(start, datetime.datetime.strptime(prefix, form)
                        + datetime.timedelta(seconds=1))
        except ValueError:
            continue
    return [(start + datetime.timedelta(seconds=i)).strftime(form) for i in range(count)]


def write_files(folder, texts, now=None):
    """Write [(name, text)] into the folder `folder` as `<timestamp>_hub_<name>.sql`, in
    order (see `stamps`); returns the paths. All or none: an OSError removes what was written."""
    folder = Path(folder)
    paths = [folder / ('%s_hub_%s.sql' % (stamp, name))
             for stamp, (name, _) in zip(stamps(folder, len(texts), now), texts)]
    done = []
    try:
        for path, (_, text) in zip(paths, texts):
            with open(path, 'x') as fh:
                done.append(path)
                fh.write(text)
    except OSError:
        for path in done:
            path.unlink()
        raise
    return paths


def needs_files(plan):
    """Why `plan` (Transactions) cannot be one file: '' when it can."""
    if len(plan) < 2:
        return ''
    cuts = [t.steps[-1].name[:-len('_labels')] for t in plan[:-1] if t.steps and t.steps[-1].commit]
    alone = list(dict.fromkeys(s.name.rpartition('_concurrently_')[0] for t in plan
                               for s in t.steps if s.alone))
    why = []
    if cuts:
        why.append('%s adds enum labels that must be committed before they are used'
                   % ', '.join(cuts))
    if alone:
        why.append('%s builds or drops indexes CONCURRENTLY, outside any transaction'
                   % ', '.join(alone))
    return 'it needs %d files, one per transaction: %s' % (len(plan), '; '.join(why))


def all_names(directory=MIGRATIONS_DIR):
    """Every migration of `directory`, in order."""
    return [m.name for m in runner(_recorder(), directory).migrations()]


def script(parts):
    """SQL text: each (heading, [statements]) as a comment line, then its statements."""
    out = []
    for heading, statements in parts:
        out.append('-- %s\n' % heading)
        out.extend(_terminated(statement) for statement in statements)
        out.append('\n')
    return ''.join(out)


def _terminated(statement):
    """`statement` ending in a semicolon of its own (after any trailing comment line)."""
    statement = statement.rstrip()
    if statement.endswith(';'):
        return statement + '\n'
    last = statement.rpartition('\n')[2]
    return statement + ('\n;\n' if '--' in last else ';\n')


def bounds_header(bounds=None):
    """The lines an emitted SQL file starts with: `SET lock_timeout` and `SET statement_timeout`
    as `hub db migrate` sets them (Bounds), so psql or the Supabase CLI waits no longer."""
    return ''.join('%s;\n' % line for line in (bounds or Bounds()).header_sql())


def pending_transactions(db, target=None, directory=MIGRATIONS_DIR, secure_sql=None):
    """The Transactions of the SQL `migrate(db, target)` would run for the pending migrations,
    `secure_sql` after each migration's own (see migration_sql); the history DDL in the first
    only. Read-only: the database is asked only for its history (refused, DatabaseNewer, when it
    holds a migration this code does not have). [] when nothing is pending. A migration's
    CONCURRENTLY statements each get a transaction (a file) of their own, after its own."""
    names = _pending_through(db, status(db, directory), target)
    if not names:
        return []
    history = Step('the migration history (%s), where missing' % HISTORY_TABLE, history_sql(),
                   names[0])
    return transactions([history] + migration_steps(names, directory, secure_sql, online=True))


def pending_sql(db, target=None, directory=MIGRATIONS_DIR, secure_sql=None, bounds=None):
    """The SQL `migrate(db, target)` would run for the pending migrations, as one text, and
    their names: for pending migrations that fit one transaction (MigrationError otherwise,
    naming the migration that needs a second; pending_transactions gives the files).
    ('', []) when nothing is pending. It starts with `bounds` (Bounds: lock_timeout,
    statement_timeout)."""
    plan = pending_transactions(db, target, directory, secure_sql)
    if not plan:
        return '', []
    why = needs_files(plan)
    if why:
        raise MigrationError('the pending migrations cannot be one file: %s; write them to a '
                             'folder with `hub db migrate --sql -o DIR`' % why)
    return file_text(plan[0], bounds_header(bounds)), [s.name for s in plan[0].steps[1:]]
