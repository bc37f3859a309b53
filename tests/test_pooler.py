"""Behind a transaction pooler (pgbouncer, pool_mode = transaction, pool size 4) every command
works with a plain URL: no startup parameter a pooler refuses, no lock or setting that outlives
its transaction. And output never depends on the server's time zone.

Needs pgbouncer (skipped without it; CI sets HUB_REQUIRE_POOLER=1 so a skip fails there).
"""
import contextlib
import os
import subprocess
import sys
import time

import psycopg2
import pytest

from hub import connection
from hub import migrate, seed, snapshot
from tests.commands import check_shell_and_round_trip, hub
from tests.test_migrations import ALL

AS_OF = '2025-01-31'
ROUNDS, CLIENTS = 5, 4


def run_together(args, url, count, timeout):
    """`count` concurrent `hub ARGS` on `url`: [(exit code, stdout, stderr)]; none outlives it."""
    env = dict(os.environ, DATABASE_URL=url)
    procs = [subprocess.Popen([sys.executable, '-m', 'hub', *args], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(count)]
    try:
        # A lock left on a pooled server connection hangs a run: the timeout catches it.
        outputs = [p.communicate(timeout=timeout) for p in procs]
        return [(p.returncode,) + output for p, output in zip(procs, outputs)]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()


def direct(databases, name):
    return contextlib.closing(psycopg2.connect(databases.url(name)))


def advisory_locks(databases, name):
    with direct(databases, name) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                    "WHERE l.locktype = 'advisory' AND d.datname = %s", (name,))
        return cur.fetchone()[0]


def test_pgbouncer_refuses_the_options_startup_parameter(pooler, databases):
    name = databases.create()
    # What `hub` sent before: every command failed behind the pooler.
    with pytest.raises(psycopg2.OperationalError, match='unsupported startup parameter'):
        psycopg2.connect(pooler.url(name), options='-c timezone=UTC')
    database = connection.open_database(pooler.url(name))
    try:
        stamp = database.execute_sql('SELECT now()::text').fetchone()[0]
        assert stamp.endswith('+00')
    finally:
        database.close()


def test_a_session_lock_outlives_its_client_behind_the_pooler(pooler, databases):
    """Why no session lock may be used: the pooled server connection keeps it after we left."""
    name = databases.create()
    conn = psycopg2.connect(pooler.url(name))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute('SELECT pg_advisory_lock(%s)', (0x6875626d696772,))  # any key
    conn.close()
    time.sleep(0.2)
    assert advisory_locks(databases, name) == 1  # held by pgbouncer's server connection
    with direct(databases, name) as admin, admin.cursor() as cur:  # ours to clean up
        admin.autocommit = True
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND database = (SELECT oid FROM pg_database WHERE datname = %s)", (name,))
    assert advisory_locks(databases, name) == 0


def test_concurrent_migrate_through_the_pooler(pooler, databases, capsys):
    seconds = []
    for _ in range(ROUNDS):
        name = databases.create()
        started = time.perf_counter()
        results = run_together(('db', 'migrate'), pooler.url(name), CLIENTS, 120)
        seconds.append(time.perf_counter() - started)
        assert [code for code, _, _ in results] == [0] * CLIENTS, results
        applied = sorted(line for _, out, _ in results for line in out.splitlines())
        assert applied == ['applied %s' % n for n in ALL]  # each migration applied once
        with direct(databases, name) as conn, conn.cursor() as cur:
            cur.execute('SELECT name, count(*) FROM hub_migrations GROUP BY name ORDER BY name')
            assert cur.fetchall() == [(n, 1) for n in ALL]
        assert advisory_locks(databases, name) == 0
        databases.drop(name)
    with capsys.disabled():
        print('\n%d rounds of %d concurrent `hub db migrate` through pgbouncer: all exit 0, '
              '%.1f-%.1f s per round' % (ROUNDS, CLIENTS, min(seconds), max(seconds)))


def test_commands_through_the_pooler(pooler, databases, secret, tmp_path):
    name, other = databases.create(), databases.create()
    url, other_url = pooler.url(name), pooler.url(other)
    result = hub(url, 'seed', '--orgs', '2', '--scale', 'tiny', '--as-of', AS_OF, '-q')
    assert result.returncode == 0, result.stderr
    result = hub(url, 'rls', 'verify')
    assert result.returncode == 0, result.stdout + result.stderr
    with direct(databases, name) as conn, conn.cursor() as cur:
        cur.execute('SELECT m.organization_id, m.user_id FROM organization_members m '
                    "WHERE m.role = 'OWNER' ORDER BY m.organization_id, m.user_id LIMIT 1")
        org_id, user_id = cur.fetchone()
    check_shell_and_round_trip(url, other_url, org_id, user_id, tmp_path)
    assert advisory_locks(databases, name) == 0


def test_concurrent_seeds_through_the_pooler_match_one_seed(pooler, databases, secret):
    args = ('seed', '--orgs', '4', '--scale', 'tiny', '--as-of', AS_OF, '-q')
    alone = databases.create()
    assert hub(databases.url(alone), *args).returncode == 0
    name = databases.create()
    results = run_together(args, pooler.url(name), 3, 180)
    assert [code for code, _, _ in results] == [0, 0, 0], results
    hashes = []
    for db_name in (alone, name):
        database = connection.open_database(databases.url(db_name))
        try:
            hashes.append(seed.content_hashes(database))
            assert database.execute_sql('SELECT count(*) FROM organizations').fetchone()[0] == 4
        finally:
            database.close()
    assert hashes[0] == hashes[1]


def test_output_does_not_depend_on_the_servers_time_zone(pooler, databases, secret):
    """A database whose default zone is Pacific/Chatham (+12:45/+13:45) exports, hashes and
    prints timestamps exactly as a UTC one does, directly and through the pooler."""
    exports, hashes = [], []
    for zone in ('UTC', 'Pacific/Chatham'):
        name = databases.create()
        with direct(databases, name) as conn, conn.cursor() as cur:
            conn.autocommit = True
            cur.execute("ALTER DATABASE %s SET timezone = '%s'" % (name, zone))
        result = hub(databases.url(name), 'seed', '--orgs', '1', '--scale', 'tiny',
                     '--as-of', AS_OF, '-q')
        assert result.returncode == 0, result.stderr
        for url in (databases.url(name), pooler.url(name)):
            database = connection.open_database(url)
            try:
                org_id = database.execute_sql('SELECT id FROM organizations').fetchone()[0]
                exports.append(snapshot.dumps(snapshot.export_organization(database, org_id)))
                hashes.append(seed.content_hashes(database))
                with database.atomic():
                    stamp = database.execute_sql('SELECT min(created_at)::text FROM users')
                    assert stamp.fetchone()[0].endswith('+00')
            finally:
                database.close()
    assert '+12:45' not in exports[2] and '+13:45' not in exports[2]
    assert exports == [exports[0]] * 4
    assert hashes == [hashes[0]] * 4
