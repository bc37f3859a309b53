"""What a tenant's queries cost as the fleet grows: same tenant, 200 -> 2,000 -> 20,000 orgs.

    $ DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres python -m benchmarks.bench_fleet
    $ python -m benchmarks.bench_fleet --quick          # stops at 2,000 organizations (~4 min)

One throwaway database (dropped at the end, also on Ctrl-C) grows in place: organizations of
equal size (--per-org executions each, one a day at an hour of their own, so every tenant's rows
interleave in time with everyone else's), written as the table owner with INSERT ... SELECT
generate_series, then VACUUM ANALYZE. At each fleet size the same tenant (org1, one OWNER)
runs three queries, each unfiltered (RLS alone scopes it: what supabase-js sends) and filtered
by its organization:

    latest 50        SELECT * ... ORDER BY started_at DESC LIMIT 50
    count by status  SELECT status, count(*) ... GROUP BY status
    one workflow     SELECT * ... WHERE workflow_id = $1 ORDER BY started_at DESC LIMIT 50

through a login role that is neither owner nor superuser, as PostgREST does (SET LOCAL ROLE
authenticated + request.jwt.claims), under every design measured:

    indexes   b-tree (0001)     standalone b-trees on started_at, status, workflow_id (0001-0005)
              BRIN started_at   BRIN on started_at; status and workflow_id b-trees kept
              BRIN (0006)       BRIN on started_at, status kept, (workflow_id, started_at)
                                instead of workflow_id (migration 0006)
              BRIN + partial    as 0006, the status b-tree replaced by a partial index on
                                started_at WHERE status IN ('PENDING', 'RUNNING')
    policies  members           hub rls install (organization_id = ANY (org_ids()))
              active            hub rls install --mode active (organization_id = active_org_id())
              view              members, queried through a security_invoker view scoped to the
                                organization_id claim (bench only)

Every figure is a ratio to the table owner's filtered query in the same phase (members rows:
the baseline row printed above them; active rows: the same query measured again while the
active policies are installed, not printed), and each fleet size's figure a growth against 200
organizations: of client time, of server time, and of that ratio (which the machine's load,
different from phase to phase, does not move). Then a tenant of --big executions joins the
largest fleet and runs the same queries. Service queries across tenants (service_role: the
latest 50 of the last day, the pending/running queue) show what each index design keeps for
the platform. The machine's noise is large: read ratios, not milliseconds.
"""
import argparse
import contextlib
import json
import statistics
import sys
import time

import psycopg2

from benchmarks.bench_rls import add_server_options, client_time, plan_summary, server_time
from tools.throwaway import throwaway_database, with_user

LOGIN = 'hub_bench_fleet_api'
TENANT, BIG = '1', 'big'

QUERIES = {
    'latest 50': 'SELECT * FROM {table}{where} ORDER BY started_at DESC LIMIT 50',
    'count by status': 'SELECT status, count(*) FROM {table}{where} GROUP BY status',
    'one workflow': ('SELECT * FROM {table} WHERE workflow_id = %(workflow)s{and} '
                     'ORDER BY started_at DESC LIMIT 50'),
}
SERVICE = {
    'fleet: latest 50 of the last day': (
        'SELECT * FROM workflow_executions WHERE started_at >= %(since)s '
        'ORDER BY started_at DESC LIMIT 50'),
    'fleet: pending/running queue': (
        "SELECT id, organization_id, started_at FROM workflow_executions "
        "WHERE status IN ('PENDING', 'RUNNING') ORDER BY started_at LIMIT 100"),
}

STATUSES = ("(ARRAY['COMPLETED', 'COMPLETED', 'COMPLETED', 'COMPLETED', 'COMPLETED', 'COMPLETED',"
            " 'COMPLETED', 'FAILED', 'FAILED', 'CANCELLED', 'RUNNING', 'PENDING'])"
            "[1 + (%s) %%%% 12]::execution_status")

