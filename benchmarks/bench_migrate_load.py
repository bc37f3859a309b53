"""How long tenant clients wait while `hub db migrate` runs: each shipped migration, and a
generated column plus index, applied under load, against the same load without a migration.

    $ python -m benchmarks.bench_migrate_load                        # 200k executions
    $ python -m benchmarks.bench_migrate_load --executions 1000000 --clients 8
    $ DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres python -m benchmarks.bench_migrate_load

Builds a throwaway database (dropped at the end, also on Ctrl-C): every migration, `hub rls
install`, then bench_rls's fill (--orgs single-owner organizations, 10 workflows each,
--executions workflow_executions; INSERT ... SELECT generate_series, since `hub seed` takes
minutes per 100k executions). It then rolls back to 0002 and applies 0003 ... 0007 one at a
time (0002 is left out: the installed policies read the column it adds, so it cannot be
reverted under them), then a migration as `hub db generate` writes it for a new column on
workflow_executions with an index (ADD COLUMN ... DEFAULT 0 in UP, CREATE INDEX CONCURRENTLY in
its CONCURRENTLY section).

--clients threads connect as PostgREST does (a LOGIN role, `SET LOCAL ROLE authenticated`,
the JWT claims of an organization's owner, one transaction per request) and loop over three
requests: the latest 50 executions, the workflows, and an UPDATE of one of their workflows.
For each migration: --window seconds of that load alone (the baseline), then the same load
while `hub db migrate TARGET` runs in its own process. Printed per migration: how long it
took, the longest client request and the p99 during it, and both as ratios to the baseline.
Goals: no request waits longer than the lock timeout; an index change adds at most 100 ms to
the longest wait.
"""
import argparse
import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg2

from benchmarks import bench_rls
from benchmarks.bench_rls import add_server_options
from tools.throwaway import admin_connection, throwaway_database, with_user

GENERATED = 'execution_priority'
GENERATED_UP = 'ALTER TABLE public.workflow_executions ADD COLUMN priority integer NOT NULL DEFAULT 0;\n'
GENERATED_INDEX = ('CREATE INDEX CONCURRENTLY workflow_executions_priority ON '
                   'public.workflow_executions (priority);\n')
GENERATED_DOWN = ('DROP INDEX public.workflow_executions_priority;\n\n'
                  'ALTER TABLE public.workflow_executions DROP COLUMN priority;\n')

REQUESTS = [
    'SELECT id, status, started_at FROM workflow_executions ORDER BY started_at DESC LIMIT 50',
    'SELECT id, name FROM workflows ORDER BY name',
    "UPDATE workflows SET description = 'bench' WHERE id = %(workflow)s",
]

