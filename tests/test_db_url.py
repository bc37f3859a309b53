"""Database URLs are checked when resolved: a malformed one is one line, exit code 2, no connection."""
import os
import subprocess
import sys

import pytest

from hub import db as hubdb
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
                           "out of range 1-65535; %s" % hubdb.URL_HELP)


@pytest.mark.parametrize('url', ['postgresql://postgres@127.0.0.1:5432/hub',
                                 'postgres://u:p%40ss@db.example.com/app?sslmode=require',
                                 'postgresql://postgres@/hub?host=/run/postgresql',
                                 'postgresql://postgres@[::1]:65535/hub'])
def test_well_formed_urls_resolve_unchanged(url, monkeypatch):
    monkeypatch.setenv('DATABASE_URL', url)
    assert hubdb.resolve_url() == url
    assert hubdb.resolve_url(url) == url


def test_the_library_raises_config_error(monkeypatch):
    monkeypatch.setenv('DATABASE_URL', 'garbage')
    with pytest.raises(ConfigError) as caught:
        hubdb.resolve_url()
    assert caught.value.exit_code == 2 and str(caught.value).startswith("DATABASE_URL 'garbage'")
