"""Hub's locks cannot be held hostage (issue 19, item 8).

Before: hub took transaction-scoped advisory locks with fixed keys, and any role may call
pg_advisory_lock, so anon (through PostgREST) could hold them in an open transaction and stall
`hub seed`, `hub secrets rotate` and `hub db migrate` forever. Now the locks are row locks in a
table that no API role can reach, and every wait is bounded and names the holder.
"""
import contextlib
import re
import subprocess
import time

import psycopg2
import pytest

from hub import connection, locks
from tests.commands import hub
from tests.conftest import Api

AS_OF = '2025-01-31'
#: The keys hub used before (hub/locks.py): "hubmigr" and "hubseed!".
OLD_KEYS = (0x6875626d696772, 0x6875627365656421)

# Bounded waits are the server's lock_timeout: its timers do not fire under faketime.
pytestmark = pytest.mark.usefixtures('timers')


@contextlib.contextmanager
def anon_holding_every_old_key(api):
    """anon, through the API login, in an open transaction holding hub's former lock keys and
    trying its best on the new lock table."""
    conn = api.connect()
    try:
        cur = conn.cursor()
        cur.execute('SET LOCAL ROLE anon')
        for key in OLD_KEYS:
            cur.execute('SELECT pg_advisory_xact_lock(%s)', (key,))
        yield conn
    finally:
        conn.close()


def api_cannot_touch_the_lock_table(api, role):
    for key in locks.KEYS:
        for sql in ('SELECT * FROM %s FOR UPDATE', 'LOCK TABLE %s IN EXCLUSIVE MODE',
                    'LOCK TABLE %s IN ACCESS SHARE MODE'):
            assert api.error(sql % locks.table(key), role=role) == '42501', (role, sql)


@pytest.mark.parametrize('shape', ['plain', 'supabase'])
def test_anon_cannot_stall_seed_nor_migrate(shape, request, secret):
    if shape == 'plain':
        url = request.getfixturevalue('empty_db_url')
        api = request.getfixturevalue('api_for')(url)
    else:
        url = request.getfixturevalue('supabase_db_url')
        api = Api(url, 'authenticator')
    with anon_holding_every_old_key(api):
        started = time.monotonic()
        try:
            migrated = hub(url, 'db', 'migrate', timeout=60)
            seeded = hub(url, 'seed', '--orgs', '1', '--scale', 'tiny', '--as-of', AS_OF, '-q',
                         timeout=60)
        except subprocess.TimeoutExpired as exc:
            pytest.fail('anon stalled `hub %s` (%.0f s)' % (' '.join(exc.cmd[3:]),
                                                            time.monotonic() - started))
        assert migrated.returncode == 0, migrated.stderr
        assert seeded.returncode == 0, seeded.stderr
    for role in ('anon', 'authenticated', 'service_role'):
        api_cannot_touch_the_lock_table(api, role)


@contextlib.contextmanager
def holding(url, key):
    """A connection of the owner holding hub's lock `key` in an open transaction."""
    database = connection.open_database(url)
    try:
        with database.atomic():  # the lock table exists and is committed
            locks.hold(database, key)
        with database.atomic() as transaction:
            locks.hold(database, key)
            yield database
            transaction.rollback()
    finally:
        database.close()


def test_a_wait_is_bounded_and_names_the_holder(empty_db_url, secret, monkeypatch):
    url = empty_db_url
    with holding(url, locks.MIGRATE) as holder:
        pid = holder.execute_sql('SELECT pg_backend_pid()').fetchone()[0]
        monkeypatch.setenv('HUB_LOCK_TIMEOUT', '1')
        started = time.monotonic()
        result = hub(url, 'db', 'migrate', timeout=60)
        assert time.monotonic() - started < 30
        assert result.returncode == 1, result.stdout
        [line] = result.stderr.strip().splitlines()
        assert "hub's migrate lock" in line and 'pid %d' % pid in line, line
        assert 'role postgres' in line and 'HUB_LOCK_TIMEOUT' in line, line
        assert re.search(r'since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC', line), line
        assert re.search(r'\d+ pending', hub(url, 'db', 'status').stderr)  # nothing applied
    monkeypatch.delenv('HUB_LOCK_TIMEOUT')
    assert hub(url, 'db', 'migrate').returncode == 0


def test_an_unreadable_timeout_is_a_usage_error(empty_db_url, monkeypatch):
    monkeypatch.setenv('HUB_LOCK_TIMEOUT', 'forever')
    result = hub(empty_db_url, 'db', 'migrate')
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "'forever'" in line and 'HUB_LOCK_TIMEOUT' in line, line


def test_the_locks_work_behind_a_transaction_pooler(pooler, databases, secret):
    name = databases.create()
    url = pooler.url(name)
    for args in (('db', 'migrate'),
                 ('seed', '--orgs', '1', '--scale', 'tiny', '--as-of', AS_OF, '-q')):
        result = hub(url, *args)
        assert result.returncode == 0, (args, result.stderr)
    # Transaction-scoped: nothing is left on the pooled server connections.
    with contextlib.closing(psycopg2.connect(databases.url(name))) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                    "WHERE d.datname = %s AND l.locktype IN ('advisory', 'tuple', 'relation') "
                    "AND l.pid <> pg_backend_pid()", (name,))
        assert cur.fetchone() == (0,)