GROW = """
INSERT INTO organizations (id, name, slug)
    SELECT 'org' || o, 'Org ' || o, 'org-' || o FROM generate_series(%(lo)s, %(hi)s) o;
INSERT INTO users (id, email)
    SELECT 'usr' || o, 'u' || o || '@example.com' FROM generate_series(%(lo)s, %(hi)s) o;
INSERT INTO organization_members (id, organization_id, user_id, role, accepted_at)
    SELECT 'mem' || o, 'org' || o, 'usr' || o, 'OWNER', now()
    FROM generate_series(%(lo)s, %(hi)s) o;
INSERT INTO workflows (id, name, nodes, edges, organization_id, created_by)
    SELECT 'wf' || o || '_' || k, 'Workflow ' || k, '[]', '[]', 'org' || o, 'usr' || o
    FROM generate_series(%(lo)s, %(hi)s) o, generate_series(1, 10) k;
-- One execution a day per organization, each at an hour of its own: day by day, in time order
-- as a live table is written (LATERAL keeps the days outermost without sorting 6M rows).
INSERT INTO workflow_executions (id, organization_id, workflow_id, status, started_at,
                                 completed_at, duration, input, output, nodes_executed,
                                 tokens_used, cost)
    SELECT 'ex' || o || '_' || d, 'org' || o, 'wf' || o || '_' || (1 + d %% 10),
           """ + STATUSES % 'd * 7 + o' + """,
           timestamptz '2025-01-01' + d * interval '1 day' + (o * 7919 %% 86400) * interval '1 s',
           timestamptz '2025-01-01' + d * interval '1 day' + (o * 7919 %% 86400 + 4) * interval '1 s',
           4000, '{"lead": {"email": "ada@example.com"}}', '{"score": 87}', 5, 1200, 0.42
    FROM generate_series(0, %(days)s - 1) d
         CROSS JOIN LATERAL generate_series(%(lo)s + 0 * d, %(hi)s) o;
"""

# The large tenant: --big executions over the same days as everyone else.
GROW_BIG = """
INSERT INTO organizations (id, name, slug) VALUES ('orgbig', 'Big', 'org-big');
INSERT INTO users (id, email) VALUES ('usrbig', 'big@example.com');
INSERT INTO organization_members (id, organization_id, user_id, role, accepted_at)
    VALUES ('membig', 'orgbig', 'usrbig', 'OWNER', now());
INSERT INTO workflows (id, name, nodes, edges, organization_id, created_by)
    SELECT 'wfbig_' || k, 'Workflow ' || k, '[]', '[]', 'orgbig', 'usrbig'
    FROM generate_series(1, 10) k;
INSERT INTO workflow_executions (id, organization_id, workflow_id, status, started_at,
                                 completed_at, duration, input, output, nodes_executed,
                                 tokens_used, cost)
    SELECT 'exbig_' || i, 'orgbig', 'wfbig_' || (1 + i %% 10), """ + STATUSES % 'i * 7' + """,
           timestamptz '2025-01-01' + i * (%(days)s * interval '1 day' / %(rows)s),
           timestamptz '2025-01-01' + i * (%(days)s * interval '1 day' / %(rows)s) + interval '4 s',
           4000, '{"lead": {"email": "ada@example.com"}}', '{"score": 87}', 5, 1200, 0.42
    FROM generate_series(0, %(rows)s - 1) i;
"""

#: The indexes the designs differ by (migration 0001's started_at, status, workflow_id, dropped
#: at the start, are rebuilt under these names where a design has them).
OPTIONAL = {
    'started_at': 'CREATE INDEX bench_opt_started_at ON workflow_executions (started_at)',
    'status': 'CREATE INDEX bench_opt_status ON workflow_executions (status)',
    'workflow_id': 'CREATE INDEX bench_opt_workflow_id ON workflow_executions (workflow_id)',
    'workflow_id_started_at': 'CREATE INDEX bench_opt_workflow_id_started_at '
                              'ON workflow_executions (workflow_id, started_at)',
}
FROM_0001 = ('started_at', 'status', 'workflow_id')
# Present in every phase: the planner never picks BRIN for an order, nor this partial index
# for a query whose WHERE does not imply its predicate.
ALWAYS = ["CREATE INDEX bench_started_at_brin ON workflow_executions USING brin (started_at)",
          "CREATE INDEX bench_active_started_at ON workflow_executions (started_at) "
          "WHERE status IN ('PENDING', 'RUNNING')"]
# In this order, each phase builds one or two indexes.
DESIGNS = (('BRIN + partial', ('workflow_id_started_at',)),
           ('BRIN (0006)', ('workflow_id_started_at', 'status')),
           ('BRIN started_at', ('status', 'workflow_id')),
           ('b-tree (0001)', ('status', 'workflow_id', 'started_at')))
