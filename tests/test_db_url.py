"""Database URLs are checked when resolved: a malformed one is one line, exit code 2, no connection."""
import os
import subprocess
import sys

import pytest

from hub import connection
from hub.errors import ConfigError

BAD = [
    # (URL, words the one line must contain)
    ('garbage', ["'garbage'", 'is not a PostgreSQL URL', 'postgresql://']),
    ('mysql://root@127.0.0.1/x', ["'mysql://root@127.0.0.1/x'", 'postgresql://']),
    ('postgresql://postgres@127.0.0.1:99999/x', ['port 99999 is out of range 1-65535']),
    ('postgresql://postgres@127.0.0.1:0/x', ['port 0 is out of range 1-65535']),
    ('postgresql://postgres@127.0.0.1:port/x', ["the port 'port' is not a number"]),
    ('postgresql://postgres@127.0.0.1:5432/', ['names no database']),
    ('postgresql:///x', ['names no host or socket folder']),
    ('postgresql://postgres:s3cret@127.0.0.1:99999/x', ["'postgresql://postgres:***@127.0.0.1:99999/x'"]),
]


def hub(*args, env, cwd):
    environ = {k: v for k, v in os.environ.items() if k not in ('DATABASE_URL', 'HUB_HOME')}
    environ.update(env)
    proc = subprocess.run([sys.executable, '-m', 'hub', *args], env=environ, cwd=str(cwd),
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize('url, words', BAD)
def test_a_malformed_database_url_is_one_line_and_exit_2(url, words, tmp_path):
    code, out, err = hub('db', 'url', env={'DATABASE_URL': url}, cwd=tmp_path)
    assert (code, out) == (2, ''), err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in err, err
    assert all(word in lines[0] for word in words), lines[0]
    assert 'DATABASE_URL' in lines[0]
    assert 's3cret' not in err
    assert list(tmp_path.iterdir()) == []   # the embedded default was not started instead


def test_the_option_is_checked_like_the_variable(tmp_path):
    code, out, err = hub('--database-url', 'postgresql://h:99999/x', 'db', 'url', env={},
                         cwd=tmp_path)
    assert (code, out) == (2, '')
    assert err.strip() == ("Error: malformed database URL 'postgresql://h:99999/x': port 99999 is "
                           "out of range 1-65535; %s" % connection.URL_HELP)


@pytest.mark.parametrize('url', ['postgresql://postgres@127.0.0.1:5432/hub',
                                 'postgres://u:p%40ss@db.example.com/app?sslmode=require',
                                 'postgresql://postgres@/hub?host=/run/postgresql',
                                 'postgresql://postgres@[::1]:65535/hub'])
def test_well_formed_urls_resolve_unchanged(url, monkeypatch):
    monkeypatch.setenv('DATABASE_URL', url)
    assert connection.resolve_url() == url
    assert connection.resolve_url(url) == url


def test_the_library_raises_config_error(monkeypatch):
    monkeypatch.setenv('DATABASE_URL', 'garbage')
    with pytest.raises(ConfigError) as caught:
        connection.resolve_url()
    assert caught.value.exit_code == 2 and str(caught.value).startswith("DATABASE_URL 'garbage'")


# -- what a URL means: libpq's reading, since libpq connects --------------------------------------

MEANING = [
    'postgresql://postgres@127.0.0.1:5432/hub',
    'postgres://u:p%40ss@db.example.com/app?sslmode=require',
    'postgresql://us%40er:p%3As%2Fs%20x@h/app',               # percent-encoded user and password
    'postgresql://postgres@/hub?host=/run/postgresql',         # socket folder as a parameter
    'postgresql://postgres@/hub?host=/run/postgresql&port=5433',
    'postgresql://%2Frun%2FPostgreSQL:5433/hub',               # socket folder in the host part
    'postgresql://postgres@[::1]:65535/hub',
    'postgresql://u@h/my%20db',                                # percent-encoded database name
    'postgresql://u@h/db?application_name=a+b&connect_timeout=10',  # '+' is a plus to libpq
    'postgresql://u@h/db?application_name=007&keepalives=true&sslmode=none',  # text, not 7/True/None
    'postgresql://u@h/db?options=-c%20search_path%3Dx',
    'postgresql://u:@h/db',                                    # empty password: none
]


@pytest.mark.parametrize('url', MEANING)
def test_a_url_means_what_it_means_to_libpq(url):
    from psycopg2.extensions import parse_dsn

    libpq = parse_dsn(url)
    libpq['database'] = libpq.pop('dbname')
    ours = {key: str(value) for key, value in connection._parse(url).items()}
    assert ours == libpq


@pytest.fixture
def named_database(server_url):
    """A database whose name needs percent-encoding in a URL: (name, url of its server)."""
    import psycopg2
    from psycopg2 import sql

    from tools.throwaway import admin_connection

    name = 'hub_test url %s' % os.urandom(4).hex()
    conn = admin_connection(server_url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL('CREATE DATABASE {}').format(sql.Identifier(name)))
        yield name
        with conn.cursor() as cur:
            cur.execute(sql.SQL('DROP DATABASE IF EXISTS {} WITH (FORCE)')
                        .format(sql.Identifier(name)))
    finally:
        conn.close()


def test_a_percent_encoded_database_name_and_socket_folder_connect(server_url, named_database):
    from urllib.parse import quote

    url = connection.with_database(server_url, named_database)
    assert '%20' in url
    database = connection.open_database(url)
    try:
        assert database.execute_sql('SELECT current_database()').fetchone()[0] == named_database
        folders, port = [database.execute_sql('SHOW %s' % setting).fetchone()[0]
                         for setting in ('unix_socket_directories', 'port')]
    finally:
        database.close()
    folder = folders.split(',')[0].strip()
    if not folder or not os.path.isdir(folder):
        pytest.skip('the server under test has no socket folder on this machine')
    user = connection._parse(server_url).get('user')
    socket_url = 'postgresql://%s%s:%s/%s' % (quote(user, safe='') + '@' if user else '',
                                              quote(folder, safe=''), port,
                                              quote(named_database, safe=''))
    database = connection.open_database(socket_url)
    try:
        row = database.execute_sql('SELECT current_database(), inet_server_addr()').fetchone()
        assert row == (named_database, None)  # no address: it came through the socket
    finally:
        database.close()
