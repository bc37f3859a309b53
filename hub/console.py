"""What `hub shell` is made of, for any other REPL, notebook or script runner too.

    >>> import hub
    >>> from hub import console
    >>> database = hub.connect()
    >>> ns = console.namespace(database)
    >>> console.run('every = Workflow.select().count()', '<string>', ns)   # the exit code
    0
    >>> ns['every'] == ns['Workflow'].select().count()   # the script's names land in ns
    True
    >>> user = ns['User'].select().order_by(ns['User'].id).first()
    >>> with console.tenant_session(database, user.id) as session:
    ...     code = console.run('mine = Workflow.select().count()', '<string>', ns)
    >>> 0 < ns['mine'] < ns['every']            # only the user's organizations' workflows
    True
    >>> session.outcome                         # rolled back unless commit=True was asked
    'rolled back'

`run` gives source Python's script semantics (`python -`, `python -c`): compiled as one module,
the user's traceback and exit code 1 on an uncaught exception, `SystemExit(n)` exits n.

`tenant_session(db, user_id, commit=False)` makes every transaction on `db` begin in that user's
row-level-security identity (role `authenticated` plus the JWT claims, as PostgREST does) and runs
the whole session in one database transaction, committed at the end only when asked. Inside it,
code behaves as it does outside: each SQL statement outside `db.atomic()` is its own unit (a
denied one raises and is undone, the next one works), `db.commit()` and `db.rollback()` mark and
return to points in the session, and none of them can end the tenant's identity.
`identity(db, user_id)` is the lighter form for a `with` block inside your own transaction.
"""
import code
import contextlib
import importlib
import json
import os
import re
import sys
import traceback

from hub import models, rls
from hub.errors import ConfigError, ShellError

# Modules offered by name in the shell, when present.
OPERATION_MODULES = ('workflows', 'agents', 'teams', 'snapshot', 'graph')


def namespace(db):
    ns = {'db': db, 'models': models}
    for name in dir(models):
        value = getattr(models, name)
        if isinstance(value, type) and value.__module__ == models.__name__:
            ns[name] = value
    for name in OPERATION_MODULES:
        try:
            ns[name] = importlib.import_module('hub.%s' % name)
        except ImportError:
            continue
    return ns


# -- scripts and the prompt --------------------------------------------------------------------

def run(source, filename, ns, argv=None):
    """Run `source` (str or bytes) as the module `__main__` in `ns`; returns the exit code.

    As python does: a syntax error or an uncaught exception prints its traceback to stderr and
    returns 1 (130 for KeyboardInterrupt); `SystemExit` returns its code (a message is printed).
    `argv` becomes sys.argv and the script's folder (or '' for '<stdin>'/'<string>') sys.path[0].
    """
    try:
        compiled = compile(source, filename, 'exec', dont_inherit=True)
    except (SyntaxError, ValueError) as exc:  # ValueError: source with a null byte
        _show(exc, None)
        return 1
    ns['__name__'] = '__main__'
    if not filename.startswith('<'):
        ns['__file__'] = filename
    folder = os.path.dirname(os.path.abspath(filename)) if not filename.startswith('<') else ''
    saved = sys.argv, list(sys.path)
    sys.argv = list(argv) if argv else [filename]
    sys.path.insert(0, folder)
    try:
        exec(compiled, ns)
    except SystemExit as exc:
        return exit_code(exc)
    except BaseException as exc:
        # The first frame is this function's; the user's script starts at the next one.
        _show(exc, exc.__traceback__.tb_next)
        return 130 if isinstance(exc, KeyboardInterrupt) else 1
    finally:
        sys.argv, sys.path[:] = saved
        sys.stdout.flush()
    return 0


def exit_code(exc):
    """The process exit code python gives a `SystemExit` (printing a non-integer code)."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    sys.stdout.flush()
    print(exc.code, file=sys.stderr)
    return 1


def _show(exc, tb):
    sys.stdout.flush()
    report = traceback.TracebackException(type(exc), exc, tb)
    _drop_own_frames(report, set())
    sys.stderr.write(''.join(report.format()))
    sys.stderr.flush()


def _drop_own_frames(report, seen):
    # Database errors pass through the tenant connection below; those frames are ours, not the
    # user's, and python would not show them for the same code run without the shell.
    if report is None or id(report) in seen:
        return
    seen.add(id(report))
    frames = [frame for frame in report.stack if frame.filename != __file__]
    report.stack = traceback.StackSummary.from_list(frames)
    _drop_own_frames(report.__cause__, seen)
    _drop_own_frames(report.__context__, seen)


class _Console(code.InteractiveConsole):
    """code's console, with its prompts on stderr when stdin is not a terminal (as python -i)."""

    def raw_input(self, prompt=''):
        if sys.stdin.isatty():
            return input(prompt)
        sys.stderr.write(prompt)
        sys.stderr.flush()
        line = sys.stdin.readline()
        if not line:
            raise EOFError
        return line.rstrip('\n')

    def showtraceback(self):
        kind, value, tb = sys.exc_info()
        _show(value, tb.tb_next if tb is not None else None)


