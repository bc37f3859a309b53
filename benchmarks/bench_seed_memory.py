"""Peak memory of `hub seed --orgs N --scale tiny` at 10, 10,000 and 1,000,000 organizations.

    $ DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres python -m benchmarks.bench_seed_memory
    $ python -m benchmarks.bench_seed_memory --sizes 10 10000      # skip the long one

Each size runs the real command in a subprocess on a throwaway database of its own (dropped at
the end) and reads the peak RSS of the command and of the generator process it forks (wait4's
ru_maxrss covers both) together with the wall time and rows per second. Memory must be flat in
--orgs: organizations are made, checked and loaded a window at a time (hub.seed.WINDOW), so the
peak depends on the batch size, not on N. 1,000,000 tiny organizations are ~55,000,000 rows:
96 minutes on a 2-core machine against a server with 6 GB of shared_buffers (9,568 rows/s;
111.5 MB, 1.93x the 10's); hours against one with 128 MB, whose cache the randomly keyed
indexes outgrow (docs/benchmarks.md).
"""
import argparse
import os
import subprocess
import sys
import time

from tools.throwaway import Databases

AS_OF = '2025-01-31'


def measure(url, orgs):
    """(peak RSS KB, seconds, exit code) of one `hub seed --orgs ORGS --scale tiny`."""
    from cryptography.fernet import Fernet

    env = dict(os.environ, DATABASE_URL=url, HUB_SECRET_KEY=Fernet.generate_key().decode())
    begun = time.perf_counter()
    process = subprocess.Popen([sys.executable, '-m', 'hub', 'seed', '--orgs', str(orgs),
                                '--scale', 'tiny', '--yes', '--quiet', '--as-of', AS_OF], env=env)
    _, status, usage = os.wait4(process.pid, 0)
    return usage.ru_maxrss, time.perf_counter() - begun, os.waitstatus_to_exitcode(status)


def main(argv=None):
    from hub import connection
    from hub.seed.generate import TABLES

    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[10, 10000, 1000000],
                        help='numbers of organizations to seed, one run each')
    args = parser.parse_args(argv)
    dbs = Databases(connection.resolve_url(), prefix='hub_bench')
    try:
        print('%12s  %12s  %10s  %12s  %s' % ('orgs', 'peak RSS MB', 'seconds', 'rows/s',
                                              'peak / the first size\'s'))
        first = None
        for orgs in args.sizes:
            name = dbs.create()
            url = dbs.url(name)
            peak, seconds, code = measure(url, orgs)
            if code != 0:
                print('hub seed --orgs %d failed (exit %d)' % (orgs, code), file=sys.stderr)
                return 1
            database = connection.open_database(url)
            try:
                rows = database.execute_sql('SELECT %s' % ' + '.join(
                    '(SELECT count(*) FROM %s)' % table for table in TABLES)).fetchone()[0]
            finally:
                database.close()
            first = first or peak
            print('%12s  %12.1f  %10.1f  %12s  %.2fx' % ('{:,}'.format(orgs), peak / 1024, seconds,
                                                         '{:,.0f}'.format(rows / seconds),
                                                         peak / first), flush=True)
            dbs.drop(name)
    finally:
        dbs.drop_all()
    return 0


if __name__ == '__main__':
    sys.exit(main())
