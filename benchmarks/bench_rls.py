"""What row-level security costs a tenant: RLS time / explicit-filter time, in the same run.

    $ python -m benchmarks.bench_rls                       # $DATABASE_URL's server, else embedded
    $ python -m benchmarks.bench_rls --executions 600000 --orgs 300 --runs 60
    $ DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres python -m benchmarks.bench_rls

Builds a throwaway database on the server (dropped at the end, also on Ctrl-C): --orgs
single-member organizations with 10 workflows each, five users who belong to 3 organizations,
and --executions workflow_executions spread evenly over organizations and time (INSERT ...
SELECT generate_series: seconds, not the seeder). Then `hub rls install`, VACUUM ANALYZE, and
three typical tenant queries:

    count by status      SELECT status, count(*) ... GROUP BY status
    latest 50            SELECT * ... ORDER BY started_at DESC LIMIT 50
    one workflow         SELECT * ... WHERE workflow_id = $1 ORDER BY started_at DESC LIMIT 50

The baseline is the table owner (no RLS) with an explicit `WHERE organization_id = $org`.
Every variant and query is timed --runs times two ways, variants interleaved round by round:
client wall clock (send, plan, execute, fetch; JSON left undecoded so Python's parsing does not
dilute the ratio) and server time (planning + execution from EXPLAIN ANALYZE, TIMING OFF).
Printed: medians, median ratios against the baseline, and the plan's scans.

Variants: the hub policies with the query unfiltered (RLS alone scopes it), with the app's own
`WHERE organization_id = $org`, and with the organization_id claim; a member of 3
organizations (baseline: the owner with `organization_id IN (...)`); the spec's literal shape
(EXISTS through the parent, per-row uid()); and other shapes for workflow_executions' policy
(see SHAPES), installed only in this throwaway database.
"""
import argparse
import contextlib
import json
import re
import statistics
import sys
import time

import psycopg2

from tools.throwaway import throwaway_database

QUERIES = {
    'count by status': 'SELECT status, count(*) FROM workflow_executions{where} GROUP BY status',
    'latest 50': 'SELECT * FROM workflow_executions{where} ORDER BY started_at DESC LIMIT 50',
    'one workflow': ('SELECT * FROM workflow_executions WHERE workflow_id = %(workflow)s{and} '
                     'ORDER BY started_at DESC LIMIT 50'),
}

FILL = """
INSERT INTO organizations (id, name, slug)
    SELECT 'org' || i, 'Org ' || i, 'org-' || i FROM generate_series(1, %(orgs)s) i;
INSERT INTO users (id, email)
    SELECT 'usr' || i, 'u' || i || '@example.com' FROM generate_series(1, %(orgs)s) i;
INSERT INTO organization_members (id, organization_id, user_id, role, accepted_at)
    SELECT 'mem' || i, 'org' || i, 'usr' || i, 'OWNER', now() FROM generate_series(1, %(orgs)s) i;
-- Five users who belong to three organizations each: the spec lets them see all three.
INSERT INTO users (id, email)
    SELECT 'multi' || k, 'multi' || k || '@example.com' FROM generate_series(1, 5) k;
INSERT INTO organization_members (id, organization_id, user_id, role, accepted_at)
    SELECT 'mmem' || k || '_' || j, 'org' || (k * 3 + j), 'multi' || k, 'MEMBER', now()
    FROM generate_series(1, 5) k, generate_series(1, 3) j;
INSERT INTO workflows (id, name, nodes, edges, organization_id, created_by)
    SELECT 'wf' || o || '_' || k, 'Workflow ' || k, '[]', '[]', 'org' || o, 'usr' || o
    FROM generate_series(1, %(orgs)s) o, generate_series(1, 10) k;
-- Organizations interleave in time, as real tenants do: each execution goes to the next
-- organization of a fixed permutation, one minute after the previous one.
INSERT INTO workflow_executions (id, organization_id, workflow_id, status, started_at,
                                 completed_at, duration, input, output, nodes_executed,
                                 tokens_used, cost)
    SELECT 'ex' || i, 'org' || o, 'wf' || o || '_' || (1 + (i / %(orgs)s) %% 10),
           (ARRAY['COMPLETED', 'COMPLETED', 'COMPLETED', 'COMPLETED', 'FAILED', 'RUNNING',
                  'PENDING', 'CANCELLED'])[1 + (i * 31) %% 8]::execution_status,
           timestamptz '2025-01-01' + i * interval '1 minute',
           timestamptz '2025-01-01' + i * interval '1 minute' + interval '4 seconds',
           4000, '{"lead": {"email": "ada@example.com"}}', '{"score": 87}', 5, 1200, 0.42
    FROM (SELECT i, 1 + (i::bigint * 7919) %% %(orgs)s AS o
          FROM generate_series(1, %(executions)s) i) s;
"""