def interact(ns, banner=''):
    """The prompt: IPython when installed and stdin is a terminal, else python's own.

    `banner` is printed first (on stderr). Returns the exit code (0, or the code of `exit(n)`).
    """
    if sys.stdin.isatty():
        try:
            from IPython import start_ipython
        except ImportError:
            pass
        else:
            if banner:
                print(banner, file=sys.stderr)
            try:
                start_ipython(argv=['--no-banner'], user_ns=ns)
            except SystemExit as exc:
                return exit_code(exc)
            return 0
    try:
        _Console(locals=ns).interact(banner=banner, exitmsg='')
    except SystemExit as exc:
        return exit_code(exc)
    return 0


# -- the tenant's identity ---------------------------------------------------------------------

def _check_user(db, user_id):
    from hub import rls

    if not db.execute_sql('SELECT 1 FROM users WHERE id = %s', (user_id,)).fetchone():
        raise ConfigError('no user has id %r; list who to be with `hub users`' % user_id)
    if not rls.installed(db):
        raise ConfigError('row-level security is not installed here; run `hub rls install` first')


def list_users(db, org=None):
    """Users as {id, email, name, organizations: [(slug, role)]}, by e-mail: who `hub shell
    --as` can be. `org` (an id or a slug) keeps the members of that organization."""
    from hub.snapshot import find_organization

    where, params = '', ()
    if org is not None:
        where = ('WHERE u.id IN (SELECT user_id FROM organization_members '
                 'WHERE organization_id = %s)')
        params = (find_organization(db, org),)
    cursor = db.execute_sql("""
        SELECT u.id, u.email, u.name,
               coalesce((SELECT json_agg(json_build_array(o.slug, m.role::text)
                                         ORDER BY o.slug)
                         FROM organization_members m JOIN organizations o
                              ON o.id = m.organization_id
                         WHERE m.user_id = u.id), '[]')
        FROM users u %s ORDER BY u.email, u.id""" % where, params)
    return [{'id': id_, 'email': email, 'name': name,
             'organizations': [tuple(pair) for pair in orgs]}
            for id_, email, name, orgs in cursor.fetchall()]


def active_organization(db, user_id, org=None):
    """(organization id, mode, why): the organization a `--as user_id` session acts in.

    In mode `active` the policies show one organization per request, the one of the
    organization_id claim: `org` (an id or a slug of one of the user's organizations), else
    the user's only one; several without `org` raise ConfigError listing them. In mode
    `members` `org` is optional and narrows nothing the policies do not (None without it).
    """
    from hub import rls
    from hub.snapshot import find_organization

    _check_user(db, user_id)
    mode = rls.installed_mode(db)
    theirs = db.execute_sql(
        'SELECT o.id, o.slug FROM organization_members m JOIN organizations o '
        'ON o.id = m.organization_id WHERE m.user_id = %s ORDER BY o.slug', (user_id,)).fetchall()
    if org is not None:
        org_id = find_organization(db, org)
        if org_id not in {id_ for id_, _ in theirs}:
            raise ConfigError('user %s is not a member of organization %r; theirs: %s'
                              % (user_id, org, ', '.join(slug for _, slug in theirs) or 'none'))
        return org_id, mode, 'given by --org'
    if mode != 'active':
        return None, mode, None
    if len(theirs) == 1:
        return theirs[0][0], mode, 'their only organization'
    if not theirs:
        raise ConfigError('user %s belongs to no organization: in rls mode active they see '
                          'nothing; pick a member with `hub users`' % user_id)
    raise ConfigError('rls mode is active: a session sees one organization, and user %s has %d; '
                      'add --org with one of %s' % (user_id, len(theirs),
                                                    ', '.join(slug for _, slug in theirs)))


