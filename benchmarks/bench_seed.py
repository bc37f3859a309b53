"""Benchmark `hub seed` against PostgreSQL's own COPY of the same rows and a naive seeder.

    $ python -m benchmarks.bench_seed                  # embedded server, >= 1,000,000 rows
    $ DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres python -m benchmarks.bench_seed
    $ python -m benchmarks.bench_seed --orgs 260 --small-orgs 60 --scale medium --repeat 2

On one server and a throwaway database of its own (dropped at the end), it measures:

(a) `hub seed` in a subprocess: the wall time of the whole command (start-up, migration, RLS,
    marketplace) and of its loading phase, for at least 1,000,000 rows;
(b) PostgreSQL's COPY of exactly those rows from files: every seeded table is dumped with
    COPY TO, the tables are emptied, and COPY FROM the files loads them back (checked equal);
(c) a naive seeder on a sample: one Peewee `Model.create()` per row with a Faker call per
    field, extrapolated per row to the seeded row count;
and the peak RSS of the seed process and of its forked generator at two --orgs sizes.

It prints rows/s and the ratios seed/COPY (target <= 1.5) and naive/seed, and the two peaks
(target < 200 MB and flat). The big seed and the COPY run --repeat times each and the best of
each is compared: on a shared 2-core machine one sample can be off by 50%. Every sample is
printed. Timings are of this machine and this run; only ratios compare.
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time

from tools.throwaway import Databases

AS_OF = '2025-01-31'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--orgs', type=int, default=260, help='organizations of the big run')
    parser.add_argument('--small-orgs', type=int, default=60, help='organizations of the '
                        'small run (memory comparison)')
    parser.add_argument('--scale', default='medium')
    parser.add_argument('--naive-rows', type=int, default=3000)
    parser.add_argument('--min-rows', type=int, default=1000000)
    parser.add_argument('--repeat', type=int, default=2, help='samples of the big seed and '
                        'of the COPY (the best counts)')
    args = parser.parse_args(argv)

    from cryptography.fernet import Fernet

    from hub import connection

    os.environ.setdefault('HUB_SECRET_KEY', Fernet.generate_key().decode())
    server = connection.resolve_url()
    print('server: %s' % connection.redact(server))
    admin = connection.open_database(server)
    version = admin.execute_sql('SHOW server_version').fetchone()[0]
    admin.close()
    print('PostgreSQL %s, %d CPUs' % (version, os.cpu_count()))

    with Databases(server, prefix='hub_bench') as dbs:
        small = run_seed(dbs.url(dbs.create()), args.small_orgs, args.scale)
        runs = []
        for _ in range(args.repeat):
            dbs.drop_all()  # one database at a time: the disk is shared too
            url = dbs.url(dbs.create())
            runs.append(run_seed(url, args.orgs, args.scale))
        big = min(runs, key=lambda run: run['wall'])
        rows = big['summary']['total_rows']
        if rows < args.min_rows:
            print('warning: %d rows < %d; raise --orgs' % (rows, args.min_rows))
        database = connection.bind(connection.open_database(url))
        try:
            copy_seconds = copy_back(database, args.repeat)
            naive_per_row = naive(database, args.naive_rows)
        finally:
            database.close()

    load = min(run['summary']['seconds'] for run in runs)
    wall = big['wall']
    naive_total = naive_per_row * rows
    print()
    print('rows seeded: {:,} in {} organizations ({} scale)'.format(rows, args.orgs, args.scale))
    print('(a) hub seed, whole command : %7.1f s  %9s rows/s' % (wall, per_s(rows, wall)))
    print('    hub seed, loading phase : %7.1f s  %9s rows/s' % (load, per_s(rows, load)))
    print('(b) COPY from files         : %7.1f s  %9s rows/s' % (copy_seconds,
                                                                per_s(rows, copy_seconds)))
    print('(c) naive create()+Faker    : %7.1f s  %9s rows/s  (%.0f us/row over %d rows, '
          'extrapolated)' % (naive_total, per_s(rows, naive_total), naive_per_row * 1e6,
                             args.naive_rows))
    print('seed/COPY : %.2f (loading phase), %.2f (whole command); target <= 1.5'
          % (load / copy_seconds, wall / copy_seconds))
    print('naive/seed: %.1f (whole command)' % (naive_total / wall))
    print('peak RSS at --orgs %d (%s rows) / --orgs %d (%s rows); target < 200 MB and flat:'
          % (args.small_orgs, '{:,}'.format(small['summary']['total_rows']), args.orgs,
             '{:,}'.format(rows)))
    for label, key in (('seed process (COPY)', 'self_mb'),
                       ('its forked generator', 'generator_mb'),
                       ('wait4 of the command (max of both)', 'rss_mb')):
        print('    %-36s %5.0f MB / %5.0f MB' % (label, small[key],
                                                max(run[key] for run in runs)))


def per_s(rows, seconds):
    return '{:,.0f}'.format(rows / seconds)


def run_seed(url, orgs, scale):
    """`hub seed` as its own process: its summary, wall time and peak RSS (os.wait4)."""
    command = [sys.executable, '-m', 'hub', '--database-url', url, 'seed', '--orgs', str(orgs),
               '--scale', scale, '--seed', '1', '--as-of', AS_OF, '--json']
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=out)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode()
    if child.returncode != 0:
        raise SystemExit('hub seed failed (exit %d)' % child.returncode)
    summary = json.loads(text)
    rss_mb = usage.ru_maxrss / 1024  # kilobytes on Linux
    generator_mb = (summary['generator_peak_rss_kb'] or 0) / 1024
    self_mb = (summary['peak_rss_kb'] or 0) / 1024
    print('hub seed --orgs %d: %s rows, %.1f s wall, peak RSS %.0f MB (seed process %.0f MB, '
          'generator %.0f MB)' % (orgs, '{:,}'.format(summary['total_rows']), wall, rss_mb,
                                  self_mb, generator_mb))
    return {'summary': summary, 'wall': wall, 'rss_mb': rss_mb, 'self_mb': self_mb,
            'generator_mb': generator_mb}


def copy_back(database, repeat):
    """Dump the seeded tables to files; `repeat` times empty them and time COPY FROM the files.

    Returns the best time; the tables end up holding the dumped rows (checked by hash).
    """
    from hub.seed import content_hashes
    from hub.seed.generate import COLUMNS, TABLES

    before = content_hashes(database)
    cursor = database.connection().cursor()
    samples = []
    with tempfile.TemporaryDirectory() as folder:
        files = {}
        for table in TABLES:
            files[table] = os.path.join(folder, table + '.copy')
            with open(files[table], 'wb') as fh:
                cursor.copy_expert('COPY %s (%s) TO STDOUT' % (
                    table, ', '.join(COLUMNS[table].split())), fh)
        for _ in range(repeat):
            database.execute_sql('TRUNCATE %s' % ', '.join(TABLES))
            database.execute_sql('CHECKPOINT')
            started = time.perf_counter()
            with database.atomic():
                for table in TABLES:
                    with open(files[table], 'rb') as fh:
                        cursor.copy_expert('COPY %s (%s) FROM STDIN' % (
                            table, ', '.join(COLUMNS[table].split())), fh, size=1 << 20)
            samples.append(time.perf_counter() - started)
            print('COPY of the same rows from files: %.1f s' % samples[-1])
    if content_hashes(database) != before:
        raise SystemExit('COPY back did not restore the same rows')
    return min(samples)


def naive(database, sample):
    """Seconds per row of Model.create() with Faker per field (parents, then executions)."""
    from faker import Faker

    from hub.models import (AIAgent, ExecutionStatus, Organization, OrganizationMember, User,
                            Workflow, WorkflowExecution, AgentExecution)

    fake = Faker()
    Faker.seed(1)
    made = 0
    started = time.perf_counter()
    with database.atomic():
        while made < sample:
            org = Organization.create(name=fake.company()[:100],
                                      slug='%s-%s' % (fake.slug(), fake.pystr(5, 5).lower()))
            user = User.create(email=fake.unique.email(), name=fake.name())
            OrganizationMember.create(organization=org, user=user, role='OWNER',
                                      accepted_at=org.created_at)
            agent = AIAgent.create(name=fake.first_name(), description=fake.sentence(),
                                   personality={'tone': fake.word(), 'traits': fake.words(3)},
                                   model_config={'provider': 'openai', 'model': 'gpt-4o',
                                                 'temperature': fake.pyfloat(right_digits=1, min_value=0,
                                                                               max_value=1)},
                                   memory={}, organization=org, creator=user)
            workflow = Workflow.create(name=fake.catch_phrase()[:100], description=fake.text(),
                                       nodes=[], edges=[], organization=org, creator=user)
            made += 5
            for _ in range(40):
                started_at = fake.date_time_between('-8w', '-1d', tzinfo=datetime.timezone.utc)
                run = WorkflowExecution.create(
                    organization=org, workflow=workflow, status=ExecutionStatus.COMPLETED,
                    started_at=started_at, input={'email': fake.email(), 'name': fake.name()},
                    output={'result': fake.sentence()},
                    logs=[{'nodeId': fake.word(), 'message': fake.sentence()} for _ in range(3)],
                    nodes_executed=3, tokens_used=fake.random_int(100, 5000))
                AgentExecution.create(organization=org, agent=agent, workflow_execution=run,
                                      task=fake.sentence(), input={'prompt': fake.text()},
                                      output={'text': fake.paragraph()}, started_at=started_at,
                                      tokens_used=fake.random_int(100, 5000), model='gpt-4o',
                                      provider='openai')
                made += 2
    seconds = time.perf_counter() - started
    print('naive: %d rows in %.1f s' % (made, seconds))
    return seconds / made


if __name__ == '__main__':
    main()