VIEW = """
CREATE VIEW bench_active_executions WITH (security_invoker = true) AS
    SELECT * FROM workflow_executions
    WHERE organization_id = (SELECT hub_private.active_org_id());
GRANT SELECT ON bench_active_executions TO authenticated;
"""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true', help='stop at 2,000 organizations')
    parser.add_argument('--sizes', default='200,2000,20000',
                        help='fleet sizes, ascending (default 200,2000,20000)')
    parser.add_argument('--per-org', type=int, default=300,
                        help='executions per organization (default 300)')
    parser.add_argument('--big', type=int, default=1000000,
                        help='executions of the large tenant (default 1000000; 0: none)')
    parser.add_argument('--runs', type=int, default=11,
                        help='timed runs per variant and query (default 11)')
    add_server_options(parser)
    args = parser.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(',')]
    if args.quick:
        args.sizes = [s for s in args.sizes if s <= 2000]
    if args.sizes != sorted(set(args.sizes)) or args.sizes[0] < 2 or args.per_org < 60 \
            or args.runs < 3:
        parser.error('need ascending --sizes >= 2, --per-org >= 60, --runs >= 3')
    return args


class Variant:
    """A caller and a form of the query: who, under which mode, filtered or not."""

    def __init__(self, name, mode, user=None, org=None, filtered=False, view=False,
                 claim=False, role='authenticated'):
        self.name, self.mode, self.filtered, self.view = name, mode, filtered, view
        self.role = role if user or role != 'authenticated' else None
        self.claims = None
        if user is not None:
            self.claims = {'sub': user, 'role': role}
            if claim:
                self.claims['organization_id'] = org
        self.org = org

    def sql(self, template):
        where = "organization_id = '%s'" % self.org if self.filtered else ''
        return template.format(
            table='bench_active_executions' if self.view else 'workflow_executions',
            where=' WHERE ' + where if where else '', **{'and': ' AND ' + where if where else ''})

    @contextlib.contextmanager
    def session(self, conns):
        conn = conns['api'] if self.role else conns['owner']
        with conn.cursor() as cur:
            cur.execute('BEGIN')
            if self.role:
                cur.execute('SET LOCAL ROLE %s' % self.role)
                cur.execute("SELECT set_config('request.jwt.claims', %s, true)",
                            (json.dumps(self.claims or {'role': self.role}),))
            try:
                yield cur
            finally:
                cur.execute('ROLLBACK')


def variants(org, user, mode, with_view):
    out = [Variant('owner, filtered (baseline)', mode, org=org, filtered=True)]
    if mode == 'members':
        out += [Variant('members, unfiltered', mode, user, org),
                Variant('members, filtered', mode, user, org, filtered=True)]
        if with_view:
            out.append(Variant('members + active-org view', mode, user, org, view=True,
                               claim=True))
    else:
        out += [Variant('active, unfiltered', mode, user, org, claim=True),
                Variant('active, filtered', mode, user, org, filtered=True, claim=True)]
    return out


def measure(conns, variants, params, runs, queries=QUERIES):
    """{(variant, query): {'client': median s, 'server': median s, 'plan': str, 'rows': n}}"""
    samples = {(v.name, q): ([], []) for v in variants for q in queries}
    out = {}
    for r in range(runs + 1):  # round 0 warms the caches and records plans
        for v in variants:
            with v.session(conns) as cur:
                for q, template in queries.items():
                    sql, key = v.sql(template), (v.name, q)
                    if r == 0:
                        elapsed, rows = client_time(cur, sql, params)
                        out[key] = {'plan': plan_summary(cur, sql, params), 'rows': (
                            sum(row[-1] for row in rows) if q == 'count by status'
                            else len(rows)), 'slow': elapsed > 0.25}
                        continue
                    if out[key]['slow'] and r > 3:
                        continue  # a 0.25 s query: 3 runs are enough to see it
                    samples[key][0].append(client_time(cur, sql, params)[0])
                    samples[key][1].append(server_time(cur, sql, params))
        print('.', end='', file=sys.stderr, flush=True)
    for key, (client, server) in samples.items():
        out[key].update(client=statistics.median(client), server=statistics.median(server))
    return out


def set_mode(url, mode):
    from hub import connection
    from hub import rls

    database = connection.open_database(url)
    try:
        rls.install(database, mode=mode)
    finally:
        database.close()