def identity(db, user_id):
    """The RLS identity of `user_id` for one `with` block (a context manager; see rls.as_user).

    It lasts until the block's transaction ends: code that commits inside the block goes on as
    the connecting user. `tenant_session` survives commits.
    """
    from hub import rls

    _check_user(db, user_id)
    return rls.as_user(db, user_id)


class TenantSession:
    """What `tenant_session` did: `outcome` is 'committed', 'rolled back' or None (nothing was
    pending), `wrote` whether any write was attempted. Call `discard()` to roll back even when
    commit was asked (a script that failed)."""

    def __init__(self, user_id, commit):
        self.user_id = user_id
        self.commit = commit
        self.outcome = None
        self.wrote = False

    def discard(self):
        self.commit = False


@contextlib.contextmanager
def tenant_session(db, user_id, commit=False, organization_id=None):
    """Until the block ends, every transaction on `db` runs as `user_id` under the policies.

    The block's work is one database transaction, committed at the end when `commit` is true
    and the block neither raised nor was discarded, rolled back otherwise. `db` is reconnected
    on entry, and closed on exit (its next query reconnects as the connecting user).
    """
    from hub import rls

    _check_user(db, user_id)
    claims = json.dumps(rls.claims_for(user_id, organization_id))
    factory = type('TenantConnection', (_TenantConnection,), {'claims': claims})
    session = TenantSession(user_id, commit)
    conn = None
    db.close()
    db.connect_params['connection_factory'] = factory
    try:
        db.connect()
        yield session
    except BaseException:
        session.discard()
        raise
    finally:
        try:
            conn = None if db.is_closed() else db.connection()
            if isinstance(conn, _TenantConnection):
                session.outcome, session.wrote = conn.end(session.commit)
        finally:
            del db.connect_params['connection_factory']
            db.dispose()  # not close(): a transaction the user left open must not stop us
            if conn is not None:
                conn.close()


# One statement of transaction control, as peewee and most code send it. BEGIN's options
# (isolation level) are not kept: the session's transaction is already open.
_CONTROL = (
    ('begin', re.compile(r'(BEGIN|START\s+TRANSACTION)(\s[^;]*)?', re.I)),
    ('commit', re.compile(r'(COMMIT|END)(\s+(WORK|TRANSACTION))?(\s+AND\s+(NO\s+)?CHAIN)?', re.I)),
    ('rollback', re.compile(r'(ROLLBACK|ABORT)(\s+(WORK|TRANSACTION))?(\s+AND\s+(NO\s+)?CHAIN)?',
                            re.I)),
)
_MARK = 'hub_shell_mark'


def _control(sql, conn):
    if isinstance(sql, bytes):
        sql = sql.decode('utf-8', 'replace')
    elif hasattr(sql, 'as_string'):  # psycopg2.sql.Composable
        sql = sql.as_string(conn)
    if not isinstance(sql, str):
        return None, False
    text = sql.strip().rstrip(';').strip()
    for kind, pattern in _CONTROL:
        if pattern.fullmatch(text):
            return kind, bool(re.search(r'\sAND\s+CHAIN$', text, re.I))
    return None, False


def _connection_class():
    import psycopg2.extensions

    return psycopg2.extensions.connection


class _Cursor:
    """Mixed into whatever cursor class is asked for: every statement goes through the guard."""

    def execute(self, query, vars=None):
        from hub.connection import _SET_ZONE

        zone = '%s; ' % _SET_ZONE
        if isinstance(query, str) and query.startswith(zone):
            # hub.connection sends the zone in the query string of a statement outside a peewee
            # transaction. Here it is one statement of its own: once the claims are sent to the
            # Citus workers (SET LOCAL propagated), Citus answers a query string holding a SET
            # and a distributed query with "permission denied" on the query's table.
            query = query[len(zone):]
            return self.connection._statement(query, lambda: (
                super(_Cursor, self).execute(_SET_ZONE),
                super(_Cursor, self).execute(query, vars))[1])
        return self.connection._statement(query, lambda: super(_Cursor, self).execute(query, vars))

    def executemany(self, query, vars_list):
        return self.connection._statement(
            query, lambda: super(_Cursor, self).executemany(query, vars_list), control=False)

    def callproc(self, procname, parameters=None):
        return self.connection._statement(
            None, lambda: super(_Cursor, self).callproc(procname, parameters))

    def copy_expert(self, sql, file, size=8192):
        return self.connection._statement(
            None, lambda: super(_Cursor, self).copy_expert(sql, file, size))

    def copy_from(self, *args, **kwargs):
        return self.connection._statement(
            None, lambda: super(_Cursor, self).copy_from(*args, **kwargs))

    def copy_to(self, *args, **kwargs):
        return self.connection._statement(
            None, lambda: super(_Cursor, self).copy_to(*args, **kwargs))