# The spec's Step 3, for workflows and workflow_executions, with a text twin of auth.uid()
# (Supabase's casts to uuid; our ids are cuids). Inlinable like Supabase's, so evaluated per row.
LITERAL = """
CREATE OR REPLACE FUNCTION bench_uid() RETURNS text LANGUAGE sql STABLE AS $$
  SELECT nullif(coalesce(current_setting('request.jwt.claim.sub', true),
                         (current_setting('request.jwt.claims', true)::jsonb ->> 'sub')), '')
$$;
DROP POLICY hub_select ON workflows;
CREATE POLICY hub_select ON workflows FOR SELECT TO authenticated
  USING (organization_id IN (SELECT organization_id FROM organization_members
                             WHERE user_id = bench_uid()));
DROP POLICY hub_select ON workflow_executions;
CREATE POLICY hub_select ON workflow_executions FOR SELECT TO authenticated
  USING (EXISTS (SELECT 1 FROM workflows
                 WHERE workflows.id = workflow_executions.workflow_id
                   AND workflows.organization_id IN (SELECT organization_id FROM organization_members
                                                     WHERE user_id = bench_uid())));
"""

# Shapes measured against ours, for workflow_executions' SELECT policy (hints from the issue).
# None of them is installed by `hub rls install`.
SHAPES = {
    # The helper called directly, not as (SELECT ...): the planner sees its value when it
    # estimates, but wherever the condition is a filter it runs once per row.
    'bare': "organization_id = ANY (hub_private.org_ids())",
    # A scalar fast path for single-organization callers, the array for the others.
    'or': ("organization_id = (SELECT hub_private.bench_sole_org()) "
           "OR organization_id = ANY ((SELECT hub_private.bench_other_org_ids())::text[])"),
    # One scalar: the plan the explicit filter gets, but a member of several organizations
    # would see none of them (breaks the spec).
    'scalar': "organization_id = (SELECT hub_private.bench_sole_org())",
}

SHAPE_HELPERS = """
CREATE OR REPLACE FUNCTION hub_private.bench_sole_org() RETURNS text LANGUAGE plpgsql STABLE
  SECURITY DEFINER SET search_path = '' AS $$
DECLARE ids text[] := hub_private.org_ids();
BEGIN
  RETURN CASE WHEN cardinality(ids) = 1 THEN ids[1] END;
END $$;
CREATE OR REPLACE FUNCTION hub_private.bench_other_org_ids() RETURNS text[] LANGUAGE plpgsql
  STABLE SECURITY DEFINER SET search_path = '' AS $$
DECLARE ids text[] := hub_private.org_ids();
BEGIN
  RETURN CASE WHEN cardinality(ids) = 1 THEN '{}' ELSE ids END;
END $$;
GRANT EXECUTE ON FUNCTION hub_private.bench_sole_org(), hub_private.bench_other_org_ids()
  TO authenticated;
"""


def add_server_options(parser):
    """--database-url and --keep, shared with benchmarks/bench_fleet.py."""
    parser.add_argument('--database-url', help='server to use (default: DATABASE_URL, else the '
                                               'embedded one); a throwaway database is created')
    parser.add_argument('--keep', action='store_true', help='do not drop the benchmark database')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--orgs', type=int, default=200, help='organizations (default 200)')
    parser.add_argument('--executions', type=int, default=500000,
                        help='workflow_executions rows (default 500000)')
    parser.add_argument('--runs', type=int, default=40,
                        help='timed runs per variant and query (default 40)')
    add_server_options(parser)
    args = parser.parse_args(argv)
    if args.orgs < 20 or args.executions < args.orgs * 10 or args.runs < 5:
        parser.error('need --orgs >= 20, --executions >= 10 x orgs, --runs >= 5')
    return args