def set_design(owner, wanted):
    with owner.cursor() as cur:
        cur.execute("SET maintenance_work_mem = '256MB'")
        for name, sql in OPTIONAL.items():
            cur.execute('SELECT to_regclass(%s)', ('bench_opt_' + name,))
            present = cur.fetchone()[0] is not None
            if name in wanted and not present:
                cur.execute(sql)
            elif name not in wanted and present:
                cur.execute('DROP INDEX bench_opt_' + name)
        cur.execute('RESET maintenance_work_mem')
        cur.execute('ANALYZE workflow_executions')


def phase_results(url, conns, org, user, params, runs, label, service_params=None):
    """Every design x mode for one tenant: {design: {(variant, query): figures}}."""
    results = {}
    for design, btrees in DESIGNS:
        set_design(conns['owner'], btrees)
        found = {}
        for mode in ('members', 'active'):
            set_mode(url, mode)
            got = measure(conns, variants(org, user, mode, design == 'BRIN (0006)'), params,
                          runs)
            base = {q: got[('owner, filtered (baseline)', q)] for q in QUERIES}
            for (name, q), fig in got.items():
                fig['ratio'] = fig['client'] / base[q]['client']
                fig['server_ratio'] = fig['server'] / base[q]['server']
                if name.startswith('owner') and mode == 'active':
                    continue
                found[name, q] = fig
        if service_params is not None:
            set_mode(url, 'members')
            got = measure(conns, [Variant('service_role', 'members', role='service_role')],
                          service_params, max(3, runs // 2), SERVICE)
            found.update({('service_role', q): fig for (_, q), fig in got.items()})
        results[design] = found
    set_design(conns['owner'], DESIGNS[0][1])  # the next load rebuilds only these
    print(file=sys.stderr)
    return results


def report(label, results):
    print('\n== %s' % label)
    print('client ms (ratio to owner filtered) | server ms (ratio) | rows | plan')
    for design, found in results.items():
        print('\n  [%s]' % design)
        for q in list(QUERIES) + list(SERVICE):
            keys = [k for k in found if k[1] == q]
            if not keys:
                continue
            print('    %s' % q)
            for key in keys:
                fig = found[key]
                ratio = '%7.2fx' % fig['ratio'] if 'ratio' in fig else '        '
                sratio = '%7.2fx' % fig['server_ratio'] if 'server_ratio' in fig else '        '
                print('      %-30s %9.3f %s | %9.3f %s | %7s | %s' % (
                    key[0], fig['client'] * 1000, ratio, fig['server'] * 1000, sratio,
                    fig['rows'], fig['plan']))


def report_growth(sizes, by_size):
    """Per fleet size: growth of client time, of server time, and of the ratio to the owner's
    filtered query of the same phase (the machine's load varies between phases; the ratio
    does not carry it)."""
    first = sizes[0]
    print('\n== growth against %d organizations (the same tenant): client time, server time, '
          'ratio to owner filtered' % first)
    print('  %-16s %-27s %-16s' % ('design', 'variant', 'query') + ''.join(
        '%27s' % ('%d orgs' % s) for s in sizes[1:]))
    for design in by_size[first]:
        for key, fig in by_size[first][design].items():
            if key[0] == 'service_role':
                continue
            cells = ''
            for size in sizes[1:]:
                now = by_size[size][design][key]
                cells += '%9.2fx %7.2fx %7.2fx' % (now['client'] / fig['client'],
                                                   now['server'] / fig['server'],
                                                   now['ratio'] / fig['ratio'])
            print('  %-16s %-27s %-16s%s' % (design, key[0][:27], key[1], cells))


def owner_connection(url):
    conn = psycopg2.connect(url)
    conn.autocommit = True
    return conn


def api_connection(url):
    conn = psycopg2.connect(with_user(url, LOGIN))
    conn.autocommit = True
    return conn


@contextlib.contextmanager
def login_role(owner):
    """A PostgREST-like login role: LOGIN NOINHERIT, neither owner nor superuser, may SET ROLE
    authenticated / service_role. Cluster-wide: dropped at the end if this run made it."""
    with owner.cursor() as cur:
        cur.execute('SELECT 1 FROM pg_roles WHERE rolname = %s', (LOGIN,))
        made = cur.fetchone() is None
        if made:
            cur.execute('CREATE ROLE %s LOGIN NOINHERIT' % LOGIN)
        cur.execute('GRANT authenticated, service_role TO %s' % LOGIN)
    try:
        yield
    finally:
        if made:
            with owner.cursor() as cur:
                try:
                    cur.execute('DROP ROLE %s' % LOGIN)
                except psycopg2.Error:
                    pass  # still connected somewhere, or granted in another database


#: Indexes of workflow_executions no key or foreign key needs: dropped during a load, rebuilt
#: after it (a sorted build is several times faster than 6M insertions into each).
REBUILT = """
    SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index
    WHERE indrelid = 'workflow_executions'::regclass AND NOT indisunique"""


def bulk_load(owner, sql):
    with owner.cursor() as cur:
        cur.execute(REBUILT)
        indexes = cur.fetchall()
        for name, _ in indexes:
            cur.execute('DROP INDEX %s' % name)
        # The owner's bulk load: rows consistent by construction, foreign keys not re-checked.
        cur.execute('SET session_replication_role = replica')
        cur.execute(sql)
        cur.execute('SET session_replication_role = DEFAULT')
        cur.execute("SET maintenance_work_mem = '256MB'")
        for _, definition in indexes:
            cur.execute(definition)
        cur.execute('RESET maintenance_work_mem')


def grow(owner, lo, hi, days):
    start = time.perf_counter()
    bulk_load(owner, GROW % {'lo': lo, 'hi': hi, 'days': days})
    with owner.cursor() as cur:
        cur.execute('VACUUM ANALYZE')
        cur.execute("SELECT (SELECT count(*) FROM workflow_executions), correlation FROM pg_stats "
                    "WHERE tablename = 'workflow_executions' AND attname = 'started_at'")
        total, correlation = cur.fetchone()
    print('%d organizations, %d workflow_executions (built in %.0f s; physical order vs '
          'started_at: correlation %.2f)' % (hi, total, time.perf_counter() - start, correlation),
          file=sys.stderr)
    return total


def main(argv=None):
    from hub import connection
    from hub import lifecycle, rls

    args = parse_args(argv)
    server = args.database_url or connection.resolve_url()
    with throwaway_database(server, prefix='hub_bench_fleet', keep=args.keep) as url:
        database = connection.open_database(url)
        try:
            lifecycle.migrate_database(database)
            rls.install(database)
        finally:
            database.close()
        owner = owner_connection(url)
        try:
            with login_role(owner):
                run(url, owner, args)
        finally:
            owner.close()


def run(url, owner, args):
    with owner.cursor() as cur:
        for sql in ALWAYS:
            cur.execute(sql)
        for name in FROM_0001:  # whichever form the migrations gave them
            cur.execute('DROP INDEX IF EXISTS workflow_executions_' + name)
        cur.execute('DROP INDEX IF EXISTS workflow_executions_workflow_id_started_at')
        cur.execute(VIEW)
        cur.execute('SELECT version()')
        print(cur.fetchone()[0].split(' on ')[0])
    api = api_connection(url)
    for conn in (owner, api):  # JSON left undecoded: the same constant for every variant
        for oid in (114, 3802, 199, 3807):
            psycopg2.extensions.register_type(psycopg2.extensions.new_type(
                (oid,), 'RAW%d' % oid, lambda value, cur: value), conn)
    conns = {'owner': owner, 'api': api}
    by_size, lo = {}, 1
    last_day = "timestamptz '2025-01-01' + %d * interval '1 day'" % args.per_org
    with owner.cursor() as cur:
        cur.execute('SELECT %s - interval \'1 day\'' % last_day)
        since = cur.fetchone()[0]
    for size in args.sizes:
        total = grow(owner, lo, size, args.per_org)
        lo = size + 1
        results = phase_results(url, conns, 'org' + TENANT, 'usr' + TENANT,
                                {'workflow': 'wf%s_3' % TENANT}, args.runs, size,
                                service_params={'since': since})
        by_size[size] = results
        report('%d organizations, %d workflow_executions; tenant org1: %d executions'
               % (size, total, args.per_org), results)
        sys.stdout.flush()
    report_growth(args.sizes, by_size)
    if args.big:
        start = time.perf_counter()
        bulk_load(owner, GROW_BIG % {'rows': args.big, 'days': args.per_org})
        with owner.cursor() as cur:
            cur.execute('VACUUM ANALYZE workflow_executions')
        print('tenant of %d executions added (%.0f s)' % (args.big, time.perf_counter() - start),
              file=sys.stderr)
        results = phase_results(url, conns, 'orgbig', 'usrbig', {'workflow': 'wfbig_3'},
                                max(3, args.runs // 2), 'big')
        report('%d organizations + one tenant of %d executions, as that tenant'
               % (args.sizes[-1], args.big), results)
    api.close()


if __name__ == '__main__':
    main()
