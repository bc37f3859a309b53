"""Benchmark hub on a Citus cluster against a single PostgreSQL on the same machine.

    $ DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
      HUB_CITUS_URL=postgresql://postgres@127.0.0.1:5440/postgres python -m benchmarks.bench_citus
    $ python -m benchmarks.bench_citus --orgs 40 --scale medium --repeat 2 --runs 40

The single node is $DATABASE_URL's server (else the embedded one), the cluster's coordinator
$HUB_CITUS_URL (tools/citus_cluster.sh: a coordinator and two workers). Both run on this
machine's cores, so every ratio compares the same hardware. Each sample makes a throwaway
database on each (on every Citus node), migrates it with `hub db migrate` (which distributes
the tables on Citus), then measures, alternating which server goes first:

(a) `hub seed` of the same options on each (the whole command, and its loading phase);
(b) `hub seed --reset --yes` of the same options (empty every table, seed again), and the
    TRUNCATE of every table alone (hub.seed.remove_all, rolled back);

and checks that both servers hold the same rows (hub.seed.content_hashes). Then, on the last
pair, `--runs` rounds of tenant queries, interleaved, each timed on the client around the query
alone (its identity set first, as `hub.rls.as_user` sets it; one transaction per request, as
PostgREST):

(c) the latest 50 workflow executions of an organization, naming it
    (`WHERE organization_id = $org`): on Citus a router query, one shard;
(d) the same query without the filter, row-level security alone scoping it (what supabase-js
    sends without `.eq('organization_id', org)`): on Citus it runs on every shard;

as its OWNER under row-level security, and (c) as the table owner too. It prints every sample,
the medians, and each Citus figure as a ratio to the single node's in the same run, with the
Citus plan's task count. Only ratios compare across runs: the absolute times are this machine's.
"""
import argparse
import contextlib
import json
import os
import statistics
import sys
import time

from benchmarks.bench_sqlfile import run as run_command
from tools.throwaway import CitusDatabases, Databases

AS_OF = '2025-01-31'
LATEST = ('SELECT id, status, started_at FROM workflow_executions {where}'
          'ORDER BY started_at DESC LIMIT 50')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--orgs', type=int, default=20)
    parser.add_argument('--scale', default='medium')
    parser.add_argument('--repeat', type=int, default=2, help='seed samples per server')
    parser.add_argument('--runs', type=int, default=40, help='rounds of each query')
    parser.add_argument('--shards', type=int, default=32,
                        help="shards per distributed table (citus.shard_count while `hub db "
                             "migrate` distributes; Citus' default is 32, the test cluster's 4)")
    parser.add_argument('--citus-url', default=os.environ.get('HUB_CITUS_URL'))
    args = parser.parse_args(argv)
    if not args.citus_url:
        raise SystemExit('no Citus cluster: set HUB_CITUS_URL (or --citus-url) to its '
                         'coordinator; tools/citus_cluster.sh builds one')

    from cryptography.fernet import Fernet

    from hub import connection

    os.environ.setdefault('HUB_SECRET_KEY', Fernet.generate_key().decode())
    single_server = connection.resolve_url()
    print('single node: %s; Citus coordinator: %s, %d shards per distributed table; %d CPUs'
          % (connection.redact(single_server), connection.redact(args.citus_url), args.shards,
             os.cpu_count()))
    options = ['--orgs', str(args.orgs), '--scale', args.scale, '--seed', '1', '--as-of', AS_OF]
    samples = {'single': [], 'citus': []}
    with Databases(single_server, prefix='hub_bench') as single, \
            CitusDatabases(args.citus_url, prefix='hub_bench') as citus:
        servers = {'single': single, 'citus': citus}
        for sample in range(args.repeat):
            for dbs in servers.values():
                dbs.drop_all()  # one pair at a time: the disk and the cores are shared
            urls = {name: dbs.url(dbs.create()) for name, dbs in servers.items()}
            run(['db', 'migrate'], urls['single'])
            run(['db', 'migrate'], urls['citus'], shards=args.shards)
            check_distributed(urls['citus'])
            order = ('single', 'citus') if sample % 2 == 0 else ('citus', 'single')
            figures = {name: {} for name in order}
            for name in order:
                wall, out = run(['seed'] + options + ['--json'], urls[name])
                summary = json.loads(out)
                figures[name].update(seed=wall, loading=summary['seconds'],
                                     rows=summary['total_rows'])
            same_content(urls)
            for name in order:
                figures[name]['truncate'] = truncate_alone(urls[name])
            for name in order:
                figures[name]['reset'], _ = run(['seed'] + options + ['--reset', '--yes',
                                                                      '--json'], urls[name])
            same_content(urls)
            for name in order:
                samples[name].append(figures[name])
            print('sample %d: %s' % (sample + 1, '; '.join(
                '%s: seed %.1f s (loading %.1f s), reset %.1f s, TRUNCATE %.2f s'
                % (name, f['seed'], f['loading'], f['reset'], f['truncate'])
                for name, f in figures.items())))
        rows = samples['single'][0]['rows']
        print()
        print('{:,} rows ({} organizations, {} scale, seed 1, as of {}); both servers hold the '
              'same rows (content hashes)'.format(rows, args.orgs, args.scale, AS_OF))
        best = {name: {key: min(f[key] for f in found) for key in found[0]}
                for name, found in samples.items()}
        for key, label in (('seed', 'hub seed, whole command'),
                           ('loading', 'hub seed, loading phase'),
                           ('reset', 'hub seed --reset, whole command'),
                           ('truncate', 'TRUNCATE of every table')):
            print('%-32s single %7.2f s   Citus %7.2f s   Citus/single %5.2fx'
                  % (label, best['single'][key], best['citus'][key],
                     best['citus'][key] / best['single'][key]))
        print()
        queries(urls, args.runs)