MIGRATE = """
import sys
from pathlib import Path
from hub import connection, lifecycle, migrate
db = connection.open_database(sys.argv[1])
lifecycle.migrate_database(db, sys.argv[2], Path(sys.argv[3]),
                           bounds=migrate.Bounds(lock_timeout=sys.argv[4], retries=int(sys.argv[5])),
                           notify=lambda line: print(line, file=sys.stderr))
"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--orgs', type=int, default=200, help='organizations (default 200)')
    parser.add_argument('--executions', type=int, default=200000,
                        help='workflow_executions rows (default 200000; the goal is stated '
                             'for 1000000)')
    parser.add_argument('--clients', type=int, default=6, help='client threads (default 6)')
    parser.add_argument('--window', type=float, default=4.0,
                        help='seconds of baseline load before each migration (default 4)')
    parser.add_argument('--lock-timeout', default='2s', help='hub db migrate --lock-timeout')
    parser.add_argument('--retries', type=int, default=20, help='hub db migrate --retries')
    parser.add_argument('--think', type=float, default=0.02,
                        help='seconds each client pauses between requests (default 0.02)')
    add_server_options(parser)
    return parser.parse_args(argv)


class Client(threading.Thread):
    """One tenant's app: requests back to back, each one transaction as PostgREST sends it;
    keeps (start, seconds) of every request."""

    def __init__(self, url, org, stop, think):
        super().__init__(daemon=True)
        self.url, self.org, self.stop, self.think = url, org, stop, think
        self.samples, self.errors = [], []

    def run(self):
        conn = psycopg2.connect(self.url)
        claims = json.dumps({'sub': 'usr%d' % self.org, 'role': 'authenticated'})
        params = {'workflow': 'wf%d_1' % self.org}
        rng = random.Random(self.org)
        try:
            while not self.stop.is_set():
                sql = rng.choice(REQUESTS)
                start = time.monotonic()
                try:
                    with conn, conn.cursor() as cur:
                        cur.execute('SET LOCAL ROLE authenticated')
                        cur.execute("SELECT set_config('request.jwt.claims', %s, true)", (claims,))
                        cur.execute(sql, params)
                        if cur.description:
                            cur.fetchall()
                except psycopg2.Error as exc:
                    self.errors.append('%s: %s' % (exc.pgcode, str(exc).splitlines()[0]))
                self.samples.append((start, time.monotonic() - start))
                time.sleep(self.think)
        finally:
            conn.close()


def p99(values):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * 0.99))] if values else 0.0


def stats(clients, since, until):
    waits = [s for c in clients for start, s in c.samples if since <= start < until]
    return (max(waits) if waits else 0.0), p99(waits), len(waits)


def build(url, orgs, executions):
    from hub import connection, lifecycle, migrate

    bench_rls.build(url, orgs, executions).close()  # migrated, RLS installed, filled
    database = connection.open_database(url)
    try:  # back to 0002: 0003 ... 0007 are applied again under load
        lifecycle.rollback(database, '0003')
        assert migrate.pending(database)[0] == '0003_pin_trigger_search_path'
    finally:
        database.close()


def main(argv=None):
    from hub import connection, migrate

    args = parse_args(argv)
    server = args.database_url or os.environ.get('DATABASE_URL') or connection.resolve_url()
    login = 'hub_bench_authenticator_%s' % uuid.uuid4().hex[:8]
    folder = Path(tempfile.mkdtemp(prefix='hub_bench_migrations_'))
    for path in migrate.MIGRATIONS_DIR.glob('[0-9]*.py'):
        shutil.copy(path, folder)
    names = sorted(p.stem for p in folder.glob('[0-9]*.py'))
    generated = migrate.new(GENERATED, folder, migrate.render(
        GENERATED, up_sql=GENERATED_UP, down_sql=GENERATED_DOWN, concurrently=GENERATED_INDEX))
    names.append(generated.stem)
    lock_ms = migrate.duration_ms(args.lock_timeout, '--lock-timeout')
    with contextlib.closing(admin_connection(server)) as conn, conn.cursor() as cur:
        conn.autocommit = True
        for role in ('anon', 'authenticated', 'service_role'):
            cur.execute("DO $$ BEGIN CREATE ROLE %s NOLOGIN NOINHERIT; EXCEPTION WHEN "
                        "duplicate_object OR unique_violation THEN NULL; END $$" % role)
        cur.execute('CREATE ROLE %s LOGIN NOINHERIT' % login)
        cur.execute('GRANT anon, authenticated, service_role TO %s' % login)
    rows = []
    try:
        with throwaway_database(server, prefix='hub_bench', keep=args.keep) as url:
            build(url, args.orgs, args.executions)
            stop = threading.Event()
            orgs = random.Random(7).sample(range(1, args.orgs + 1), args.clients)
            clients = [Client(with_user(url, login), org, stop, args.think) for org in orgs]
            for client in clients:
                client.start()
            try:
                for name in names[2:]:
                    base_start = time.monotonic()
                    time.sleep(args.window)
                    start = time.monotonic()
                    result = subprocess.run(
                        [sys.executable, '-c', MIGRATE, url, name, str(folder), args.lock_timeout,
                         str(args.retries)],
                        capture_output=True, text=True)
                    end = time.monotonic()
                    time.sleep(0.2)  # requests that started during it and are still running
                    if result.returncode:
                        raise SystemExit('%s failed: %s' % (name, result.stderr.strip()))
                    rows.append((name, end - start, result.stderr.count('; retry '),
                                 stats(clients, base_start, start), stats(clients, start, end)))
            finally:
                stop.set()
                for client in clients:
                    client.join()
            errors = sorted({e for c in clients for e in c.errors})
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.closing(admin_connection(server)) as conn, conn.cursor() as cur:
            conn.autocommit = True
            cur.execute('DROP ROLE IF EXISTS %s' % login)
    print('%d workflow_executions, %d clients, lock_timeout %s; times in ms'
          % (args.executions, args.clients, args.lock_timeout))
    print('| migration | took | retries | longest wait | p99 | baseline longest | baseline p99 | '
          'longest / baseline | p99 / baseline | requests |')
    print('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
    worst = 0.0
    for name, took, retries, (bmax, bp99, _), (mmax, mp99, count) in rows:
        worst = max(worst, mmax)
        print('| %s | %.0f | %d | %.0f | %.1f | %.0f | %.1f | %.2f | %.2f | %d |' % (
            name, took * 1000, retries, mmax * 1000, mp99 * 1000, bmax * 1000, bp99 * 1000,
            mmax / bmax if bmax else 0, mp99 / bp99 if bp99 else 0, count))
    print('longest wait of any request during a migration: %.0f ms (lock_timeout %d ms: %s)'
          % (worst * 1000, lock_ms, 'met' if worst * 1000 < lock_ms else 'NOT met'))
    if errors:
        print('client errors: %s' % '; '.join(errors))


if __name__ == '__main__':
    main()
