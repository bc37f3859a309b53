"""Benchmark the seed as an SQL file (`hub seed --sql`, then `psql -f`) against `hub seed`.

    $ DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres python -m benchmarks.bench_sqlfile
    $ python -m benchmarks.bench_sqlfile --orgs 60 --scale medium --repeat 3

With the same options (default: 30 organizations, medium scale, ~120,000 rows), in one run on
one server, each --repeat times (the best sample counts; every sample is printed):

(a) `hub seed` into a database built by `hub db sql`: the whole command, and its loading phase;
(b) `hub seed --sql FILE`: writing the file, no database;
(c) `psql -v ON_ERROR_STOP=1 -1 -f FILE` into another database built by `hub db sql`;

then checks that (a) and (c) hold the same rows (content hashes), and prints rows/s of each and
the ratios (b)/(a) and (c)/(a) in rows/s: above 1 is faster than `hub seed`. Timings are of this
machine and this run; only the ratios compare.
"""
import argparse
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
    parser.add_argument('--orgs', type=int, default=30)
    parser.add_argument('--scale', default='medium')
    parser.add_argument('--repeat', type=int, default=2)
    args = parser.parse_args(argv)

    from cryptography.fernet import Fernet

    from hub import connection
    from hub.seed import content_hashes

    os.environ.setdefault('HUB_SECRET_KEY', Fernet.generate_key().decode())
    server = connection.resolve_url()
    print('server: %s, %d CPUs' % (connection.redact(server), os.cpu_count()))
    options = ['--orgs', str(args.orgs), '--scale', args.scale, '--seed', '1', '--as-of', AS_OF]
    seeds, files, loads = [], [], []
    with tempfile.TemporaryDirectory() as folder, Databases(server, prefix='hub_bench') as dbs:
        schema = os.path.join(folder, 'schema.sql')
        seed_file = os.path.join(folder, 'seed.sql')
        run([sys.executable, '-m', 'hub', 'db', 'sql', '-o', schema])
        for sample in range(args.repeat):
            dbs.drop_all()  # one pair of databases at a time: the disk is shared too
            seeded, loaded = (dbs.url(dbs.create()) for _ in range(2))
            for url in (seeded, loaded):
                run(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', schema, '-d', url])
            wall, out = run([sys.executable, '-m', 'hub', '--database-url', seeded, 'seed']
                            + options + ['--json'])
            summary = json.loads(out)
            rows = summary['total_rows']
            seeds.append((wall, summary['seconds']))
            wall, out = run([sys.executable, '-m', 'hub', 'seed'] + options
                            + ['--json', '--sql', seed_file])
            files.append(wall)
            size = os.path.getsize(seed_file)
            wall, _ = run(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-1', '-f', seed_file,
                           '-d', loaded])
            loads.append(wall)
            print('sample %d: hub seed %.1f s (loading %.1f s), hub seed --sql %.1f s '
                  '(%.0f MB), psql -f %.1f s' % (sample + 1, seeds[-1][0], seeds[-1][1],
                                                 files[-1], size / 1e6, loads[-1]))
        hashes = []
        for url in (seeded, loaded):
            database = connection.open_database(url)
            hashes.append(content_hashes(database))
            database.close()
        if hashes[0] != hashes[1]:
            raise SystemExit('the loaded file differs from hub seed: %s' % sorted(
                t for t in hashes[0] if hashes[0][t] != hashes[1][t]))

    seed_wall = min(w for w, _ in seeds)
    seed_load = min(s for _, s in seeds)
    file_wall, load_wall = min(files), min(loads)
    print()
    print('rows: {:,} in {} organizations ({} scale), plus the marketplace; loaded file equals '
          'hub seed (content hashes)'.format(rows, args.orgs, args.scale))
    print('(a) hub seed, whole command    : %6.1f s  %9s rows/s' % (seed_wall,
                                                                  per_s(rows, seed_wall)))
    print('    hub seed, loading phase    : %6.1f s  %9s rows/s' % (seed_load,
                                                                  per_s(rows, seed_load)))
    print('(b) hub seed --sql (the file)  : %6.1f s  %9s rows/s' % (file_wall,
                                                                  per_s(rows, file_wall)))
    print('(c) psql -1 -f (loading it)    : %6.1f s  %9s rows/s' % (load_wall,
                                                                  per_s(rows, load_wall)))
    print('    (b) then (c)               : %6.1f s  %9s rows/s' % (
        file_wall + load_wall, per_s(rows, file_wall + load_wall)))
    print('rows/s vs hub seed (whole command): file %.2f, psql load %.2f, both %.2f'
          % (seed_wall / file_wall, seed_wall / load_wall, seed_wall / (file_wall + load_wall)))
    print('rows/s vs hub seed (loading phase): file %.2f, psql load %.2f'
          % (seed_load / file_wall, seed_load / load_wall))


def per_s(rows, seconds):
    return '{:,.0f}'.format(rows / seconds)


def run(command):
    """Run `command`; (wall seconds, stdout). Exits on failure, with its stderr."""
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit('%s failed (exit %d): %s' % (' '.join(command[:6]), result.returncode,
                                                       result.stderr.strip()[-500:]))
    return wall, result.stdout


if __name__ == '__main__':
    main()
