"""How fast `hub --help` starts, as a ratio against `python -c "import peewee"` in the same run.

    $ .venv/bin/python -m benchmarks.bench_startup     # 30 runs of each, medians and the ratio

`hub --help` must not import Faker, the embedded server, psycopg2 or the seeder; the command
modules import the library inside their functions. A ratio near 1 means the CLI costs no more
than the ORM it sits on.
"""
import statistics
import subprocess
import sys
import time

RUNS = 30


def median_seconds(argv):
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    baseline = median_seconds([sys.executable, '-c', 'import peewee'])
    hub_help = median_seconds([sys.executable, '-m', 'hub', '--help'])
    print('python -c "import peewee": %.1f ms (median of %d)' % (baseline * 1000, RUNS))
    print('hub --help:                %.1f ms (median of %d)' % (hub_help * 1000, RUNS))
    print('ratio hub --help / import peewee: %.2fx' % (hub_help / baseline))


if __name__ == '__main__':
    main()
