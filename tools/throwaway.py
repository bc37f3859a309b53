"""Throwaway databases: created under a unique name on a PostgreSQL server, dropped afterwards.

    $ python -c "
    from tools.throwaway import throwaway_database
    with throwaway_database('postgresql://postgres@127.0.0.1:5432/postgres') as url:
        print(url)      # postgresql://postgres@127.0.0.1:5432/hub_tmp_3f2a9c0d1e4b
    "

(run from the repository root; needs a server). The one place that creates and drops the
databases of the benchmarks (benchmarks/), tools/make_scenarios.py and the test fixtures
(tests/conftest.py): names are `<prefix>_<random>`, so parallel runs on a shared server never
collide, and only databases made here are ever dropped. Not part of the installed package.
"""
import contextlib
import sys
import time
import uuid
from urllib.parse import urlparse, urlunparse

import psycopg2
from psycopg2 import sql

from hub import connection


def with_user(url, user):
    """The same server and database as `url`, logged in as `user` (no password): the login
    roles the tests and benchmarks make to connect as PostgREST does."""
    parts = urlparse(url)
    host = parts.netloc.rsplit('@', 1)[-1]
    return urlunparse(parts._replace(netloc='%s@%s' % (user, host)))


def admin_connection(server_url):
    """An autocommit connection to the database `server_url` names (CREATE/DROP DATABASE
    cannot run inside a transaction)."""
    conn = psycopg2.connect(connection.with_database(
        server_url, connection._parse(server_url)['database']))
    conn.autocommit = True
    return conn


#: SQLSTATEs of a DROP DATABASE ... WITH (FORCE) that a moment may mend: a session of another
#: role that this one may not terminate (a non-superuser owner, as Supabase's postgres, beside
#: authenticator's session its client has just closed), and sessions slow to end (55006).
_DROP_RETRIED = ('42501', '55006')


def _drop(cur, name, patience=10):
    """DROP DATABASE `name` WITH (FORCE) on autocommit cursor `cur`, retried for up to
    `patience` seconds while it fails for a session that is still ending. Tried at once: a
    session left open by a test (an example's `hub.connect()`) is terminated, not waited for."""
    statement = sql.SQL('DROP DATABASE IF EXISTS {} WITH (FORCE)').format(sql.Identifier(name))
    deadline = time.monotonic() + patience
    while True:
        try:
            cur.execute(statement)
            return
        except psycopg2.Error as error:
            if error.pgcode not in _DROP_RETRIED or time.monotonic() >= deadline:
                raise
        time.sleep(0.05)


class Databases:
    """Creates and drops throwaway databases on one server; `drop_all` (or leaving the `with`
    block) drops every one still standing.

        with Databases(server_url) as dbs:
            name = dbs.create(prefix='hub_bench')           # empty
            copy = dbs.create(template=name)                # CREATE DATABASE ... TEMPLATE
            url = dbs.url(copy)
    """

    def __init__(self, server_url, prefix='hub_tmp'):
        self.server_url = server_url
        self.prefix = prefix
        self.created = []

    def create(self, template=None, prefix=None):
        """Create an empty database (or a copy of `template`); returns its name."""
        name = '%s_%s' % (prefix or self.prefix, uuid.uuid4().hex[:12])
        statement = sql.SQL('CREATE DATABASE {}').format(sql.Identifier(name))
        if template:
            statement += sql.SQL(' TEMPLATE {}').format(sql.Identifier(template))
        with contextlib.closing(admin_connection(self.server_url)) as conn, conn.cursor() as cur:
            cur.execute(statement)
        self.created.append(name)
        return name

    def url(self, name):
        return connection.with_database(self.server_url, name)

    def drop(self, name):
        """Drop `name`, even with sessions still connected to it (FORCE)."""
        with contextlib.closing(admin_connection(self.server_url)) as conn, conn.cursor() as cur:
            _drop(cur, name)
        if name in self.created:
            self.created.remove(name)

    def drop_all(self):
        for name in list(self.created):
            self.drop(name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.drop_all()


@contextlib.contextmanager
def throwaway_database(server_url, prefix='hub_tmp', template=None, keep=False):
    """The URL of a new database on `server_url`'s server, dropped when the block ends (also on
    an exception or Ctrl-C); with keep=True it stays, and its name goes to stderr."""
    dbs = Databases(server_url, prefix)
    name = dbs.create(template=template)
    try:
        yield dbs.url(name)
    finally:
        if keep:
            print('kept database %s' % name, file=sys.stderr)
        else:
            dbs.drop(name)


class CitusDatabases(Databases):
    """Throwaway databases on a Citus cluster (tools/citus_cluster.sh): each is created on the
    coordinator `server_url` names and on every worker registered in its database, with the
    citus extension in each and the workers registered on the new coordinator database, as a
    Citus database needs (Citus does not create databases on the workers by default)."""

    def nodes(self):
        """(host, port) of the coordinator, then of each worker, as the server's database has
        them registered (pg_dist_node)."""
        with contextlib.closing(admin_connection(self.server_url)) as conn, conn.cursor() as cur:
            cur.execute("SELECT nodename, nodeport, groupid FROM pg_dist_node "
                        "WHERE noderole = 'primary' ORDER BY groupid")
            rows = cur.fetchall()
        coordinator = [(host, port) for host, port, group in rows if group == 0]
        return coordinator, [(host, port) for host, port, group in rows if group != 0]

    def _on(self, host, port, database='postgres'):
        parts = urlparse(self.server_url)
        user = parts.netloc.rsplit('@', 1)[0] if '@' in parts.netloc else ''
        netloc = '%s%s:%d' % (user + '@' if user else '', host, port)
        return urlunparse(parts._replace(netloc=netloc, path='/' + database))

    def create(self, template=None, prefix=None):
        if template:
            raise ValueError('a Citus database is not copied from a template')
        coordinator, workers = self.nodes()
        name = super().create(prefix=prefix)
        try:
            for host, port in workers:
                with contextlib.closing(admin_connection(self._on(host, port))) as conn, \
                        conn.cursor() as cur:
                    cur.execute(sql.SQL('CREATE DATABASE {}').format(sql.Identifier(name)))
            for host, port in coordinator + workers:
                with contextlib.closing(admin_connection(self._on(host, port, name))) as conn, \
                        conn.cursor() as cur:
                    cur.execute('CREATE EXTENSION IF NOT EXISTS citus')
            with contextlib.closing(admin_connection(self.url(name))) as conn, \
                    conn.cursor() as cur:
                for host, port in coordinator:
                    cur.execute('SELECT citus_set_coordinator_host(%s, %s)', (host, port))
                for host, port in workers:
                    cur.execute('SELECT citus_add_node(%s, %s)', (host, port))
        except BaseException:
            self.drop(name, workers)
            raise
        return name

    def drop(self, name, workers=None):
        if workers is None:
            workers = self.nodes()[1]
        super().drop(name)
        for host, port in workers:
            with contextlib.closing(admin_connection(self._on(host, port))) as conn, \
                    conn.cursor() as cur:
                _drop(cur, name)
