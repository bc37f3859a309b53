"""Export and import of the largest seeded organization, against plain COPY of the same rows.

    $ python -m benchmarks.bench_snapshot              # server from $DATABASE_URL, else embedded
    $ python -m benchmarks.bench_snapshot --orgs 2 --scale large

On two throwaway databases of the server in use: seeds `--orgs` organizations, exports the
largest with hub.snapshot (JSON text), imports it into the second database (one transaction),
and measures, in the same run, the baseline PostgreSQL offers for the same rows: COPY ... TO
STDOUT of each table's rows of that organization, and COPY FROM STDIN back into a third copy.
Prints rows/s each way and the ratios snapshot / COPY. Drops its databases at the end.
"""
import argparse
import io
import os
import time

import psycopg2

from hub import connection
from hub import lifecycle, seed, snapshot
from tools.throwaway import Databases


def copy_round_trip(source, target, doc):
    """COPY out the organization's rows table by table, then COPY them into `target`."""
    org_id = doc['organization_id']
    # The same rows the snapshot carries: the system templates its workflows use, then its own.
    parts = [snapshot.SYSTEM_TEMPLATES] + list(snapshot.tables())
    buffers = []
    started = time.perf_counter()
    with source.cursor() as cur:
        for table, where in parts:
            buf = io.StringIO()
            cur.copy_expert('COPY (SELECT * FROM %s WHERE %s) TO STDOUT'
                            % (table, cur.mogrify(where, (org_id,)).decode()), buf)
            buffers.append(buf)
    out_seconds = time.perf_counter() - started
    started = time.perf_counter()
    with target.cursor() as cur:
        for (table, _), buf in zip(parts, buffers):
            buf.seek(0)
            cur.copy_expert('COPY %s FROM STDIN' % table, buf)
    target.commit()
    return out_seconds, time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--orgs', type=int, default=2)
    parser.add_argument('--scale', default='large')
    args = parser.parse_args()

    from cryptography.fernet import Fernet

    # The seeder encrypts integration credentials; a throwaway key does for a throwaway database.
    os.environ.setdefault('HUB_SECRET_KEY', Fernet.generate_key().decode())
    server = connection.resolve_url()
    with Databases(server, prefix='hub_bench_snap') as dbs:
        names = [dbs.create() for _ in ('source', 'snapshot import', 'COPY')]
        source = connection.bind(connection.open_database(dbs.url(names[0])))
        seed.seed_database(source, orgs=args.orgs, scale=args.scale, seed=42)
        org_id = source.execute_sql(
            'SELECT organization_id FROM workflow_executions GROUP BY 1 '
            'ORDER BY count(*) DESC LIMIT 1').fetchone()[0]

        started = time.perf_counter()
        text = snapshot.dumps(snapshot.export_organization(source, org_id))
        export_seconds = time.perf_counter() - started
        doc = snapshot.loads(text)
        rows = sum(len(r) for r in doc['tables'].values()) + len(doc['system_templates'])

        target = connection.open_database(dbs.url(names[1]))
        lifecycle.migrate_database(target)
        started = time.perf_counter()
        snapshot.import_organization(target, snapshot.loads(text))
        import_seconds = time.perf_counter() - started
        assert snapshot.dumps(snapshot.export_organization(target, org_id)) == text

        copy_target = psycopg2.connect(dbs.url(names[2]))
        lifecycle.migrate_database(connection.open_database(dbs.url(names[2])))
        copy_out, copy_in = copy_round_trip(source.connection(), copy_target, doc)
        copy_target.close()

        print('largest organization of %d at --scale %s: %s rows, snapshot %.1f MB'
              % (args.orgs, args.scale, '{:,}'.format(rows), len(text) / 1e6))
        print('export: %.2f s, %s rows/s; COPY TO: %.2f s, %s rows/s; ratio %.2fx'
              % (export_seconds, '{:,.0f}'.format(rows / export_seconds), copy_out,
                 '{:,.0f}'.format(rows / copy_out), export_seconds / copy_out))
        print('import: %.2f s, %s rows/s; COPY FROM: %.2f s, %s rows/s; ratio %.2fx'
              % (import_seconds, '{:,.0f}'.format(rows / import_seconds), copy_in,
                 '{:,.0f}'.format(rows / copy_in), import_seconds / copy_in))
        source.close()
        target.close()


if __name__ == '__main__':
    main()