def check_distributed(url):
    from hub import connection

    database = connection.open_database(url)
    try:
        count = database.execute_sql('SELECT count(*) FROM pg_dist_partition').fetchone()[0]
    finally:
        database.close()
    if not count:
        raise SystemExit('`hub db migrate` left the tables of %s undistributed; this benchmark '
                         'measures the distributed schema' % url)


def same_content(urls):
    from hub import connection
    from hub.seed import content_hashes

    hashes = {}
    for name, url in urls.items():
        database = connection.open_database(url)
        try:
            hashes[name] = content_hashes(database)
        finally:
            database.close()
    differ = sorted(t for t in hashes['single'] if hashes['single'][t] != hashes['citus'][t])
    if differ:
        raise SystemExit('Citus and the single node hold different rows in %s' % ', '.join(differ))


def truncate_alone(url):
    """Seconds of hub.seed.remove_all (TRUNCATE of every table), rolled back."""
    from hub import connection
    from hub.seed import remove_all

    database = connection.bind(connection.open_database(url))
    try:
        with database.atomic() as transaction:
            started = time.perf_counter()
            remove_all(database)
            seconds = time.perf_counter() - started
            transaction.rollback()
    finally:
        database.close()
    return seconds


def queries(urls, runs):
    from hub import connection, rls

    databases = {name: connection.bind(connection.open_database(url))
                 for name, url in urls.items()}
    try:
        # The organization with the most executions, and its OWNER: the same on both servers.
        org, user = databases['single'].execute_sql("""
            SELECT e.organization_id, m.user_id FROM workflow_executions e
            JOIN organization_members m ON m.organization_id = e.organization_id
                                       AND m.role = 'OWNER'
            GROUP BY 1, 2 ORDER BY count(*) DESC, 1 LIMIT 1""").fetchone()
        named = LATEST.format(where='WHERE organization_id = %s ')
        unfiltered = LATEST.format(where='')
        variants = [
            ('(c) latest 50, naming its organization, as the table owner', named, (org,), None),
            ('(c) latest 50, naming its organization, as its OWNER under RLS', named, (org,),
             user),
            ('(d) latest 50, no filter, as its OWNER under RLS (RLS alone scopes it)',
             unfiltered, (), user),
        ]
        timings = {(label, name): [] for label, *_ in variants for name in databases}
        rowcounts = {}
        for _ in range(runs):
            for label, sql, params, as_user in variants:
                for name, database in databases.items():
                    seconds, count = timed(database, rls, sql, params, as_user)
                    timings[label, name].append(seconds)
                    rowcounts.setdefault((label, name), count)
        for label, sql, params, as_user in variants:
            if rowcounts[label, 'single'] != rowcounts[label, 'citus']:
                raise SystemExit('%s: %d rows on the single node, %d on Citus'
                                 % (label, rowcounts[label, 'single'], rowcounts[label, 'citus']))
            single = statistics.median(timings[label, 'single']) * 1000
            citus = statistics.median(timings[label, 'citus']) * 1000
            print(label)
            print('    single %.3f ms   Citus %.3f ms (%s)   Citus/single %.2fx   (%d rows, '
                  'medians of %d)' % (single, citus, tasks(databases['citus'], rls, sql, params,
                                                           as_user),
                                      citus / single, rowcounts[label, 'single'], runs))
    finally:
        for database in databases.values():
            database.close()


def timed(database, rls, sql, params, user):
    """Client seconds of `sql` alone, in a transaction of its own (as `user` under RLS, when
    given); and how many rows it returned."""
    with database.atomic() as transaction:
        with identity(database, rls, user):
            started = time.perf_counter()
            count = len(database.execute_sql(sql, params).fetchall())
            seconds = time.perf_counter() - started
        transaction.rollback()
    return seconds, count


def identity(database, rls, user):
    return rls.as_user(database, user) if user is not None else contextlib.nullcontext()


def tasks(database, rls, sql, params, user):
    """What the Citus plan says: 'router, 1 task' or 'N tasks'."""
    connection = database.connection()
    del connection.notices[:]
    with database.atomic() as transaction:
        database.execute_sql('SET LOCAL client_min_messages = debug2')
        with identity(database, rls, user):
            plan = '\n'.join(row[0] for row in database.execute_sql('EXPLAIN ' + sql, params))
        transaction.rollback()
    count = next((line.split(':')[1].strip() for line in plan.splitlines()
                  if 'Task Count:' in line), '?')
    router = any('Creating router plan' in notice for notice in connection.notices)
    return '%s%s task%s' % ('router, ' if router else '', count, '' if count == '1' else 's')


def run(args, url, shards=None):
    """`hub ARGS` on `url`; (wall seconds, stdout). Exits on failure, with its stderr. With
    `shards`, its sessions distribute tables in that many shards (citus.shard_count)."""
    saved = os.environ.get('PGOPTIONS')
    if shards is not None:
        os.environ['PGOPTIONS'] = ('%s -c citus.shard_count=%d' % (saved or '', shards)).strip()
    try:
        return run_command([sys.executable, '-m', 'hub', '--database-url', url] + args)
    finally:
        if shards is not None:
            if saved is None:
                del os.environ['PGOPTIONS']
            else:
                os.environ['PGOPTIONS'] = saved


if __name__ == '__main__':
    main()