def build(url, orgs, executions):
    from hub import connection
    from hub import lifecycle, rls

    database = connection.open_database(url)
    try:
        lifecycle.migrate_database(database)
        rls.install(database)
    finally:
        database.close()
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        start = time.perf_counter()
        cur.execute(FILL % {'orgs': orgs, 'executions': executions})
        cur.execute('VACUUM ANALYZE')
        elapsed = time.perf_counter() - start
        cur.execute('SELECT version()')
        version = cur.fetchone()[0].split(' on ')[0]
    print('%s: %d workflow_executions over %d organizations, built in %.1f s (%.0f rows/s)'
          % (version, executions, orgs, elapsed, executions / elapsed))
    return conn


class Variant:
    """Who runs the three queries, with which filter, under which SELECT policy shape."""

    def __init__(self, name, user=None, where=None, shape='hub', baseline=None, claims=None):
        self.name, self.where, self.shape, self.baseline = name, where, shape, baseline
        self.claims = None
        if user is not None:
            self.claims = dict({'sub': user, 'role': 'authenticated'}, **(claims or {}))

    def sql(self, query):
        template = QUERIES[query]
        if self.where:
            return template.format(where=' WHERE ' + self.where, **{'and': ' AND ' + self.where})
        return template.format(where='', **{'and': ''})

    @contextlib.contextmanager
    def session(self, conn):
        with conn.cursor() as cur:
            cur.execute('BEGIN')
            if self.claims:
                cur.execute('SET LOCAL ROLE authenticated')
                cur.execute("SELECT set_config('request.jwt.claims', %s, true)",
                            (json.dumps(self.claims),))
            try:
                yield cur
            finally:
                cur.execute('ROLLBACK')


def client_time(cur, sql, params):
    start = time.perf_counter()
    cur.execute(sql, params)
    rows = cur.fetchall()
    return time.perf_counter() - start, rows


def server_time(cur, sql, params):
    cur.execute('EXPLAIN (ANALYZE, TIMING OFF, SUMMARY, FORMAT JSON) ' + sql, params)
    plan = cur.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return (plan[0]['Planning Time'] + plan[0]['Execution Time']) / 1000.0


def plan_summary(cur, sql, params):
    """The plan's scans with their indexes, and whether it has initPlans, per-row subplans, sorts."""
    cur.execute('EXPLAIN ' + sql, params)
    lines = [row[0] for row in cur.fetchall()]
    scans = []
    for line in lines:
        found = re.search(r'(Index Only Scan|Index Scan Backward|Index Scan|Bitmap Index Scan|'
                          r'Seq Scan)(?: using (\S+))? on (\w+)', line)
        if found:
            kind, index, table = found.groups()
            scans.append('%s %s' % (kind, (index or table).replace('workflow_executions', 'we')))
    extras = [word for word, pattern in (('initPlan', r'InitPlan'), ('per-row SubPlan', r'SubPlan'),
                                         ('sort', r'->\s+Sort|^\s*Sort'),
                                         ('hash agg', r'HashAggregate'),
                                         ('per-row helper', r'Filter: .*hub_private\.\w+\(\)'))
              if any(re.search(pattern, l) for l in lines)]
    return ', '.join(dict.fromkeys(scans)) + (' [%s]' % ', '.join(extras) if extras else '')


def set_shape(conn, shape):
    """Give workflow_executions (and, for the literal shape, workflows) this SELECT policy."""
    from hub import rls

    with conn.cursor() as cur:
        cur.execute('BEGIN')
        for table in ('workflows', 'workflow_executions'):
            cur.execute('DROP POLICY IF EXISTS hub_select ON %s' % table)
            cur.execute(rls.policy_sql(table, 'SELECT'))
        if shape == 'literal':
            cur.execute(LITERAL)
        elif shape in SHAPES:
            cur.execute('DROP POLICY hub_select ON workflow_executions')
            cur.execute('CREATE POLICY hub_select ON workflow_executions FOR SELECT '
                        'TO authenticated USING (%s)' % SHAPES[shape])
        cur.execute('COMMIT')