_CURSORS = {}


def _cursor_class(base):
    if base not in _CURSORS:
        _CURSORS[base] = type('Tenant' + base.__name__, (_Cursor, base), {})
    return _CURSORS[base]


class _TenantConnection(_connection_class()):
    """A psycopg2 connection on which every transaction begins as the tenant.

    The identity is SET LOCAL, so nothing outlives a transaction (safe behind a transaction
    pooler), and it is re-applied before the first statement of every transaction, whoever
    began it. The session's transaction is ours: the user's BEGIN/COMMIT/ROLLBACK (peewee sends
    them as SQL) move a savepoint, `_MARK`, instead of ending it; outside the user's own
    transactions each statement is undone alone when it fails and marked when it succeeds, the
    autocommit behaviour peewee has without --as.
    """

    claims = None
    role = 'authenticated'

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._in_user_transaction = False

    def cursor(self, *args, **kwargs):
        base = kwargs.pop('cursor_factory', None) or self.cursor_factory
        if base is None:
            import psycopg2.extensions
            base = psycopg2.extensions.cursor
        return super().cursor(*args, cursor_factory=_cursor_class(base), **kwargs)

    def commit(self):
        self._statement('COMMIT', None)

    def rollback(self):
        self._statement('ROLLBACK', None)

    def _raw(self, sql, params=None):
        import psycopg2.extensions

        with super().cursor(cursor_factory=psycopg2.extensions.cursor) as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone() if cursor.description else None

    def _status(self):
        return self.info.transaction_status

    def _begin(self):
        import psycopg2.extensions

        if self._status() != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
            return
        self._raw('BEGIN')
        try:
            self._raw('SET LOCAL ROLE %s' % self.role)
        except Exception as exc:
            self._raw('ROLLBACK')
            cause = str(exc).strip().splitlines()[0]
            raise ShellError('cannot act as role %s (%s); run `hub rls install`, and grant %s to '
                             'the connecting user if it is not a superuser'
                             % (self.role, cause, self.role)) from None
        self._raw("SELECT set_config('request.jwt.claims', %s, true)", (self.claims,))
        # As PostgREST's db-pre-request: on Citus the claims then reach the workers.
        self._raw(rls.SEND_CLAIMS_SQL)
        self._raw('SAVEPOINT %s' % _MARK)
        self._in_user_transaction = False

    def _mark(self):
        self._raw('RELEASE SAVEPOINT %s; SAVEPOINT %s' % (_MARK, _MARK))

    def _undo(self):
        self._raw('ROLLBACK TO SAVEPOINT %s' % _MARK)

    def _statement(self, query, execute, control=True):
        import psycopg2.extensions

        self._begin()
        kind, chain = _control(query, self) if control else (None, False)
        if kind == 'begin':
            self._in_user_transaction = True
            return None
        if kind is not None:
            failed = self._status() == psycopg2.extensions.TRANSACTION_STATUS_INERROR
            # COMMIT of a failed transaction rolls back, as PostgreSQL does.
            self._mark() if kind == 'commit' and not failed else self._undo()
            self._in_user_transaction = chain
            return None
        alone = not self._in_user_transaction
        try:
            result = execute()
        except Exception:
            if alone:
                with contextlib.suppress(Exception):
                    self._undo()
            raise
        if self._status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE:
            raise ShellError(
                'that SQL ended the session\'s transaction itself (COMMIT or ROLLBACK among '
                'other statements): the session\'s work so far went with it and what followed '
                'ran as the connecting user, not as the tenant; use db.commit() or db.rollback()')
        if alone:
            self._mark()
        return result

    def end(self, commit):
        """Close the session's transaction; returns (outcome, wrote)."""
        import psycopg2.extensions

        status = self._status()
        if self.closed or status not in (psycopg2.extensions.TRANSACTION_STATUS_INTRANS,
                                         psycopg2.extensions.TRANSACTION_STATUS_INERROR):
            return None, False
        # A transaction the user left open is discarded, as closing a connection would.
        if self._in_user_transaction or status == psycopg2.extensions.TRANSACTION_STATUS_INERROR:
            self._undo()
        wrote = self._raw('SELECT txid_current_if_assigned() IS NOT NULL')[0]
        self._raw('COMMIT' if commit else 'ROLLBACK')
        return ('committed' if commit else 'rolled back'), wrote