def variants_for(orgs):
    org, user = 'org%d' % (orgs // 2), 'usr%d' % (orgs // 2)
    explicit = "organization_id = '%s'" % org
    multi = "organization_id IN ('org4', 'org5', 'org6')"  # multi1's organizations
    return [
        Variant('owner, WHERE organization_id = $org', where=explicit),
        Variant('hub policy, no filter', user, baseline=0),
        Variant('hub policy + WHERE organization_id = $org', user, where=explicit, baseline=0),
        Variant('hub policy, organization_id claim', user, baseline=0,
                claims={'organization_id': org}),
        Variant('owner, WHERE organization_id IN (3 orgs)', where=multi),
        Variant('hub policy, member of 3 orgs, no filter', 'multi1', baseline=4),
        Variant('spec literal: EXISTS via workflows + uid()', user, shape='literal', baseline=0),
        Variant('shape: = ANY (helper()) without SELECT', user, shape='bare', baseline=0),
        Variant('shape: scalar fast path OR array', user, shape='or', baseline=0),
        Variant('shape: OR array, member of 3 orgs', 'multi1', shape='or', baseline=4),
        Variant('shape: scalar only (hides multi-org)', user, shape='scalar', baseline=0),
    ], {'workflow': 'wf%d_3' % (orgs // 2)}, {'workflow': 'wf4_3'}


def main(argv=None):
    from hub import connection

    args = parse_args(argv)
    server = args.database_url or connection.resolve_url()
    with throwaway_database(server, prefix='hub_bench_rls', keep=args.keep) as url:
        conn = build(url, args.orgs, args.executions)
        try:
            with conn.cursor() as cur:
                cur.execute(SHAPE_HELPERS)
            run(conn, args)
        finally:
            conn.close()


def run(conn, args):
    # Raw JSON text: decoding it in Python would add the same constant to every variant.
    for oid in (114, 3802, 199, 3807):  # json, jsonb, json[], jsonb[]
        psycopg2.extensions.register_type(
            psycopg2.extensions.new_type((oid,), 'RAW%d' % oid, lambda value, cur: value), conn)
    variants, params, multi_params = variants_for(args.orgs)
    client = {(v.name, q): [] for v in variants for q in QUERIES}
    server = {(v.name, q): [] for v in variants for q in QUERIES}
    plans, counts, slow = {}, {}, {}
    shapes = list(dict.fromkeys(v.shape for v in variants))
    per_round = 5
    rounds = max(1, args.runs // per_round)
    for r in range(rounds + 1):  # round 0 warms the caches, records plans, is not counted
        for shape in shapes:
            set_shape(conn, shape)
            for v in variants:
                if v.shape != shape:
                    continue
                p = multi_params if 'multi' in json.dumps(v.claims) or 'IN (' in (v.where or '') \
                    else params
                with v.session(conn) as cur:
                    for q in QUERIES:
                        key, sql = (v.name, q), v.sql(q)
                        if r == 0:
                            plans[key] = plan_summary(cur, sql, p)
                            warm, rows = client_time(cur, sql, p)
                            counts[key] = sum(row[-1] for row in rows) \
                                if q == 'count by status' else len(rows)
                            # A shape 100x slower gets one run per round, not five.
                            slow[key] = warm > 0.1
                            continue
                        for _ in range(1 if slow[key] else per_round):
                            client[key].append(client_time(cur, sql, p)[0])
                            server[key].append(server_time(cur, sql, p))
        print('.', end='', file=sys.stderr, flush=True)
    print(file=sys.stderr)
    set_shape(conn, 'hub')
    report(variants, client, server, plans, counts)


def report(variants, client, server, plans, counts):
    med_c = {key: statistics.median(values) for key, values in client.items()}
    med_s = {key: statistics.median(values) for key, values in server.items()}
    print()
    print('median client ms (ratio) | median server ms (ratio) | rows | plan')
    for q in QUERIES:
        runs = sorted({len(t) for (name, query), t in client.items() if query == q})
        print('\n%s (runs per variant: %s)' % (q, ' or '.join(map(str, runs))))
        for v in variants:
            key = (v.name, q)
            ratio_c = ratio_s = '      '
            if v.baseline is not None:
                base = (variants[v.baseline].name, q)
                ratio_c = '%6.2fx' % (med_c[key] / med_c[base])
                ratio_s = '%6.2fx' % (med_s[key] / med_s[base])
            print('  %-44s %8.3f %s | %8.3f %s | %5s | %s' % (
                v.name, med_c[key] * 1000, ratio_c, med_s[key] * 1000, ratio_s, counts[key],
                plans[key]))


if __name__ == '__main__':
    main()
